"""Study 003 — Deng, He, Huang, Su, *Towards Understanding the Dynamics of the First-Order
Adversaries* (ICML 2020): its plan.

A two-layer scalar-output network on a ±1 digit pair, inputs scaled by s (one input_scale
variant per s, the threat radius and data range scaled alike); projected gradient ascent on the
adversary from several random starts, at initialisation and after PGA adversarial training;
tables and figures of convergence and landscape regularity against s.
"""

from __future__ import annotations

from typing import Any

from . import paths
from .base import StudyPlan

STAGES = ["init", "trained"]
TABLES = ["table_pga_by_scale", "table_adversarial_training"]
FIGURES = ["fig_pga_loss_curves", "fig_iters_to_tolerance", "fig_local_maxima",
           "fig_adversarial_training"]
TRAINING_OUTPUTS = ["table_adversarial_training", "fig_adversarial_training"]


def scale_of(cfg: dict, variant: str) -> float:
    """Input scale s of a study-003 variant (the data range is [0, s])."""
    spec = cfg["variants"][variant]
    return float(spec["scale"]) if spec["kind"] == "input_scale" else 1.0


class Study003(StudyPlan):
    name = "study003"

    def check(self) -> list[str]:
        s, cfg, out = self.block, self.cfg, []
        where = "studies.study003"
        if s["dataset"] not in cfg["datasets"]:
            out.append(f"{where}.dataset: {s['dataset']!r} is not in `datasets`")
        for i, v in enumerate(s["variants"]):
            spec = cfg["variants"].get(v)
            if v == "init":
                out.append(f"{where}.variants[{i}]: 'init' names the initialisations' folder; "
                           "rename the variant")
            elif spec is None:
                out.append(f"{where}.variants[{i}]: {v!r} is not in `variants`")
            elif spec["kind"] not in ("input_scale", "clean"):
                out.append(f"{where}.variants[{i}]: {v!r} has kind {spec['kind']!r}; the study "
                           "needs input_scale (or clean for s = 1)")
        known = [v for v in s["variants"] if v in cfg["variants"] and
                 (cfg["variants"][v]["kind"] != "input_scale" or "scale" in cfg["variants"][v])]
        scales = [scale_of(cfg, v) for v in known]
        if len(set(scales)) != len(scales):
            out.append(f"{where}.variants: two variants have the same input scale {scales}")
        if s["pair"][0] == s["pair"][1]:
            out.append(f"{where}.pair: needs two different classes, got {s['pair']}")
        return out

    def outputs(self) -> dict[str, dict[str, Any]]:
        ds = self.block.get("dataset")
        out = {f"{ds}/{t}": dict(type="table", dataset=ds, name=t) for t in TABLES}
        out.update({f"{ds}/{f}": dict(type="figure", dataset=ds, name=f) for f in FIGURES})
        return out

    def scale(self, variant: str) -> float:
        return scale_of(self.cfg, variant)

    # ---- rule paths ----
    def init_pattern(self) -> str:
        """One initialisation per dataset and seed, shared by every scale."""
        return f"{self.dir}/{{dataset}}/init/seed{{seed}}/model.pt"

    def run_dir(self, dataset: str, variant: str, seed) -> str:
        return f"{self.dir}/{dataset}/{variant}/seed{seed}"

    def attacked_model(self, dataset: str, variant: str, seed, stage: str) -> str:
        """The model PGA attacks at `stage`: the shared initialisation or the trained model."""
        if stage == "init":
            return self.init_pattern().format(dataset=dataset, seed=seed)
        return f"{self.run_dir(dataset, variant, seed)}/model.pt"

    def model_spec(self) -> dict:
        """TwoLayerNet kwargs; the input size comes from the data set."""
        return dict(self.block.get("model", {}))

    def threat(self, variant: str) -> dict:
        """The adversary's set for one variant: eps and the data range scaled by its s."""
        s = self.scale(variant)
        t = self.block["threat"]
        return {"norm": t["norm"], "eps": t["eps"] * s, "data_range": [0.0, s], "scale": s}

    # ---- tables and figures ----
    def records(self, dataset: str) -> list[dict]:
        """One record per (scale variant, seed): its scale and every file a table/figure reads."""
        recs = []
        for v in self.block["variants"]:
            for seed in self.block["seeds"]:
                d = self.run_dir(dataset, v, seed)
                files = {"epochs": f"{d}/epochs.csv", "steps": f"{d}/steps.csv"}
                for stage in STAGES:
                    files[f"{stage}_trace"] = f"{d}/pga_{stage}_trace.csv"
                    files[f"{stage}_examples"] = f"{d}/pga_{stage}_examples.csv"
                recs.append(dict(variant=v, scale=self.scale(v), seed=seed, files=files))
        return recs

    def params(self, dataset: str, name: str) -> list[dict]:
        """Records with only the files output `name` reads: the training curves for the
        adversarial-training outputs, the PGA runs for the others, so that a PGA setting does not
        rerun the training table and figure."""
        training = name in TRAINING_OUTPUTS
        recs = []
        for r in self.records(dataset):
            files = {k: f for k, f in r["files"].items() if (k in ("epochs", "steps")) == training}
            recs.append(dict(r, files=files))
        return recs

    def inputs(self, dataset: str, name: str) -> list[str]:
        return [f for r in self.params(dataset, name) for f in r["files"].values()]

    def presentation(self, name: str) -> dict[str, Any]:
        """What table or figure `name` shows besides its data: display names and its caption or
        title template (from the presentation section at the end of this module)."""
        spec = TABLE_PRESENTATION.get(name) or FIGURE_PRESENTATION.get(name)
        if spec is None:
            raise KeyError(f"study003 has no table or figure {name!r}")
        return dict(spec)


# ---- presentation ----
# Display names and caption / title templates of study 003's tables and figures. A rule's
# `params` carries `Study003.presentation(name)`, so editing one entry reruns only that output.
# Placeholders: {dataset} everywhere; {n_examples} (PGA test examples per run) and {last_epoch}
# (the last training epoch) where shown. Table columns map a result column to (heading, digits);
# `by` maps the grouping columns, in row order, to their headings.

TABLE_PRESENTATION = {
    "table_pga_by_scale": {
        "by": {"stage": "Stage", "scale": "s"},
        "stages": STAGES,
        "columns": {
            "loss_start": ("loss at start", 3),
            "loss_final": ("loss at end", 3),
            "iters_to_loss_tol": ("iterations to loss tol.", 1),
            "reached_tol": ("share reaching mapping tol.", 2),
            "mapping_norm_final": ("last mapping norm", 3),
            "maxima_count": ("distinct maxima", 2),
            "maxima_rel_spread": ("relative spread of maxima", 4),
        },
        "caption": "Study 003 on {dataset}: projected gradient ascent on the adversary against "
                   "the input scale s, {n_examples} test examples, at initialisation and after "
                   "adversarial training; mean ± 95 % interval over seeds.",
    },
    "table_adversarial_training": {
        "by": {"scale": "s"},
        "columns": {
            "robust_train_loss_epoch1": ("robust train loss, epoch 1", 3),
            "robust_train_loss": ("robust train loss, epoch {last_epoch}", 3),
            "test_acc": ("clean test acc. %", 1),
            "robust_test_acc": ("robust test acc. %", 1),
        },
        "caption": "Study 003 on {dataset}: adversarial training with PGA inside, per input "
                   "scale s; mean ± 95 % interval over seeds.",
    },
}

FIGURE_PRESENTATION = {
    "fig_pga_loss_curves": {
        "title": "Study 003 on {dataset}: PGA on the adversary",
    },
    "fig_iters_to_tolerance": {
        "metrics": {"iters_to_loss_tol": "iterations to loss tolerance",
                    "mapping_norm_final": "last mapping norm"},
        "title": "Study 003 on {dataset}: convergence of PGA against input scale",
    },
    "fig_local_maxima": {
        "metrics": {"maxima_count": "distinct local maxima",
                    "maxima_rel_spread": "spread / mean maximum"},
        "title": "Study 003 on {dataset}: landscape regularity against input scale",
    },
    "fig_adversarial_training": {
        "title": "Study 003 on {dataset}: adversarial training with PGA",
    },
}

