"""Study 003's words: display names, caption and title templates, and where our experiment is
ours rather than the study's (its deviations), formatted from the configuration."""

from __future__ import annotations


from ..base import StudyPlan
from .design import LR_SCALINGS, stage_key


LR_SCALING_LABELS = {"inverse_square": "lr/s²", "none": "same lr"}


def percent(fraction: float) -> str:
    """0.9 -> '90 %'."""
    return f"{100 * float(fraction):g} %"


def scales_text(plan: StudyPlan) -> str:
    """The study's input scales, '0.25, 1, 4'."""
    return ", ".join(f"{plan.scale(v):g}" for v in plan.block.get("variants", []))


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


# ---- deviations ----
def deviations(plan: StudyPlan) -> list[str]:
    """Where our experiment is ours rather than the study's (only its abstract was
    available), formatted from the configuration."""
    if not plan.enabled:
        return []
    b = plan.block
    m, th = b["model"], b["threat"]
    p, t = plan.pga_settings(), plan.training_settings()
    a, c = b["pair"]
    second = "trained" if m.get("train_second_layer") else "fixed at ±1/√m"
    bias = "with" if m.get("bias") else "no"
    n_train = "all" if b.get("n_train") is None else f"{b['n_train']:,}"
    lr = ", ".join(f"{sc} ({LR_SCALING_LABELS[sc]})" for sc in plan.lr_scalings())
    return [
        "only the abstract was available: the experiment's design is ours (docs/study003.md)",
        f"two-layer network f(x) = aᵀσ(Wx) of width {m['width']} ({m['activation']}, second "
        f"layer {second}, {bias} bias), quadratic loss (y − f)² as in the study",
        f"task: {b['dataset']} digits {a} (+1) vs {c} (−1), {n_train} training images of the "
        f"pair, inputs scaled by s ∈ {{{scales_text(plan)}}}",
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
