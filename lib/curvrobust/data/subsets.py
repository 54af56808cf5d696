"""The shared evaluation subsets: one seeded permutation of each test set, whose first n images
every evaluation takes, so that per-image results pair across attacks, models and seeds.

Needs only torch (no attack code), so statistics jobs that take the subset (study 002's
indicator) do not rerun when an attack changes.
"""

from __future__ import annotations

import torch

from curvrobust._checks import check_int

__all__ = ["eval_subset", "select_subset", "subset_indices"]


def subset_indices(n_total: int, n: int, seed: int) -> torch.Tensor:
    """A fixed random subset of ``n`` of ``range(n_total)``, sorted: the first ``n`` of a
    seeded permutation, so that every model is evaluated on the same points.

    The permutation behind :func:`eval_subset` (and study 001's AutoAttack subsets).

    Args:
        n_total: size of the set, >= 1.
        n: subset size, 1 <= n <= n_total.
        seed: seed of the permutation.

    Returns:
        (n,) int64 tensor of sorted indices.
    """
    n_total = check_int("n_total", n_total, 1)
    if check_int("n", n, 1) > n_total:
        raise ValueError(f"n must be <= n_total={n_total}, got n={n!r}")
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_total, generator=g)[:n].sort().values


def eval_subset(n_total: int, n: int | None, seed: int) -> torch.Tensor:
    """The shared evaluation subset: the first ``n`` of one seeded permutation of
    ``range(n_total)``, sorted.

    Every evaluation on a dataset draws from the same permutation, so subsets nest:
    ``eval_subset(N, 150, s)`` ⊂ ``eval_subset(N, 500, s)``, and outcomes pair image by image
    across attacks, models and seeds. The permutation is
    :func:`subset_indices`' (study 001's AutoAttack subsets are drawn the same way).

    Args:
        n_total: size of the test set, >= 1.
        n: subset size, 1 <= n <= n_total; None: all ``n_total`` images.
        seed: seed of the permutation.

    Returns:
        (n,) int64 tensor of sorted test-set indices.

    Examples:
        >>> from curvrobust.data.subsets import eval_subset
        >>> small, large = eval_subset(10, 4, seed=0), eval_subset(10, 6, seed=0)
        >>> small.tolist(), set(small.tolist()) <= set(large.tolist())   # subsets nest
        ([1, 4, 5, 7], True)
        >>> eval_subset(5, None, seed=0).tolist()                        # None: every image
        [0, 1, 2, 3, 4]
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
