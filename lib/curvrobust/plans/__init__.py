"""Study plans: what the workflow runs for a configuration, without running it.

Needs only the standard library (and jsonschema, lazily, to validate a configuration), so the
Snakefile, a cluster job and a unit test import it without torch or pandas. One package per
study (`study000` … `study003`), each with `dag` (the plan class: config checks, targets, the
inputs and params of each table and figure), `claims` (its claims as data) and `text` (display
names, captions and deviations); `base` (what every study plan shares, and the lookups one study
makes in another's plan), `robustness` (the robust evaluation across studies 000–002), `claims`
(what judging the claims reads), `paths` (every result path), `config` (validation and
cross-references) and `code` (each rule's library-code inputs from its script's imports).
"""

from . import study000, study001, study002, study003
from .claims import ClaimsPlan
from .config import ConfigError, check_config, validate_config
from .robustness import RobustPlan
from .studies import STUDIES, all_targets, claims_plan, plan, robust_plan
from .study000 import Study000
from .study001 import Study001
from .study002 import Study002
from .study003 import Study003

__all__ = [
    "ClaimsPlan",
    "ConfigError",
    "RobustPlan",
    "STUDIES",
    "Study000",
    "Study001",
    "Study002",
    "Study003",
    "all_targets",
    "check_config",
    "claims_plan",
    "plan",
    "robust_plan",
    "validate_config",
]
