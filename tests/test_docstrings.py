"""Every public function a notebook user calls documents its arguments and return value."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = ["models.networks", "data.variants", "attacks.gradient", "attacks.outcomes",
           "attacks.base", "models.inference", "curvature.statistics", "attacks.second_order",
           "attacks.pga_dynamics", "curvature.surfaces", "attacks.autoattack",
           "evaluation.outcomes", "attacks.random_search", "evaluation.robustness",
           "evaluation.masking", "claims.judge", "data.subsets"]
# helpers that are not entry points; each has a one-paragraph docstring
EXEMPT = {"models.networks.save_checkpoint", "models.networks.lecun_normal_",
          "models.networks.make_activation", "models.networks.resnet18_cifar",
          "models.networks.available", "models.networks.count_parameters",
          "data.variants.save_reproducible", "data.variants.load_variant_manifest",
          "curvature.surfaces.save_surfaces", "curvature.statistics.is_piecewise_linear",
          # the attack convention's clipping (a one-line contract)
          "attacks.base.clip_to_range"}


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
