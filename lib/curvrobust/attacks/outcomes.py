"""Running attacks on a model: dispatch by name, per-image outcomes, and the study's
success-rate table.

:func:`run_attack` dispatches any registered attack (:data:`curvrobust.attacks.ATTACKS`), so
every attack plugs into :func:`attack_outcomes` unchanged: one row per attacked test image and ε
(:data:`~curvrobust.evaluation.outcomes.OUTCOME_COLUMNS`), from which
:func:`summarise_outcomes` counts the study's table (:func:`attack_success_table`; its rows'
``adv_accuracy`` is the accuracy under attack). :mod:`curvrobust.evaluation.outcomes` reads
these rows back and takes the worst case over attacks.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from curvrobust._checks import check_eps, check_int
from curvrobust.attacks.base import get_attack
from curvrobust.attacks.gradient import SWEEPS
from curvrobust.models.inference import decision_margin, eval_mode, model_device

def run_attack(kind: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               **params: Any) -> torch.Tensor:
    """Dispatch ``ATTACKS[kind](model, x, y, **params)`` (e.g. ``eps=0.1``).

    Args:
        kind: a registered attack name (:func:`get_attack`).
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) clean inputs.
        y: (N,) long true labels.
        **params: the attack's arguments, ``eps`` included.

    Returns:
        Detached adversarial inputs shaped like ``x``.

    Raises:
        KeyError: unknown ``kind``.
    """
    return get_attack(kind)(model, x, y, **params)


def attack_outcomes(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    index: torch.Tensor | Sequence[int] | None, kind: str,
                    eps_list: Sequence[float], params: Mapping[str, Any] | None = None,
                    batch_size: int = 1000, device: str | torch.device | None = None,
                    name: str | None = None) -> list[dict[str, Any]]:
    """Per-image outcomes of one attack: a row per test image and ε (:data:`OUTCOME_COLUMNS`).

    Only images the model classifies correctly are attacked. A row holds ``attack`` (``name``),
    ``eps``, ``index`` (the image's test-set index), ``label``, ``correct`` (1 if the clean
    image is classified correctly), ``attacked`` (1 if the attack ran on it, i.e. ``correct``),
    ``success`` (1 if attacked and the adversarial input is misclassified) and ``margin``, the
    decision margin z_y − max_{j≠y} z_j (:func:`curvrobust.models.inference.decision_margin`) of the
    final input: the adversarial one if attacked, else the clean one. The model runs in eval
    mode (its previous modes are restored). The study's counts per ε are
    :func:`summarise_outcomes` of these rows.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) test inputs (any device; moved batch by batch).
        y: (N,) long labels.
        index: (N,) test-set indices of x's rows (e.g. :func:`curvrobust.data.subsets.eval_subset`),
            or None for 0..N−1.
        kind: a registered attack name.
        eps_list: the radii ε >= 0, each at most once.
        params: the attack's other arguments (not ``eps``).
        batch_size: examples attacked at a time, >= 1.
        device: where to compute (the model is moved there with ``model.to``); default: the
            model's current device.
        name: the ``attack`` column (a config key or a suite name); default ``kind``.

    Returns:
        A list of dicts keyed by :data:`OUTCOME_COLUMNS`, ε by ε (in the order of
        ``eps_list``) and within an ε in the order of x's rows.

    Examples:
        A "classifier" whose logits are its inputs (so FGSM lowers the margin by 2ε):

        >>> import torch
        >>> from curvrobust.attacks import attack_outcomes, summarise_outcomes
        >>> model = torch.nn.Linear(3, 3)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.eye(3)), model.bias.zero_()
        >>> x = torch.tensor([[0.9, 0.1, 0.0], [0.6, 0.5, 0.2], [0.1, 0.2, 0.7], [0.3, 0.4, 0.1]])
        >>> y = torch.tensor([0, 0, 2, 0])                     # the last image is misclassified
        >>> rows = attack_outcomes(model, x, y, [10, 11, 12, 13], "fgsm", [0.1, 0.3])
        >>> [(r["eps"], r["index"], r["correct"], r["success"], round(r["margin"], 2))
        ...  for r in rows[:4]]
        [(0.1, 10, 1, 0, 0.6), (0.1, 11, 1, 1, -0.1), (0.1, 12, 1, 0, 0.3), (0.1, 13, 0, 0, -0.1)]
        >>> [(r["eps"], r["correct"], r["successes"]) for r in summarise_outcomes(rows)]
        [(0.1, 3, 1), (0.3, 3, 2)]
    """
    eps_list, attack, batch_size, index = _check_outcome_args(x, y, index, kind, eps_list,
                                                              batch_size)
    if device is not None:
        model.to(device)
    with eval_mode(model):
        correct, success, margin = _attack_correct(model, x, y, kind, attack, eps_list,
                                                   dict(params or {}), batch_size)
    return _outcome_rows(kind if name is None else str(name), eps_list, index, y, correct,
                         success, margin)


def _check_outcome_args(x: torch.Tensor, y: torch.Tensor,
                        index: torch.Tensor | Sequence[int] | None, kind: str,
                        eps_list: Sequence[float], batch_size: int
                        ) -> tuple[list[float], Any, int, torch.Tensor]:
    """:func:`attack_outcomes`'s arguments checked: the radii, the attack (KeyError if
    unknown), the batch size and the (N,) test-set indices."""
    eps_list = [check_eps(e) for e in eps_list]
    if len(set(eps_list)) != len(eps_list):
        raise ValueError(f"eps_list must name each ε once, got eps_list={eps_list!r}")
    attack = get_attack(kind)
    batch_size = check_int("batch_size", batch_size, 1)
    n_test = int(x.shape[0])
    if y.shape[0] != n_test:
        raise ValueError(f"x has {n_test} examples but y has {y.shape[0]}")
    index = torch.arange(n_test) if index is None else \
        torch.as_tensor(index, dtype=torch.long).flatten()
    if len(index) != n_test:
        raise ValueError(f"index must give one test-set index per example: {len(index)} "
                         f"indices for {n_test} examples")
    return eps_list, attack, batch_size, index


def _attack_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str, attack: Any,
                    eps_list: list[float], params: dict[str, Any], batch_size: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Attack the correctly classified images batch by batch at every ε (one sweep where the
    attack has one, :data:`~curvrobust.attacks.gradient.SWEEPS`); returns the (N,)
    correctness, (len(eps), N) success and final-input margins (clean where not attacked)."""
    sweep = SWEEPS.get(kind)
    n_test = int(x.shape[0])
    dev = model_device(model)
    correct = torch.zeros(n_test, dtype=torch.bool)
    success = torch.zeros(len(eps_list), n_test, dtype=torch.bool)
    margin = torch.empty(len(eps_list), n_test, dtype=torch.float64)
    for start in range(0, n_test, batch_size):
        xb = x[start:start + batch_size].to(dev)
        yb = y[start:start + batch_size].to(dev)
        stop = start + len(xb)
        with torch.no_grad():
            logits = model(xb)
        ok = logits.argmax(dim=1) == yb
        correct[start:stop] = ok.cpu()
        margin[:, start:stop] = decision_margin(logits, yb).cpu().double()
        if not bool(ok.any()):
            continue
        rows = ok.nonzero().flatten().cpu() + start
        xb, yb = xb[ok], yb[ok]
        if sweep is not None:
            advs: Iterator[torch.Tensor] = sweep(model, xb, yb, eps_list, **params)
        else:
            advs = (attack(model, xb, yb, eps, **params) for eps in eps_list)
        for i, adv in enumerate(advs):
            with torch.no_grad():
                z = model(adv.to(dev))
            success[i, rows] = (z.argmax(dim=1) != yb).cpu()
            margin[i, rows] = decision_margin(z, yb).cpu().double()
    return correct, success, margin


def _outcome_rows(name: str, eps_list: list[float], index: torch.Tensor, y: torch.Tensor,
                  correct: torch.Tensor, success: torch.Tensor,
                  margin: torch.Tensor) -> list[dict[str, Any]]:
    """The outcome rows (:data:`OUTCOME_COLUMNS`), ε by ε, images in input order."""
    index_l, label_l, correct_l = index.tolist(), y.tolist(), correct.int().tolist()
    out = []
    for i, eps in enumerate(eps_list):
        for idx, label, ok_, s, m in zip(index_l, label_l, correct_l, success[i].int().tolist(),
                                         margin[i].tolist()):
            out.append({"attack": name, "eps": eps, "index": idx, "label": label,
                        "correct": ok_, "attacked": ok_, "success": s, "margin": m})
    return out


def summarise_outcomes(rows: Iterable[Mapping[str, Any]],
                       eps_list: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """The study's attack table from one attack's per-image outcome rows, one row per ε.

    ``n_test`` = images with a row at that ε, ``correct`` = those classified correctly,
    ``successes`` = those the attack turned into misclassifications,
    ``success_rate`` = successes / correct (NaN if correct == 0) and
    ``adv_accuracy`` = (correct − successes) / n_test (NaN if n_test == 0).

    Args:
        rows: outcome rows of a single attack (:func:`attack_outcomes`, or read back from a
            CSV: values are converted with ``int`` / ``float``).
        eps_list: the ε to report, in this order (an ε without rows gets n_test = 0);
            default: every ε in the rows, in order of first appearance.

    Returns:
        A list of dicts ``{eps, n_test, correct, successes, success_rate, adv_accuracy}``.

    Examples:
        >>> from curvrobust.attacks import summarise_outcomes
        >>> rows = [{"attack": "fgsm_paper", "eps": 0.1, "correct": c, "success": s}
        ...         for c, s in [(1, 1), (1, 0), (0, 0), (1, 1)]]   # a CSV's rows work too
        >>> r = summarise_outcomes(rows)[0]
        >>> r["correct"], r["successes"], round(r["success_rate"], 4), r["adv_accuracy"]
        (3, 2, 0.6667, 0.25)
    """
    counts: dict[float, list[int]] = {}
    names = set()
    for r in rows:
        names.add(r["attack"])
        c = counts.setdefault(float(r["eps"]), [0, 0, 0])
        c[0] += 1
        c[1] += int(r["correct"])
        c[2] += int(r["success"])
    if len(names) > 1:
        raise ValueError(f"rows must come from one attack, got attacks {sorted(names)}")
    order = list(counts) if eps_list is None else [float(e) for e in eps_list]
    out = []
    for eps in order:
        n_test, correct, s = counts.get(eps, (0, 0, 0))
        out.append({
            "eps": eps,
            "n_test": n_test,
            "correct": correct,
            "successes": s,
            "success_rate": s / correct if correct else math.nan,
            "adv_accuracy": (correct - s) / n_test if n_test else math.nan,
        })
    return out


def attack_success_table(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str,
                         eps_list: Sequence[float], params: dict[str, Any] | None = None,
                         batch_size: int = 1000,
                         device: str | torch.device | None = None) -> list[dict[str, Any]]:
    """The study's attack evaluation, one row per ε: :func:`summarise_outcomes` of
    :func:`attack_outcomes`.

    Only test images the model classifies correctly are attacked (``correct`` = their count);
    ``successes`` = how many of them the attack turns into misclassifications;
    ``success_rate`` = successes / correct (NaN if correct == 0);
    ``adv_accuracy`` = (correct − successes) / n_test. The model runs in eval mode (its
    previous mode is restored).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) test inputs (any device; moved batch by batch).
        y: (N,) long labels.
        kind: a registered attack name.
        eps_list: the radii ε >= 0, one row each.
        params: the attack's other arguments (not ``eps``).
        batch_size: examples attacked at a time.
        device: where to compute (the model is moved there with ``model.to``); default: the
            model's current device.

    Returns:
        A list of dicts ``{eps, n_test, correct, successes, success_rate, adv_accuracy}``,
        in the order of ``eps_list``.
    """
    rows = attack_outcomes(model, x, y, None, kind, eps_list, params, batch_size=batch_size,
                           device=device)
    return summarise_outcomes(rows, [check_eps(e) for e in eps_list])


def fgsm_success_table(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       eps_list: Sequence[float], batch_size: int = 1000,
                       device: str | torch.device | None = None, *,
                       data_range: tuple[float, float] | None = (0.0, 1.0)) -> list[dict[str, Any]]:
    """:func:`attack_success_table` for FGSM (arguments and rows as there)."""
    return attack_success_table(model, x, y, "fgsm", eps_list, {"data_range": data_range},
                                batch_size=batch_size, device=device)

