"""The twin report: one offline HTML page and real PNGs, from a real run document."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cartnet.network import Network, load_network
from cartnet.report.twin_report import write_report
from cartnet.report.twin_summary import FLAG_NOTE
from cartnet.twin.replications import Variant, run_variants
from cartnet.twin.results import VariantResult, run_document
from cartnet.twin.settings import TwinSettings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "two-sites.yaml"
PNGS = ("ttt", "utilization", "backlog", "lost", "flows")
SECTIONS = (
    "headline",
    "kpis",
    "distributions",
    "utilization",
    "backlog",
    "lost",
    "flows",
    "settings",
)


def _run(variants: list[Variant], replications: int = 4, seed: int = 1) -> dict[str, Any]:
    settings = TwinSettings(horizon_days=200, warmup_days=30)
    aggregates = run_variants(variants, settings, replications=replications, seed=seed)
    results = [VariantResult(v, a) for v, a in zip(variants, aggregates, strict=True)]
    name = variants[0].network.name
    return run_document(name, results, settings, replications, seed, ["a test warning"])


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network(EXAMPLE)


@pytest.fixture(scope="module")
def comparison(network: Network) -> tuple[dict[str, Any], dict[str, Network]]:
    variants = [
        Variant("base/earliest", network, "earliest"),
        Variant(
            "no-leiden-commercial/earliest",
            network.with_scenario("no-leiden-commercial"),
            "earliest",
        ),
    ]
    return _run(variants), {v.label: v.network for v in variants}


@pytest.fixture(scope="module")
def report(
    comparison: tuple[dict[str, Any], dict[str, Network]], tmp_path_factory: pytest.TempPathFactory
) -> list[Path]:
    document, networks = comparison
    return write_report(document, networks, tmp_path_factory.mktemp("report") / "run.html")


def _outside_plotlyjs(html: str) -> str:
    from plotly.offline import get_plotlyjs

    return html.replace(get_plotlyjs(), "")


def _signed(x: float) -> str:
    text = f"{abs(x):.1f}"
    if float(text) == 0:
        return text
    return ("+" if x > 0 else "\u2212") + text


def test_writes_the_page_and_every_png(report: list[Path]) -> None:
    html = report[0]
    assert html.name == "run.html"
    assert [p.name for p in report[1:]] == [f"run-{name}.png" for name in PNGS]
    assert all(p.exists() and p.stat().st_size > 0 for p in report)


def test_page_is_self_contained(report: list[Path]) -> None:
    from plotly.offline import get_plotlyjs

    html = report[0].read_text(encoding="utf-8")
    assert html.count(get_plotlyjs()) == 1  # plotly.js inlined, once
    assert html.count("* plotly.js v") == 1
    assert 'src="http' not in html
    rest = _outside_plotlyjs(html)
    assert "https://cdn" not in rest
    assert not re.search(r"https?://", rest)  # no URL at all besides the library's own text
    assert len(html) < 8_000_000


def test_page_holds_variants_headline_and_sections_in_order(
    report: list[Path], comparison: tuple[dict[str, Any], dict[str, Network]]
) -> None:
    document, _ = comparison
    html = _outside_plotlyjs(report[0].read_text(encoding="utf-8"))
    for v in document["variants"]:
        assert v["label"] in html
    positions = [html.index(f'id="{section}"') for section in SECTIONS]
    assert positions == sorted(positions)
    headline = html[positions[0] : positions[1]]
    difference = document["differences"][0]["kpis"]
    for market in ("EU", "US"):
        ttt = difference[f"{market}.ttt.mean"]
        expected = (
            f"time to treatment {_signed(ttt['mean'])} days (95% CI "
            f"{_signed(ttt['ci_low'])} to {_signed(ttt['ci_high'])})"
        )
        assert f"{market}: " in headline
        assert expected in headline
        lost = difference[f"{market}.lost_per_year"]
        assert f"patients lost per year {_signed(lost['mean'])}" in headline
    assert "assumptions" in headline
    assert "a test warning" in html[positions[-1] :]
    assert f"seed {document['seed']}" in html


@pytest.mark.parametrize("name", PNGS)
def test_pngs_are_real_images(report: list[Path], name: str) -> None:
    from matplotlib.image import imread

    (path,) = [p for p in report if p.name == f"run-{name}.png"]
    image = np.asarray(imread(path))
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_flow_map_shows_every_variant(report: list[Path]) -> None:
    from matplotlib.image import imread

    (flows,) = [p for p in report if p.name == "run-flows.png"]
    # one world map is more than twice as wide as it is tall; two stacked are not
    height, width = imread(flows).shape[:2]
    assert height > 0.7 * width


def test_single_variant_renders(network: Network, tmp_path: Path) -> None:
    variant = Variant("base/earliest", network, "earliest")
    document = _run([variant], replications=3, seed=7)
    assert document["differences"] == []
    written = write_report(document, {variant.label: network}, tmp_path / "one.html")
    assert [p.name for p in written] == ["one.html", *(f"one-{n}.png" for n in PNGS)]
    html = _outside_plotlyjs(written[0].read_text(encoding="utf-8"))
    ttt = document["variants"][0]["kpis"]["all.ttt.mean"]
    assert f"All markets: time to treatment {ttt['mean']:.1f} days (95% CI" in html
    assert "compared with" not in html
    from matplotlib.image import imread

    for path in written[1:]:
        assert np.asarray(imread(path))[..., :3].std() > 0.05


def test_tables_say_which_figures_have_too_few_events(
    report: list[Path], comparison: tuple[dict[str, Any], dict[str, Network]]
) -> None:
    """Both variants see the same patients, so enrolment never differs: no 0 [0, 0]."""
    document, _ = comparison
    enrolled = document["differences"][0]["kpis"]["all.enrolled"]
    assert (enrolled["mean"], enrolled["flag"]) == (0.0, "too_few_events")
    html = _outside_plotlyjs(report[0].read_text(encoding="utf-8"))
    row = re.search(r"<tr><td>Enrolled \(cohort\)</td>(.*?)</tr>", html.split("Difference:")[1])
    assert row is not None
    assert "0.0 (too few events)" in row.group(1)
    assert "[0.0, 0.0]" not in row.group(1)
    assert FLAG_NOTE in html.replace("&#x27;", "'")


def test_rejects_other_documents(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="twin-run"):
        write_report({"schema": "something/else"}, {}, tmp_path / "x.html")
