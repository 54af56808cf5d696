"""Robust evaluation of studies 000–002: which models it covers, at which ε, and its files.

Every final L∞ classifier of studies 000, 001 and 002, and study 000's loss-matched checkpoints
(Table 1b), gets one `evaluate_robustness` job: the strong attacks (cross-entropy PGD,
margin-loss PGD, Square) and the gradient-masking checks at the study's headline ε, the
validity gate, and the worst case over every attack any study ran on the model
(curvrobust.evaluation.masking, curvrobust.evaluation.outcomes). `make_masking_report` gathers them into
results/masking.{csv,md}. Study 003 (an L2 adversary on a scalar-output net) keeps its own
measures.
"""

from __future__ import annotations

import re
from typing import Any

from . import paths
from .base import StudyPlan

SCOPE = ("study000", "study001", "study002")
KEY = ("dataset", "variant", "recipe", "seed", "ckpt")

_ATTACK_FILE = re.compile(
    rf"^{paths.RESULTS}/attacks/(?P<dataset>[^/]+)/(?P<variant>[^/]+)/(?P<recipe>[^/]+)/"
    r"seed(?P<seed>\d+)/(?P<ckpt>[^/]+)/(?P<attack>[^/]+)\.csv$"
)


def images_file(summary_csv: str) -> str:
    """The per-image outcome file written beside an attack's per-ε summary CSV."""
    return summary_csv[: -len(".csv")] + "_images.csv"


def key_of(rec: dict) -> tuple:
    return tuple(str(rec[k]) for k in KEY)


def model_key(rec: dict) -> str:
    """'dataset/variant/recipe/seedN/ckpt': how tables look up a model's summary."""
    return "/".join([str(rec["dataset"]), str(rec["variant"]), str(rec["recipe"]),
                     f"seed{rec['seed']}", str(rec["ckpt"])])


class RobustPlan:
    """The robust evaluation of a configuration, given the plans of its studies."""

    def __init__(self, cfg: dict, studies: dict[str, StudyPlan]):
        self.cfg = cfg
        self.studies = studies
        self.block: dict = cfg["robustness"]
        self.root = paths.report_root(cfg)

    @property
    def enabled(self) -> bool:
        return bool(self.block["suite"]["enabled"]) and bool(self.models())

    # ---- settings ----
    def subset(self) -> dict[str, int]:
        """The shared test subset: its permutation seed and the default n of an attack."""
        return {"seed": self.block["subset_seed"], "n_default": self.block["n_examples"]}

    def suite(self) -> dict[str, Any]:
        return {k: v for k, v in self.block["suite"].items() if k != "enabled"}

    def limits(self) -> dict[str, int]:
        return dict(self.block["limits"])

    def large_eps(self, ds: str) -> float | None:
        return self.block["large_eps"].get(ds)

    def min_accuracy(self, ds: str) -> float:
        return self.block["validity"]["min_accuracy"].get(ds, 0.0)

    def validity(self, ds: str) -> dict[str, float]:
        v = self.block["validity"]
        return {"min_accuracy": self.min_accuracy(ds), "max_class_share": v["max_class_share"]}

    # ---- the models in scope ----
    def models(self) -> list[dict]:
        """One record per model in scope (first study that names it wins), with `study`,
        `label`, `eps` (its study's headline ε) and `attacks` (the per-image outcome files of
        every attack any study runs on it, for the worst case)."""
        if hasattr(self, "_models"):
            return self._models
        recs: dict[tuple, dict] = {}
        for name in SCOPE:
            study = self.studies.get(name)
            if study is None or not study.enabled:
                continue
            for r in study.robust_models():
                recs.setdefault(key_of(r), dict(r, attacks=[]))
        for k, files in self._study_attack_files().items():
            if k in recs:
                recs[k]["attacks"] = sorted(set(recs[k]["attacks"]) | files)
        cascade = self._cascade_models()
        for r in recs.values():
            r["large_eps"] = self.large_eps(r["dataset"])
            r["study_cascade"] = key_of(r) in cascade
        self._models = list(recs.values())
        return self._models

    def _study_attack_files(self) -> dict[tuple, set[str]]:
        """model key -> per-image files of the attacks the studies' outputs read on it."""
        out: dict[tuple, set[str]] = {}
        for study in self.studies.values():
            if not study.enabled:
                continue
            for f in study.attack_inputs():
                m = _ATTACK_FILE.match(f)
                if m:
                    out.setdefault(key_of(m.groupdict()), set()).add(images_file(f))
            for rec, f in study.extra_outcome_files():
                out.setdefault(key_of(rec), set()).add(f)
        return out

    def _cascade_models(self) -> set[tuple]:
        """Keys of the models a study ran the standard AutoAttack cascade on with at least
        the suite's counts (its survivors' outcomes stand for the suite's; docs/robustness.md)."""
        suite = self.suite()
        out: set[tuple] = set()
        for study in self.studies.values():
            counts = study.cascade_counts() if study.enabled else None
            if counts and all(counts[k] >= suite.get(k, float("inf")) for k in counts):
                out |= {key_of(rec) for rec, _ in study.extra_outcome_files()}
        return out

    def record(self, w) -> dict:
        """The in-scope record of the model wildcards `w` name; KeyError if none."""
        k = key_of(dict(w.items()) if hasattr(w, "items") else w)
        for r in self.models():
            if key_of(r) == k:
                return r
        raise KeyError(f"no model in the robust evaluation's scope at {'/'.join(k)}")

    def outcomes_file(self, rec: dict) -> str:
        return f"{paths.run_dir('robust', rec)}/outcomes.csv"

    def summary_file(self, rec: dict) -> str:
        return f"{paths.run_dir('robust', rec)}/summary.json"

    def summary_for(self, rec: dict) -> str | None:
        """summary.json of a model if it is in scope, else None (tables show it when present)."""
        k = key_of(rec)
        return next((self.summary_file(r) for r in self.models() if key_of(r) == k), None)

    # ---- transfer ----
    def transfer_source(self, ds: str) -> dict | None:
        """The configured naturally trained source model of `ds`, if a study in scope trains it."""
        src = self.block["transfer"].get(ds)
        if not src:
            return None
        rec = dict(dataset=ds, ckpt="final", **src)
        k = key_of(rec)
        return rec if any(key_of(r) == k for r in self.models()) else None

    def transfer_file(self, ds: str) -> str:
        return f"{paths.RESULTS}/robust/transfer/{ds}/adversarial.pt"

    def transfer_eps(self, ds: str) -> list[float]:
        return sorted({float(r["eps"]) for r in self.models() if r["dataset"] == ds})

    def transfer_datasets(self) -> list[str]:
        return sorted({r["dataset"] for r in self.models() if self.transfer_source(r["dataset"])})

    def transfer_inputs(self, rec: dict) -> list[str]:
        return [self.transfer_file(rec["dataset"])] if self.transfer_source(rec["dataset"]) else []

    # ---- the report ----
    def summary_map(self, records) -> dict[str, str]:
        """model key -> summary.json of each record in scope (what a table rule passes)."""
        out = {}
        for r in records:
            f = self.summary_for(r) if all(k in r for k in KEY) else None
            if f:
                out[model_key(r)] = f
        return out

    def report_files(self) -> dict[str, str]:
        return {ext: f"{self.root}/masking.{ext}" for ext in ("csv", "md", "tex")}

    def targets(self) -> list[str]:
        return list(self.report_files().values()) if self.enabled else []

    def report_records(self) -> list[dict]:
        return [dict(r, summary=self.summary_file(r)) for r in self.models()]
