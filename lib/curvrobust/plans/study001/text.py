"""Study 001's words: its published setting, display names, column headings, captions and
titles, and our deviations from the study, formatted from the configuration."""

from __future__ import annotations

import math

from ..base import StudyPlan
from .haat import adversary_shared, haat_setting


# ---- the study's setting, as published ----
# The study's Fig. 1 baseline ξ (§4.1); the ξ and k its Fig. 2 found best (§4.2).
STUDY_BASELINE_XI = 1e-6
STUDY_BEST_XI = 5e-6
STUDY_BEST_K = 5
STUDY_K1 = 1


def pretty_eps(eps: float) -> str:
    """ε as k/255 when it is one (CIFAR-10's 8/255), else as a number."""
    k = round(eps * 255) if math.isfinite(eps * 255) else 0
    return f"{k}/255" if k and math.isclose(eps, k / 255, rel_tol=1e-9) else f"{eps:g}"


# ---- presentation ----
# Display names, column headings and caption / title templates of the study's tables and
# figures. {dataset} is the dataset, {seeds} the study's seeds; the other placeholders are
# filled from the data (table_robust_accuracy: the first evaluation row's columns; fig1: {xi},
# its model's ξ; fig4: {models}, which model each k's trace comes from) or the convergence
# block ({batches}).

# model label -> display name, in legend order
MODELS = {"pgd_at": "PGD-AT", "haat": "HAAT"}
# the twins' display names (ours: HAAT without r², and with a random direction for the
# Hessian's)
TWIN_NAMES = {"haat_w2zero": "HAAT w₂ = 0", "haat_random": "HAAT random direction",
              "haat_l2ball": "HAAT (l2_ball)",
              "haat_l2ball_random": "HAAT (l2_ball) random direction"}
# what each r2_scale means (the deviations' text)
R2_TEXT = {"linf": "u/‖u‖∞, the L∞ size of sign g",
           "l2_ball": "√d·u with ‖u‖₂ = 1, §3's √d·ε L2 ball",
           "sqrt_d_linf": "√d·u/‖u‖∞, Algorithm 1's line 8"}
# the study's words on its headline comparison (it prints no numbers for it)
STUDY_HEADLINE = ("\"the two model present very similar results. Our model takes a longer time "
                  "to converge, but it only provides very limited improvement against "
                  "AutoAttack\" (§4.2; Fig. 3's numbers are not in the text)")
METRICS = {"clean_acc": "clean", "pgd_acc": "PGD", "aa_acc": "AutoAttack"}
ACCURACY = "accuracy (%)"
# symbol of the swept HAAT hyperparameter per sweep kind
SWEEPS = {"xi_sweep": "ξ", "k_sweep": "k"}

# readable column heading per numeric column, in display order
COLUMNS = {
    "table_hvp_error": {
        "fd_start": "First product along",
        "method": "Method",
        "xi": "ξ",
        "median_rel_error": "median ‖Hu_fd − Hu‖/‖Hu‖",
        "q90_rel_error": "90th percentile",
        "zero_frac": "Hu = 0 exactly (%)",
        "examples": "Examples",
    },
    "table_eigvec_alignment": {
        "method": "Method",
        "k": "k",
        "xi": "ξ",
        "cos_median": "median |cos(u_k, u₁)|",
        "cos_q10": "10th percentile",
        "examples": "Examples",
    },
}

CAPTIONS = {
    "table_robust_accuracy": (
        "Study 001 on {dataset}: accuracy (%) at every epoch-end checkpoint on a fixed "
        "subset of {n_examples} test images (seed {subset_seed}), ε = {eps:g}; PGD: "
        "{pgd_attack}; AutoAttack cascade: {aa_attacks} (each attack on the points still "
        "robust). Mean ± 95 % interval over each row's seeds (column Seeds); twins and sweep "
        "models are evaluated at their final epoch only."
    ),
    "table_hvp_error": (
        "Study 001 on {dataset}: finite-difference input Hessian-vector products (float32) "
        "against double backprop, at training images, on the traced HAAT model, along random "
        "N(0, I) draws (raw: as HAAT's first product, fd_start raw) and along the same draws "
        "normalised to unit L2 norm; median over batches of the per-batch median relative "
        "error."
    ),
    "table_eigvec_alignment": (
        "Study 001 on {dataset}: does the power iteration find the input Hessian's dominant "
        "eigenvector u₁? |cos| between the k-step iterate and u₁ (50 exact power steps from "
        "the same start; the first finite-difference product along the draw as the HAAT "
        "adversary's fd_start says) at training images, traced HAAT model; median over "
        "batches of the per-batch statistic. Random directions give |cos| ≈ 1/√d."
    ),
}

TITLES = {
    "fig1_haat_robust_accuracy": (
        "Study 001, {dataset}: HAAT model (ξ = {xi:g}) over its checkpoints, ε = {eps:g}; "
        "mean and 95 % band over seeds"
    ),
    "fig3_haat_vs_pgd": (
        "Study 001, {dataset}: HAAT against PGD adversarial training, ε = {eps:g}; "
        "mean and 95 % band over seeds"
    ),
    "fig4_fd_convergence": (
        "Study 001, {dataset}: power iteration in the last HAAT attack step "
        "({batches} training batches, seed(s) {seeds})\n{models}"
    ),
    "fig2a_xi_sweep": (
        "Study 001, {dataset}: HAAT trained with different ξ (one model each), ε = {eps:g}"
    ),
    "fig2b_k_sweep": (
        "Study 001, {dataset}: HAAT trained with different k (one model each), ε = {eps:g}"
    ),
}


# ---- deviations ----
def deviations(plan: StudyPlan) -> list[str]:
    """Our settings against the study's (ResNet18 on CIFAR-10, 200 epochs, ε = 8/255,
    HAAT STEPS = 10, k = 5, ξ = 5·10⁻⁶ best / 10⁻⁶ baseline, r² on the √d·ε L2 ball)."""
    if not plan.enabled:
        return []
    out = []
    for ds, block in plan.block["datasets"].items():
        out += training_deviations(plan, ds, block) + haat_deviations(plan, ds, block)
    return out + [autoattack_deviation(plan), seed_deviation(plan)]


def training_deviations(plan: StudyPlan, ds: str, block: dict) -> list[str]:
    """Network, data, schedule and ε of one data set against the study's CIFAR-10 setting."""
    out = []
    haat_r = plan.recipe(block["models"]["haat"])
    variant = plan.cfg["variants"].get(block["variant"], {})
    n = (variant.get("subset") or {}).get("train")
    data = f"{n:,} training images of {ds}" if n else f"all of {ds}'s training images"
    opt = haat_r["optimizer"]
    sched = (opt.get("schedule") or {}).get("kind")
    as_study = (ds == "cifar10" and n is None and haat_r["arch"].startswith("resnet18")
                and haat_r["epochs"] == 200 and opt["name"] == "sgd" and sched == "cyclic")
    if not as_study:
        out.append(
            f"{ds}: {haat_r['arch']} on {data}, {haat_r['epochs']} epochs of "
            f"{opt['name']} (lr {opt['lr']:g}{', ' + sched + ' schedule' if sched else ''})"
            " (the study: ResNet18 on all of CIFAR-10, 200 epochs of SGD with a cyclic "
            "schedule from 0.1)")
    if not (ds == "cifar10" and math.isclose(float(block["eps"]), 8 / 255)):
        out.append(f"{ds}: ε = {pretty_eps(float(block['eps']))} (the study: 8/255 on "
                   "CIFAR-10)")
    return out


def adversary_text(adv: dict) -> str:
    """'10 steps of 2/255 from a random start': an adversary block's shared settings."""
    _, steps, step, rs = adversary_shared(adv)
    start = "a random start" if rs else "no random start"
    return f"{steps:g} steps of {pretty_eps(step)} from {start}"


def haat_deviations(plan: StudyPlan, ds: str, block: dict) -> list[str]:
    """The PGD-AT and HAAT adversaries of one data set against the study's."""
    out = []
    pa = plan.recipe(block["models"]["pgd_at"])["regime"]["adversary"]
    ha = plan.recipe(block["models"]["haat"])["regime"]["adversary"]
    if adversary_shared(pa) == adversary_shared(ha):
        out.append(f"{ds}: PGD-AT and HAAT adversaries both take {adversary_text(ha)} (the "
                   "study's HAAT: STEPS = 10 (Algorithm 1), its PGD-AT's steps and start "
                   "not given)")
    else:
        out.append(f"{ds}: PGD-AT's adversary takes {adversary_text(pa)}, HAAT's "
                   f"{adversary_text(ha)}: NOT the same, the comparison is confounded")
    w1, w2 = float(haat_setting(ha, "w1")), float(haat_setting(ha, "w2"))
    r2 = haat_setting(ha, "r2_scale")
    out.append(
        f"{ds}: HAAT k = {haat_setting(ha, 'k')}, ξ = {float(haat_setting(ha, 'xi')):g}, "
        f"{haat_setting(ha, 'hvp')} products, first product along the "
        f"{haat_setting(ha, 'fd_start')} draw, w₁ = {w1:g}, w₂ = {w2:g}, r² scaled "
        f"'{r2}' ({R2_TEXT.get(r2, r2)}), update '{haat_setting(ha, 'update')}' (the "
        "study: k = 5, ξ = 5·10⁻⁶ best and 10⁻⁶ baseline, w₁ = 1, w₂ = 2 with r² on the "
        "√d·ε L2 ball (§3); Algorithm 1: w₁ = 1/4, the update inside the power loop)")
    if r2 == "linf" and w2 > 0:
        out.append(f"{ds}: HAAT's step α·(w₁ sign g + w₂ r²) is up to "
                   f"{w1 + w2:g}·α in L∞ where PGD-AT's is α")
    return out


def autoattack_deviation(plan: StudyPlan) -> str:
    """Our AutoAttack-style cascade against the study's AutoAttack package."""
    aa = plan.block["autoattack"]
    return (f"AutoAttack: our cascade of {', '.join(aa['attacks'])} (APGD "
            f"{aa['apgd_steps']} steps, FAB {aa['fab_steps']}, Square "
            f"{aa['square_queries']} queries) on {aa['n_examples']:,} test "
            "images (the study: the AutoAttack package; its number of test images is not "
            "given)")


def seed_deviation(plan: StudyPlan) -> str:
    """Each model's seeds against the study's one run per model."""
    seeds: dict[tuple, list[str]] = {}
    for ds in plan.block["datasets"]:
        for lab, recipe in plan.recipes_on(ds).items():
            seeds.setdefault(tuple(plan.seeds_for(recipe)), []).append(lab)
    return ("seeds: " + "; ".join(f"{', '.join(dict.fromkeys(labs))}: {list(sd)}"
                                  for sd, labs in seeds.items())
            + " (the study: one run per model)")
