"""The list of studies and the plan of a whole configuration."""

from __future__ import annotations

from .base import StudyPlan
from .claims import ClaimsPlan
from .robustness import RobustPlan
from .study000 import Study000
from .study001 import Study001
from .study002 import Study002
from .study003 import Study003

STUDIES: tuple[type[StudyPlan], ...] = (Study000, Study001, Study002, Study003)


def plan(cfg: dict) -> dict[str, StudyPlan]:
    """name -> plan object of every study in `cfg` (enabled or not)."""
    return {cls.name: cls(cfg) for cls in STUDIES}


def robust_plan(cfg: dict, studies: dict[str, StudyPlan] | None = None) -> RobustPlan:
    """The robust evaluation (strong attacks, masking checks, validity) of `cfg`'s studies."""
    return RobustPlan(cfg, studies if studies is not None else plan(cfg))


def claims_plan(cfg: dict, studies: dict[str, StudyPlan] | None = None,
                robust: RobustPlan | None = None) -> ClaimsPlan:
    """The claims of `cfg`'s studies and what judging them reads."""
    studies = studies if studies is not None else plan(cfg)
    return ClaimsPlan(studies, robust if robust is not None else robust_plan(cfg, studies))


def all_targets(cfg: dict) -> list[str]:
    """Every table and figure of every enabled study, the masking report and the claims: the
    default target."""
    studies = plan(cfg)
    robust = robust_plan(cfg, studies)
    out = [t for p in studies.values() if p.enabled for t in p.targets()]
    return out + robust.targets() + claims_plan(cfg, studies, robust).targets()
