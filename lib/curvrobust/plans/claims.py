"""The claims of every study: which studies judge claims, each judging job's inputs and params,
and the files of results/claims.{csv,md} (rules/claims.smk; the verdicts: curvrobust.claims).

Each study declares its claims as data next to its plan (`StudyPlan.claims`), with the records
its evidence function reads (`claim_records`, `claim_inputs`) and its deviations from the study.
The robust evaluation adds, per model of the study it covers, the summary and every per-image
outcome file (for worst cases and validity).
"""

from __future__ import annotations

from typing import Any

from . import paths
from .base import StudyPlan
from .robustness import RobustPlan, model_key


class ClaimsPlan:
    """Claims across the studies of a configuration."""

    def __init__(self, studies: dict[str, StudyPlan], robust: RobustPlan):
        self.studies = studies
        self.robust = robust

    def judged(self) -> list[str]:
        """Enabled studies that declare claims."""
        return [n for n, s in self.studies.items() if s.enabled and s.claims()]

    def study_files(self, study: str) -> dict[str, str]:
        base = f"{paths.study_dir(study)}/claims"
        return {ext: f"{base}.{ext}" for ext in ("csv", "md", "json")}

    def report_files(self) -> dict[str, str]:
        return {ext: f"{paths.RESULTS}/claims.{ext}" for ext in ("csv", "md")}

    def targets(self) -> list[str]:
        if not self.judged():
            return []
        out = list(self.report_files().values())
        for s in self.judged():
            out += [f for ext, f in self.study_files(s).items() if ext != "json"]
        return out

    def robust_map(self, study: str) -> dict[str, dict[str, Any]]:
        """model key -> {summary, outcomes} of every model of `study` the robust evaluation
        covers (outcomes: its suite's rows and every per-image file of a study attack)."""
        if not self.robust.enabled:
            return {}
        out = {}
        for r in self.robust.models():
            if r.get("study") != study:
                continue
            out[model_key(r)] = dict(
                summary=self.robust.summary_file(r),
                outcomes=[self.robust.outcomes_file(r)] + list(r.get("attacks", [])),
            )
        return out

    def inputs(self, study: str) -> list[str]:
        files = list(self.studies[study].claim_inputs())
        for v in self.robust_map(study).values():
            files += [v["summary"], *v["outcomes"]]
        return sorted(set(files))

    def params(self, study: str) -> dict[str, Any]:
        s = self.studies[study]
        return dict(claims=s.claims(), records=s.claim_records(),
                    robust=self.robust_map(study), deviations=s.deviations())
