"""Links between the docs lead somewhere: to a file of the repository, and to a heading
of it when they name one.

The docs must stand alone, so a relative link may not leave the repository either.
Anchors follow GitHub's rule: the heading in lower case, punctuation other than
hyphens dropped, spaces as hyphens.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6} (?P<title>.+)$", re.MULTILINE)


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, no punctuation but '-', spaces as '-'."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {anchor(m["title"]) for m in HEADING.finditer(text)}


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    problems = []
    for match in LINK.finditer(text):
        target = match["target"]
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(root)}: ({target})"
        if not resolved.is_relative_to(root):
            problems.append(f"{where} leaves the repository")
        elif not resolved.exists():
            problems.append(f"{where} names no file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{where} names no heading of {resolved.relative_to(root)}")
    return problems


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("7. Enrol a patient and book a slot chain", "7-enrol-a-patient-and-book-a-slot-chain"),
        ("`cartnet audit verify`", "cartnet-audit-verify"),
        ("Errors: RFC 9457 problem details", "errors-rfc-9457-problem-details"),
        ("Demo data (`serve --demo`)", "demo-data-serve---demo"),
    ],
)
def test_anchor_follows_github(title: str, expected: str) -> None:
    """Headings become anchors as GitHub makes them."""
    assert anchor(title) == expected


def test_a_broken_link_is_named(tmp_path: Path) -> None:
    """The check finds a missing file, a missing heading and a link out of the tree."""
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "index.md").write_text("# Index\n\n## Some part\n")
    page = root / "docs" / "page.md"
    page.write_text(
        "# Top\n[fine](index.md#some-part) [here](#top) [web](https://example.org/x)\n"
        "[a](nowhere.md) [b](index.md#no-such) [c](../../outside.md)\n"
        "```sh\n[not a link](in-a-code-block.md)\n```\n"
    )
    (tmp_path / "outside.md").write_text("# Outside\n")
    assert broken_links(page, root) == [
        "docs/page.md: (nowhere.md) names no file",
        "docs/page.md: (index.md#no-such) names no heading of docs/index.md",
        "docs/page.md: (../../outside.md) leaves the repository",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_of_the_page_lead_somewhere(page: Path) -> None:
    """Every relative link of README.md and docs/ names an existing file and heading."""
    assert broken_links(page) == []
