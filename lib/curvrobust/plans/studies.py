"""The list of studies and the plan of a whole configuration."""

from __future__ import annotations

from .base import StudyPlan
from .study000 import Study000
from .study001 import Study001
from .study002 import Study002
from .study003 import Study003

STUDIES: tuple[type[StudyPlan], ...] = (Study000, Study001, Study002, Study003)


def plan(cfg: dict) -> dict[str, StudyPlan]:
    """name -> plan object of every study in `cfg` (enabled or not)."""
    return {cls.name: cls(cfg) for cls in STUDIES}


def all_targets(cfg: dict) -> list[str]:
    """Every table and figure of every enabled study: the default target."""
    return [t for p in plan(cfg).values() if p.enabled for t in p.targets()]
