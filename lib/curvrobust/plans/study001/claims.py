"""Study 001's claims as data (curvrobust.claims; evidence:
curvrobust.reports.study001.claim_evidence): the thresholds fixed before any run and one
function per group of claims, per data set."""

from __future__ import annotations

import functools
import math

from ..base import StudyPlan, make_claim
from .haat import PGD_DEFAULTS, adversary_shared, haat_adversary
from .text import (STUDY_BASELINE_XI, STUDY_BEST_K, STUDY_BEST_XI, STUDY_HEADLINE, STUDY_K1,
                   pretty_eps)


# the equivalence margin of the "changes little" claims (accuracy as a fraction: 3 points)
SWEEP_MARGIN = 0.03
SWEEP_SOURCE = {
    "xi": ('"step size = 5e-6 ... will provide the best performance" (§4.2; Fig. 2a\'s numbers '
           'are not in the text): the equivalence margin, 3 points'),
    "k": ('"the number of steps here does not matter: 1 step can reach the same performance '
          'with 10 steps" (§5.1, citing [4]): the equivalence margin, 3 points'),
}
# Smallest effects of interest (accuracy as a fraction). The study finds HAAT's gain over
# PGD-AT "very limited" (§4.2), "a small improvement" (§6), "very similar results" (§4.2, no
# numbers): an improvement as small as 1 point is the size it claims.
HEADLINE_SESOI = 0.01
HEADLINE_SOURCE = ('"it only provides very limited improvement against AutoAttack" (§4.2), '
                   '"a small improvement comparing with the original PGD" (§6): 1 point')
TWIN_SOURCE = ("the headline's SESOI (1 point, \"a small improvement\", §6): the part of "
               "HAAT's gain that {what}")
# The FD power iteration's last step ‖u⁽ᵏ⁾ − u⁽ᵏ⁻¹⁾‖₂ between unit iterates (0 … 2): "it does
# not converge most of the time" (§5.1), against √2 ≈ 1.41 for perpendicular iterates (Fig.
# 5a): 0.1, about 6° between successive unit iterates and 7 % of √2
CONVERGENCE_SESOI = 0.1


claim = functools.partial(make_claim, study="study001")
SAME = "same seeds (initial weights and batch order)"


class Phrases:
    """The strings one data set's claims share: its radius, the PGD evaluation, the
    AutoAttack-style cascade and how HAAT compares with PGD-AT."""

    def __init__(self, plan: StudyPlan, ds: str):
        block = plan.block["datasets"][ds]
        aa = plan.block["autoattack"]
        self.ds, self.n_aa = ds, aa["n_examples"]
        self.eps = pretty_eps(float(block["eps"]))
        self.cascade = f"AutoAttack-style cascade ({' → '.join(aa['attacks'])})"
        pgd = {**PGD_DEFAULTS, **plan.attack(block["pgd"])}
        self.pgd = (f"PGD-{pgd['steps']} (step {pgd['step_size']:g}"
                    f"{', random start' if pgd['random_start'] else ''})")
        fair = (adversary_shared(plan.recipe(block["models"]["pgd_at"])["regime"]["adversary"])
                == adversary_shared(haat_adversary(plan.cfg, block["models"]["haat"]) or
                                    {"kind": "haat", "eps": math.nan}))
        self.versus = ("HAAT − PGD-AT (the same adversary steps, step size and start)" if fair
                       else "HAAT − PGD-AT (their adversaries differ in steps, step size or "
                       "start: confounded)")

    def metric(self, attack: str) -> str:
        """Robust accuracy of the final model under `attack` (its description)."""
        return (f"{attack} robust accuracy of the final model (correct and not broken), "
                f"{self.n_aa} test images of the shared seeded subset, ε = {self.eps}")

    def pair(self, cid: str, *, a: str | None, b: str | None, attacks: str, what: str,
             comparison: str, missing: str = "", direction: str = "greater",
             **kw) -> dict:
        """A robust-accuracy claim `a` − `b` under `attacks` ('autoattack', 'pgd'), `what`
        describing the attack in its metric."""
        return claim(cid=f"001-{self.ds}-{cid}", metric=self.metric(what),
                     comparison=f"{comparison}, {self.ds}, {SAME}", direction=direction,
                     measure="robust_accuracy",
                     args=dict(dataset=self.ds, a=a, b=b, attacks=attacks, missing=missing),
                     **kw)


# ---- the claims, by group ----
def claims(plan: StudyPlan) -> list[dict]:
    """Every claim of the study, per data set, in display order (the first data set's headline
    first)."""
    if not plan.enabled:
        return []
    out: list[dict] = []
    for i, ds in enumerate(plan.block["datasets"]):
        ph = Phrases(plan, ds)
        out += headline_claims(ph, headline=i == 0) + twin_claims(plan, ph)
        out += sweep_claims(plan, ph) + [convergence_claim(plan, ds)]
    return out


def headline_claims(ph: Phrases, headline: bool) -> list[dict]:
    """HAAT against PGD-AT under AutoAttack (the headline on the first data set), PGD and the
    worst case of every attack."""
    return [ph.pair(
        "haat-pgdat-autoattack", a="haat", b="pgd_at", attacks="autoattack",
        what=ph.cascade, comparison=ph.versus,
        text="HAAT provides a small improvement over PGD adversarial training (AutoAttack)",
        where="§4.2, Fig. 3; §6", headline=headline,
        study_value=STUDY_HEADLINE, sesoi=HEADLINE_SESOI, sesoi_source=HEADLINE_SOURCE,
    ), ph.pair(
        "haat-pgdat-pgd20", a="haat", b="pgd_at", attacks="pgd", what=ph.pgd,
        comparison=ph.versus,
        text="HAAT improves on PGD-AT under the PGD evaluation too", where="§4.2, Fig. 3",
        sesoi=HEADLINE_SESOI,
        sesoi_source="the headline's SESOI (1 point, \"a small improvement\", §6) "
                     "under PGD",
        study_value="the two models \"present very similar results\" (§4.2; no "
                    "numbers in the text)",
    ), claim(
        cid=f"001-{ph.ds}-haat-pgdat-worstcase",
        text="the headline under the worst case of every attack run on the models",
        where="§4.2, Fig. 3",
        metric=f"worst-case robust accuracy of the final model over every attack run on it at "
               f"ε = {ph.eps} ({ph.pgd}, the AutoAttack cascade and the robust evaluation's "
               f"attacks, docs/robustness.md) on the images all of them cover",
        comparison=f"{ph.versus}, {ph.ds}, {SAME}", direction="greater",
        measure="robust_accuracy",
        args=dict(dataset=ph.ds, a="haat", b="pgd_at", attacks="all", missing=""),
        worst_case=True, sesoi=HEADLINE_SESOI,
        sesoi_source="the headline's SESOI (1 point, \"a small improvement\", §6) "
                     "under the worst case")]


def twin_claims(plan: StudyPlan, ph: Phrases) -> list[dict]:
    """HAAT against its twins (ours): w₂ = 0, and a random direction for the Hessian's, with
    r2_scale linf and with §3's L2-ball scaling."""
    ds = ph.ds
    return [ph.pair(
        "haat-w2zero-autoattack", a="haat", b="haat_w2zero", attacks="autoattack",
        what=ph.cascade, comparison="HAAT − its w₂ = 0 twin (the same attack without r²)",
        text="the second-order term helps at all: HAAT beats its w₂ = 0 twin", where="ours",
        ours=True, missing=twin_missing(plan, ds, "haat_w2zero"),
        sesoi=HEADLINE_SESOI,
        sesoi_source=TWIN_SOURCE.format(what="the second-order term carries"),
    ), ph.pair(
        "haat-random-linf-autoattack", a="haat", b="haat_random", attacks="autoattack",
        what=ph.cascade,
        comparison="HAAT − its random-direction twin (u ~ N(0, I) per step and image, "
                   "sign-aligned with ∇ₓL, no power iteration; same w₁, w₂, step, r2_scale "
                   "linf)",
        text="the Hessian's direction helps: HAAT beats its random-direction twin "
             "(r2_scale linf)", where="ours",
        ours=True, missing=twin_missing(plan, ds, "haat_random"),
        sesoi=HEADLINE_SESOI,
        sesoi_source=TWIN_SOURCE.format(what="the Hessian's direction carries"),
    ), ph.pair(
        "haat-random-l2ball-autoattack", a="haat_l2ball", b="haat_l2ball_random",
        attacks="autoattack", what=ph.cascade,
        comparison="HAAT (r2_scale l2_ball) − its random-direction twin",
        text="the Hessian's direction helps with §3's L2-ball scaling: HAAT (r2_scale "
             "l2_ball) beats its random-direction twin", where="ours",
        ours=True, missing=twin_missing(plan, ds, "haat_l2ball", "haat_l2ball_random"),
        sesoi=HEADLINE_SESOI,
        sesoi_source=TWIN_SOURCE.format(what="the Hessian's direction carries "
                                             "(§3's L2-ball scaling)"))]


def sweep_claims(plan: StudyPlan, ph: Phrases) -> list[dict]:
    """The ξ and k sweeps change robust accuracy little (equivalence, Fig. 2)."""
    ds = ph.ds
    xi_a = sweep_label(plan, ds, "xi", STUDY_BASELINE_XI)
    xi_b = sweep_label(plan, ds, "xi", STUDY_BEST_XI)
    k_a = sweep_label(plan, ds, "k", STUDY_K1)
    k_b = sweep_label(plan, ds, "k", STUDY_BEST_K)
    return [ph.pair(
        "xi-autoattack", a=xi_a, b=xi_b, attacks="autoattack", what=ph.cascade,
        comparison=f"HAAT at ξ = {STUDY_BASELINE_XI:g} − at ξ = {STUDY_BEST_XI:g}",
        text="the finite-difference step ξ changes robust accuracy little",
        where="§4.2, Fig. 2a", direction="equivalent", margin=SWEEP_MARGIN,
        sesoi_source=SWEEP_SOURCE["xi"],
        study_value="ξ over 10⁻⁶ … 10⁻⁴, best 5·10⁻⁶ (§4.2; Fig. 2a's numbers are "
                    "not in the text)",
        missing=sweep_missing(ds, "xi", (STUDY_BASELINE_XI, STUDY_BEST_XI), (xi_a, xi_b)),
    ), ph.pair(
        "k-autoattack", a=k_a, b=k_b, attacks="autoattack", what=ph.cascade,
        comparison=f"HAAT at k = {STUDY_K1} − at k = {STUDY_BEST_K}",
        text="the number of power-iteration steps k changes robust accuracy little",
        where="§4.2, Fig. 2b; §5.1", direction="equivalent", margin=SWEEP_MARGIN,
        sesoi_source=SWEEP_SOURCE["k"],
        study_value="\"1 step can reach the same performance with 10 steps\" (§5.1, "
                    "citing [4]); best k = 5 (§4.2)",
        missing=sweep_missing(ds, "k", (STUDY_K1, STUDY_BEST_K), (k_a, k_b)))]


def convergence_claim(plan: StudyPlan, ds: str) -> dict:
    """The finite-difference power iteration does not converge while exact products do
    (ours, Fig. 5)."""
    k = plan.claim_k()
    return claim(
        cid=f"001-{ds}-fd-convergence",
        text="the finite-difference power iteration does not converge while exact products "
             "do", where="ours; §5.1, Fig. 5",
        metric=f"‖u⁽ᵏ⁾ − u⁽ᵏ⁻¹⁾‖₂ of the power iteration's last step (k = {k}) in the last "
               f"HAAT attack step, mean over a batch's images (trace.csv diff_mean), "
               f"{plan.block['convergence']['batches']} seeded training batches; u is the "
               f"unit iterate (a product that vanishes in rounding keeps u: 0)",
        comparison=f"fd − exact products, the k = {k} model, {ds}, same batches and draws",
        direction="greater", measure="fd_convergence", args=dict(dataset=ds, k=k), unit="",
        ours=True, study_value="\"it does not converge most of the time\" (§5.1)",
        sesoi=CONVERGENCE_SESOI,
        sesoi_source="\"it does not converge most of the time\" (§5.1), against √2 for "
                     "perpendicular unit iterates (Fig. 5a): 0.1, about 6° between "
                     "successive iterates")


# ---- which models a claim compares, and why one is not run ----
def sweep_label(plan: StudyPlan, ds: str, key: str, value: float) -> str | None:
    """The label of the ds's `key` sweep model with that value (None: not in the sweep)."""
    labels = {r: lab for lab, r in plan.recipes_on(ds).items()}
    for recipe in plan.block["datasets"][ds].get(f"{key}_sweep", []):
        if math.isclose(float(plan.sweep_value(recipe, key)), float(value)):
            return labels[recipe]
    return None


def twin_missing(plan: StudyPlan, ds: str, *labels: str) -> str:
    """Why a twin claim is not run ('' when its labels are configured)."""
    twins = plan.block["datasets"][ds].get("twins", {})
    absent = [lab for lab in labels if lab not in twins]
    if not absent:
        return ""
    return (f"no {' / '.join(absent)} twin in studies.study001.datasets.{ds}.twins"
            + (" (configs/extended.yaml trains the l2_ball pair)"
               if "haat_l2ball" in absent or "haat_l2ball_random" in absent else ""))


def sweep_missing(ds: str, key: str, values: tuple, labels: tuple) -> str:
    """Why a sweep claim is not run ('' when the sweep has both values)."""
    absent = [f"{key} = {v:g}" for v, lab in zip(values, labels) if lab is None]
    return (f"studies.study001.datasets.{ds}.{key}_sweep has no HAAT model at "
            f"{' and '.join(absent)}" if absent else "")
