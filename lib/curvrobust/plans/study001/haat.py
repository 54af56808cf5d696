"""Study 001's HAAT adversaries: their settings with HAAT's defaults, what PGD-AT and HAAT must
share, and what each twin of the claims must be."""

from __future__ import annotations

from typing import Any

# The twins the claims compare HAAT with: label -> (what it must be, its HAAT arm's label).
# haat_w2zero: w₂ = 0 (a second term at all); haat_random: the random-direction twin
# (direction: random, the Hessian's information); the l2_ball pair: HAAT with r2_scale l2_ball
# and its random twin (configs/extended.yaml).
TWINS = {
    "haat_w2zero": dict(w2=0.0, arm="haat"),
    "haat_random": dict(direction="random", r2_scale="linf", arm="haat"),
    "haat_l2ball": dict(direction="hessian", r2_scale="l2_ball", arm=None),
    "haat_l2ball_random": dict(direction="random", r2_scale="l2_ball", arm="haat_l2ball"),
}
# HAAT's defaults for keys an adversary block may leave out (curvrobust.attacks.second_order.haat)
HAAT_DEFAULTS = dict(steps=10, step_size=0.1, k=5, xi=1e-6, hvp="fd", w1=1.0, w2=2.0,
                     r2_scale="linf", update="outer", direction="hessian", fd_start="raw",
                     random_start=False)
# PGD's defaults for keys an attack or adversary block may leave out
# (curvrobust.attacks.gradient.pgd)
PGD_DEFAULTS = dict(steps=10, step_size=0.1, random_start=True)
# what the PGD-AT and HAAT adversaries must share for a fair comparison
SHARED_ADVERSARY = ("eps", "steps", "step_size", "random_start")


def haat_adversary(cfg: dict, recipe: str) -> dict | None:
    """The HAAT adversary block of `recipe`'s regime, or None if it has none."""
    adv = (cfg["recipes"].get(recipe, {}).get("regime") or {}).get("adversary") or {}
    return adv if adv.get("kind") == "haat" else None


def haat_setting(adv: dict, key: str) -> Any:
    """A HAAT adversary's `key`, its default where the block leaves it out."""
    return adv.get(key, HAAT_DEFAULTS[key])


def adversary_shared(adv: dict) -> tuple:
    """(eps, steps, step_size, random_start) of a PGD or HAAT adversary block, each attack's
    default where the block leaves it out: what PGD-AT and HAAT must share (SHARED_ADVERSARY)."""
    defaults = HAAT_DEFAULTS if adv.get("kind") == "haat" else PGD_DEFAULTS
    return tuple(float(adv["eps"]) if key == "eps" else
                 bool(adv.get(key, defaults[key])) if key == "random_start" else
                 float(adv.get(key, defaults[key])) for key in SHARED_ADVERSARY)


