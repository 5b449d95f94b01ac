"""Output paths are checked before the work, and files appear whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartnet.cli import app
from cartnet.cli.outputs import staged

runner = CliRunner()
QUICK = ["--horizon-days", "120", "--warmup-days", "20", "-n", "2", "--workers", "1"]


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any replication, solve or draw started fails the test: the check comes first."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the work started before the output path was checked")

    monkeypatch.setattr("cartnet.cli.twin.run_variants", refuse)
    monkeypatch.setattr("cartnet.cli.design.solve_design", refuse)
    monkeypatch.setattr("cartnet.schedule.backlog.sample_backlog", refuse)


def _commands(example: str, path: str) -> list[list[str]]:
    return [
        ["simulate", example, *QUICK, "--report", path],
        ["compare", example, *QUICK, "-p", "earliest", "-p", "nearest", "--report", path],
        ["design", "ishipment-500", "--report", path],
        ["network", "map", example, "-o", path],
        ["backlog", example, "-o", path],
    ]


@pytest.mark.parametrize("index", range(5))
@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("folder", "is a folder; give a file name inside it"),
        ("/proc/cartnet-report.html", "proc holds system interfaces, not files"),
        ("file-as-folder", "is a file, not a folder"),
    ],
)
def test_a_bad_output_path_is_refused_before_the_work(
    example_path: Path, tmp_path: Path, no_work: None, index: int, where: str, message: str
) -> None:
    """A folder, /proc or a path below a file: exit 1, the option named, nothing written."""
    (tmp_path / "report.html").mkdir()
    (tmp_path / "plain").write_text("x")
    path = {
        "folder": str(tmp_path / "report.html"),
        "file-as-folder": str(tmp_path / "plain" / "report.html"),
    }.get(where, where)
    if index == 3 and where == "folder":  # the map takes .png/.svg/.html
        (tmp_path / "map.png").mkdir()
        path = str(tmp_path / "map.png")
    args = _commands(str(example_path), path)[index]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    option = "--report" if "--report" in args else "--output"
    assert result.stderr.startswith(f"error: {option} "), result.stderr
    assert message in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_staged_files_appear_only_when_the_writing_succeeds(tmp_path: Path) -> None:
    """A failure half-way leaves neither the file nor its sibling figures."""
    target = tmp_path / "out" / "r.html"

    def fail_half_way() -> None:
        with staged(target) as tmp:
            tmp.with_name("r-ttt.png").write_bytes(b"png")
            raise RuntimeError("drawing failed")

    with pytest.raises(RuntimeError):
        fail_half_way()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out"]
    with staged(target) as tmp:
        tmp.with_name("r-ttt.png").write_bytes(b"png")
        tmp.write_text("<html>")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r-ttt.png", "r.html"]
    assert target.read_text() == "<html>"


def test_a_report_is_written_in_place_with_its_figures(example_path: Path, tmp_path: Path) -> None:
    report = tmp_path / "new" / "run.html"
    result = runner.invoke(app, ["simulate", str(example_path), *QUICK, "--report", str(report)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in report.parent.iterdir())
    assert names == sorted(
        ["run.html", *(f"run-{f}.png" for f in ("ttt", "utilization", "backlog", "lost", "flows"))]
    )
    assert str(report.parent / "run-ttt.png") in " ".join(result.stderr.split())
