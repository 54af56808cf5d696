"""Study 003 — Deng, He, Huang, Su, *Towards Understanding the Dynamics of the First-Order
Adversaries* (ICML 2020): its plan and its claims.

A two-layer scalar-output network on a ±1 digit pair, inputs scaled by s (one input_scale
variant per s, the threat radius and data range scaled alike); projected gradient ascent on the
adversary from several random starts, at initialisation and after PGA adversarial training
(one run per learning-rate scaling); tables and figures of convergence and landscape regularity
against s; the abstract's claims judged by per-seed trends against log₂ s.
"""

from __future__ import annotations

from typing import Any

from .base import StudyPlan, claim_sesoi

STAGES = ["init", "trained"]
LR_SCALINGS = ["inverse_square", "none"]
LR_SCALING_LABELS = {"inverse_square": "lr/s²", "none": "same lr"}
TABLES = ["table_pga_by_scale", "table_adversarial_training"]
FIGURES = ["fig_pga_loss_curves", "fig_iters_to_tolerance", "fig_local_maxima",
           "fig_adversarial_training"]
TRAINING_OUTPUTS = ["table_adversarial_training", "fig_adversarial_training"]
LOSS_OF_ZERO = 1.0  # (y − 0)² for y = ±1: the loss of f ≡ 0, the same at every input scale
PGA_DEFAULTS = {"climb_fraction": 0.9, "plateau_window": 10, "loss_rtol": 1e-2,
                "maxima_rtol": 1e-3}
TRAINING_DEFAULTS = {"log_slope_steps": 30, "initial_steps": None}
TRAINING_KEYS = ("epochs", "lr", "batch_size", "pga_steps", "pga_step_size")
# Smallest effects of interest of the trends, per doubling of the input scale s (the slope's
# unit). Only the abstract is available and it gives no sizes ("faster convergence", "more
# regular"), so each is the smallest change the measure can show or a stated share of it:
# counts of PGA iterations and SGD steps: one per doubling (their resolution);
PGA_ITERS_SESOI = 1.0
AT_STEPS_SESOI = 1.0
# distinct local maxima per example: a quarter per doubling (one fewer over a 16-fold range);
MAXIMA_SESOI = 0.25
# log robust loss over the first log_slope_steps SGD steps: a 0.1 larger fall of log loss over
# that window per doubling (≈ 10 % lower loss), i.e. 0.1 / log_slope_steps in the slope's unit
AT_LOG_FALL_SESOI = 0.1


def scale_of(cfg: dict, variant: str) -> float:
    """Input scale s of a study-003 variant (the data range is [0, s])."""
    spec = cfg["variants"][variant]
    return float(spec["scale"]) if spec["kind"] == "input_scale" else 1.0


def percent(fraction: float) -> str:
    """0.9 -> '90 %'."""
    return f"{100 * float(fraction):g} %"


def stage_key(stage: str, lr_scaling: str | None = None) -> str:
    """What one PGA measurement attacked: 'init' (the shared initialisation) or
    'trained_<lr_scaling>' (the network adversarially trained with that learning-rate
    scaling)."""
    if stage == "init":
        return "init"
    if stage != "trained" or lr_scaling not in LR_SCALINGS:
        raise ValueError(f"no PGA stage {stage!r} with lr_scaling {lr_scaling!r}")
    return f"trained_{lr_scaling}"


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
        if "lr_scaling" in s.get("adversarial_training", {}):
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
        return list(self.block.get("adversarial_training", {}).get("lr_scalings", LR_SCALINGS))

    def pga_settings(self) -> dict[str, Any]:
        """The PGA block with the defaults of the progress measures filled in."""
        return dict(PGA_DEFAULTS, **self.block.get("pga", {}))

    def training_settings(self) -> dict[str, Any]:
        """The adversarial-training block with the defaults of the rate measures filled in."""
        return dict(TRAINING_DEFAULTS, **self.block.get("adversarial_training", {}))

    def training_spec(self) -> dict[str, Any]:
        """What one training run uses (the rule's params: a change reruns the runs): epochs,
        lr, batch size and the inner PGA; not the scalings list or the reporting settings."""
        t = self.block.get("adversarial_training", {})
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
        return dict({k: p[k] for k in PGA_DEFAULTS}, climb_percent=percent(p["climb_fraction"]))

    def presentation(self, name: str) -> dict[str, Any]:
        """What table or figure `name` shows besides its data: display names and its caption or
        title template (from the presentation section at the end of this module)."""
        spec = TABLE_PRESENTATION.get(name) or FIGURE_PRESENTATION.get(name)
        if spec is None:
            raise KeyError(f"study003 has no table or figure {name!r}")
        return dict(spec)

    # ---- claims ----
    def _scales_text(self) -> str:
        return ", ".join(f"{self.scale(v):g}" for v in self.block.get("variants", []))

    def headline_seeds(self) -> dict[str, list[int]]:
        """Seeds of the headline claim's arms: every input scale (one run per scale and seed)."""
        if not self.enabled:
            return {}
        return {v: list(self.block["seeds"]) for v in self.block["variants"]}

    def claims(self) -> list[dict]:
        """The abstract's claims on the input scale, each as a per-seed trend against log₂ s
        (direction 'increasing': the measure grows with s, i.e. is smaller at a smaller scale).
        Listed whenever the study is enabled, both learning-rate scalings always (one missing
        from the config reads "not run")."""
        if not self.enabled:
            return []
        ds = self.block["dataset"]
        p, t = self.pga_settings(), self.training_settings()
        trend = (f"trend over s ∈ {{{self._scales_text()}}}: per seed (shared initialisation), "
                 "OLS slope against log₂ s")
        pga_where = (f"PGA ({p['steps']} steps of {p['step_size']:g}·ε, {p['starts']} random "
                     f"starts) on {p['n_examples']} test examples, network at initialisation")
        base = dict(study=self.name, where="abstract", comparison=trend, direction="increasing",
                    margin=0.0, unit="", ours=False, worst_case=False)
        out = [dict(
            base, id=f"003-{ds}-pga-iters", headline=True,
            text="a smaller input scale leads to faster convergence (of the adversary: fewer "
                 "PGA iterations to the same share of its climb)",
            metric=f"PGA iterations until the loss first reaches {percent(p['climb_fraction'])} of "
                   f"the start's climb (from its first to its highest loss), mean over starts "
                   f"and examples; {pga_where}",
            study_value="faster convergence at a smaller input scale (abstract; no number)",
            sesoi=PGA_ITERS_SESOI,
            sesoi_source="\"faster convergence\" (abstract; no number): one PGA iteration per "
                         "doubling of s, the count's resolution",
            measure="pga_mean", args={"stage": "init", "column": "iters_to_climb",
                                      "label": "iterations", "digits": 1},
        ), dict(
            base, id=f"003-{ds}-pga-maxima", headline=False,
            text="a smaller input scale gives a \"more regular\" landscape (fewer distinct "
                 "local maxima)",
            metric=f"distinct final losses among the converged starts (loss range over the last "
                   f"{p['plateau_window']} iterations ≤ {p['loss_rtol']:g} of the final loss), "
                   f"a new maximum where sorted values differ by > {p['maxima_rtol']:g} "
                   f"(relative); mean over examples with a converged start; {pga_where}",
            study_value="a \"more regular\" landscape at a smaller input scale (abstract; no "
                        "number)",
            sesoi=MAXIMA_SESOI,
            sesoi_source="a \"more regular\" landscape (abstract; no number): a quarter of a "
                         "distinct maximum per doubling of s, one fewer over a 16-fold range",
            measure="pga_mean", args={"stage": "init", "column": "maxima_converged",
                                      "label": "maxima", "digits": 2},
        )]
        at_where = (f"adversarial training, quadratic loss, PGA-{t['pga_steps']} "
                    f"(one start) inside, SGD batch {t['batch_size']}, {t['epochs']} epochs")
        for sc in LR_SCALINGS:
            label = f"{sc} ({LR_SCALING_LABELS[sc]})"
            out.append(dict(
                base, id=f"003-{ds}-at-steps-{sc}", headline=False,
                text="a smaller input scale leads to faster convergence of adversarial "
                     f"training (fewer SGD steps to a robust loss below 1), lr {label}",
                metric=f"first SGD step whose robust batch loss is below {LOSS_OF_ZERO:g} (the "
                       f"loss of f ≡ 0 at every scale); a run that never gets there is "
                       f"censored (\"> N\", N its steps; then the claim holds only if every "
                       f"seed orders the scales as asserted); {at_where}, lr {label}",
                study_value="faster convergence of adversarial training at a smaller input "
                            "scale (abstract; no number)",
                sesoi=AT_STEPS_SESOI,
                sesoi_source="\"faster convergence\" of adversarial training (abstract; no "
                             "number): one SGD step per doubling of s, the count's resolution",
                measure="at_steps_below", args={"lr_scaling": sc, "threshold": LOSS_OF_ZERO},
            ))
            out.append(dict(
                base, id=f"003-{ds}-at-logslope-{sc}", headline=False,
                text="in the initial phase, the robust loss falls faster at a smaller input "
                     f"scale, lr {label}",
                metric=f"OLS slope of log(robust batch loss) against the SGD step over the first "
                       f"{t['log_slope_steps']} steps (negative: falling; a faster fall at a "
                       f"smaller s is a more negative slope there, so the slope increases with "
                       f"s); {at_where}, lr {label}",
                study_value="faster convergence of adversarial training at a smaller input "
                            "scale (abstract; no number)",
                sesoi=AT_LOG_FALL_SESOI / t["log_slope_steps"],
                sesoi_source=f"\"faster convergence\" of adversarial training (abstract; no "
                             f"number): log loss falls 0.1 more (≈ 10 % lower loss) over the "
                             f"first {t['log_slope_steps']} steps per doubling of s, "
                             f"0.1/{t['log_slope_steps']} per step",
                measure="at_log_slope", args={"lr_scaling": sc,
                                              "steps": t["log_slope_steps"]},
            ))
        for c in out:
            c["sesoi"] = claim_sesoi(c["id"], c["direction"], c["margin"], c["sesoi"],
                                     c["sesoi_source"])
        return out

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
        """Where our experiment is ours rather than the study's (only its abstract was
        available), formatted from the configuration."""
        if not self.enabled:
            return []
        b = self.block
        m, th = b["model"], b["threat"]
        p, t = self.pga_settings(), self.training_settings()
        a, c = b["pair"]
        second = "trained" if m.get("train_second_layer") else "fixed at ±1/√m"
        bias = "with" if m.get("bias") else "no"
        n_train = "all" if b.get("n_train") is None else f"{b['n_train']:,}"
        lr = ", ".join(f"{sc} ({LR_SCALING_LABELS[sc]})" for sc in self.lr_scalings())
        return [
            "only the abstract was available: the experiment's design is ours (docs/study003.md)",
            f"two-layer network f(x) = aᵀσ(Wx) of width {m['width']} ({m['activation']}, second "
            f"layer {second}, {bias} bias), quadratic loss (y − f)² as in the study",
            f"task: {b['dataset']} digits {a} (+1) vs {c} (−1), {n_train} training images of the "
            f"pair, inputs scaled by s ∈ {{{self._scales_text()}}}",
            f"threat: {th['norm'].upper()} ball of radius {th['eps']:g}·s, x + δ in [0, s]",
            f"PGA: {p['steps']} fixed-length steps of {p['step_size']:g}·ε (normalised "
            f"gradient, not η·∇), {p['starts']} random starts, {p['n_examples']} test examples; "
            f"convergence read as iterations to {percent(p['climb_fraction'])} of each start's "
            "climb, not the theorem's stationarity (the projected-gradient mapping does not vanish "
            "with fixed-length steps)",
            f"adversarial training: {t['epochs']} epochs of plain SGD (lr {t['lr']:g}, batch "
            f"{t['batch_size']}), PGA-{t['pga_steps']} of {t['pga_step_size']:g}·ε from one "
            f"random start inside; lr scalings across s: {lr}",
        ]


# ---- presentation ----
# Display names and caption / title templates of study 003's tables and figures. A rule's
# `params` carries `Study003.presentation(name)`, so editing one entry reruns only that output.
# Placeholders: {dataset} everywhere; {n_examples} (PGA test examples per run) and {last_epoch}
# (the last training epoch) where shown; and the output's `Study003.settings(name)`:
# {climb_fraction}, {climb_percent} ('90 %'), {plateau_window}, {loss_rtol}, {maxima_rtol} (PGA
# outputs),
# {log_slope_steps}, {loss_threshold} (training outputs). Table columns map a result column to
# (heading, digits); `by` maps the grouping columns, in row order, to their headings; `stages`
# maps each PGA stage key (`stage_key`) to its label, in row / panel order.

STAGE_LABELS = {"init": "init",
                **{stage_key("trained", sc): f"trained, {LR_SCALING_LABELS[sc]}"
                   for sc in LR_SCALINGS}}

TABLE_PRESENTATION = {
    "table_pga_by_scale": {
        "by": {"stage": "Stage", "scale": "s"},
        "stages": STAGE_LABELS,
        "columns": {
            "loss_start": ("loss at start", 3),
            "loss_final": ("loss at end", 3),
            "iters_to_climb": ("iterations to {climb_percent} of the climb", 1),
            "converged_share": ("share of starts converged", 2),
            "maxima_converged": ("distinct maxima (converged starts)", 2),
            "iters_to_loss_tol": ("iterations to loss tol.", 1),
            "maxima_count": ("distinct maxima (all starts)", 2),
            "maxima_rel_spread": ("relative spread of maxima", 4),
        },
        "caption": "Study 003 on {dataset}: projected gradient ascent on the adversary against "
                   "the input scale s, {n_examples} test examples, at initialisation and after "
                   "adversarial training (per learning-rate scaling); iterations until the loss "
                   "first reaches {climb_percent} of each start's climb; a start converged "
                   "when its loss varied by at most {loss_rtol:g} (relative) over its last "
                   "{plateau_window} iterations, and two maxima are distinct when their losses "
                   "differ by more than {maxima_rtol:g} (relative); mean ± 95 % interval over "
                   "seeds.",
    },
    "table_adversarial_training": {
        "by": {"lr_scaling": "lr", "scale": "s"},
        "lr_labels": LR_SCALING_LABELS,
        "columns": {
            "robust_loss_step1": ("robust batch loss, step 1", 3),
            "log_loss_slope": ("slope of log robust loss, first {log_slope_steps} steps", 4),
            "robust_train_loss_epoch1": ("robust train loss, epoch 1", 3),
            "robust_train_loss": ("robust train loss, epoch {last_epoch}", 3),
            "test_acc": ("clean test acc. %", 1),
            "robust_test_acc": ("robust test acc. %", 1),
        },
        "steps_heading": "first step with robust batch loss < {loss_threshold:g}",
        "caption": "Study 003 on {dataset}: adversarial training with PGA inside, per "
                   "learning-rate scaling (lr/s²: inverse_square; same lr: none) and input "
                   "scale s; the first SGD step whose robust batch loss is below "
                   "{loss_threshold:g} (the loss of f ≡ 0; \"> N\": not within the run's N "
                   "steps, per-seed values shown when a run is censored) and the OLS slope of "
                   "the log robust batch loss over the first {log_slope_steps} steps; mean ± "
                   "95 % interval over seeds.",
    },
}

FIGURE_PRESENTATION = {
    "fig_pga_loss_curves": {
        "stages": STAGE_LABELS,
        "title": "Study 003 on {dataset}: PGA on the adversary",
    },
    "fig_iters_to_tolerance": {
        "stages": STAGE_LABELS,
        "metrics": {"iters_to_climb": "iterations to {climb_percent} of the climb",
                    "mapping_norm_final": "last mapping norm"},
        "title": "Study 003 on {dataset}: convergence of PGA against input scale",
    },
    "fig_local_maxima": {
        "stages": STAGE_LABELS,
        "metrics": {"maxima_converged": "distinct maxima (converged starts)",
                    "converged_share": "share of starts converged"},
        "title": "Study 003 on {dataset}: landscape regularity against input scale",
    },
    "fig_adversarial_training": {
        "lr_labels": LR_SCALING_LABELS,
        "title": "Study 003 on {dataset}: adversarial training with PGA",
    },
}
