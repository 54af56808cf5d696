"""Study 000's claims as data (curvrobust.claims; evidence:
curvrobust.reports.study000.claim_evidence): the study's printed numbers, the thresholds fixed
before any run, and one function per group of claims."""

from __future__ import annotations

import functools

from ..base import StudyPlan, make_claim
from .text import HEADLINE_EPS, LABELS, SHORT_LABELS, STUDY_DATASET, STUDY_EPS, data_name


# ---- the study's numbers and fixed thresholds ----
# Set before any run and never tuned to its outcome.
# data sets whose claims are listed even when the preset does not run them (they read "not run")
CLAIM_DATASETS = ("fashion_mnist",)
# "Gauss-Newton did not significantly change": |poisoned − clean| FGSM rate within 3 points
POISON_MARGIN = 0.03
# K-FAC "as robust as" Gauss-Newton: |K-FAC − Gauss-Newton| FGSM (or worst-case) rate within 5
# points, about a fifth of the study's Gauss-Newton − Adam gap at ε = 0.1 (24 points); fixed
# before any K-FAC run
KFAC_GN_MARGIN = 0.05
# Smallest effects of interest (SESOI), FGSM / worst-case success rates as fractions. The study
# calls SGD and Adam's rates "no discernible differences" (§3.1) at gaps up to 4.2 points
# (ε = 0.05: 27.96 vs 32.13 %) and Gauss-Newton's 24-point gap at ε = 0.1 "a clear decrease":
# a clear decrease is at least 5 points. At ε below 0.05 every printed rate is under 2.6 %
# (ε = 0.01, Tables 1, 2), where 5 points cannot occur: there half a point, a fifth of Adam's
# printed 2.59 %.
HEADLINE_SESOI = 0.05
SMALL_EPS_SESOI = 0.005
SMALL_EPS = 0.05   # radii below this take SMALL_EPS_SESOI
HEADLINE_SOURCE = ('"a clear decrease in the number of successful attacks" (§3.1) beside '
                   '"no discernible differences" for gaps up to 4.2 points (SGD vs Adam, '
                   'Table 1): 5 points')
SMALL_EPS_SOURCE = ('"a clear decrease" (§3.1) at ε = {eps:g} < 0.05, where rates are small '
                    '(at ε = 0.01 every printed rate is under 2.6 %, Tables 1, 2): 0.5 point, '
                    'a fifth of Adam\'s 2.59 %')
# Input-gradient norm (Fig. 2, no printed numbers): "highly sensitive to a small change in the
# input" (§3.2.1); 0.1 nat of CE per unit L2 input change, i.e. along an L2 step as long as
# FGSM's at ε = 0.1 (0.1·√784 = 2.8) a first-order loss rise 0.28 nat larger, about 0.4·ln 2
GRADNORM_SESOI = 0.1
# Logit margin (Fig. 3, no printed numbers): "more unsure" / "timid" (§3.2.1); one logit, a
# factor e in the odds of the label against the runner-up
MARGIN_SESOI = 1.0
# SAM loss increase (Table 3): Adam's printed medians are about 1.0·ρ (0.0009, 0.0048, 0.0101
# at ρ = 0.001, 0.005, 0.01), Gauss-Newton's about 2.6–2.8·ρ; "greater curvature" is taken as a
# difference of at least half Adam's printed increase at the same ρ: 0.5·ρ
SAM_SESOI_PER_RHO = 0.5
# Tables 1, 2 and 3 as printed (curvrobust/reference/study000.yaml holds the same numbers with
# the counts; a test keeps them equal): label -> role -> ε -> rate (%); label -> ρ -> median
PRINTED_RATE = {
    "adam": {"clean": {0.1: 75.64, 0.05: 32.13, 0.01: 2.59},
             "poisoned": {0.1: 64.02, 0.05: 21.53, 0.01: 1.90}},
    "sgd": {"clean": {0.1: 75.62, 0.05: 27.96, 0.01: 2.36},
            "poisoned": {0.1: 62.97, 0.05: 18.58, 0.01: 1.81}},
    "gn": {"clean": {0.1: 51.51, 0.05: 13.92, 0.01: 1.66},
           "poisoned": {0.1: 51.02, 0.05: 14.27, 0.01: 1.69}},
}
PRINTED_SAM = {"gn": {0.001: 0.0026, 0.005: 0.0137, 0.01: 0.0282},
               "adam": {0.001: 0.0009, 0.005: 0.0048, 0.01: 0.0101}}


def _printed(table: dict, eps: float | None) -> float | None:
    return next((v for e, v in table.items() if eps is not None and abs(e - eps) < 1e-12), None)


def printed_pair(a: str, b: str, role: str, eps: float) -> str:
    """'GN 51.51 % vs Adam 75.64 %' from the study's table, or '' where it has no number."""
    va, vb = _printed(PRINTED_RATE[a][role], eps), _printed(PRINTED_RATE[b][role], eps)
    if va is None or vb is None:
        return ""
    return f"{SHORT_LABELS[a]} {va:.2f} % vs {SHORT_LABELS[b]} {vb:.2f} %"


def printed_poison(label: str, eps: float) -> str:
    va = _printed(PRINTED_RATE[label]["poisoned"], eps)
    vb = _printed(PRINTED_RATE[label]["clean"], eps)
    if va is None or vb is None:
        return ""
    return f"{SHORT_LABELS[label]} poisoned {va:.2f} % vs clean {vb:.2f} %"


def printed_sam(rho: float | None) -> str:
    va, vb = _printed(PRINTED_SAM["gn"], rho), _printed(PRINTED_SAM["adam"], rho)
    if va is None or vb is None:
        return ""
    return f"median over batches, ρ = {rho:g}: GN {va:g} vs Adam {vb:g}"


claim = functools.partial(make_claim, study="study000")
SAME = "same seed (initial weights and batch order)"


def fgsm_sesoi(eps: float) -> dict:
    """sesoi and sesoi_source of an MNIST FGSM-rate claim at ε (HEADLINE_SESOI, or
    SMALL_EPS_SESOI below SMALL_EPS, where the study's rates are all small)."""
    if eps < SMALL_EPS - 1e-12:
        return dict(sesoi=SMALL_EPS_SESOI, sesoi_source=SMALL_EPS_SOURCE.format(eps=eps))
    return dict(sesoi=HEADLINE_SESOI, sesoi_source=HEADLINE_SOURCE)


def ours_rate_sesoi(direction: str, data: str = "MNIST") -> dict:
    """sesoi and sesoi_source of one of our rate claims (K-FAC, other data sets): the
    equivalence margin for "equivalent", else the headline's SESOI."""
    if direction == "equivalent":
        return dict(sesoi_source="K-FAC \"as robust as\" Gauss-Newton (§4's next step): "
                                 "the equivalence margin, 5 points, about a fifth of "
                                 "the printed 24-point Gauss-Newton − Adam gap")
    return dict(sesoi=HEADLINE_SESOI,
                sesoi_source=f"the headline's SESOI (5 points, \"a clear decrease\", "
                             f"§3.1) on {data}")


# ---- what the claims compare: metrics and arms ----
def images(plan: StudyPlan, ds: str) -> str:
    """How many test images FGSM attacks on data set `ds` ('all test images', '500 test
    images')."""
    attack = plan.attack_name(ds)
    fgsm = plan.attack(attack) if attack in plan.cfg.get("attacks", {}) else {}
    n = fgsm.get("n_examples", "all")
    return "all test images" if n in (None, "all") else f"{n} test images"


def fgsm_metric(plan: StudyPlan, eps: float, ds: str = STUDY_DATASET) -> str:
    """The FGSM success rate at ε on data set `ds` (Tables 1, 2)."""
    return (f"FGSM success rate among correctly classified test images "
            f"(successes / correct), {images(plan, ds)}, ε = {eps:g}")


def worst_metric(plan: StudyPlan, eps: float, ds: str = STUDY_DATASET) -> str:
    """The worst-case success rate at ε over every attack of the robust evaluation."""
    return ("worst-case success rate among correctly classified images over every "
            f"attack at ε = {eps:g} (FGSM, PGD-CE, margin PGD, Square, transfer), the "
            "robust evaluation's shared test subset")


def arm(label: str, role: str = "clean", ckpt: str = "final", ds: str = STUDY_DATASET) -> dict:
    """One arm of a comparison: a label's models on a role's variant at a checkpoint."""
    return dict(dataset=ds, label=label, variant=role, ckpt=ckpt)


def pair(a: str, b: str, role: str = "clean", ckpt_b: str = "final",
         ds: str = STUDY_DATASET) -> list[dict]:
    """The arms `a` − `b` (b possibly at a matched checkpoint)."""
    return [arm(a, role, ds=ds), arm(b, role, ckpt_b, ds)]


# ---- the radii and ρ the claims read ----
def claim_eps(plan: StudyPlan) -> list[float]:
    """FGSM radii of the claims: the study's, and any other the config's attack has."""
    attack = plan.attack_name(STUDY_DATASET)
    cfg_eps = plan.attack(attack)["eps"] if attack in plan.cfg.get("attacks", {}) else []
    return sorted({*STUDY_EPS, *(float(e) for e in cfg_eps)}, reverse=True)


def other_eps(plan: StudyPlan, ds: str) -> float:
    """The claims' radius on a data set other than MNIST: the study's headline ε unless
    `attack_by_dataset` gives the data set its own attack (then that attack's largest)."""
    if ds in plan.block.get("attack_by_dataset", {}) and \
            plan.attack_name(ds) in plan.cfg.get("attacks", {}):
        return plan.headline_eps(ds)
    return HEADLINE_EPS


def sam_rho(plan: StudyPlan) -> float | None:
    """The largest ρ of the per-example sharpness (Table 3's and the figure's)."""
    rho = plan.cfg.get("statistics", {}).get("sam", {}).get("rho", [])
    return max(rho) if rho else None


# ---- the claims, by group ----
def claims(plan: StudyPlan) -> list[dict]:
    """Every claim of the study, in display order (the headline first)."""
    if not plan.enabled:
        return []
    return (headline_claims(plan) + fgsm_claims(plan) + poison_claims(plan)
            + input_claims(plan) + matched_claims(plan) + kfac_claims(plan)
            + other_dataset_claims(plan))


def headline_claims(plan: StudyPlan) -> list[dict]:
    """Gauss-Newton against Adam on clean MNIST at the headline ε: FGSM (the headline) and the
    worst case of all attacks."""
    h_eps = HEADLINE_EPS
    return [claim(
        cid=f"000-gn-adam-fgsm-clean-{h_eps:g}",
        text="Gauss-Newton results in a clear decrease in the number of successful attacks "
             "(clean data)", where="§3.1, Table 1", metric=fgsm_metric(plan, h_eps),
        comparison=f"Gauss-Newton − Adam, clean MNIST, {SAME}", direction="less",
        measure="fgsm_rate", args=dict(eps=h_eps, arms=pair("gn", "adam")), headline=True,
        study_value=printed_pair("gn", "adam", "clean", h_eps), **fgsm_sesoi(h_eps)
    ), claim(
        cid=f"000-gn-adam-worst-clean-{h_eps:g}",
        text="the headline under the worst case of all attacks, not only FGSM", where="ours",
        metric=worst_metric(plan, h_eps),
        comparison=f"Gauss-Newton − Adam, clean MNIST, {SAME}", direction="less",
        measure="worst_rate", args=dict(eps=h_eps, arms=pair("gn", "adam")), ours=True,
        worst_case=True, sesoi=HEADLINE_SESOI,
        sesoi_source="the headline's SESOI (5 points), under the worst case of all attacks")]


def fgsm_claims(plan: StudyPlan) -> list[dict]:
    """Gauss-Newton against SGD and Adam at every claim radius, clean and poisoned (Tables 1,
    2), less the headline."""
    out = []
    headline = f"000-gn-adam-fgsm-clean-{HEADLINE_EPS:g}"
    for role, where, data in (("clean", "§3.1, Table 1", "clean MNIST"),
                              ("poisoned", "§3.1, Table 2", "10 %-label-poisoned MNIST")):
        for eps in claim_eps(plan):
            for other in ("sgd", "adam"):
                cid = f"000-gn-{other}-fgsm-{role}-{eps:g}"
                if cid == headline:
                    continue
                out.append(claim(
                    cid=cid, text=f"Gauss-Newton is attacked successfully less often than "
                    f"{LABELS[other]} ({'clean' if role == 'clean' else 'poisoned'} data)",
                    where=where, metric=fgsm_metric(plan, eps),
                    comparison=f"Gauss-Newton − {LABELS[other]}, {data}, {SAME}",
                    direction="less", measure="fgsm_rate",
                    args=dict(eps=eps, arms=pair("gn", other, role)),
                    study_value=printed_pair("gn", other, role, eps), **fgsm_sesoi(eps)))
    return out


def poison_claims(plan: StudyPlan) -> list[dict]:
    """Poisoned against clean training: Gauss-Newton unchanged, SGD and Adam improved."""
    h_eps = HEADLINE_EPS
    out = [claim(
        cid=f"000-gn-poison-unchanged-{h_eps:g}",
        text="Gauss-Newton did not significantly change at all (poisoned vs clean training)",
        where="§3.1", metric=fgsm_metric(plan, h_eps),
        comparison="Gauss-Newton poisoned − Gauss-Newton clean, same seed",
        direction="equivalent", measure="fgsm_rate",
        args=dict(eps=h_eps, arms=[arm("gn", "poisoned"), arm("gn")]), margin=POISON_MARGIN,
        study_value=printed_poison("gn", h_eps),
        sesoi_source='"did not significantly change at all" (§3.1): the equivalence margin, '
                     '3 points (printed change 0.49 point, Tables 1, 2)')]
    for k in ("sgd", "adam"):
        out.append(claim(
            cid=f"000-{k}-poison-{h_eps:g}",
            text=f"{LABELS[k]} actually improved robustness when trained on poisoned labels",
            where="§3.1", metric=fgsm_metric(plan, h_eps),
            comparison=f"{LABELS[k]} poisoned − {LABELS[k]} clean, same seed",
            direction="less", measure="fgsm_rate",
            args=dict(eps=h_eps, arms=[arm(k, "poisoned"), arm(k)]),
            study_value=printed_poison(k, h_eps), sesoi=HEADLINE_SESOI,
            sesoi_source='"actually improved robustness" (§3.1), set against Gauss-Newton\'s '
                         '"did not significantly change" (3-point margin): the headline\'s '
                         '5 points'))
    return out


def input_claims(plan: StudyPlan) -> list[dict]:
    """Gauss-Newton against Adam on the input-gradient norm, the logit margin (Figs. 2, 3) and
    the SAM loss increase (Table 3)."""
    rho = sam_rho(plan)
    comparison = f"Gauss-Newton − Adam, clean MNIST, {SAME}"
    return [claim(
        cid="000-gn-adam-gradnorm", text="Gauss-Newton resulted in significantly larger "
        "average input-gradient norm compared to Adam", where="§3.2.1, Fig. 2",
        metric="mean over the test images of ‖∇ₓ CE‖₂ (not squared, as the code)",
        comparison=comparison, direction="greater", measure="input_stat",
        args=dict(column="input_grad_norm", arms=pair("gn", "adam")), unit="",
        sesoi=GRADNORM_SESOI,
        sesoi_source='"significantly larger average norm" (§3.2.1; Fig. 2, no printed '
                     'numbers): 0.1 nat per unit L2 input change, 0.28 nat more first-order '
                     'loss rise along an L2 step of FGSM\'s length at ε = 0.1 (2.8)'
    ), claim(
        cid="000-gn-adam-margin", text="the Gauss-Newton model is more unsure: smaller logit "
        "margins than Adam", where="§3.2.1, Fig. 3",
        metric="mean over the test images of the logit margin z_y − max_{j≠y} z_j",
        comparison=comparison, direction="less", measure="input_stat",
        args=dict(column="logit_margin", arms=pair("gn", "adam")), unit="",
        sesoi=MARGIN_SESOI,
        sesoi_source='"more unsure in absolute magnitude", "timid" (§3.2.1; Fig. 3, no '
                     'printed numbers): one logit, a factor e in the odds of the label '
                     'against the runner-up'
    ), claim(
        cid="000-gn-adam-sam", text="the Gauss-Newton model has greater curvature at the "
        "loss: a larger SAM loss increase than Adam", where="§3.2.2, Table 3",
        metric="mean over the test images of the per-example loss increase "
        f"CE_i(θ + ρ g_i/‖g_i‖) − CE_i(θ), ρ = {rho:g} (the study: median over batches)"
        if rho is not None else "per-example SAM loss increase (no ρ configured)",
        comparison=comparison, direction="greater", measure="sam_example",
        args=dict(rho=rho, arms=pair("gn", "adam")), unit="",
        study_value=printed_sam(rho),
        sesoi=SAM_SESOI_PER_RHO * (rho if rho is not None else max(PRINTED_SAM["adam"])),
        sesoi_source='"greater curvature at the loss" (§3.2.2): half Adam\'s printed '
                     'increase at the same ρ (Table 3: Adam ≈ 1.0·ρ, Gauss-Newton ≈ '
                     '2.7·ρ), 0.5·ρ')]


def matched_claims(plan: StudyPlan) -> list[dict]:
    """The Gauss-Newton advantage at equal training loss and accuracy (Tables 1b, 1c), and over
    SGD under the worst case (ours)."""
    h_eps, out = HEADLINE_EPS, []
    for on, what in (("loss", "loss"), ("accuracy", "acc")):
        for other in ("adam", "sgd"):
            out.append(claim(
                cid=f"000-gn-{other}-fgsm-match{what}-{h_eps:g}",
                text=f"the Gauss-Newton advantage over {LABELS[other]} holds at equal training "
                f"{on}", where="ours", metric=fgsm_metric(plan, h_eps),
                comparison=f"Gauss-Newton final − {LABELS[other]} at the first checkpoint whose "
                f"whole-training-set {on} reaches Gauss-Newton's final one, clean MNIST, "
                f"{SAME}", direction="less", measure="fgsm_rate",
                args=dict(eps=h_eps, arms=pair("gn", other, ckpt_b=on)), ours=True,
                sesoi=HEADLINE_SESOI,
                sesoi_source="the headline's SESOI (5 points) at equal training " + on))
    out.append(claim(
        cid=f"000-gn-sgd-worst-clean-{h_eps:g}",
        text="the Gauss-Newton advantage over SGD holds under the worst case of all attacks",
        where="ours", metric=worst_metric(plan, h_eps),
        comparison=f"Gauss-Newton − SGD, clean MNIST, {SAME}", direction="less",
        measure="worst_rate", args=dict(eps=h_eps, arms=pair("gn", "sgd")), ours=True,
        worst_case=True, sesoi=HEADLINE_SESOI,
        sesoi_source="the headline's SESOI (5 points), under the worst case of all attacks"))
    return out


# K-FAC, the study's §4 next step (ours): other label -> (text, direction, margin)
KFAC_TEXT = {"adam": ("K-FAC is attacked successfully less often than Adam", "less", 0.0),
             "gn": ("K-FAC is attacked successfully as often as Gauss-Newton", "equivalent",
                    KFAC_GN_MARGIN)}
# the two measures of a rate claim: kind -> (metric phrase, measure)
RATE_KINDS = {"fgsm": (fgsm_metric, "fgsm_rate"), "worst": (worst_metric, "worst_rate")}
WORST_TEXT = ", under the worst case of all attacks"


def kfac_claims(plan: StudyPlan) -> list[dict]:
    """K-FAC against Adam and Gauss-Newton on clean MNIST, FGSM and worst case (ours, on the
    headline's seeds where configured)."""
    h_eps, out = HEADLINE_EPS, []
    for other, (text, direction, margin) in KFAC_TEXT.items():
        for kind, (metric, measure) in RATE_KINDS.items():
            out.append(claim(
                cid=f"000-kfac-{other}-{kind}-clean-{h_eps:g}",
                text=text + ("" if kind == "fgsm" else WORST_TEXT),
                where="§4 (future work), ours", metric=metric(plan, h_eps),
                comparison=f"K-FAC − {LABELS[other]}, clean MNIST, {SAME}",
                direction=direction, measure=measure,
                args=dict(eps=h_eps, arms=pair("kfac", other)), margin=margin, ours=True,
                worst_case=kind == "worst", **ours_rate_sesoi(direction)))
    return out


def other_dataset_claims(plan: StudyPlan) -> list[dict]:
    """Beyond MNIST (ours, the study's §4): the headline and K-FAC's comparisons on every other
    configured data set, and always on Fashion-MNIST ("not run" where untrained)."""
    others = [d for d in dict.fromkeys([*plan.datasets(), *CLAIM_DATASETS])
              if d != STUDY_DATASET]
    out = []
    for ds in others:
        eps, data = other_eps(plan, ds), data_name(ds)
        arms = [("gn", "adam", "Gauss-Newton is attacked successfully less often than Adam",
                 "less", 0.0)]
        arms += [("kfac", other, text, direction, margin)
                 for other, (text, direction, margin) in KFAC_TEXT.items()]
        for a, b, text, direction, margin in arms:
            for kind, (metric, measure) in RATE_KINDS.items():
                out.append(claim(
                    cid=f"000-{ds}-{a}-{b}-{kind}-clean-{eps:g}",
                    text=f"{text} on {data}" + ("" if kind == "fgsm" else WORST_TEXT),
                    where="§4 (future work), ours", metric=metric(plan, eps, ds),
                    comparison=f"{LABELS[a]} − {LABELS[b]}, clean {data}, MNIST's "
                    f"hyper-parameters, {SAME}", direction=direction, measure=measure,
                    args=dict(eps=eps, arms=pair(a, b, ds=ds)), margin=margin, ours=True,
                    worst_case=kind == "worst", **ours_rate_sesoi(direction, data)))
    return out
