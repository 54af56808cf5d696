"""Study 000's words: its published setting, display names, captions and figure texts, and
our deviations from the study, formatted from the configuration."""

from __future__ import annotations

from ..base import StudyPlan


# ---- the study's setting, as published ----
STUDY_DATASET = "mnist"
STUDY_EPS = (0.1, 0.05, 0.01)
HEADLINE_EPS = 0.1
STUDY_EPOCHS = 15
STUDY_BATCH = 128
STUDY_OPTIMIZERS = {"sgd": {"lr": 0.01}, "adam": {"lr": 0.001},
                    "gn": {"lr": 0.01, "damping": 0.01}}
SHORT_LABELS = {"sgd": "SGD", "adam": "Adam", "gn": "GN", "kfac": "K-FAC"}

DATA_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def data_name(ds: str) -> str:
    """How captions and claims name data set `ds` ('Fashion-MNIST'; else the config's name)."""
    return DATA_NAMES.get(ds, ds)


# ---- presentation ----
# Display names and texts of the study's outputs, read by `Study000.presentation` (so through the
# rules' `params`): editing one reruns exactly the outputs that show it. Every text is a
# `str.format` template (literal braces doubled); the data-dependent parts are the placeholders.

LABELS = {"sgd": "SGD", "adam": "Adam", "gn": "Gauss-Newton", "kfac": "K-FAC"}

# Every table caption ends with this; {settings}: each optimizer's settings, {seeds}: the seeds.
FOOTER = "Ours: {settings}; seeds {seeds}; mean ± 95 % interval over seeds where several."

# Table captions; {citation}: the study's reference, {footer}: FOOTER filled in, and for Tables
# 1b and 1c {matched}: the matched optimizers, {reference}: the optimizer they are matched to.
CAPTIONS = {
    "table1_fgsm_clean": (
        "Table 1: FGSM on models trained on clean {data}: correctly classified test images and "
        "successful attacks among them (rate = successes / correct); paper: {citation}. {footer}"
    ),
    "table2_fgsm_poisoned": (
        "Table 2: FGSM on models trained on label-poisoned (10 %) {data}: correctly classified "
        "test images and successful attacks among them (rate = successes / correct); "
        "paper: {citation}. {footer}"
    ),
    "table1b_fgsm_matched_loss": (
        "Table 1b (not in the study): FGSM on clean-trained {data} models compared at equal training "
        "loss: for {matched} the checkpoint where the whole-training-set loss first falls to "
        "{reference}'s final one (the crossing checkpoint or its predecessor, whichever is "
        "closer), {reference} at its final model. {footer}"
    ),
    "table1c_fgsm_matched_accuracy": (
        "Table 1c (not in the study): FGSM on clean-trained {data} models compared at equal training "
        "accuracy, as the study's protocol trains every model to about the same accuracy: for "
        "{matched} the first checkpoint whose whole-training-set accuracy reaches {reference}'s "
        "final one, {reference} at its final model. {footer}"
    ),
    "table3_sam_median": (
        "Table 3: median over test batches of 256 of the loss increase L(θ + ρ g/‖g‖) − L(θ) "
        "(the study's 'SAM analysis'), clean-trained {data} models; paper: {citation}. {footer}"
    ),
    "training_summary": (
        "Training summary, {data}: whole-training-set loss (on the labels trained on) and test accuracy "
        "of the final models; the study trained every model to about 95 % test accuracy and "
        "reports GN's final train loss ≈ 1.0 vs Adam's 0.06.{cos_note} {footer}"
    ),
}

# Figure title and x-axis label; {rho}: the largest ρ (the one plotted). The training curves
# show only the display names.
FIGURE_TEXTS = {
    "fig2_input_grad_norm": dict(
        title="Fig. 2: input-gradient norm on the {data} test set",
        xlabel="‖∇ₓ CE‖₂ (per test image)",
    ),
    "fig3_logit_margin": dict(
        title="Fig. 3: logit margin on the {data} test set",
        xlabel="logit margin z_y − max_{{j≠y}} z_j",
    ),
    "fig_sam_per_example": dict(
        title="Per-example sharpness CE_i(θ+ρg_i/‖g_i‖) − CE_i(θ), {data}",
        xlabel="per-example loss increase, ρ={rho:g}",
    ),
    "fig_training_curves": {},
}


# ---- deviations ----
def deviations(plan: StudyPlan) -> list[str]:
    """Our deviations from the study, formatted from the configuration."""
    if not plan.enabled:
        return []
    return (recipe_deviations(plan) + gauss_newton_deviations(plan) + [seed_deviation(plan)]
            + data_deviations(plan) + fgsm_deviations(plan))


def _recipes(plan: StudyPlan) -> dict[str, dict]:
    """label -> recipe of the study's labels whose recipe the configuration has."""
    return {k: plan.cfg["recipes"][r] for k, r in plan.block["recipes"].items()
            if r in plan.cfg["recipes"]}


def kfac_deviation(r: dict) -> str:
    """K-FAC's settings (the study trains no K-FAC model)."""
    o = r["optimizer"]
    return (f"K-FAC (not trained in the study; its §4 next step): {r['epochs']} epochs, "
            f"lr {o.get('lr'):g}, λ {o.get('damping', 0.01):g} added to the whole "
            f"curvature, type-2 Fisher of the "
            f"{'summed' if o.get('ggn_scale', 'sum') == 'sum' else 'mean'} loss, "
            f"convolutions '{o.get('kfac_approx', 'expand')}', factors and inverse from "
            f"the current batch every {o.get('update_every', 1)} steps, no running average")


def recipe_deviations(plan: StudyPlan) -> list[str]:
    """Epochs, batch size and optimizer settings that differ from the study's."""
    out = []
    for k, r in _recipes(plan).items():
        if k == "kfac":
            out.append(kfac_deviation(r))
            continue
        if r["epochs"] != STUDY_EPOCHS:
            out.append(f"{LABELS[k]}: {r['epochs']} of the study's {STUDY_EPOCHS} epochs")
        if r.get("batch_size") != STUDY_BATCH:
            out.append(f"{LABELS[k]}: batch {r.get('batch_size')} (the study: {STUDY_BATCH})")
        opt, ref = r["optimizer"], STUDY_OPTIMIZERS.get(k, {})
        diff = [p for p, v in ref.items() if opt.get(p, v) != v]
        if diff:
            ours = ", ".join(f"{p} {opt.get(p):g}" for p in diff)
            theirs = ", ".join(f"{p} {ref[p]:g}" for p in diff)
            out.append(f"{LABELS[k]}: {ours} (the study: {theirs})")
    return out


def gauss_newton_deviations(plan: StudyPlan) -> list[str]:
    """How our Gauss-Newton step is solved and scaled against the study's code."""
    gn = _recipes(plan).get("gn", {}).get("optimizer", {})
    if not gn:
        return []
    solver = gn.get("solver", "exact")
    scale = gn.get("ggn_scale", "sum")
    return [
        "Gauss-Newton: the step (λI + G)⁻¹g solved exactly through the N·(C−1) kernel "
        "system (solver: exact), equal to the study's dense solve up to rounding"
        if solver == "exact" else
        f"Gauss-Newton: the step solved by conjugate gradients (solver: cg, at most "
        f"{gn.get('cg_max_iter', 50)} iterations), an approximation of the study's "
        "dense solve",
        "Gauss-Newton: G summed over the batch with g the mean-loss gradient "
        "(ggn_scale: sum), as the code behind the study's tables"
        if scale == "sum" else
        "Gauss-Newton: G averaged over the batch (ggn_scale: mean), the later code's "
        "optimiser, not the one behind the study's tables",
    ]


def seed_deviation(plan: StudyPlan) -> str:
    """Our seeds (the headline arms' and the other models') against the study's one run."""
    s = plan.block
    seeds = sorted({sd for label in s["recipes"] for v in plan.variants()
                    for sd in plan.seeds_of(label, v)})
    h = s.get("headline")
    by_seeds: dict[tuple, list[str]] = {}
    for k in s["recipes"]:
        by_seeds.setdefault(tuple(plan.seeds_for(s["recipes"][k])), []).append(LABELS[k])
    others = "; ".join(f"{', '.join(labs)}: seeds {list(sd)}" for sd, labs in by_seeds.items())
    head = (f"; the headline arms ({', '.join(LABELS[k] for k in h['labels'])}, clean) "
            f"seeds {list(h['seeds'])}, the other models {others}" if h else "")
    return (f"Seeds {seeds} (the study: one run, seed 42){head}; initial weights and "
            "batch order drawn by torch, not the JAX code's draws")


def data_deviations(plan: StudyPlan) -> list[str]:
    """Poisoning, training subsets and the data sets beyond MNIST."""
    s, out = plan.block, []
    pv = plan.cfg["variants"].get(s.get("poisoned_variant") or "", {})
    if pv.get("kind") == "label_poison":
        out.append(f"Poisoning: {100 * pv['fraction']:g} % of the training labels replaced "
                   f"by a uniformly random wrong label, drawn without replacement with seed "
                   f"{pv.get('seed', 0)} (the study: drawn with replacement, unseeded)")
    for v in plan.variants():
        sub = plan.cfg["variants"].get(v, {}).get("subset")
        if sub:
            size = ", ".join(f"{k} {n}" for k, n in sub.items())
            out.append(f"Variant {v}: a subset of MNIST ({size} images), not the full set")
    for ds in plan.datasets():
        if ds != STUDY_DATASET:
            attack = plan.attack_name(ds)
            radius = (f"FGSM {attack} (radii {', '.join(f'{e:g}' for e in plan.attack(attack)['eps'])})"
                      if attack in plan.cfg.get("attacks", {}) else f"FGSM {attack}")
            out.append(f"{data_name(ds)} (not in the study; its §4 next step): the whole "
                       f"design with MNIST's recipes, seeds and hyper-parameters unchanged "
                       f"(nothing tuned on {data_name(ds)}), {radius}")
    return out


def fgsm_deviations(plan: StudyPlan) -> list[str]:
    """FGSM's test images and the study's radii we do not run."""
    out = []
    fgsm = plan.cfg.get("attacks", {}).get(plan.attack_name(STUDY_DATASET), {})
    if fgsm.get("n_examples", "all") not in (None, "all"):
        out.append(f"FGSM on {fgsm['n_examples']} test images, not all 10,000")
    missing = [e for e in STUDY_EPS if not any(abs(e - x) < 1e-12
                                               for x in fgsm.get("eps", []))]
    if missing:
        out.append(f"FGSM ε {missing} of the study not run")
    return out
