"""The list of studies and the plan of a whole configuration."""

from __future__ import annotations

from .base import StudyPlan
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


def all_targets(cfg: dict) -> list[str]:
    """Every table and figure of every enabled study, and the masking report: the default
    target."""
    studies = plan(cfg)
    out = [t for p in studies.values() if p.enabled for t in p.targets()]
    return out + robust_plan(cfg, studies).targets()
