"""The documentation a user reads stands on its own: nothing cites a file that is not in the
repository, and every relative link between the docs (and its #anchor) leads somewhere."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.cluster import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=REPO, check=True).stdout
    return [REPO / line for line in out.splitlines() if line]


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    result = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        result.add(slug)
    return result


def test_nothing_cites_a_design_file_that_is_not_in_the_repository() -> None:
    assert not (REPO / "DESIGN.md").exists()
    citing = [str(p.relative_to(REPO)) for p in tracked_files()
              if p.suffix in (".py", ".md", ".yaml", ".toml", ".sh", "") and p.is_file()
              and p.name != "test_docs.py" and "DESIGN.md" in p.read_text(errors="replace")]
    assert citing == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(doc: Path) -> None:
    text = doc.read_text()
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            broken.append(target)
    assert broken == []


def test_the_contracts_are_linked_from_the_readme() -> None:
    assert "](docs/contracts.md)" in (REPO / "README.md").read_text()
