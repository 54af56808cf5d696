"""Every public function a notebook user calls documents its arguments and return value."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = ["models", "variants", "attacks", "attackbase", "inference", "curvature", "haat",
           "pga", "surfaces", "autoattack", "robust", "square", "evaluation", "masking", "claims",
           "subsets"]
# helpers that are not entry points; each has a one-paragraph docstring
EXEMPT = {"models.save_checkpoint", "models.lecun_normal_", "models.make_activation",
          "models.resnet18_cifar", "models.available", "models.count_parameters",
          "variants.save_reproducible", "variants.load_variant_manifest",
          "surfaces.save_surfaces", "curvature.is_piecewise_linear",
          # argument checks of the attack convention (one-line contracts)
          "attackbase.check_eps", "attackbase.check_int", "attackbase.check_kappa",
          "attackbase.clip_to_range"}


def _public_functions():
    for mod in MODULES:
        m = importlib.import_module(f"curvrobust.{mod}")
        for name, f in inspect.getmembers(m, inspect.isfunction):
            if not name.startswith("_") and f.__module__ == m.__name__:
                yield f"{mod}.{name}", f


@pytest.mark.parametrize("name,f", list(_public_functions()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_documents_arguments_and_return_value(name, f):
    doc = inspect.getdoc(f) or ""
    assert doc, f"{name} has no docstring"
    if name in EXEMPT:
        return
    by_reference = ":func:`" in doc and (" as :func:" in doc or "as there" in doc)
    if inspect.signature(f).parameters and not by_reference:
        assert "Args:" in doc, f"{name}: no Args section"
    assert "Returns" in doc or "Yields:" in doc or by_reference or "-> None" in str(
        inspect.signature(f)), f"{name}: no Returns section"
