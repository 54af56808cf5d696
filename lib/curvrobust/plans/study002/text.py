"""Study 002's words: display names, captions, column headings and figure titles, and our
deviations from the study (or from Madry et al.'s setting where the study follows them),
formatted from the configuration."""

from __future__ import annotations

from ..base import StudyPlan


MADRY_MNIST_NET = {"widths": [32, 64], "hidden": 1024}  # mnist002 at Madry et al.'s size
TEST_IMAGES = 10_000  # test-set size of MNIST, Fashion-MNIST and CIFAR-10


# ---- presentation ----
# Display names, captions and titles of study 002's tables and figures. A rule gets only what its
# one output shows (Study002.presentation), so editing a text reruns only the outputs showing it.
# Templates: {placeholders} are filled by curvrobust.reports.study002 from the data.

# regime label -> display name; the accuracy tables' rows follow this order
LABELS_TABLE = {
    "natural": "Natural",
    "advtrain": "AdvTrain (Kurakin, C&W examples)",
    "crossentropy": "CrossEntropy (Ross & Doshi-Velez)",
    "ours": "Ours (margin penalty)",
    "minmax": "MinMax (Madry PGD)",
    "ours_minmax": "Ours + MinMax",
}
# regime label -> name in figure panels and legends
LABELS_FIGURE = {
    "natural": "natural",
    "advtrain": "AdvTrain",
    "crossentropy": "CE penalty",
    "ours": "margin penalty (ours)",
    "minmax": "min-max PGD",
    "ours_minmax": "ours + min-max",
}

SEEDS_NOTE = "Seeds {seeds}; mean ± 95 % interval over seeds where several."
# table kind -> caption template
TABLE_CAPTIONS = {
    "accuracy": "Test accuracy (%) on {dataset} ({n_seeds} seed(s)) of each training regime, "
                "naturally and under attack ({attacks}).{paper} " + SEEDS_NOTE,
    "pgd": "Test accuracy (%) under BIM (the study's setting) against PGD with random restarts, "
           "the stronger attack the study does not run. " + SEEDS_NOTE,
    "step_sweep": "Test accuracy (%) under BIM and C&W at the study's step size and at smaller "
                  "steps with more iterations (a step of 0.1 at ε = 0.1 is a full-radius "
                  "jump). " + SEEDS_NOTE,
    "indicator": "Robustness indicator per regime: mean over test images of the decision "
                 "function's input gradient (norms, share of near-zero entries) and of the CE "
                 "input Hessian's top eigenvalue and near-zero share, beside the accuracy under "
                 "PGD-10 at the table's middle ε. " + SEEDS_NOTE,
    "training": "Training of every regime: final whole-training-set loss, natural test accuracy, "
                "mean wall time per epoch and its ratio to natural training's (the study reports "
                "2.1× for its penalty on CIFAR-10). Regimes: {regimes}. " + SEEDS_NOTE,
}
# the accuracy caption's {paper}: with the study's printed table for the dataset, or without
PAPER_NOTE = " In brackets: the study's printed number ({citation})."
NO_PAPER_NOTE = " The study has no table for this dataset."
# table kind -> readable columns: value column -> (heading, digits)
TABLE_COLUMNS = {
    "pgd": {"accuracy": ("Accuracy (%)", 1)},
    "step_sweep": {"accuracy": ("Accuracy (%)", 1)},
    "indicator": {
        "grad_l1": ("mean ‖∇ₓg‖₁", 3),
        "grad_l2": ("mean ‖∇ₓg‖₂", 3),
        "jac_zero_frac": ("near-zero ∇ₓg entries (%)", 1),
        "hess_top_eig": ("mean top λ(∇²ₓCE)", 4),
        "hess_top_eig_median": ("median top λ", 4),
        "hess_zero_frac": ("near-zero eigenvalues (%)", 2),
        "pgd_accuracy": ("PGD-10 accuracy (%)", 1),
    },
    "training": {
        "train_loss": ("final train CE", 4),
        "test_acc": ("test accuracy (%)", 2),
        "epoch_time_s": ("s / epoch", 1),
        "time_vs_natural": ("× natural", 2),
    },
}
# figure kind -> title template
FIGURE_TITLES = {
    "input_loss": "{dataset}: CE loss in input space around test image {image} (label {label}), "
                  "natural vs robust models",
    "decision": "{dataset}: decision function g in input space around test image {image} "
                "(label {label}), natural vs robust models",
    "loss_vs_decision": "{dataset}, {regime} model: loss vs decision surface, test image {image}",
    "param_surface": "{dataset}: training loss in parameter space (Li et al. filter-normalised "
                     "directions)",
    "jacobian": "{dataset}: ∇ₓg of the first test images, scaled to [0, 1] per image",
    "curve": "Accuracy under PGD-10 over ε",
    "step_sweep": "BIM and C&W: the study's step and smaller ones",
    "scatter": "Robustness indicator vs accuracy under PGD-10 at each dataset's middle ε, every "
               "model",
}


# ---- deviations ----
def _setting(adversary: dict, key: str, spec: str = "") -> str:
    """An adversary's setting as the deviations print it; one the recipe leaves out is the
    attack function's keyword default, which the plans cannot read without torch: named so."""
    if key not in adversary:
        return "(the attack's default)"
    return format(adversary[key], spec)


def deviations(plan: StudyPlan) -> list[str]:
    """Our seeds, each data set's setting and the indicator's thresholds against the
    study's, formatted from the configuration."""
    if not plan.enabled:
        return []
    out = []
    seeds = plan.block["seeds"]
    extra = plan.block.get("seeds_per_recipe", {})
    if extra:
        out.append("seeds: " + "; ".join(f"{r}: {', '.join(map(str, s))}"
                                         for r, s in extra.items())
                   + f"; every other regime: {', '.join(map(str, seeds))} (the study: one "
                     "run each, no intervals)")
    else:
        out.append(f"seeds: {', '.join(map(str, seeds))} for every regime (the study: one run "
                   "each, no intervals)")
    for ds, block in plan.block["datasets"].items():
        out += dataset_deviations(plan, ds, block)
    ind = plan.block["indicator"]
    out.append(f"indicator: ∇ₓg entries below {ind['jac_zero_tol']:g} count as zero "
               "(the study's footnote thresholds are lost from its text), on the first "
               f"{ind['n_examples']} images of the shared test subset (the study: "
               "randomly taken test images)")
    return out


def dataset_deviations(plan: StudyPlan, ds: str, block: dict) -> list[str]:
    """One dataset block's differences from the study's setting (or from Madry et al.'s
    where the study follows them), formatted from the config."""
    out = []
    regimes = block["regimes"]
    mnist_like = ds != "cifar10"
    nat = plan.recipe(regimes["natural"]) if "natural" in regimes else None
    if nat and nat["arch"] == "mnist002" and nat.get("arch_kwargs", {}) != MADRY_MNIST_NET:
        kw = ", ".join(f"{k} {v}" for k, v in nat.get("arch_kwargs", {}).items())
        out.append(f"{ds}: net mnist002 with {kw} (Madry et al.'s MNIST net: widths "
                   "[32, 64], hidden 1024; the study names only the layer types)")
    subset = (plan.cfg["variants"].get(block["variant"], {}).get("subset") or {})
    if subset.get("train"):
        out.append(f"{ds}: the first {subset['train']:,} training images (the study: the "
                   "whole training set)")
    epochs: dict[int, list[str]] = {}
    for label, recipe in regimes.items():
        epochs.setdefault(plan.recipe(recipe)["epochs"], []).append(label)
    out.append(f"{ds}: epochs " + "; ".join(f"{e} ({', '.join(ls)})" for e, ls in
                                            epochs.items())
               + (" (the study gives none for MNIST)" if mnist_like else
                  " (the study: about 30 natural, 100 with its penalty, over 400 min-max)"))
    for label in ("ours", "ours_minmax"):
        pen = plan.recipe(regimes[label]).get("regime", {}).get("penalty") \
            if label in regimes else None
        if pen:
            out.append(f"{ds}: {label}: margin penalty c = {pen['coef']:g} with the "
                       f"{pen.get('norm', 'l2').upper()} norm (the study: c = 500, norm not "
                       "named; it collapses our nets, docs/study002.md)")
    if "crossentropy" in regimes:
        pen = plan.recipe(regimes["crossentropy"]).get("regime", {}).get("penalty", {})
        out.append(f"{ds}: CE gradient penalty λ = {pen.get('coef', float('nan')):g} (the "
                   "study gives none)")
    for label in ("minmax", "ours_minmax"):
        adv = plan.recipe(regimes[label]).get("regime", {}).get("adversary") \
            if label in regimes else None
        if not adv or not mnist_like:
            continue  # the study gives no min-max setting on CIFAR-10
        ramp = adv.get("eps_ramp_epochs") or 0
        madry = (adv["kind"], adv.get("steps"), adv.get("step_size"), adv["eps"]) == \
            ("pgd", 40, 0.01, 0.3)
        if not madry or ramp:
            out.append(
                f"{ds}: {label}: {adv['kind'].upper()}-{_setting(adv, 'steps')} of step "
                f"{_setting(adv, 'step_size', 'g')} at ε = {adv['eps']:g}"
                + (f", ε warmed up over the first {ramp:g} epoch(s)" if ramp else "")
                + " (Madry et al.: PGD-40 of 0.01 at ε = 0.3, no warm-up)")
    if block.get("reference") and "advtrain" not in regimes:
        out.append(f"{ds}: no AdvTrain (Kurakin et al.) row: configs/extended.yaml trains it")
    n = plan.n_images(plan.attack(next(iter(block["attacks"].values()))))
    if n != "all" and int(n) < TEST_IMAGES:
        out.append(f"{ds}: FGSM, BIM and C&W on the first {n} images of a seeded "
                   f"permutation of the {TEST_IMAGES:,} test images, shared by every model "
                   "(the study: its test set)")
    return out
