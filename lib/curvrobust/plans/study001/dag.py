"""Study 001 — Mei, Yang, Wu, *HAAT: Improve Adversarial Robustness via Hessian Approximation*.

PGD adversarial training against HAAT (PGD plus a second-order direction from power iteration
with finite-difference Hessian-vector products): robust accuracy over epoch-end checkpoints
(Figs. 1, 3), the ξ and k sweeps (Fig. 2), HAAT's twins (w₂ = 0, and a random direction in place
of the Hessian's: ours), and the power iteration's convergence and accuracy (Figs. 4/5, each k
on its own trained model where there is one; tables of HVP error and eigenvector alignment).
The plan class: config checks, targets and each output's inputs and params; its claims are
declared in `claims`, its words in `text`, its HAAT adversaries' settings in `haat`.
"""

from __future__ import annotations

import math
from typing import Any

from .. import paths
from ..base import StudyPlan, recipe_checkpoint_epochs
from ..robustness import model_key
from . import claims as study_claims
from .haat import TWINS, haat_adversary, haat_setting
from .text import (ACCURACY, CAPTIONS, COLUMNS, METRICS, MODELS, STUDY_BASELINE_XI, SWEEPS,
                   TITLES, TWIN_NAMES, deviations)

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

class Study001(StudyPlan):
    name = "study001"

    def check(self) -> list[str]:
        out: list[str] = []
        for ds, block in self.block["datasets"].items():
            out += self._check_dataset(ds, block)
            if not out:  # only a clean configuration has meaningful sweep labels
                out += self._check_sweep_labels(f"studies.study001.datasets.{ds}", block)
        # a recipe the study does not train is allowed (a merged preset cannot delete
        # config.yaml's keys: configs/evidence.yaml)
        for recipe in self.block.get("seeds_per_recipe", {}):
            if recipe not in self.cfg["recipes"]:
                out.append(f"studies.study001.seeds_per_recipe.{recipe}: recipe {recipe!r} is "
                           "not in `recipes`")
        return out + self._check_convergence()

    def _check_dataset(self, ds: str, block: dict) -> list[str]:
        """Problems of one data set block: its recipes, twins, PGD attack and sweep labels."""
        cfg, where = self.cfg, "studies.study001.datasets"
        out = self.check_dataset_block(where, ds, block)
        named = [(f"models.{k}", r) for k, r in block["models"].items()]
        named += [(f"{sw}[{i}]", r) for sw in ("xi_sweep", "k_sweep")
                  for i, r in enumerate(block.get(sw, []))]
        named += [(f"twins.{k}", r) for k, r in block.get("twins", {}).items()]
        for key, recipe in named:
            out += self._check_recipe(f"{where}.{ds}.{key}", key, recipe)
        for label in block.get("twins", {}):
            if label in block["models"]:
                out.append(f"{where}.{ds}.twins.{label}: the label {label!r} is also one of "
                           "`models`")
        if block["pgd"] not in cfg["attacks"]:
            out.append(f"{where}.{ds}.pgd: attack {block['pgd']!r} is not in `attacks`")
        return out

    def _check_recipe(self, where: str, key: str, recipe: str) -> list[str]:
        """Problems of the recipe a data set block names at `key` (models.*, *_sweep[i],
        twins.*)."""
        if recipe not in self.cfg["recipes"]:
            return [f"{where}: recipe {recipe!r} is not in `recipes`"]
        if key != "models.pgd_at" and haat_adversary(self.cfg, recipe) is None:
            return [f"{where}: recipe {recipe!r} has no haat adversary in its regime"]
        if "_sweep" in key:
            swept = key.split("_")[0]
            if swept not in haat_adversary(self.cfg, recipe):
                return [f"{where}: recipe {recipe!r} must set its adversary's "
                        f"{swept!r} (the swept value)"]
        elif key.startswith("twins."):
            return self._check_twin(where, key[len("twins."):], recipe)
        return []

    def _check_sweep_labels(self, where: str, block: dict) -> list[str]:
        """Sweep models are labelled by their value: two must not share one."""
        out, seen = [], {}
        for sw, key in (("xi_sweep", "xi"), ("k_sweep", "k")):
            for i, recipe in enumerate(block.get(sw, [])):
                if recipe in block["models"].values():
                    continue
                label = f"haat_{key}={self.sweep_value(recipe, key):g}"
                if seen.setdefault(label, recipe) != recipe:
                    out.append(f"{where}.{sw}[{i}]: recipe {recipe!r} has the same "
                               f"{key} as {seen[label]!r} ({label})")
        return out

    def _check_convergence(self) -> list[str]:
        """The convergence block's model must be a label every data set trains."""
        model = self.block["convergence"]["model"]
        if model not in ("pgd_at", "haat"):
            return [f"studies.study001.convergence.model: {model!r} is not a label of `models` "
                    "(pgd_at, haat)"]
        return [f"studies.study001.convergence.model: {model!r} is not in "
                f"studies.study001.datasets.{ds}.models"
                for ds, block in self.block["datasets"].items() if model not in block["models"]]

    def _check_twin(self, where: str, label: str, recipe: str) -> list[str]:
        """A twin the claims read must be what its label says (TWINS)."""
        want = TWINS.get(label)
        if want is None:
            return []
        adv = haat_adversary(self.cfg, recipe)
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

    def scatter_models(self, datasets: list[str]) -> list[dict]:
        """The PGD-AT and HAAT models on the study's data sets among `datasets`."""
        return self.models([d for d in self.block["datasets"] if d in datasets],
                           labels=["pgd_at", "haat"])

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
            adv = haat_adversary(self.cfg, recipe)
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

    # ---- claims (declared in .claims; curvrobust.reports.study001.claim_evidence judges them) ----
    def claim_k(self) -> int:
        """The k whose last power step the convergence claim reads: the HAAT model's when the
        convergence block traces it, else the largest traced."""
        ks = [int(k) for k in self.block["convergence"]["ks"]]
        ds = next(iter(self.block["datasets"]))
        k = int(haat_setting(haat_adversary(self.cfg, self.block["datasets"][ds]["models"]
                                            ["haat"]) or {}, "k"))
        return k if k in ks else max(ks)

    def claims(self) -> list[dict]:
        return study_claims.claims(self)

    def headline_seeds(self) -> dict[str, list[int]]:
        """Seeds of the headline claim's arms: HAAT and PGD-AT on the first dataset."""
        if not self.enabled:
            return {}
        block = next(iter(self.block["datasets"].values()))
        return {lab: list(self.seeds_for(block["models"][lab])) for lab in ("haat", "pgd_at")}

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
        return deviations(self)
