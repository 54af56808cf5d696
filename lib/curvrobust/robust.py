"""Robust evaluation on shared test subsets: per-image attack outcomes and the worst case over
attacks.

Every attack and checkpoint evaluation of the L∞ classifiers writes one row per attacked test
image and ε (:data:`OUTCOME_COLUMNS`: ``attack, eps, index, label, correct, attacked, success,
margin``). The images come from one seeded permutation of the test set per dataset, each
evaluation taking its first n (:func:`eval_subset`, :func:`select_subset`), so the rows of
different attacks, models and seeds pair up image by image. On these rows:

* :func:`summarise_outcomes` gives one attack's success-rate table per ε (the study's rate,
  successes among correctly classified images);
* :func:`worst_case` gives the robust accuracy over every attack run on a model at an ε: the
  share of images classified correctly that no attack broke (as AutoAttack reports it).

:func:`attack_outcomes` and :func:`summarise_outcomes` live in :mod:`curvrobust.attacks`
(training code imports that module; it keeps one implementation of the per-image loop for
:func:`curvrobust.attacks.attack_success_table` too) and are re-exported here. pandas is
imported only by :func:`worst_case` and :func:`read_outcomes`.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import torch

from .attackbase import check_int
from .attacks import OUTCOME_COLUMNS, attack_outcomes, summarise_outcomes
from .autoattack import subset_indices

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OUTCOME_COLUMNS", "REQUIRED_ATTACKS", "attack_outcomes", "eval_subset",
           "read_outcomes", "select_subset", "summarise_outcomes", "worst_case"]

REQUIRED_ATTACKS = ("pgd_ce", "pgd_margin", "square")
"""The attacks a worst case needs before it is shown (:func:`worst_case`'s ``complete``)."""

_EPS_RTOL = 1e-9  # ε read back from CSV files equals the written float; allow rounding only


def eval_subset(n_total: int, n: int | None, seed: int) -> torch.Tensor:
    """The shared evaluation subset: the first ``n`` of one seeded permutation of
    ``range(n_total)``, sorted.

    Every evaluation on a dataset draws from the same permutation, so subsets nest:
    ``eval_subset(N, 150, s)`` ⊂ ``eval_subset(N, 500, s)``, and outcomes pair image by image
    across attacks, models and seeds. The permutation is
    :func:`curvrobust.autoattack.subset_indices`' (the AutoAttack subsets of study 001 were
    always drawn this way; it stays there, below the attacks this module imports).

    Args:
        n_total: size of the test set, >= 1.
        n: subset size, 1 <= n <= n_total; None: all ``n_total`` images.
        seed: seed of the permutation.

    Returns:
        (n,) int64 tensor of sorted test-set indices.
    """
    if n is None:
        return torch.arange(check_int("n_total", n_total, 1))
    return subset_indices(n_total, n, seed)


def select_subset(x: torch.Tensor, y: torch.Tensor, n_examples: int | str | None,
                  n_default: int | str, seed: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The images of the shared subset an attack spec asks for (:func:`eval_subset`).

    Args:
        x: (N, ...) the whole test set.
        y: (N,) its labels.
        n_examples: the spec's subset size: an int, ``"all"`` (the whole test set, study 000's
            FGSM protocol) or None (``n_default``).
        n_default: the size when the spec names none (int or ``"all"``).
        seed: the shared permutation's seed.

    Returns:
        ``(x[index], y[index], index)``, index the sorted test-set indices.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    n = n_default if n_examples is None else n_examples
    what = "n_default" if n_examples is None else "n_examples"
    if n == "all":
        n = None
    elif isinstance(n, str) or check_int(what, n, 1) > len(x):
        raise ValueError(f"{what} must be a positive integer <= the {len(x)} test images or "
                         f"'all', got {what}={n!r}")
    index = eval_subset(len(x), n, seed)
    return x[index], y[index], index


def _check_outcome_columns(outcomes: "pd.DataFrame", where: str) -> None:
    missing = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if missing:
        raise ValueError(f"{where}: not outcome rows, missing column(s) {', '.join(missing)}")


def worst_case(outcomes: "pd.DataFrame", eps: float,
               required: Sequence[str] = REQUIRED_ATTACKS) -> dict[str, Any]:
    """Worst-case robust accuracy of one model at ``eps`` over every attack with rows there.

    The images counted are those every attack run at ``eps`` has a row for (the intersection
    of their index sets). An image is robust when it is classified correctly and no attack
    broke it (``attacked == 1`` and ``success == 1`` in no row); an image an attack skipped
    (``attacked == 0``) counts as not broken by that attack.

    Args:
        outcomes: outcome rows of one model (:data:`OUTCOME_COLUMNS`), e.g.
            :func:`read_outcomes`; rows at other ε are ignored.
        eps: the radius ε.
        required: attack names (the ``attack`` column) that must all have run for the worst
            case to be ``complete``.

    Returns:
        ``{robust_accuracy, n, natural_accuracy, attacks, complete}``: the accuracies as
        shares of the ``n`` common images (NaN when n == 0), ``attacks`` the sorted names run
        at ``eps`` joined by ";", ``complete`` whether every ``required`` name is among them.
    """
    _check_outcome_columns(outcomes, "outcomes")
    eps = float(eps)
    at = outcomes[np.isclose(outcomes["eps"].astype(float), eps, rtol=_EPS_RTOL, atol=1e-12)]
    names = sorted(str(a) for a in at["attack"].unique())
    out: dict[str, Any] = dict(robust_accuracy=math.nan, n=0, natural_accuracy=math.nan,
                               attacks=";".join(names),
                               complete=bool(names) and set(required) <= set(names))
    if not names:
        return out
    common = set.intersection(*(set(g["index"].tolist()) for _, g in at.groupby("attack")))
    at = at[at["index"].isin(common)]
    if at.empty:
        return out
    by_image = at.groupby("index")
    correct = by_image["correct"].agg(["min", "max"])
    disagree = correct.index[correct["min"] != correct["max"]].tolist()
    if disagree:
        raise ValueError(f"rows disagree on whether image(s) {disagree[:5]} are classified "
                         "correctly: outcomes of more than one model?")
    broken = ((at["attacked"] == 1) & (at["success"] == 1)).groupby(at["index"]).any()
    is_correct = correct["min"] == 1
    robust = is_correct & ~broken.reindex(is_correct.index)
    n = len(is_correct)
    out.update(robust_accuracy=float(robust.sum()) / n, n=n,
               natural_accuracy=float(is_correct.sum()) / n)
    return out


def read_outcomes(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> "pd.DataFrame":
    """Concatenate outcome CSV files (:data:`OUTCOME_COLUMNS`, other columns kept).

    Args:
        paths: one path or several.

    Returns:
        A DataFrame with the files' rows in order (columns ``attack`` as str, ``eps`` and
        ``margin`` float, the others int); an empty one with the outcome columns if no path.
    """
    import pandas as pd

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    frames = []
    for path in paths:
        df = pd.read_csv(path, dtype={"attack": str})
        _check_outcome_columns(df, str(path))
        frames.append(df)
    dtypes = {"attack": str, "eps": float, "index": "int64", "label": "int64",
              "correct": "int64", "attacked": "int64", "success": "int64", "margin": float}
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=dtypes[c] if dtypes[c] is not str else object)
                             for c in OUTCOME_COLUMNS})
    return pd.concat(frames, ignore_index=True).astype(dtypes)
