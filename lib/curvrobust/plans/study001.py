"""Study 001 — Mei, Yang, Wu, *HAAT: Improve Adversarial Robustness via Hessian Approximation*.

PGD adversarial training against HAAT (PGD plus a second-order direction from power iteration
with finite-difference Hessian-vector products): robust accuracy over epoch-end checkpoints
(Figs. 1, 3), the ξ and k sweeps (Fig. 2), HAAT's twins (w₂ = 0, and a random direction in place
of the Hessian's: ours), and the power iteration's convergence and accuracy (Figs. 4/5, each k
on its own trained model where there is one; tables of HVP error and eigenvector alignment); and
the study's claims as data (`claims`), judged by curvrobust.reports.study001.claim_evidence and
curvrobust.claims.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from . import paths
from .base import StudyPlan, make_claim, recipe_checkpoint_epochs
from .robustness import model_key

# name -> (type, kind): kind says what the output reads
OUTPUTS = {
    "table_robust_accuracy": ("table", "table"),
    "table_hvp_error": ("table", "table"),
    "table_eigvec_alignment": ("table", "table"),
    "fig1_haat_robust_accuracy": ("figure", "fig1"),
    "fig3_haat_vs_pgd": ("figure", "fig3"),
    "fig4_fd_convergence": ("figure", "fig4"),
    "fig2a_xi_sweep": ("figure", "xi_sweep"),
    "fig2b_k_sweep": ("figure", "k_sweep"),
}
TABLE_NAMES = [n for n, (t, _) in OUTPUTS.items() if t == "table"]
FIGURE_NAMES = [n for n, (t, _) in OUTPUTS.items() if t == "figure"]
# outputs that read the power-iteration traces, and the file each reads per seed
CONVERGENCE_FILES = {
    "fig4_fd_convergence": "trace.csv",
    "table_hvp_error": "hvp_error.csv",
    "table_eigvec_alignment": "alignment.csv",
}
# which model labels each kind of output shows (None: all; fig1: see Study001.fig1_label)
KIND_LABELS = {"table": None, "fig3": ["haat", "pgd_at"], "xi_sweep": None, "k_sweep": None}

# The study's Fig. 1 baseline ξ (§4.1); the ξ and k its Fig. 2 found best (§4.2).
STUDY_BASELINE_XI = 1e-6
STUDY_BEST_XI = 5e-6
STUDY_BEST_K = 5
STUDY_K1 = 1
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
# what the PGD-AT and HAAT adversaries must share for a fair comparison
SHARED_ADVERSARY = ("eps", "steps", "step_size", "random_start")
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


def _haat_adversary(cfg: dict, recipe: str) -> dict | None:
    adv = (cfg["recipes"].get(recipe, {}).get("regime") or {}).get("adversary") or {}
    return adv if adv.get("kind") == "haat" else None


def haat_setting(adv: dict, key: str) -> Any:
    """A HAAT adversary's `key`, its default where the block leaves it out."""
    return adv.get(key, HAAT_DEFAULTS[key])


def adversary_shared(adv: dict) -> tuple:
    """(eps, steps, step_size, random_start) of a PGD or HAAT adversary block, each attack's
    default where the block leaves it out: what PGD-AT and HAAT must share (SHARED_ADVERSARY)."""
    defaults = dict(HAAT_DEFAULTS) if adv.get("kind") == "haat" else \
        dict(steps=10, step_size=0.1, random_start=True)
    return tuple(float(adv["eps"]) if key == "eps" else
                 bool(adv.get(key, defaults[key])) if key == "random_start" else
                 float(adv.get(key, defaults[key])) for key in SHARED_ADVERSARY)


def _pretty_eps(eps: float) -> str:
    """ε as k/255 when it is one (CIFAR-10's 8/255), else as a number."""
    k = round(eps * 255) if math.isfinite(eps * 255) else 0
    return f"{k}/255" if k and math.isclose(eps, k / 255, rel_tol=1e-9) else f"{eps:g}"


claim = functools.partial(make_claim, "study001")


class Study001(StudyPlan):
    name = "study001"

    def check(self) -> list[str]:
        s, cfg, out = self.block, self.cfg, []
        where = "studies.study001.datasets"
        for ds, block in s["datasets"].items():
            out += self.check_dataset_block(where, ds, block)
            named = [(f"models.{k}", r) for k, r in block["models"].items()]
            named += [(f"{sw}[{i}]", r) for sw in ("xi_sweep", "k_sweep")
                      for i, r in enumerate(block.get(sw, []))]
            named += [(f"twins.{k}", r) for k, r in block.get("twins", {}).items()]
            for key, recipe in named:
                if recipe not in cfg["recipes"]:
                    out.append(f"{where}.{ds}.{key}: recipe {recipe!r} is not in `recipes`")
                elif key != "models.pgd_at" and _haat_adversary(cfg, recipe) is None:
                    out.append(
                        f"{where}.{ds}.{key}: recipe {recipe!r} has no haat adversary in its regime"
                    )
                elif "_sweep" in key:
                    swept = key.split("_")[0]
                    if swept not in _haat_adversary(cfg, recipe):
                        out.append(
                            f"{where}.{ds}.{key}: recipe {recipe!r} must set its adversary's "
                            f"{swept!r} (the swept value)"
                        )
                elif key.startswith("twins."):
                    out += self._check_twin(f"{where}.{ds}.{key}", key[len("twins."):], recipe)
            for label in block.get("twins", {}):
                if label in block["models"]:
                    out.append(f"{where}.{ds}.twins.{label}: the label {label!r} is also one of "
                               "`models`")
            if block["pgd"] not in cfg["attacks"]:
                out.append(f"{where}.{ds}.pgd: attack {block['pgd']!r} is not in `attacks`")
            if not out:  # sweep models are labelled by their value: two must not share one
                seen: dict[str, str] = {}
                for sw, key in (("xi_sweep", "xi"), ("k_sweep", "k")):
                    for i, recipe in enumerate(block.get(sw, [])):
                        if recipe in block["models"].values():
                            continue
                        label = f"haat_{key}={self.sweep_value(recipe, key):g}"
                        if seen.setdefault(label, recipe) != recipe:
                            out.append(f"{where}.{ds}.{sw}[{i}]: recipe {recipe!r} has the same "
                                       f"{key} as {seen[label]!r} ({label})")
        # a recipe the study does not train is allowed (a merged preset cannot delete
        # config.yaml's keys: configs/evidence.yaml)
        for recipe in s.get("seeds_per_recipe", {}):
            if recipe not in cfg["recipes"]:
                out.append(f"studies.study001.seeds_per_recipe.{recipe}: recipe {recipe!r} is "
                           "not in `recipes`")
        model = s["convergence"]["model"]
        if model not in ("pgd_at", "haat"):
            out.append(
                f"studies.study001.convergence.model: {model!r} is not a label of `models` "
                "(pgd_at, haat)"
            )
        else:
            for ds, block in s["datasets"].items():
                if model not in block["models"]:
                    out.append(
                        f"studies.study001.convergence.model: {model!r} is not in "
                        f"{where}.{ds}.models"
                    )
        return out

    def _check_twin(self, where: str, label: str, recipe: str) -> list[str]:
        """A twin the claims read must be what its label says (TWINS)."""
        want = TWINS.get(label)
        if want is None:
            return []
        adv = _haat_adversary(self.cfg, recipe)
        out = []
        for key, value in want.items():
            if key != "arm" and haat_setting(adv, key) != value:
                out.append(f"recipes.{recipe}.regime.adversary.{key}: recipe {recipe!r} is the "
                           f"claims' {label!r} twin ({where}), so its adversary's {key} must be "
                           f"{value!r} (got {haat_setting(adv, key)!r})")
        return out

    def _named_recipes(self, ds: str) -> list[str]:
        block = self.block["datasets"][ds]
        return (list(block["models"].values()) + list(block.get("xi_sweep", []))
                + list(block.get("k_sweep", [])) + list(block.get("twins", {}).values()))

    def dataset_outputs(self, ds: str) -> dict[str, str]:
        """name -> kind of every table and figure of the study on dataset `ds`."""
        block = self.block["datasets"][ds]
        return {
            n: kind for n, (_, kind) in OUTPUTS.items()
            if kind not in ("xi_sweep", "k_sweep") or block.get(kind)
        }

    def outputs(self) -> dict[str, dict[str, Any]]:
        out = {}
        for ds in self.block.get("datasets", {}):
            for n, kind in self.dataset_outputs(ds).items():
                out[f"{ds}/{n}"] = dict(type=OUTPUTS[n][0], kind=kind, dataset=ds, name=n)
        return out

    def sweep_value(self, recipe: str, key: str):
        """The adversary's xi or k of a HAAT sweep recipe (check() makes sure it is set)."""
        return self.recipe(recipe)["regime"]["adversary"][key]

    def recipes_on(self, ds: str) -> dict[str, str]:
        """Every recipe the study trains on `ds`: label -> recipe, models first, then sweeps,
        then twins (a recipe named twice keeps its first label)."""
        block = self.block["datasets"][ds]
        out = dict(block["models"])
        for sweep, key in (("xi_sweep", "xi"), ("k_sweep", "k")):
            for recipe in block.get(sweep, []):
                if recipe not in out.values():
                    out[f"haat_{key}={self.sweep_value(recipe, key):g}"] = recipe
        for label, recipe in block.get("twins", {}).items():
            if recipe not in out.values():
                out[label] = recipe
        return out

    def models(self, datasets=None, labels=None) -> list[dict]:
        out = []
        for ds, block in self.block.get("datasets", {}).items():
            if datasets is not None and ds not in datasets:
                continue
            for label, recipe in self.recipes_on(ds).items():
                if labels is not None and label not in labels:
                    continue
                for seed in self.seeds_for(recipe):
                    out.append(dict(study="study001", label=label, dataset=ds,
                                    variant=block["variant"], recipe=recipe, seed=seed,
                                    ckpt="final"))
        return out

    def robust_models(self) -> list[dict]:
        return [dict(r, eps=self.block["datasets"][r["dataset"]]["eps"]) for r in self.models()]

    def final_images_file(self, r: dict) -> str | None:
        """The per-image PGD and AutoAttack outcomes of a model record's final-epoch checkpoint
        (the final model's weights), or None if its last checkpoint is not the final epoch."""
        recipe = self.recipe(r["recipe"])
        epochs = recipe_checkpoint_epochs(recipe)
        if not epochs or epochs[-1] != recipe["epochs"]:
            return None
        f = self.eval_file(r["dataset"], r["recipe"], r["seed"], epochs[-1])
        return f[: -len(".csv")] + "_images.csv"

    def extra_outcome_files(self) -> list[tuple[dict, str]]:
        """The per-image PGD and AutoAttack outcomes of each model's final-epoch checkpoint
        (the final model's weights)."""
        return [(r, f) for r in self.models() if (f := self.final_images_file(r))]

    def cascade_counts(self) -> dict[str, int] | None:
        aa = self.block["autoattack"]
        if set(aa["attacks"]) != {"apgd-ce", "apgd-t", "fab-t", "square"}:
            return None
        return {"apgd_steps": aa["apgd_steps"], "fab_steps": aa["fab_steps"],
                "square_queries": aa["square_queries"],
                "target_classes": aa["n_target_classes"]}

    def variant(self, ds: str) -> str:
        return self.block["datasets"][ds]["variant"]

    # ---- per-checkpoint evaluation and power-iteration traces (rule paths) ----
    def eval_file(self, ds: str, recipe: str, seed, epoch) -> str:
        return f"{self.dir}/{ds}/eval/{recipe}/seed{seed}/epoch{epoch}.csv"

    def convergence_dir(self, ds: str, seed) -> str:
        return f"{self.dir}/{ds}/convergence/seed{seed}"

    def convergence_recipe(self, ds: str) -> str:
        return self.block["datasets"][ds]["models"][self.block["convergence"]["model"]]

    def _model_file(self, ds: str, recipe: str, seed) -> str:
        rec = dict(dataset=ds, variant=self.variant(ds), recipe=recipe, seed=seed)
        return f"{paths.model_dir(rec)}/model.pt"

    def convergence_model(self, ds: str, seed) -> str:
        return self._model_file(ds, self.convergence_recipe(ds), seed)

    def convergence_adversary(self, ds: str) -> dict:
        return self.recipe(self.convergence_recipe(ds))["regime"]["adversary"]

    def k_model(self, ds: str, k: int, seed) -> tuple[str, str] | None:
        """(label, recipe) of the model trained with HAAT at this k (the HAAT model first, then
        the k sweep) and this seed, or None when no model of the study has that k (Fig. 5's
        traces come from each k's own model, as the study's)."""
        block = self.block["datasets"][ds]
        labels = {r: lab for lab, r in self.recipes_on(ds).items()}
        for recipe in [block["models"]["haat"]] + list(block.get("k_sweep", [])):
            adv = _haat_adversary(self.cfg, recipe)
            if (adv is not None and haat_setting(adv, "direction") == "hessian"
                    and int(haat_setting(adv, "k")) == int(k)
                    and int(seed) in [int(s) for s in self.seeds_for(recipe)]):
                return labels[recipe], recipe
        return None

    def convergence_per_k(self, ds: str, seed) -> list[dict[str, Any]]:
        """Per k of the convergence block: the model its power iteration is traced on — its
        own (`own` True) or, when no model has that k, the convergence model attacked with
        that k — as {k, label, recipe, model, adversary, own}."""
        fallback = self.block["convergence"]["model"]
        out = []
        for k in self.block["convergence"]["ks"]:
            found = self.k_model(ds, k, seed)
            label, recipe = found or (fallback, self.convergence_recipe(ds))
            out.append(dict(k=int(k), label=label, recipe=recipe,
                            model=self._model_file(ds, recipe, seed),
                            adversary=dict(self.recipe(recipe)["regime"]["adversary"]),
                            own=found is not None))
        return out

    def convergence_models(self, ds: str, seed) -> list[str]:
        """Every model file the trace of `ds` at `seed` reads (the convergence model first)."""
        files = [self.convergence_model(ds, seed)]
        files += [m["model"] for m in self.convergence_per_k(ds, seed)]
        return list(dict.fromkeys(files))

    def checkpoint_dir(self, ds: str, recipe: str, seed) -> str:
        return paths.model_dir(dict(dataset=ds, variant=self.variant(ds), recipe=recipe, seed=seed))

    # ---- tables and figures ----
    def fig1_label(self, ds: str) -> str:
        """Fig. 1's model: the HAAT model at the study's baseline ξ = 10⁻⁶ when the ξ sweep has
        one, else the HAAT model."""
        block = self.block["datasets"][ds]
        for recipe in block.get("xi_sweep", []):
            if math.isclose(float(self.sweep_value(recipe, "xi")), STUDY_BASELINE_XI):
                return {r: lab for lab, r in self.recipes_on(ds).items()}[recipe]
        return "haat"

    def params(self, ds: str, name: str) -> list[dict]:
        """Per model: the evaluation files (one per epoch-end checkpoint) output `name` reads."""
        kind = self.dataset_outputs(ds)[name]
        if name in CONVERGENCE_FILES:
            return []
        block = self.block["datasets"][ds]
        labels = [self.fig1_label(ds)] if kind == "fig1" else KIND_LABELS[kind]
        recs = []
        for r in self.models([ds], labels):
            if kind in ("xi_sweep", "k_sweep"):
                if r["recipe"] not in block[kind]:
                    continue
                r["value"] = self.sweep_value(r["recipe"], kind.split("_")[0])
            if kind == "fig1":
                r["value"] = float(haat_setting(self.recipe(r["recipe"])["regime"]["adversary"],
                                                "xi"))
            epochs = recipe_checkpoint_epochs(self.recipe(r["recipe"]))
            if r["seed"] not in self.block["seeds"]:
                epochs = epochs[-1:]   # a headline arm's extra seed: its final model only
            r["evals"] = [self.eval_file(ds, r["recipe"], r["seed"], e) for e in epochs]
            recs.append(r)
        return recs

    def inputs(self, ds: str, name: str) -> list[str]:
        if name in CONVERGENCE_FILES:
            f = CONVERGENCE_FILES[name]
            return [f"{self.convergence_dir(ds, s)}/{f}" for s in self.block["seeds"]]
        return [f for r in self.params(ds, name) for f in r["evals"]]

    def used_recipes(self, ds: str, name: str) -> dict[str, dict]:
        return {r["recipe"]: self.recipe(r["recipe"]) for r in self.params(ds, name)}

    def presentation(self, name: str) -> dict[str, Any]:
        """What table or figure `name` shows (display names, caption or title template), from
        the presentation section at the end of this module; the reports module fills in the
        data-dependent {placeholders}."""
        if name in CAPTIONS:
            out: dict[str, Any] = {"caption": CAPTIONS[name]}
            if name in COLUMNS:
                out["columns"] = COLUMNS[name]
            else:
                out["metrics"] = METRICS
            return out
        out = {"title": TITLES[name]}
        kind = OUTPUTS[name][1]
        if kind != "fig4":
            out.update(models=MODELS, metrics=METRICS, accuracy=ACCURACY)
        if kind in SWEEPS:
            out["sweep"] = SWEEPS[kind]
        return out

    # ---- claims (curvrobust.reports.study001.claim_evidence judges them) ----
    def _sweep_label(self, ds: str, key: str, value: float) -> str | None:
        """The label of the ds's `key` sweep model with that value (None: not in the sweep)."""
        labels = {r: lab for lab, r in self.recipes_on(ds).items()}
        for recipe in self.block["datasets"][ds].get(f"{key}_sweep", []):
            if math.isclose(float(self.sweep_value(recipe, key)), float(value)):
                return labels[recipe]
        return None

    def claim_k(self) -> int:
        """The k whose last power step the convergence claim reads: the HAAT model's when the
        convergence block traces it, else the largest traced."""
        ks = [int(k) for k in self.block["convergence"]["ks"]]
        ds = next(iter(self.block["datasets"]))
        k = int(haat_setting(_haat_adversary(self.cfg, self.block["datasets"][ds]["models"]
                                             ["haat"]) or {}, "k"))
        return k if k in ks else max(ks)

    def claims(self) -> list[dict]:
        if not self.enabled:
            return []
        out: list[dict] = []
        aa = self.block["autoattack"]
        n_aa = aa["n_examples"]
        cascade = " → ".join(aa["attacks"])
        same = "same seeds (initial weights and batch order)"
        for i, (ds, block) in enumerate(self.block["datasets"].items()):
            eps = _pretty_eps(float(block["eps"]))
            pgd = self.attack(block["pgd"])
            pgd_text = (f"PGD-{pgd.get('steps', 10)} (step {pgd.get('step_size', 0.1):g}"
                        f"{', random start' if pgd.get('random_start', True) else ''})")
            fair = (adversary_shared(self.recipe(block["models"]["pgd_at"])["regime"]["adversary"])
                    == adversary_shared(_haat_adversary(self.cfg, block["models"]["haat"]) or
                                        {"kind": "haat", "eps": math.nan}))
            versus = ("HAAT − PGD-AT (the same adversary steps, step size and start)" if fair else
                      "HAAT − PGD-AT (their adversaries differ in steps, step size or start: "
                      "confounded)")

            def metric(attack: str) -> str:
                return (f"{attack} robust accuracy of the final model (correct and not broken), "
                        f"{n_aa} test images of the shared seeded subset, ε = {eps}")

            def pair(cid, text, where, what, a, b, comparison, direction="greater", **kw):
                out.append(claim(f"001-{ds}-{cid}", text, where, metric(what),
                                 f"{comparison}, {ds}, {same}", direction,
                                 kw.pop("measure", "robust_accuracy"),
                                 dict(dataset=ds, a=a, b=b, attacks=kw.pop("attacks"),
                                      missing=kw.pop("missing", "")), **kw))

            pair("haat-pgdat-autoattack",
                 "HAAT provides a small improvement over PGD adversarial training (AutoAttack)",
                 "§4.2, Fig. 3; §6", f"AutoAttack-style cascade ({cascade})", "haat", "pgd_at",
                 versus, attacks="autoattack", headline=i == 0,
                 study_value=STUDY_HEADLINE, sesoi=HEADLINE_SESOI, sesoi_source=HEADLINE_SOURCE)
            pair("haat-pgdat-pgd20", "HAAT improves on PGD-AT under the PGD evaluation too",
                 "§4.2, Fig. 3", pgd_text, "haat", "pgd_at", versus, attacks="pgd",
                 sesoi=HEADLINE_SESOI,
                 sesoi_source="the headline's SESOI (1 point, \"a small improvement\", §6) "
                              "under PGD",
                 study_value="the two models \"present very similar results\" (§4.2; no "
                             "numbers in the text)")
            out.append(claim(
                f"001-{ds}-haat-pgdat-worstcase",
                "the headline under the worst case of every attack run on the models",
                "§4.2, Fig. 3",
                f"worst-case robust accuracy of the final model over every attack run on it at "
                f"ε = {eps} ({pgd_text}, the AutoAttack cascade and the robust evaluation's "
                f"attacks, docs/robustness.md) on the images all of them cover",
                f"{versus}, {ds}, {same}", "greater", "robust_accuracy",
                dict(dataset=ds, a="haat", b="pgd_at", attacks="all", missing=""),
                worst_case=True, sesoi=HEADLINE_SESOI,
                sesoi_source="the headline's SESOI (1 point, \"a small improvement\", §6) "
                             "under the worst case"))
            pair("haat-w2zero-autoattack",
                 "the second-order term helps at all: HAAT beats its w₂ = 0 twin", "ours",
                 f"AutoAttack-style cascade ({cascade})", "haat", "haat_w2zero",
                 "HAAT − its w₂ = 0 twin (the same attack without r²)", attacks="autoattack",
                 ours=True, missing=self._twin_missing(ds, "haat_w2zero"),
                 sesoi=HEADLINE_SESOI,
                 sesoi_source=TWIN_SOURCE.format(what="the second-order term carries"))
            pair("haat-random-linf-autoattack",
                 "the Hessian's direction helps: HAAT beats its random-direction twin "
                 "(r2_scale linf)", "ours", f"AutoAttack-style cascade ({cascade})", "haat",
                 "haat_random",
                 "HAAT − its random-direction twin (u ~ N(0, I) per step and image, "
                 "sign-aligned with ∇ₓL, no power iteration; same w₁, w₂, step, r2_scale linf)",
                 attacks="autoattack", ours=True, missing=self._twin_missing(ds, "haat_random"),
                 sesoi=HEADLINE_SESOI,
                 sesoi_source=TWIN_SOURCE.format(what="the Hessian's direction carries"))
            pair("haat-random-l2ball-autoattack",
                 "the Hessian's direction helps with §3's L2-ball scaling: HAAT (r2_scale "
                 "l2_ball) beats its random-direction twin", "ours",
                 f"AutoAttack-style cascade ({cascade})", "haat_l2ball", "haat_l2ball_random",
                 "HAAT (r2_scale l2_ball) − its random-direction twin",
                 attacks="autoattack", ours=True,
                 missing=self._twin_missing(ds, "haat_l2ball", "haat_l2ball_random"),
                 sesoi=HEADLINE_SESOI,
                 sesoi_source=TWIN_SOURCE.format(what="the Hessian's direction carries "
                                                      "(§3's L2-ball scaling)"))
            xi_a = self._sweep_label(ds, "xi", STUDY_BASELINE_XI)
            xi_b = self._sweep_label(ds, "xi", STUDY_BEST_XI)
            pair("xi-autoattack",
                 "the finite-difference step ξ changes robust accuracy little", "§4.2, Fig. 2a",
                 f"AutoAttack-style cascade ({cascade})", xi_a, xi_b,
                 f"HAAT at ξ = {STUDY_BASELINE_XI:g} − at ξ = {STUDY_BEST_XI:g}",
                 direction="equivalent", margin=SWEEP_MARGIN, attacks="autoattack",
                 sesoi_source=SWEEP_SOURCE["xi"],
                 study_value="ξ over 10⁻⁶ … 10⁻⁴, best 5·10⁻⁶ (§4.2; Fig. 2a's numbers are "
                             "not in the text)",
                 missing=self._sweep_missing(ds, "xi", (STUDY_BASELINE_XI, STUDY_BEST_XI),
                                             (xi_a, xi_b)))
            k_a = self._sweep_label(ds, "k", STUDY_K1)
            k_b = self._sweep_label(ds, "k", STUDY_BEST_K)
            pair("k-autoattack",
                 "the number of power-iteration steps k changes robust accuracy little",
                 "§4.2, Fig. 2b; §5.1", f"AutoAttack-style cascade ({cascade})", k_a, k_b,
                 f"HAAT at k = {STUDY_K1} − at k = {STUDY_BEST_K}",
                 direction="equivalent", margin=SWEEP_MARGIN, attacks="autoattack",
                 sesoi_source=SWEEP_SOURCE["k"],
                 study_value="\"1 step can reach the same performance with 10 steps\" (§5.1, "
                             "citing [4]); best k = 5 (§4.2)",
                 missing=self._sweep_missing(ds, "k", (STUDY_K1, STUDY_BEST_K), (k_a, k_b)))
            k = self.claim_k()
            out.append(claim(
                f"001-{ds}-fd-convergence",
                "the finite-difference power iteration does not converge while exact products "
                "do", "ours; §5.1, Fig. 5",
                f"‖u⁽ᵏ⁾ − u⁽ᵏ⁻¹⁾‖₂ of the power iteration's last step (k = {k}) in the last "
                f"HAAT attack step, mean over a batch's images (trace.csv diff_mean), "
                f"{self.block['convergence']['batches']} seeded training batches; u is the "
                f"unit iterate (a product that vanishes in rounding keeps u: 0)",
                f"fd − exact products, the k = {k} model, {ds}, same batches and draws",
                "greater", "fd_convergence", dict(dataset=ds, k=k), unit="", ours=True,
                study_value="\"it does not converge most of the time\" (§5.1)",
                sesoi=CONVERGENCE_SESOI,
                sesoi_source="\"it does not converge most of the time\" (§5.1), against √2 for "
                             "perpendicular unit iterates (Fig. 5a): 0.1, about 6° between "
                             "successive iterates"))
        return out

    def headline_seeds(self) -> dict[str, list[int]]:
        """Seeds of the headline claim's arms: HAAT and PGD-AT on the first dataset."""
        if not self.enabled:
            return {}
        block = next(iter(self.block["datasets"].values()))
        return {lab: list(self.seeds_for(block["models"][lab])) for lab in ("haat", "pgd_at")}

    def _twin_missing(self, ds: str, *labels: str) -> str:
        """Why a twin claim is not run ('' when its labels are configured)."""
        twins = self.block["datasets"][ds].get("twins", {})
        absent = [lab for lab in labels if lab not in twins]
        if not absent:
            return ""
        return (f"no {' / '.join(absent)} twin in studies.study001.datasets.{ds}.twins"
                + (" (configs/extended.yaml trains the l2_ball pair)"
                   if "haat_l2ball" in absent or "haat_l2ball_random" in absent else ""))

    def _sweep_missing(self, ds: str, key: str, values: tuple, labels: tuple) -> str:
        absent = [f"{key} = {v:g}" for v, lab in zip(values, labels) if lab is None]
        return (f"studies.study001.datasets.{ds}.{key}_sweep has no HAAT model at "
                f"{' and '.join(absent)}" if absent else "")

    def claim_records(self) -> dict:
        """Per dataset: ε, the PGD attack's name and the cascade's stages (the attack names in
        the per-image files), every model label's recipe, seeds, final-epoch per-image file and
        robust-evaluation key per seed, and the convergence claim's trace files."""
        if not self.enabled:
            return {}
        out: dict[str, Any] = {"datasets": {}}
        k = self.claim_k()
        for ds, block in self.block["datasets"].items():
            models: dict[str, dict] = {}
            for r in self.models([ds]):
                m = models.setdefault(r["label"], dict(recipe=r["recipe"], seeds=[], images={},
                                                       keys={}))
                m["seeds"].append(r["seed"])
                m["images"][str(r["seed"])] = self.final_images_file(r)
                m["keys"][str(r["seed"])] = model_key(r)
            trace: dict[str, Any] = dict(k=k, files={}, models={})
            for seed in self.block["seeds"]:
                item = next(m for m in self.convergence_per_k(ds, seed) if m["k"] == k)
                trace["files"][str(seed)] = f"{self.convergence_dir(ds, seed)}/trace.csv"
                trace["models"][str(seed)] = dict(label=item["label"], recipe=item["recipe"],
                                                  own=item["own"],
                                                  key=model_key(dict(
                                                      dataset=ds, variant=block["variant"],
                                                      recipe=item["recipe"], seed=seed,
                                                      ckpt="final")))
            out["datasets"][ds] = dict(eps=float(block["eps"]), variant=block["variant"],
                                       pgd=block["pgd"],
                                       autoattack=list(self.block["autoattack"]["attacks"]),
                                       models=models, trace=trace,
                                       names={**MODELS, **TWIN_NAMES})
        return out

    def claim_inputs(self) -> list[str]:
        files = []
        for d in self.claim_records().get("datasets", {}).values():
            files += [f for m in d["models"].values() for f in m["images"].values() if f]
            files += list(d["trace"]["files"].values())
        return sorted(set(files))

    def deviations(self) -> list[str]:
        """Our settings against the study's (ResNet18 on CIFAR-10, 200 epochs, ε = 8/255,
        HAAT STEPS = 10, k = 5, ξ = 5·10⁻⁶ best / 10⁻⁶ baseline, r² on the √d·ε L2 ball)."""
        if not self.enabled:
            return []
        s, out = self.block, []
        for ds, block in s["datasets"].items():
            pgd_r = self.recipe(block["models"]["pgd_at"])
            haat_r = self.recipe(block["models"]["haat"])
            variant = self.cfg["variants"].get(block["variant"], {})
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
                out.append(f"{ds}: ε = {_pretty_eps(float(block['eps']))} (the study: 8/255 on "
                           "CIFAR-10)")
            pa = pgd_r["regime"]["adversary"]
            ha = haat_r["regime"]["adversary"]

            def adv_text(a: dict) -> str:
                _, steps, step, rs = adversary_shared(a)
                start = "a random start" if rs else "no random start"
                return f"{steps:g} steps of {_pretty_eps(step)} from {start}"

            shared = adversary_shared(pa) == adversary_shared(ha)
            if shared:
                out.append(f"{ds}: PGD-AT and HAAT adversaries both take {adv_text(ha)} (the "
                           "study's HAAT: STEPS = 10 (Algorithm 1), its PGD-AT's steps and start "
                           "not given)")
            else:
                out.append(f"{ds}: PGD-AT's adversary takes {adv_text(pa)}, HAAT's "
                           f"{adv_text(ha)}: NOT the same, the comparison is confounded")
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
        aa = s["autoattack"]
        out.append(f"AutoAttack: our cascade of {', '.join(aa['attacks'])} (APGD "
                   f"{aa.get('apgd_steps', 100)} steps, FAB {aa.get('fab_steps', 100)}, Square "
                   f"{aa.get('square_queries', 5000)} queries) on {aa['n_examples']:,} test "
                   "images (the study: the AutoAttack package; its number of test images is not "
                   "given)")
        seeds = {}
        for ds in s["datasets"]:
            for lab, recipe in self.recipes_on(ds).items():
                seeds.setdefault(tuple(self.seeds_for(recipe)), []).append(lab)
        out.append("seeds: " + "; ".join(f"{', '.join(dict.fromkeys(labs))}: {list(sd)}"
                                         for sd, labs in seeds.items())
                   + " (the study: one run per model)")
        return out


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
