"""What a claim is: the verdicts, the directions a claim can assert, and :class:`Claim`.

A study's plan declares its claims as plain data (dicts: they travel through Snakemake's params
and into the published evidence); the engine reads each one once into a frozen :class:`Claim`
(:meth:`Claim.from_mapping`), which checks every field and names the claim and the field at
fault, so a malformed plan fails before any judging. Fields are those of docs/claims.md's
"Claims as data".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

HOLDS = "holds"
CONTRADICTED = "contradicted"
EQUIVALENT = "equivalent"
INCONCLUSIVE = "inconclusive"
NOT_EVALUABLE = "not evaluable"
NOT_RUN = "not run"
VERDICTS = (HOLDS, CONTRADICTED, EQUIVALENT, INCONCLUSIVE, NOT_EVALUABLE, NOT_RUN)

DIRECTIONS = ("less", "greater", "at_least", "equivalent", "decreasing", "increasing")
MARGIN_DIRECTIONS = ("at_least", "equivalent")   # directions whose margin must be > 0
TREND_DIRECTIONS = ("decreasing", "increasing")  # effect = slope against log2 of the sweep
UNITS = ("%", "")

# key -> accepted types, every key a claim dict must have (see the spec's "Claims as data")
CLAIM_KEYS: dict[str, tuple[type, ...]] = {
    "id": (str,), "study": (str,), "text": (str,), "where": (str,), "metric": (str,),
    "comparison": (str,), "direction": (str,), "margin": (int, float), "unit": (str,),
    "headline": (bool,), "ours": (bool,), "worst_case": (bool,), "study_value": (str,),
    "measure": (str,), "args": (dict,), "sesoi": (int, float), "sesoi_source": (str,),
}
OPTIONAL_KEYS: dict[str, tuple[type, ...]] = {"borrow": (str, type(None))}


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One claim of a study, as its plan declares it (margin and SESOI in the claim's unit: a
    fraction for unit "%", the metric's raw unit for unit "")."""

    id: str
    study: str
    text: str
    where: str
    metric: str
    comparison: str
    direction: str
    margin: float
    unit: str
    headline: bool
    ours: bool
    worst_case: bool
    study_value: str
    measure: str
    args: Mapping[str, Any] = field(compare=False)
    sesoi: float
    sesoi_source: str
    borrow: str | None = None   # a multi-seed row whose between-seed variance a one-run row uses

    @classmethod
    def from_mapping(cls, claim: Mapping[str, Any]) -> "Claim":
        """The claim a plan's dict declares; ValueError naming the claim id and the key at
        fault (missing, of the wrong type, unknown, or out of range)."""
        cid = claim.get("id", "<no id>") if isinstance(claim, Mapping) else "<not a dict>"
        if not isinstance(claim, Mapping):
            raise ValueError(f"claim {cid}: a claim must be a dict, got {type(claim).__name__}")
        for key, types in {**CLAIM_KEYS, **OPTIONAL_KEYS}.items():
            if key not in claim:
                if key in OPTIONAL_KEYS:
                    continue
                raise ValueError(f"claim {cid!r}: missing key {key!r}")
            value = claim[key]
            ok = isinstance(value, types) and not (bool not in types and isinstance(value, bool))
            if not ok:
                want = " or ".join(t.__name__ for t in types)
                raise ValueError(f"claim {cid!r}: key {key!r} must be {want}, "
                                 f"got {type(value).__name__} {value!r}")
        unknown = sorted(set(claim) - set(CLAIM_KEYS) - set(OPTIONAL_KEYS))
        if unknown:
            raise ValueError(f"claim {cid!r}: unknown key {unknown[0]!r} (known: "
                             f"{', '.join([*CLAIM_KEYS, *OPTIONAL_KEYS])})")
        c = cls(**{k: claim[k] for k in [*CLAIM_KEYS, *OPTIONAL_KEYS] if k in claim})
        c._check()
        return c

    def _check(self) -> None:
        cid = self.id
        if not cid:
            raise ValueError("claim '': key 'id' must not be empty")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {cid!r}: key 'direction' is {self.direction!r}, "
                             f"not one of {', '.join(DIRECTIONS)}")
        margin = float(self.margin)
        if not math.isfinite(margin) or margin < 0:
            raise ValueError(f"claim {cid!r}: key 'margin' must be finite and >= 0, got {margin}")
        if self.direction in MARGIN_DIRECTIONS and margin <= 0:
            raise ValueError(f"claim {cid!r}: key 'margin' must be > 0 for direction "
                             f"{self.direction!r}, got {margin}")
        sesoi = float(self.sesoi)
        if not math.isfinite(sesoi) or sesoi < 0:
            raise ValueError(f"claim {cid!r}: key 'sesoi' must be finite and >= 0, got {sesoi}")
        if self.direction in MARGIN_DIRECTIONS and sesoi != margin:
            raise ValueError(f"claim {cid!r}: key 'sesoi' ({sesoi:g}) must equal 'margin' "
                             f"({margin:g}) for direction {self.direction!r}")
        if self.unit not in UNITS:
            raise ValueError(f"claim {cid!r}: key 'unit' is {self.unit!r}, not one of "
                             f"{UNITS}")

    @property
    def scale(self) -> float:
        """Display units per claim unit: 100 (percentage points) for unit "%", else 1."""
        return 100.0 if self.unit == "%" else 1.0

    def as_mapping(self) -> dict[str, Any]:
        """The plain dict a plan declares (``borrow`` only when set)."""
        d = dataclasses.asdict(self)
        if d["borrow"] is None:
            del d["borrow"]
        return d


def validate_claim(claim: Mapping[str, Any]) -> None:
    """Check one claim dict against the spec, so a malformed plan fails before any judging.

    Args:
        claim: the claim dict (keys of ``CLAIM_KEYS``, optionally ``borrow``).

    Returns:
        None; raises ValueError naming the claim id and the offending key.
    """
    Claim.from_mapping(claim)


def validate_claims(claims: Sequence[Mapping[str, Any]]) -> None:
    """Check every claim and that ids are unique. A study's headline may span several rows
    (one per dataset, or one per comparison of the headline).

    Args:
        claims: the claim dicts of one or more studies.

    Returns:
        None; raises ValueError naming the claim id and the key at fault.
    """
    read_claims(claims)


def read_claims(claims: Sequence[Mapping[str, Any] | Claim]) -> list[Claim]:
    """The claims as :class:`Claim` objects, each checked, ids unique (ValueError otherwise)."""
    out, seen = [], set()
    for c in claims:
        claim = c if isinstance(c, Claim) else Claim.from_mapping(c)
        if claim.id in seen:
            raise ValueError(f"claim {claim.id!r}: key 'id' is not unique")
        seen.add(claim.id)
        out.append(claim)
    return out
