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

from curvrobust._checks import EPS_RTOL
from curvrobust.utils import check_result_file, unreadable

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OUTCOME_COLUMNS", "REQUIRED_ATTACKS", "read_outcomes", "worst_case",
           "worst_case_images"]

OUTCOME_COLUMNS = ("attack", "eps", "index", "label", "correct", "attacked", "success", "margin")
"""Columns of a per-image outcome row, in order
(:func:`curvrobust.attacks.outcomes.attack_outcomes`)."""

REQUIRED_ATTACKS = ("pgd_ce", "pgd_margin", "apgd_ce", "apgd_t", "fab_t", "square")
"""The attacks a worst case needs before it is shown (:func:`worst_case`'s ``complete``): the
suite's cross-entropy and margin PGD and the standard AutoAttack's four stages
(:func:`curvrobust.evaluation.masking.robust_suite`)."""





def _check_outcome_columns(outcomes: "pd.DataFrame", where: str) -> None:
    missing = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if missing:
        raise ValueError(f"{where}: not outcome rows, missing column(s) {', '.join(missing)}")


def worst_case_images(outcomes: "pd.DataFrame", eps: float) -> "pd.DataFrame":
    """Per image, the worst case over every attack with rows at ``eps``.

    The images are those every attack run at ``eps`` has a row for (the intersection of their
    index sets). An image is robust when it is classified correctly and no attack broke it
    (``attacked == 1`` and ``success == 1`` in no row); an image an attack skipped
    (``attacked == 0``) counts as not broken by that attack.

    Args:
        outcomes: outcome rows of one model (:data:`OUTCOME_COLUMNS`), e.g.
            :func:`read_outcomes`; rows at other ε are ignored.
        eps: the radius ε.

    Returns:
        One row per common image, sorted by ``index``: ``index, label, correct, robust``
        (0/1 ints); empty when no attack ran at ``eps``. The ``attrs`` hold ``attacks``, the
        sorted attack names joined by ";".
    """
    import pandas as pd

    _check_outcome_columns(outcomes, "outcomes")
    eps = float(eps)
    at = outcomes[np.isclose(outcomes["eps"].astype(float), eps, rtol=EPS_RTOL, atol=1e-12)]
    names = sorted(str(a) for a in at["attack"].unique())
    out = pd.DataFrame({c: pd.Series(dtype="int64") for c in ("index", "label", "correct",
                                                               "robust")})
    if names:
        common = set.intersection(*(set(g["index"].tolist()) for _, g in at.groupby("attack")))
        at = at[at["index"].isin(common)]
    if names and not at.empty:
        by_image = at.groupby("index")
        correct = by_image["correct"].agg(["min", "max"])
        disagree = correct.index[correct["min"] != correct["max"]].tolist()
        if disagree:
            raise ValueError(f"rows disagree on whether image(s) {disagree[:5]} are classified "
                             "correctly: outcomes of more than one model?")
        broken = ((at["attacked"] == 1) & (at["success"] == 1)).groupby(at["index"]).any()
        is_correct = correct["min"] == 1
        robust = is_correct & ~broken.reindex(is_correct.index)
        out = pd.DataFrame({"index": is_correct.index.astype("int64"),
                            "label": by_image["label"].first().reindex(is_correct.index).values,
                            "correct": is_correct.astype("int64").values,
                            "robust": robust.astype("int64").values}).sort_values("index")
        out = out.reset_index(drop=True)
    out.attrs["attacks"] = ";".join(names)
    return out


def worst_case(outcomes: "pd.DataFrame", eps: float,
               required: Sequence[str] = REQUIRED_ATTACKS) -> dict[str, Any]:
    """Worst-case robust accuracy of one model at ``eps`` over every attack with rows there
    (:func:`worst_case_images`, summed).

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

    Examples:
        Two attacks on three images: each breaks one of the two correct images, so none is
        robust to both:

        >>> import pandas as pd
        >>> from curvrobust.evaluation.outcomes import worst_case
        >>> runs = [("pgd_ce", 7, 1, 0), ("pgd_ce", 9, 1, 1), ("pgd_ce", 12, 0, 0),
        ...         ("square", 7, 1, 1), ("square", 9, 1, 0), ("square", 12, 0, 0)]
        >>> rows = pd.DataFrame([dict(attack=a, eps=0.1, index=i, label=3, correct=c, attacked=c,
        ...                           success=s, margin=0.0) for a, i, c, s in runs])
        >>> w = worst_case(rows, eps=0.1)
        >>> w["n"], round(w["natural_accuracy"], 4), w["robust_accuracy"], w["attacks"]
        (3, 0.6667, 0.0, 'pgd_ce;square')
        >>> w["complete"]          # not every attack of REQUIRED_ATTACKS ran
        False
    """
    images = worst_case_images(outcomes, eps)
    names = [a for a in images.attrs["attacks"].split(";") if a]
    out: dict[str, Any] = dict(robust_accuracy=math.nan, n=0, natural_accuracy=math.nan,
                               attacks=";".join(names),
                               complete=bool(names) and set(required) <= set(names))
    n = len(images)
    if n:
        out.update(robust_accuracy=float(images["robust"].sum()) / n, n=n,
                   natural_accuracy=float(images["correct"].sum()) / n)
    return out


def read_outcomes(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> "pd.DataFrame":
    """Concatenate outcome CSV files (:data:`OUTCOME_COLUMNS`, other columns kept).

    Args:
        paths: one path or several.

    Returns:
        A DataFrame with the files' rows in order (columns ``attack`` as str, ``eps`` and
        ``margin`` float, the others int); an empty one with the outcome columns if no path.

    Raises:
        ResultFileError: a file is missing, unreadable, or not what its job wrote (a
            ValueError naming the file and the rebuild command).

    Examples:
        A run's files are e.g. ``results/attacks/<dataset>/<variant>/<recipe>/seed<seed>/final/
        <attack>_images.csv`` and ``results/robust/.../outcomes.csv``; here one written by hand:

        >>> import tempfile
        >>> from pathlib import Path
        >>> from curvrobust.evaluation.outcomes import OUTCOME_COLUMNS, read_outcomes
        >>> lines = [",".join(OUTCOME_COLUMNS), "fgsm_paper,0.1,7,3,1,1,0,0.5",
        ...          "fgsm_paper,0.1,9,1,1,1,1,-0.25", "fgsm_paper,0.1,12,4,0,0,0,-1.0"]
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = (Path(tmp) / "fgsm_paper_images.csv").write_text("\\n".join(lines) + "\\n")
        ...     rows = read_outcomes(Path(tmp) / "fgsm_paper_images.csv")
        >>> len(rows), rows["success"].tolist(), str(rows["eps"].dtype), str(rows["index"].dtype)
        (3, [0, 1, 0], 'float64', 'int64')
    """
    import pandas as pd

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    frames = []
    for path in paths:
        check_result_file(path, "outcome file")
        try:
            df = pd.read_csv(path, dtype={"attack": str})
        except (ValueError, UnicodeDecodeError) as e:  # pandas' parser errors are ValueErrors
            raise unreadable(path, "outcome file", e) from e
        _check_outcome_columns(df, str(path))
        frames.append(df)
    dtypes = {"attack": str, "eps": float, "index": "int64", "label": "int64",
              "correct": "int64", "attacked": "int64", "success": "int64", "margin": float}
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=dtypes[c] if dtypes[c] is not str else object)
                             for c in OUTCOME_COLUMNS})
    return pd.concat(frames, ignore_index=True).astype(dtypes)
