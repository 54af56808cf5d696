"""The README and docs/: the notebook example is well-formed, every relative link resolves
inside the repository, and nothing points outside it."""

from __future__ import annotations

import ast
import importlib
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_notebook_example_reads_a_runs_results():
    """The README's notebook block is Python that reads a trained model, the test set and a
    table from results/, imports only names the library has, and asserts its number. It needs
    a finished run, so it runs in tests/test_workflow.py
    (test_readme_notebook_example_reproduces_table1, on the smoke run's folder)."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- notebook-example -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no <!-- notebook-example --> python block"
    tree = ast.parse(m.group(1))
    strings = [n.value for n in ast.walk(tree)
               if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    for folder in ("results/models/", "results/data/", "results/study000/"):
        assert any(s.startswith(folder) for s in strings), f"the block reads nothing in {folder}"
    assert any(isinstance(n, ast.Assert) for n in ast.walk(tree)), "the block checks nothing"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("curvrobust"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"


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
    """A newcomer's guide: at most 130 lines, and the two set-up commands on its first screen
    (the details live in docs/running.md)."""
    root = Path(os.environ.get("CURVROBUST_DOCS_ROOT", REPO))  # another copy of the docs
    lines = (root / "README.md").read_text().splitlines()
    assert len(lines) <= 130, f"README.md has {len(lines)} lines (at most 130)"
    first_screen = "\n".join(lines[:25])
    for command in ("make run", "make test"):
        assert re.search(rf"^{command}\b", first_screen, re.M), \
            f"`{command}` does not start a line in README.md's first 25 lines"
