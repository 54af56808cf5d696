"""What every study plan shares: its config block, targets, seeds and checkpoint epochs, claims
as data, and the lookups one study makes in another's plan (`PLANS`, `scatter_models`)."""

from __future__ import annotations

import math
from typing import Any

from curvrobust.training.schedules import checkpoint_epochs
from . import paths


def recipe_checkpoint_epochs(recipe: dict) -> list[int]:
    """checkpoint_epochs of a recipe's `epochs` and `checkpoints` block."""
    ck = recipe.get("checkpoints", {})
    every = ck.get("every_epochs", 1)
    return checkpoint_epochs(recipe["epochs"], every, ck.get("first_epoch", every))


# directions whose SESOI is their margin (the "no difference" / "at least as" claims)
MARGIN_SESOI_DIRECTIONS = ("equivalent", "at_least")


def claim_sesoi(cid: str, direction: str, margin: float, sesoi: float | None,
                sesoi_source: str) -> float:
    """The smallest effect size of interest of claim `cid`, in the claim's unit (as `margin`:
    a fraction for unit "%", the metric's raw unit for unit ""). For "equivalent" and
    "at_least" claims it is the margin (given or not; a different one is an error); a
    directional or trend claim must give one > 0. `sesoi_source` (the study's words behind the
    size) must not be empty. Raises ValueError naming the claim."""
    if not isinstance(sesoi_source, str) or not sesoi_source.strip():
        raise ValueError(f"claim {cid!r}: sesoi_source must quote or paraphrase the study's "
                         f"words behind the SESOI")
    if direction in MARGIN_SESOI_DIRECTIONS:
        if sesoi is None:
            return float(margin)
        if not math.isclose(float(sesoi), float(margin), rel_tol=1e-12, abs_tol=0.0):
            raise ValueError(f"claim {cid!r}: sesoi {sesoi!r} differs from margin {margin!r}; "
                             f"for direction {direction!r} the SESOI is the margin")
        return float(margin)
    if sesoi is None:
        raise ValueError(f"claim {cid!r}: direction {direction!r} needs an explicit sesoi > 0 "
                         f"(the smallest effect of interest, in the claim's unit)")
    value = float(sesoi)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"claim {cid!r}: sesoi must be finite and > 0, got {sesoi!r}")
    return value


def make_claim(study: str, cid: str, text: str, where: str, metric: str, comparison: str,
               direction: str, measure: str, args: dict, *, margin: float = 0.0,
               unit: str = "%", headline: bool = False, ours: bool = False,
               worst_case: bool = False, study_value: str = "", sesoi: float | None = None,
               sesoi_source: str = "") -> dict:
    """One claim of `study` as data (the fields of docs/claims.md). `sesoi`: the smallest
    effect of interest in the claim's unit (see `claim_sesoi`; the margin by default for
    "equivalent" and "at_least"), `sesoi_source`: the study's words behind it."""
    sesoi = claim_sesoi(cid, direction, margin, sesoi, sesoi_source)
    return dict(id=cid, study=study, text=text, where=where, metric=metric,
                comparison=comparison, direction=direction, margin=margin, unit=unit,
                headline=headline, ours=ours, worst_case=worst_case, study_value=study_value,
                measure=measure, args=args, sesoi=sesoi, sesoi_source=sesoi_source)


def alternatives(names) -> str:
    """A regex alternation of `names`, longest first (for wildcard constraints)."""
    names = sorted(names, key=len, reverse=True)
    return "|".join(names) if names else "^$"


# every study's plan class by its name (each subclass of StudyPlan registers itself), for the
# lookups one study makes in another's plan without importing it
PLANS: dict[str, type[StudyPlan]] = {}
# the studies whose models join study 002's indicator scatter, in the scatter's order
SCATTER_STUDIES = ("study001", "study000")


def scatter_models(cfg: dict, datasets) -> list[dict]:
    """The models of the other enabled studies (SCATTER_STUDIES) on `datasets` that study 002's
    indicator scatter shows beside its own (`StudyPlan.scatter_models`)."""
    out: list[dict] = []
    for name in SCATTER_STUDIES:
        other = PLANS[name](cfg)
        if other.enabled:
            out += other.scatter_models(list(datasets))
    return out


class StudyPlan:
    """One study's plan for a configuration. Subclasses set `name` and implement
    `check`, `outputs`, `inputs` and `params`."""

    name = ""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.name:
            PLANS[cls.name] = cls

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.block: dict = cfg.get("studies", {}).get(self.name) or {}

    @property
    def enabled(self) -> bool:
        return bool(self.block) and bool(self.block.get("enabled"))

    @property
    def root(self) -> str:
        """The configuration's report folder (`paths.report_root`)."""
        return paths.report_root(self.cfg)

    @property
    def dir(self) -> str:
        return paths.study_dir(self.name, self.root)

    def check(self) -> list[str]:
        """Cross-reference problems, one 'dotted.path: what' each."""
        return []

    def outputs(self) -> dict[str, dict[str, Any]]:
        """Output stem (relative to the study folder) -> spec; spec['kind'] is 'table'|'figure'."""
        raise NotImplementedError

    def tables(self) -> list[str]:
        return [n for n, s in self.outputs().items() if s["type"] == "table"] if self.enabled else []

    def figures(self) -> list[str]:
        return [n for n, s in self.outputs().items() if s["type"] == "figure"] if self.enabled else []

    def targets(self) -> list[str]:
        """Every table (csv, md, tex) and figure (pdf, png) file of the study."""
        if not self.enabled:
            return []
        out = []
        for stem, spec in self.outputs().items():
            files = paths.table_files if spec["type"] == "table" else paths.figure_files
            out += files(f"{self.dir}/{stem}")
        return out

    def check_dataset_block(self, where: str, ds: str, block: dict) -> list[str]:
        """Problems of one per-dataset block (`where` is its mapping's dotted path): the dataset
        and the block's variant must exist."""
        out = []
        if ds not in self.cfg["datasets"]:
            out.append(f"{where}.{ds}: {ds!r} is not in `datasets`")
        if block["variant"] not in self.cfg["variants"]:
            out.append(f"{where}.{ds}.variant: {block['variant']!r} is not in `variants`")
        return out

    # ---- what the robust evaluation (plans.robustness) needs from a study ----
    def robust_models(self) -> list[dict]:
        """Model records (with study, label and the headline `eps`) the robust evaluation
        covers; none by default."""
        return []

    def attack_inputs(self) -> list[str]:
        """Every attack_model result file the study's outputs read."""
        return []

    def scatter_models(self, datasets: list[str]) -> list[dict]:
        """Model records on `datasets` that study 002's indicator scatter shows (see
        `scatter_models`); none by default."""
        return []

    def extra_outcome_files(self) -> list[tuple[dict, str]]:
        """(model record, per-image outcome file) pairs of attacks run outside attack_model."""
        return []

    def cascade_counts(self) -> dict[str, int] | None:
        """The counts of the standard AutoAttack cascade (all four stages) whose rows
        `extra_outcome_files` carry (`apgd_steps`, `fab_steps`, `square_queries`,
        `target_classes`), or None if the study runs none."""
        return None

    # ---- what the claims (curvrobust.claims, rules/claims.smk) need from a study ----
    def claims(self) -> list[dict]:
        """The study's claims as data (id, text, metric, comparison, direction, margin, ...:
        docs/claims.md), in display order; listed whenever the study is enabled."""
        return []

    def claim_records(self) -> dict:
        """JSON-able records the study's `claim_evidence` reads (models and their files)."""
        return {}

    def claim_inputs(self) -> list[str]:
        """Every result file `claim_records` names: the inputs of the study's judge_claims job."""
        return []

    def headline_seeds(self) -> dict[str, list[int]]:
        """Seeds of each model (arm) the headline claim compares."""
        return {}

    def deviations(self) -> list[str]:
        """Our deviations from the study, formatted from the configuration."""
        return []

    def seeds_for(self, recipe: str) -> list[int]:
        """The study's seeds for `recipe` (seeds_per_recipe overrides `seeds`)."""
        return self.block.get("seeds_per_recipe", {}).get(recipe, self.block["seeds"])

    def recipe(self, name: str) -> dict:
        return self.cfg["recipes"][name]

    def attack(self, name: str) -> dict:
        return self.cfg["attacks"][name]
