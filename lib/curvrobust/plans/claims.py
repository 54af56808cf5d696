"""The claims of every study: which studies judge claims, each judging job's inputs and params,
and the files of results/claims.{csv,md} (rules/claims.smk; the verdicts: curvrobust.claims).

Each study declares its claims as data next to its plan (`StudyPlan.claims`), with the records
its evidence function reads (`claim_records`, `claim_inputs`) and its deviations from the study.
The robust evaluation adds, per model of the study it covers, the summary and every per-image
outcome file (for worst cases and validity).
"""

from __future__ import annotations

import posixpath
from typing import Any

from . import paths
from .base import StudyPlan
from .robustness import RobustPlan, model_key


class ClaimsPlan:
    """Claims across the studies of a configuration."""

    def __init__(self, studies: dict[str, StudyPlan], robust: RobustPlan):
        self.studies = studies
        self.robust = robust
        self.root = robust.root

    def judged(self) -> list[str]:
        """Enabled studies that declare claims."""
        return [n for n, s in self.studies.items() if s.enabled and s.claims()]

    def study_files(self, study: str) -> dict[str, str]:
        base = f"{paths.study_dir(study, self.root)}/claims"
        return {ext: f"{base}.{ext}" for ext in ("csv", "md", "json")}

    def report_files(self) -> dict[str, str]:
        return {ext: f"{self.root}/claims.{ext}" for ext in ("csv", "md")}

    def targets(self) -> list[str]:
        if not self.judged():
            return []
        out = list(self.report_files().values()) + list(self.power_files().values())
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

    def power_files(self) -> dict[str, str]:
        return {ext: f"{self.root}/power.{ext}" for ext in ("csv", "md")}

    def power_spec(self, images: int) -> dict[str, dict[str, Any]]:
        """Per judged study, the benchmark files (globs under results/benchmarks) that price one
        more seed and one more image of its headline (curvrobust.claims.power.benchmark_costs):
        the headline arms' training jobs and, for studies 000-002, their robust-evaluation jobs
        on `images` images each; study 003 its PGA training and PGA attack jobs."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.judged():
            s = self.studies[name]
            if name == "study003":   # its jobs' benchmarks live under the report folder
                rel = posixpath.relpath(paths.report_benchmarks(self.root), paths.BENCHMARKS)
                pre = "" if rel == "." else f"{rel}/"
                out[name] = {"train": [f"{pre}train_pga_model/*.tsv"],
                             "attack": [f"{pre}attack_pga/*.tsv"],
                             "images": int(s.pga_settings()["n_examples"]), "arms": 1}
                continue
            arms = set(s.headline_seeds())
            models = [m for m in s.robust_models() if m["label"] in arms and m["ckpt"] == "final"]
            stems = sorted({f"{m['dataset']}_{m['variant']}_{m['recipe']}" for m in models})
            out[name] = {"train": [f"train_model/{t}_seed*.tsv" for t in stems],
                         "attack": [f"evaluate_robustness/{t}_seed*_final.tsv" for t in stems],
                         "images": images, "arms": 2}
        return out
