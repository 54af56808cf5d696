"""What a claim is judged on: one :class:`Evidence` kind per way of getting an interval.

A study's report module measures each claim (its ``measure``, looked up in the study's
:class:`Measures` registry) and returns one of:

* :class:`PerImage`: per-seed, per-image values of the compared arms on test images every seed
  shares (a cube, seeds × images × arms; numerators and, for rates, denominators); the
  interval covers seeds *and* images. ``x`` makes the effect a trend (the slope against
  log₂ x), as study 003's sweeps;
* :class:`PerSeed`: one effect per training run (no per-image data), or only an effect of the
  arm means when the arms share no seed;
* :class:`Censored`: per seed, the order of a sweep's arms, when some run never crossed its
  threshold (study 003): the order rule instead of an interval;
* :class:`RankCorrelation`: one value pair per model (seed-averaged), for a rank correlation
  across models with a permutation test (study 002's indicator);
* :class:`Absent`: the preset did not train the models (``not_run``), or a model failed the
  validity gate (``not_evaluable``), with the reason.

Every kind carries ``ours`` (the measured values, as text) and ``flags`` (failed gradient-masking
checks). :func:`from_mapping` and :meth:`Evidence.as_mapping` convert to and from the published
files' dicts (docs/evidence/<study>.json), whose keys are those of the earlier dict evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

STATUSES = ("ok", "not_run", "not_evaluable")


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """What every kind carries: the measured values as text and the flags."""

    ours: str = ""
    flags: tuple[str, ...] = ()
    kind: ClassVar[str] = ""
    # field name -> key in the published dicts, where they differ
    KEYS: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        object.__setattr__(self, "flags", tuple(self.flags or ()))

    def as_mapping(self) -> dict[str, Any]:
        """The dict the published files hold: ``status`` first, then every field (renamed by
        ``KEYS``); :func:`from_mapping` reads it back to an equal object."""
        out: dict[str, Any] = {"status": "ok"}
        for f in fields(self):
            value = getattr(self, f.name)
            out[self.KEYS.get(f.name, f.name)] = list(value) if f.name == "flags" else value
        return out


@dataclass(frozen=True, kw_only=True)
class Absent(Evidence):
    """No judgement possible: ``status`` ``not_run`` or ``not_evaluable``, with the reason."""

    status: str
    reason: str = ""
    kind: ClassVar[str] = "absent"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.status not in STATUSES[1:]:
            raise ValueError(f"Absent evidence: status must be one of {STATUSES[1:]}, got "
                             f"{self.status!r}")


@dataclass(frozen=True, kw_only=True)
class PerImage(Evidence):
    """Cubes (S seeds × n images × k arms) of numerators ``num`` and, for rates, denominators
    ``den``; a (n, k) array is one seed. ``x``: the swept values (k of them) for a trend.
    ``both_correct_*``: the same rate on the images every arm classifies correctly."""

    num: np.ndarray
    den: np.ndarray | None = None
    x: Sequence[float] | None = None
    seeds: Sequence[Any] | None = None
    both_correct_num: np.ndarray | None = None
    both_correct_den: np.ndarray | None = None
    kind: ClassVar[str] = "per_image"
    KEYS: ClassVar[dict[str, str]] = {"num": "images_num", "den": "images_den"}

    @classmethod
    def from_cube(cls, cube: Mapping[str, Any], **kw: Any) -> "PerImage":
        """From :func:`curvrobust.claims.stats.cube_from_frames`' dict (or any dict with
        ``images_num``, ``images_den`` and optionally ``seeds``)."""
        return cls(num=cube["images_num"], den=cube.get("images_den"),
                   seeds=cube.get("seeds"), **kw)


@dataclass(frozen=True, kw_only=True)
class PerSeed(Evidence):
    """One effect per seed (``per_seed``: seed -> effect, None where undefined); without seeds,
    ``effect`` alone (an effect of arm means: no interval)."""

    per_seed: Mapping[Any, float | None] = field(default_factory=dict)
    effect: float | None = None
    x: Sequence[float] | None = None
    kind: ClassVar[str] = "per_seed"



@dataclass(frozen=True, kw_only=True)
class Censored(Evidence):
    """Per seed, how it orders a sweep's arms (``orders``: +1 increasing, −1 decreasing, 0
    neither), for runs some of which never crossed (``censored``: True, or which ones).
    ``per_seed`` and ``effect`` are shown, not judged."""

    orders: Mapping[Any, int] = field(default_factory=dict)
    censored: Any = True
    per_seed: Mapping[Any, float | None] = field(default_factory=dict)
    effect: float | None = None
    x: Sequence[float] | None = None
    kind: ClassVar[str] = "censored"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.censored:
            raise ValueError("Censored evidence needs the censored runs (`censored`); without "
                             "them it is PerSeed evidence")


@dataclass(frozen=True, kw_only=True)
class RankCorrelation(Evidence):
    """One (x, y) pair per model, seed-averaged (``n_seeds`` seeds, described by
    ``seeds_text``), for a rank correlation across models."""

    rank_x: Sequence[float]
    rank_y: Sequence[float]
    n_seeds: int = 0
    seeds_text: str = "seed-averaged"
    kind: ClassVar[str] = "rank"


KINDS = (PerImage, PerSeed, Censored, RankCorrelation, Absent)
_ALL_KEYS = {"status", "reason"} | {Evidence.KEYS.get(f.name, f.name) for f in fields(Evidence)}
for _k in KINDS:
    _ALL_KEYS |= {_k.KEYS.get(f.name, f.name) for f in fields(_k)}


def from_mapping(evidence: Mapping[str, Any] | Evidence, cid: str = "?") -> Evidence:
    """The typed evidence of a dict (a published file's, or a report's), or `evidence` itself.
    The kind follows from the keys, in this order: ``status`` not ok -> Absent; a non-empty
    ``censored`` -> Censored; ``rank_x`` -> RankCorrelation; ``images_num`` -> PerImage; else
    PerSeed. ValueError naming the claim and the key for an unknown key or status."""
    if isinstance(evidence, Evidence):
        return evidence
    if not isinstance(evidence, Mapping):
        raise ValueError(f"claim {cid!r}: evidence must be a dict, got {type(evidence).__name__}")
    status = evidence.get("status")
    if status not in STATUSES:
        raise ValueError(f"claim {cid!r}: evidence key 'status' is {status!r}, not one of "
                         f"{', '.join(STATUSES)}")
    unknown = sorted(set(evidence) - _ALL_KEYS)
    if unknown:
        raise ValueError(f"claim {cid!r}: unknown evidence key {unknown[0]!r}")
    common = dict(ours=str(evidence.get("ours", "") or ""), flags=evidence.get("flags") or ())
    if status != "ok":
        return Absent(status=status, reason=evidence.get("reason") or "", **common)
    if evidence.get("censored"):
        return Censored(orders=evidence.get("orders") or {}, censored=evidence["censored"],
                        per_seed=evidence.get("per_seed") or {}, effect=evidence.get("effect"),
                        x=evidence.get("x"), **common)
    if evidence.get("rank_x") is not None:
        return RankCorrelation(rank_x=evidence["rank_x"], rank_y=evidence["rank_y"],
                               n_seeds=int(evidence.get("n_seeds", 0)),
                               seeds_text=evidence.get("seeds_text", "seed-averaged"), **common)
    if evidence.get("images_num") is not None:
        return PerImage(num=evidence["images_num"], den=evidence.get("images_den"),
                        x=evidence.get("x"), seeds=evidence.get("seeds"),
                        both_correct_num=evidence.get("both_correct_num"),
                        both_correct_den=evidence.get("both_correct_den"), **common)
    return PerSeed(per_seed=evidence.get("per_seed") or {}, effect=evidence.get("effect"),
                   x=evidence.get("x"), **common)


# ---- each study's measures ----

Measure = Callable[..., Evidence]


class Measures:
    """One study's registry of claim measures (as the attacks' registry): a claim's
    ``measure`` names the function that builds its evidence.

    >>> study = Measures("study999")
    >>> @study.register("mean_gap")
    ... def mean_gap(claim, records):
    ...     return PerSeed(per_seed={0: 0.1, 1: 0.2})
    >>> study.get("mean_gap") is mean_gap
    True
    >>> study.get("median_gap")
    Traceback (most recent call last):
    ...
    ValueError: study999: unknown claim measure 'median_gap'; known: mean_gap
    """

    def __init__(self, study: str):
        self.study = study
        self._measures: dict[str, Measure] = {}

    def register(self, name: str) -> Callable[[Measure], Measure]:
        """Decorator: register the decorated function as measure `name` (once)."""
        def add(fn: Measure) -> Measure:
            if name in self._measures:
                raise ValueError(f"{self.study}: claim measure {name!r} registered twice")
            self._measures[name] = fn
            return fn
        return add

    def get(self, name: str, cid: str = "") -> Measure:
        """The measure `name` (of claim `cid`); ValueError naming the study, the claim and the
        known measures."""
        try:
            return self._measures[name]
        except KeyError:
            claim = f"claim {cid!r}: " if cid else ""
            raise ValueError(f"{self.study}: {claim}unknown claim measure {name!r}; known: "
                             f"{', '.join(sorted(self._measures))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._measures

    def __iter__(self):
        return iter(sorted(self._measures))
