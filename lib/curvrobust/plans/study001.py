"""Study 001 — Mei, Yang, Wu, *HAAT: Improve Adversarial Robustness via Hessian Approximation*.

PGD adversarial training against HAAT (PGD plus a second-order direction from power iteration
with finite-difference Hessian-vector products): robust accuracy over epoch-end checkpoints
(Figs. 1, 3), the ξ and k sweeps (Fig. 2), and the power iteration's convergence and accuracy
on the trained HAAT model (Figs. 4/5, tables of HVP error and eigenvector alignment).
"""

from __future__ import annotations

from typing import Any

from . import paths
from .base import StudyPlan, recipe_checkpoint_epochs

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
# which model labels each kind of output shows (None: all)
KIND_LABELS = {"table": None, "fig1": ["haat"], "fig3": ["haat", "pgd_at"], "xi_sweep": None,
               "k_sweep": None}


def _haat_adversary(cfg: dict, recipe: str) -> dict | None:
    adv = (cfg["recipes"].get(recipe, {}).get("regime") or {}).get("adversary") or {}
    return adv if adv.get("kind") == "haat" else None


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
        """Every recipe the study trains on `ds`: label -> recipe, models first, then sweeps."""
        block = self.block["datasets"][ds]
        out = dict(block["models"])
        for sweep, key in (("xi_sweep", "xi"), ("k_sweep", "k")):
            for recipe in block.get(sweep, []):
                if recipe not in out.values():
                    out[f"haat_{key}={self.sweep_value(recipe, key):g}"] = recipe
        return out

    def models(self, datasets=None, labels=None) -> list[dict]:
        out = []
        for ds, block in self.block.get("datasets", {}).items():
            if datasets is not None and ds not in datasets:
                continue
            for label, recipe in self.recipes_on(ds).items():
                if labels is not None and label not in labels:
                    continue
                for seed in self.block["seeds"]:
                    out.append(dict(study="study001", label=label, dataset=ds,
                                    variant=block["variant"], recipe=recipe, seed=seed,
                                    ckpt="final"))
        return out

    def robust_models(self) -> list[dict]:
        return [dict(r, eps=self.block["datasets"][r["dataset"]]["eps"]) for r in self.models()]

    def extra_outcome_files(self) -> list[tuple[dict, str]]:
        """The per-image PGD and AutoAttack outcomes of each model's final-epoch checkpoint
        (the final model's weights)."""
        out = []
        for r in self.models():
            epochs = recipe_checkpoint_epochs(self.recipe(r["recipe"]))
            if epochs and epochs[-1] == self.recipe(r["recipe"])["epochs"]:
                f = self.eval_file(r["dataset"], r["recipe"], r["seed"], epochs[-1])
                out.append((r, f[: -len(".csv")] + "_images.csv"))
        return out

    def variant(self, ds: str) -> str:
        return self.block["datasets"][ds]["variant"]

    # ---- per-checkpoint evaluation and power-iteration traces (rule paths) ----
    def eval_file(self, ds: str, recipe: str, seed, epoch) -> str:
        return f"{self.dir}/{ds}/eval/{recipe}/seed{seed}/epoch{epoch}.csv"

    def convergence_dir(self, ds: str, seed) -> str:
        return f"{self.dir}/{ds}/convergence/seed{seed}"

    def convergence_recipe(self, ds: str) -> str:
        return self.block["datasets"][ds]["models"][self.block["convergence"]["model"]]

    def convergence_model(self, ds: str, seed) -> str:
        rec = dict(dataset=ds, variant=self.variant(ds), recipe=self.convergence_recipe(ds),
                   seed=seed)
        return f"{paths.model_dir(rec)}/model.pt"

    def convergence_adversary(self, ds: str) -> dict:
        return self.recipe(self.convergence_recipe(ds))["regime"]["adversary"]

    def checkpoint_dir(self, ds: str, recipe: str, seed) -> str:
        return paths.model_dir(dict(dataset=ds, variant=self.variant(ds), recipe=recipe, seed=seed))

    # ---- tables and figures ----
    def params(self, ds: str, name: str) -> list[dict]:
        """Per model: the evaluation files (one per epoch-end checkpoint) output `name` reads."""
        kind = self.dataset_outputs(ds)[name]
        if name in CONVERGENCE_FILES:
            return []
        block = self.block["datasets"][ds]
        recs = []
        for r in self.models([ds], KIND_LABELS[kind]):
            if kind in ("xi_sweep", "k_sweep"):
                if r["recipe"] not in block[kind]:
                    continue
                r["value"] = self.sweep_value(r["recipe"], kind.split("_")[0])
            r["evals"] = [self.eval_file(ds, r["recipe"], r["seed"], e)
                          for e in recipe_checkpoint_epochs(self.recipe(r["recipe"]))]
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


# ---- presentation ----
# Display names, column headings and caption / title templates of the study's tables and
# figures. {dataset} is the dataset, {seeds} the study's seeds; the other placeholders are
# filled from the data (table_robust_accuracy: the first evaluation row's columns) or the
# convergence block ({batches}).

# model label -> display name, in legend order
MODELS = {"pgd_at": "PGD-AT", "haat": "HAAT"}
METRICS = {"clean_acc": "clean", "pgd_acc": "PGD", "aa_acc": "AutoAttack"}
ACCURACY = "accuracy (%)"
# symbol of the swept HAAT hyperparameter per sweep kind
SWEEPS = {"xi_sweep": "ξ", "k_sweep": "k"}

# readable column heading per numeric column, in display order
COLUMNS = {
    "table_hvp_error": {
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
        "robust). Mean ± 95 % interval over seeds {seeds}."
    ),
    "table_hvp_error": (
        "Study 001 on {dataset}: finite-difference input Hessian-vector products (float32) "
        "against double backprop, random unit directions at training images, on the traced "
        "HAAT model; median over batches of the per-batch median relative error."
    ),
    "table_eigvec_alignment": (
        "Study 001 on {dataset}: does the power iteration find the input Hessian's dominant "
        "eigenvector u₁? |cos| between the k-step iterate and u₁ (50 exact power steps from "
        "the same start) at training images, traced HAAT model; median over batches of the "
        "per-batch statistic. Random directions give |cos| ≈ 1/√d."
    ),
}

TITLES = {
    "fig1_haat_robust_accuracy": (
        "Study 001, {dataset}: HAAT model over its checkpoints, ε = {eps:g}"
    ),
    "fig3_haat_vs_pgd": (
        "Study 001, {dataset}: HAAT against PGD adversarial training, ε = {eps:g}"
    ),
    "fig4_fd_convergence": (
        "Study 001, {dataset}: power iteration in the last HAAT attack step "
        "({batches} training batches, seed(s) {seeds})"
    ),
    "fig2a_xi_sweep": (
        "Study 001, {dataset}: HAAT trained with different ξ (one model each), ε = {eps:g}"
    ),
    "fig2b_k_sweep": (
        "Study 001, {dataset}: HAAT trained with different k (one model each), ε = {eps:g}"
    ),
}
