"""Study 003's claims as data (curvrobust.claims; evidence:
curvrobust.reports.study003.claim_evidence): the abstract's claims on the input scale, each a
per-seed trend against log₂ s, with the smallest effects of interest fixed before any run."""

from __future__ import annotations


from ..base import StudyPlan, claim_sesoi
from .design import LOSS_OF_ZERO, LR_SCALINGS
from .text import LR_SCALING_LABELS, percent, scales_text


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


def claims(plan: StudyPlan) -> list[dict]:
    """The abstract's claims on the input scale, each as a per-seed trend against log₂ s
    (direction 'increasing': the measure grows with s, i.e. is smaller at a smaller scale).
    Listed whenever the study is enabled, both learning-rate scalings always (one missing
    from the config reads "not run")."""
    if not plan.enabled:
        return []
    trend = (f"trend over s ∈ {{{scales_text(plan)}}}: per seed (shared initialisation), "
             "OLS slope against log₂ s")
    base = dict(study=plan.name, where="abstract", comparison=trend, direction="increasing",
                margin=0.0, unit="", ours=False, worst_case=False)
    out = pga_claims(plan, base)
    for sc in LR_SCALINGS:
        out += training_claims(plan, base, sc)
    for c in out:
        c["sesoi"] = claim_sesoi(c["id"], c["direction"], c["margin"], c["sesoi"],
                                 c["sesoi_source"])
    return out


def pga_claims(plan: StudyPlan, base: dict) -> list[dict]:
    """PGA on the network at initialisation: fewer iterations (the headline) and fewer
    distinct local maxima at a smaller scale."""
    ds, p = plan.block["dataset"], plan.pga_settings()
    pga_where = (f"PGA ({p['steps']} steps of {p['step_size']:g}·ε, {p['starts']} random "
                 f"starts) on {p['n_examples']} test examples, network at initialisation")
    return [dict(
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


def training_claims(plan: StudyPlan, base: dict, sc: str) -> list[dict]:
    """Adversarial training with learning-rate scaling `sc`: fewer SGD steps to a robust loss
    below 1, and a faster fall of the robust loss in the initial phase, at a smaller scale."""
    ds, t = plan.block["dataset"], plan.training_settings()
    at_where = (f"adversarial training, quadratic loss, PGA-{t['pga_steps']} "
                f"(one start) inside, SGD batch {t['batch_size']}, {t['epochs']} epochs")
    label = f"{sc} ({LR_SCALING_LABELS[sc]})"
    return [dict(
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
    ), dict(
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
    )]
