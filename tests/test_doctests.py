"""The examples in the docstrings of the library's notebook entry points run (doctest), and
every entry point keeps at least one, so none loses its example silently.

The entry points are what a researcher calls from a notebook (README.md, "The library from a
notebook"): building and loading a model, a data source and a dataset variant, the attacks'
registry and attacks, the per-image outcomes and their worst case, curvature statistics and the
claims' judge. Each example runs in well under a second on the CPU on tiny tensors and writes
only to a temporary folder.
"""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

ENTRY_POINTS = {
    "curvrobust.models.networks": ["build_model", "load_model"],
    "curvrobust.data.sources": ["get_spec"],
    "curvrobust.data.variants": ["load_variant"],
    "curvrobust.data.subsets": ["eval_subset"],
    "curvrobust.attacks.base": ["get_attack"],
    "curvrobust.attacks.gradient": ["fgsm", "pgd"],
    "curvrobust.attacks.outcomes": ["attack_outcomes", "summarise_outcomes"],
    "curvrobust.evaluation.outcomes": ["read_outcomes", "worst_case"],
    "curvrobust.curvature.statistics": ["input_grad_norm", "logit_margin"],
    "curvrobust.claims.judge": ["judge"],
}
# modules whose doctests run besides the entry points' (the claims' measure registry)
MODULES = [*ENTRY_POINTS, "curvrobust.claims.evidence"]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _doctests(module_name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(module_name)
    return [t for t in doctest.DocTestFinder().find(module, module_name) if t.examples]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    tests = _doctests(module_name)
    assert tests, f"{module_name} has no docstring examples"
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    with torch.random.fork_rng():   # the examples seed torch's global generator
        for test in tests:
            runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)


@pytest.mark.parametrize("name", [f"{m}.{f}" for m, fs in ENTRY_POINTS.items() for f in fs])
def test_entry_point_has_an_example(name):
    module_name, _, function = name.rpartition(".")
    by_name = {t.name: t for t in _doctests(module_name)}
    test = by_name.get(name)
    assert test is not None, f"{name} has no example (>>> lines in its docstring)"
    assert "Examples:" in (test.docstring or ""), f"{name}: no Examples: section"
