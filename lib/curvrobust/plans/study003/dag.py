"""Study 003 — Deng, He, Huang, Su, *Towards Understanding the Dynamics of the First-Order
Adversaries* (ICML 2020): its plan (the DAG).

A two-layer scalar-output network on a ±1 digit pair, inputs scaled by s (one input_scale
variant per s, the threat radius and data range scaled alike); projected gradient ascent on the
adversary from several random starts, at initialisation and after PGA adversarial training
(one run per learning-rate scaling); tables and figures of convergence and landscape regularity
against s. The plan class: config checks, targets and each output's inputs and params; its
claims are declared in `claims`, its words in `text`, its design's stages in `design`.
"""

from __future__ import annotations

from typing import Any

from ..base import StudyPlan
from . import claims as study_claims
from .design import LOSS_OF_ZERO, LR_SCALINGS, scale_of, stage_key
from .text import FIGURE_PRESENTATION, TABLE_PRESENTATION, deviations, percent

TABLES = ["table_pga_by_scale", "table_adversarial_training"]
FIGURES = ["fig_pga_loss_curves", "fig_iters_to_tolerance", "fig_local_maxima",
           "fig_adversarial_training"]
TRAINING_OUTPUTS = ["table_adversarial_training", "fig_adversarial_training"]
# the PGA progress measures' settings (their defaults: the schema's studies.study003.pga), first
# in the PGA settings, and the rate measures' (studies.study003.adversarial_training)
PGA_PROGRESS_KEYS = ("climb_fraction", "plateau_window", "loss_rtol", "maxima_rtol")
TRAINING_RATE_KEYS = ("log_slope_steps", "initial_steps")
TRAINING_KEYS = ("epochs", "lr", "batch_size", "pga_steps", "pga_step_size")


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
        if "lr_scaling" in s["adversarial_training"]:
            old = s["adversarial_training"]["lr_scaling"]
            out.append(f"{where}.adversarial_training.lr_scaling: replaced by `lr_scalings`, a "
                       f"list (each scaling trains its own runs): write lr_scalings: [{old}] "
                       f"or lr_scalings: [{', '.join(LR_SCALINGS)}]")
        return out

    def outputs(self) -> dict[str, dict[str, Any]]:
        ds = self.block.get("dataset")
        out = {f"{ds}/{t}": dict(type="table", dataset=ds, name=t) for t in TABLES}
        out.update({f"{ds}/{f}": dict(type="figure", dataset=ds, name=f) for f in FIGURES})
        return out

    def scale(self, variant: str) -> float:
        return scale_of(self.cfg, variant)

    def lr_scalings(self) -> list[str]:
        """The learning-rate scalings adversarial training runs with, one run each (per scale
        and seed): `inverse_square` (lr/s²) and/or `none` (the same lr at every scale)."""
        return list(self.block["adversarial_training"]["lr_scalings"])

    def section(self, key: str) -> dict[str, Any]:
        """One block of the study's config, its defaults filled in by the schema; {} when the
        config has no study003 block at all (an older config): the rules, parsed anyway, then
        schedule nothing."""
        return self.block[key] if self.block else {}

    def pga_settings(self) -> dict[str, Any]:
        """The PGA block (its defaults filled in by the schema), the progress measures' settings
        first."""
        pga = self.section("pga")
        return {**{k: pga[k] for k in PGA_PROGRESS_KEYS if k in pga}, **pga}

    def training_settings(self) -> dict[str, Any]:
        """The adversarial-training block (its defaults filled in by the schema), the rate
        measures' settings first."""
        t = self.section("adversarial_training")
        return {**{k: t[k] for k in TRAINING_RATE_KEYS if k in t}, **t}

    def training_spec(self) -> dict[str, Any]:
        """What one training run uses (the rule's params: a change reruns the runs): epochs,
        lr, batch size and the inner PGA; not the scalings list or the reporting settings."""
        t = self.section("adversarial_training")
        return {k: t[k] for k in TRAINING_KEYS if k in t}

    # ---- rule paths ----
    def init_pattern(self) -> str:
        """One initialisation per dataset and seed, shared by every scale."""
        return f"{self.dir}/{{dataset}}/init/seed{{seed}}/model.pt"

    def run_dir(self, dataset: str, variant: str, seed) -> str:
        """One scale and seed: the PGA measurement of the shared initialisation, and one
        adversarial-training folder per learning-rate scaling (:meth:`training_dir`)."""
        return f"{self.dir}/{dataset}/{variant}/seed{seed}"

    def run_scaling(self, variant: str, lr_scaling: str) -> str:
        """The scaling whose run stands for `lr_scaling` at `variant`: at s = 1 every scaling
        gives the same learning rate, so the first configured scaling's run serves them all."""
        return self.lr_scalings()[0] if self.scale(variant) == 1.0 else lr_scaling

    def training_dir(self, dataset: str, variant: str, seed, lr_scaling: str) -> str:
        """One adversarial-training run: model, epochs.csv, steps.csv and the PGA measurement
        of the trained network (one run at s = 1 for every scaling: :meth:`run_scaling`)."""
        return f"{self.run_dir(dataset, variant, seed)}/lr_{self.run_scaling(variant, lr_scaling)}"

    def training_pattern(self) -> str:
        """The training folder with {dataset}, {variant}, {seed} and {lr_scaling} wildcards."""
        return f"{self.dir}/{{dataset}}/{{variant}}/seed{{seed}}/lr_{{lr_scaling}}"

    def pga_files(self, dataset: str, variant: str, seed, stage: str,
                  lr_scaling: str | None = None) -> dict[str, str]:
        """{trace, examples} of one PGA measurement (stage 'init', or 'trained' with its
        learning-rate scaling)."""
        d = (self.run_dir(dataset, variant, seed) if stage == "init"
             else self.training_dir(dataset, variant, seed, lr_scaling))
        return {k: f"{d}/pga_{stage}_{k}.csv" for k in ("trace", "examples")}

    def attacked_model(self, dataset: str, variant: str, seed, stage: str,
                       lr_scaling: str | None = None) -> str:
        """The model PGA attacks at `stage`: the shared initialisation or the model trained with
        `lr_scaling` (default: the first configured scaling)."""
        if stage == "init":
            return self.init_pattern().format(dataset=dataset, seed=seed)
        sc = lr_scaling or self.lr_scalings()[0]
        return f"{self.training_dir(dataset, variant, seed, sc)}/model.pt"

    def model_spec(self) -> dict:
        """TwoLayerNet kwargs; the input size comes from the data set."""
        return dict(self.block.get("model", {}))

    def threat(self, variant: str) -> dict:
        """The adversary's set for one variant: eps and the data range scaled by its s."""
        s = self.scale(variant)
        t = self.block["threat"]
        return {"norm": t["norm"], "eps": t["eps"] * s, "data_range": [0.0, s], "scale": s}

    # ---- tables and figures ----
    def pga_records(self, dataset: str) -> list[dict]:
        """One record per (scale variant, seed): its scale and the trace and per-example files of
        every PGA measurement, keyed '<stage key>_trace' / '<stage key>_examples'
        (:func:`stage_key`)."""
        recs = []
        for v in self.block["variants"]:
            for seed in self.block["seeds"]:
                files = {}
                runs = [("init", None)] + [("trained", sc) for sc in self.lr_scalings()]
                for stage, sc in runs:
                    key = stage_key(stage, sc)
                    for k, f in self.pga_files(dataset, v, seed, stage, sc).items():
                        files[f"{key}_{k}"] = f
                recs.append(dict(variant=v, scale=self.scale(v), seed=seed, files=files))
        return recs

    def training_records(self, dataset: str) -> list[dict]:
        """One record per (learning-rate scaling, scale variant, seed): the training run's
        epochs.csv and steps.csv."""
        recs = []
        for sc in self.lr_scalings():
            for v in self.block["variants"]:
                for seed in self.block["seeds"]:
                    d = self.training_dir(dataset, v, seed, sc)
                    recs.append(dict(variant=v, scale=self.scale(v), seed=seed, lr_scaling=sc,
                                     files={"epochs": f"{d}/epochs.csv",
                                            "steps": f"{d}/steps.csv"}))
        return recs

    def records(self, dataset: str) -> list[dict]:
        """Every record of the study's outputs: PGA measurements, then training runs."""
        return self.pga_records(dataset) + self.training_records(dataset)

    def params(self, dataset: str, name: str) -> list[dict]:
        """Records with only the files output `name` reads: the training curves for the
        adversarial-training outputs, the PGA runs for the others, so that a PGA setting does not
        rerun the training table and figure."""
        if name in TRAINING_OUTPUTS:
            return self.training_records(dataset)
        return self.pga_records(dataset)

    def inputs(self, dataset: str, name: str) -> list[str]:
        return [f for r in self.params(dataset, name) for f in r["files"].values()]

    def settings(self, name: str) -> dict[str, Any]:
        """The measurement settings output `name` reports (its captions and labels, and the
        rate measures computed from steps.csv): the PGA progress settings for the PGA outputs,
        the rate settings for the training ones (so that each reruns only on its own)."""
        if name in TRAINING_OUTPUTS:
            t = self.training_settings()
            return {"log_slope_steps": t["log_slope_steps"], "initial_steps": t["initial_steps"],
                    "loss_threshold": LOSS_OF_ZERO}
        p = self.pga_settings()
        return dict({k: p[k] for k in PGA_PROGRESS_KEYS},
                    climb_percent=percent(p["climb_fraction"]))

    def presentation(self, name: str) -> dict[str, Any]:
        """What table or figure `name` shows besides its data: display names and its caption or
        title template (from the presentation section at the end of this module)."""
        spec = TABLE_PRESENTATION.get(name) or FIGURE_PRESENTATION.get(name)
        if spec is None:
            raise KeyError(f"study003 has no table or figure {name!r}")
        return dict(spec)

    # ---- claims (declared in .claims; judged by curvrobust.reports.study003.claim_evidence) ----
    def headline_seeds(self) -> dict[str, list[int]]:
        """Seeds of the headline claim's arms: every input scale (one run per scale and seed)."""
        if not self.enabled:
            return {}
        return {v: list(self.block["seeds"]) for v in self.block["variants"]}

    def claims(self) -> list[dict]:
        return study_claims.claims(self)

    def claim_records(self) -> dict:
        """The files the claims read: per (scale, seed) the initialisation's per-example PGA
        results; per (learning-rate scaling, scale, seed) the training run's steps.csv."""
        if not self.enabled:
            return {}
        ds = self.block["dataset"]
        pga = [dict(variant=v, scale=self.scale(v), seed=seed,
                    examples=self.pga_files(ds, v, seed, "init")["examples"])
               for v in self.block["variants"] for seed in self.block["seeds"]]
        training = [dict(variant=r["variant"], scale=r["scale"], seed=r["seed"],
                         lr_scaling=r["lr_scaling"], steps=r["files"]["steps"])
                    for r in self.training_records(ds)]
        return {"dataset": ds, "seeds": list(self.block["seeds"]),
                "lr_scalings": self.lr_scalings(), "pga": pga, "training": training}

    def claim_inputs(self) -> list[str]:
        rec = self.claim_records()
        return ([r["examples"] for r in rec.get("pga", [])]
                + [r["steps"] for r in rec.get("training", [])])

    def deviations(self) -> list[str]:
        return deviations(self)
