"""The README and docs/: the notebook example runs, every relative link resolves inside the
repository, and nothing points outside it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_notebook_example_runs():
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- notebook-example -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no <!-- notebook-example --> python block"
    proc = subprocess.run([sys.executable, "-c", m.group(1)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x_adv" in proc.stdout


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve_inside_the_repository(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path = target.split("#")[0]
        if not path:
            continue
        resolved = (page.parent / path).resolve()
        assert resolved.is_relative_to(REPO), f"{page.name}: {target} leaves the repository"
        assert resolved.exists(), f"{page.name}: {target} does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_paths_outside_the_repository(page):
    text = page.read_text()
    for bad in ("shared/", "/work/", "/tmp/", "/root/"):
        assert bad not in text, f"{page.name} mentions {bad}"


def test_readme_is_a_short_guide():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250
