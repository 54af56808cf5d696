"""Study 000 — Jiang, *Gauss-Newton under adversarial attacks*: its plan.

SGD, Adam and Gauss-Newton from one initialisation on clean and 10 %-label-poisoned MNIST;
FGSM success (Tables 1, 2; 1b at equal training loss, ours), SAM-style sharpness (Table 3),
input-gradient norm and logit margin (Figs. 2, 3), training summary and curves.
"""

from __future__ import annotations

from typing import Any

from . import paths
from .base import StudyPlan

ORDER = ("adam", "sgd", "gn")

TABLES = {
    "table1_fgsm_clean": "attack",
    "table2_fgsm_poisoned": "attack",
    "table3_sam_median": "sam_batches",
    "training_summary": "epochs",
    "table1b_fgsm_matched_loss": "attack",
}
FIGURES = {
    "fig2_input_grad_norm": "input_stats",
    "fig3_logit_margin": "input_stats",
    "fig_sam_per_example": "sam_examples",
    "fig_training_curves": "epochs",
}


class Study000(StudyPlan):
    name = "study000"

    def check(self) -> list[str]:
        s, cfg, out = self.block, self.cfg, []
        where = "studies.study000"
        if s["dataset"] not in cfg["datasets"]:
            out.append(f"{where}.dataset: {s['dataset']!r} is not in `datasets`")
        for key in ("clean_variant", "poisoned_variant"):
            if s[key] not in cfg["variants"]:
                out.append(f"{where}.{key}: {s[key]!r} is not in `variants`")
        for label, recipe in s["recipes"].items():
            if recipe not in cfg["recipes"]:
                out.append(f"{where}.recipes.{label}: recipe {recipe!r} is not in `recipes`")
        for recipe in s.get("seeds_per_recipe", {}):
            if recipe not in s["recipes"].values():
                out.append(
                    f"{where}.seeds_per_recipe.{recipe}: {recipe!r} is not a recipe of the study"
                )
            elif recipe not in cfg["recipes"]:
                out.append(
                    f"{where}.seeds_per_recipe.{recipe}: recipe {recipe!r} is not in `recipes`"
                )
        if s["attack"] not in cfg["attacks"]:
            out.append(f"{where}.attack: {s['attack']!r} is not in `attacks`")
        m = s.get("match")
        if m:
            for key, label in [("reference", m["reference"])] + [
                (f"labels[{i}]", lab) for i, lab in enumerate(m["labels"])
            ]:
                if label not in s["recipes"]:
                    out.append(
                        f"{where}.match.{key}: label {label!r} is not in studies.study000.recipes"
                    )
            ref_recipe = s["recipes"].get(m["reference"])
            for i, label in enumerate(m["labels"]):
                r = s["recipes"].get(label)
                if r and ref_recipe and not set(self.seeds_for(ref_recipe)) & set(self.seeds_for(r)):
                    out.append(
                        f"{where}.match.labels[{i}]: {label} and {m['reference']} share no seed"
                    )
        return out

    def outputs(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, reads in TABLES.items():
            if name == "table1b_fgsm_matched_loss" and not self.block.get("match"):
                continue
            out[name] = dict(type="table", reads=reads)
        for name, reads in FIGURES.items():
            out[name] = dict(type="figure", reads=reads)
        return out

    def order(self) -> list[str]:
        """Optimizer labels of the study in display order."""
        return [k for k in ORDER if k in self.block["recipes"]]

    def models(self, variants, ckpt: str = "final", labels=None) -> list[dict]:
        """One record per (optimizer label, variant, seed) model."""
        out = []
        for label, recipe in self.block["recipes"].items():
            if labels is not None and label not in labels:
                continue
            for variant in variants:
                for seed in self.seeds_for(recipe):
                    out.append(
                        dict(label=label, variant=variant, recipe=recipe, seed=seed,
                             dataset=self.block["dataset"], ckpt=ckpt)
                    )
        return out

    def matched_models(self) -> list[dict]:
        """Table 1b: loss-matched checkpoints of the matched labels plus the reference's final model."""
        m = self.block["match"]
        clean = [self.block["clean_variant"]]
        ref_recipe = self.block["recipes"][m["reference"]]
        ref_seeds = set(self.seeds_for(ref_recipe))
        recs = self.models(clean, labels=[m["reference"]])
        for r in self.models(clean, ckpt=f"match-{ref_recipe}", labels=m["labels"]):
            if r["seed"] in ref_seeds:
                recs.append(r)
        return recs

    def _models_for(self, name: str) -> list[dict]:
        clean, poisoned = self.block["clean_variant"], self.block["poisoned_variant"]
        if name == "table1b_fgsm_matched_loss":
            return self.matched_models()
        if name == "table2_fgsm_poisoned":
            return self.models([poisoned])
        if name in ("table1_fgsm_clean", "table3_sam_median", "fig_sam_per_example"):
            return self.models([clean])
        return self.models([clean, poisoned])

    def file(self, rec: dict, name: str) -> str:
        """The per-model file output `name` reads for model record `rec`."""
        reads = self.outputs()[name]["reads"]
        if reads == "attack":
            return f"{paths.run_dir('attacks', rec)}/{self.block['attack']}.csv"
        if reads == "epochs":
            return f"{paths.model_dir(rec)}/epochs.csv"
        return f"{paths.run_dir('stats', rec)}/{reads}.csv"

    def params(self, name: str) -> list[dict]:
        """Records of output `name`: model fields, `file`, and `match_info` for matched checkpoints."""
        recs = self._models_for(name)
        for r in recs:
            r["file"] = self.file(r, name)
            if r["ckpt"] != "final":
                r["match_info"] = f"{paths.model_dir(r)}/{r['ckpt']}.json"
        return recs

    def inputs(self, name: str) -> list[str]:
        recs = self.params(name)
        return [r["file"] for r in recs] + [r["match_info"] for r in recs if "match_info" in r]

    def headline_eps(self) -> float:
        """The radius of the robust evaluation: the largest of the study's FGSM radii."""
        return max(self.attack(self.block["attack"])["eps"])

    def robust_models(self) -> list[dict]:
        eps = self.headline_eps()
        recs = self.models([self.block["clean_variant"], self.block["poisoned_variant"]])
        if self.block.get("match"):
            recs += [r for r in self.matched_models() if r["ckpt"] != "final"]
        return [dict(r, study=self.name, eps=eps) for r in recs]

    def attack_inputs(self) -> list[str]:
        return sorted({self.file(r, n) for n, spec in self.outputs().items()
                       if spec["reads"] == "attack" for r in self._models_for(n)})

    def used_recipes(self) -> dict[str, dict]:
        return {r: self.recipe(r) for r in self.block.get("recipes", {}).values()}

    def presentation(self, name: str) -> dict[str, Any]:
        """What output `name` shows beyond its data: the display names and order of the study's
        optimizer labels and its caption (tables) or title and axis label (figures)."""
        order = self.order()
        out: dict[str, Any] = dict(order=order, labels={k: LABELS[k] for k in order})
        if name in CAPTIONS:
            out.update(caption=CAPTIONS[name], footer=FOOTER)
        out.update(FIGURE_TEXTS.get(name, {}))
        return out


# ---- presentation ----
# Display names and texts of the study's outputs, read by `Study000.presentation` (so through the
# rules' `params`): editing one reruns exactly the outputs that show it. Every text is a
# `str.format` template (literal braces doubled); the data-dependent parts are the placeholders.

LABELS = {"sgd": "SGD", "adam": "Adam", "gn": "Gauss-Newton"}

# Every table caption ends with this; {settings}: each optimizer's settings, {seeds}: the seeds.
FOOTER = "Ours: {settings}; seeds {seeds}; mean ± 95 % interval over seeds where several."

# Table captions; {citation}: the study's reference, {footer}: FOOTER filled in, and for Table 1b
# {matched}: the loss-matched optimizers, {reference}: the optimizer they are matched to.
CAPTIONS = {
    "table1_fgsm_clean": (
        "Table 1: FGSM on models trained on clean MNIST: correctly classified test images and "
        "successful attacks among them (rate = successes / correct); paper: {citation}. {footer}"
    ),
    "table2_fgsm_poisoned": (
        "Table 2: FGSM on models trained on label-poisoned (10 %) MNIST: correctly classified "
        "test images and successful attacks among them (rate = successes / correct); "
        "paper: {citation}. {footer}"
    ),
    "table1b_fgsm_matched_loss": (
        "Table 1b (not in the study): FGSM on clean-trained models compared at equal training "
        "loss: for {matched} the checkpoint whose whole-training-set loss is closest to "
        "{reference}'s final one, {reference} at its final model. {footer}"
    ),
    "table3_sam_median": (
        "Table 3: median over test batches of 256 of the loss increase L(θ + ρ g/‖g‖) − L(θ) "
        "(the study's 'SAM analysis'), clean-trained models; paper: {citation}. {footer}"
    ),
    "training_summary": (
        "Training summary: whole-training-set loss (on the labels trained on) and test accuracy "
        "of the final models; the study trained every model to about 95 % test accuracy and "
        "reports GN's final train loss ≈ 1.0 vs Adam's 0.06. {footer}"
    ),
}

# Figure title and x-axis label; {rho}: the largest ρ (the one plotted). The training curves
# show only the display names.
FIGURE_TEXTS = {
    "fig2_input_grad_norm": dict(
        title="Fig. 2: input-gradient norm on the test set",
        xlabel="‖∇ₓ CE‖₂ (per test image)",
    ),
    "fig3_logit_margin": dict(
        title="Fig. 3: logit margin on the test set",
        xlabel="logit margin z_y − max_{{j≠y}} z_j",
    ),
    "fig_sam_per_example": dict(
        title="Per-example sharpness CE_i(θ+ρg_i/‖g_i‖) − CE_i(θ)",
        xlabel="per-example loss increase, ρ={rho:g}",
    ),
    "fig_training_curves": {},
}
