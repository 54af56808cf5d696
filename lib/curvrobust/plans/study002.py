"""Study 002 — Yu, Liu, Wang, Chen, *Interpreting Adversarial Robustness: A View from Decision
Surface in Input Space*: its plan.

Natural, adversarial, gradient-penalty and min-max training; FGSM / BIM / C&W tables (1, 2) with
stronger checks (PGD restarts, accuracy over ε, step-size sweep); input- and parameter-space
surfaces (Figs. 2, 3, 4, 6/9), Jacobian images (Fig. 8) and the robustness-indicator scatter over
every model of every study.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from . import paths
from .base import StudyPlan

LABELS = ["natural", "advtrain", "crossentropy", "ours", "minmax", "ours_minmax"]

# per-dataset outputs: name prefix -> (type, kind)
DATASET_FIGURES = {
    "fig2_param_surface": "param_surface",
    "fig3_input_loss_surface": "input_loss",
    "fig4_loss_vs_decision": "loss_vs_decision",
    "fig6_decision_surface": "decision",
    "fig8_jacobian": "jacobian",
}


class Study002(StudyPlan):
    name = "study002"

    def check(self) -> list[str]:
        s, cfg, out = self.block, self.cfg, []
        where = "studies.study002.datasets"
        for ds, block in s["datasets"].items():
            out += self.check_dataset_block(where, ds, block)
            for label, recipe in block["regimes"].items():
                if recipe not in cfg["recipes"]:
                    out.append(
                        f"{where}.{ds}.regimes.{label}: recipe {recipe!r} is not in `recipes`"
                    )
            names = [(f"attacks.{c}", a) for c, a in block["attacks"].items()]
            names += [("pgd", block["pgd"]), ("curve", block["curve"])]
            names += [(f"step_sweep[{i}]", a) for i, a in enumerate(block.get("step_sweep", []))]
            for key, a in names:
                if a not in cfg["attacks"]:
                    out.append(f"{where}.{ds}.{key}: attack {a!r} is not in `attacks`")
            for i, label in enumerate(s["surfaces"]["compare"]):
                if label not in block["regimes"]:
                    out.append(
                        f"studies.study002.surfaces.compare[{i}]: regime {label!r} is not in "
                        f"{where}.{ds}.regimes"
                    )
            for i, label in enumerate(block.get("step_sweep_regimes", [])):
                if label not in block["regimes"]:
                    out.append(
                        f"{where}.{ds}.step_sweep_regimes[{i}]: regime {label!r} is not in its "
                        "`regimes`"
                    )
        return out

    def table_name(self, ds: str) -> str:
        return self.block["datasets"][ds].get("table", f"table_{ds}_attacks")

    def _has_step_sweep(self) -> bool:
        return any(d.get("step_sweep") for d in self.block["datasets"].values())

    def outputs(self) -> dict[str, dict[str, Any]]:
        if not self.enabled:
            return {}
        out = {
            self.table_name(ds): dict(type="table", kind="accuracy", dataset=ds)
            for ds in self.block["datasets"]
        }
        out["table_pgd_restarts"] = dict(type="table", kind="pgd")
        if self._has_step_sweep():
            out["table_step_sweep"] = dict(type="table", kind="step_sweep")
        out["table_indicator"] = dict(type="table", kind="indicator")
        out["training_summary"] = dict(type="table", kind="training")
        for ds in self.block["datasets"]:
            for prefix, kind in DATASET_FIGURES.items():
                out[f"{prefix}_{ds}"] = dict(type="figure", kind=kind, dataset=ds)
        out["fig_accuracy_vs_eps"] = dict(type="figure", kind="curve")
        if self._has_step_sweep():
            out["fig_step_sweep"] = dict(type="figure", kind="step_sweep")
        out["fig_indicator_scatter"] = dict(type="figure", kind="scatter")
        return out

    def kind(self, name: str) -> dict:
        """The spec (kind, and dataset where per-dataset) of output `name`, as the scripts get it."""
        return {k: v for k, v in self.outputs()[name].items() if k != "type"}

    def models(self, datasets=None, labels=None) -> list[dict]:
        """One record per (dataset, regime label, seed) model."""
        out = []
        for ds, block in self.block.get("datasets", {}).items():
            if datasets is not None and ds not in datasets:
                continue
            for label, recipe in block["regimes"].items():
                if labels is not None and label not in labels:
                    continue
                for seed in self.block["seeds"]:
                    out.append(dict(study="study002", label=label, dataset=ds,
                                    variant=block["variant"], recipe=recipe, seed=seed,
                                    ckpt="final"))
        return out

    def indicator_models(self) -> list[dict]:
        """Every classifier the workflow trains on a dataset this study evaluates (all studies):
        the points of the indicator scatter."""
        from .study000 import Study000
        from .study001 import Study001

        recs = self.models()
        mine = self.block.get("datasets", {})
        s1 = Study001(self.cfg)
        if s1.enabled:
            datasets = [d for d in s1.block["datasets"] if d in mine]
            recs += s1.models(datasets, labels=["pgd_at", "haat"])
        s0 = Study000(self.cfg)
        if s0.enabled and s0.block["dataset"] in mine:
            for r in s0.models([s0.block["clean_variant"], s0.block["poisoned_variant"]]):
                recs.append(dict(r, study="study000"))
        return recs

    def middle_eps(self, ds: str) -> float:
        attacks = self.block["datasets"][ds]["attacks"]
        eps = self.attack(attacks.get("fgsm", next(iter(attacks.values()))))["eps"]
        return sorted(eps)[len(eps) // 2]

    def robust_models(self) -> list[dict]:
        """Every regime's model, at the accuracy table's middle ε (the indicator's)."""
        return [dict(r, eps=self.middle_eps(r["dataset"])) for r in self.models()]

    def attack_inputs(self) -> list[str]:
        return sorted({f for n in self.outputs() for f in self.inputs(n) if "/attacks/" in f})

    def sweep_labels(self, ds: str) -> list[str]:
        block = self.block["datasets"][ds]
        return block.get("step_sweep_regimes", list(block["regimes"]))

    def params(self, name: str) -> list[dict]:
        """Records (model + the files a table or figure reads) of output `name`."""
        spec = self.outputs()[name]
        kind, ds = spec["kind"], spec.get("dataset")
        compare = self.block["surfaces"]["compare"]
        if kind == "scatter":
            recs = []
            for r in self.indicator_models():
                curve = self.block["datasets"][r["dataset"]]["curve"]
                recs.append(dict(r, indicator=f"{paths.run_dir('stats', r)}/indicator.csv",
                                 attack=f"{paths.run_dir('attacks', r)}/{curve}.csv",
                                 eps=self.middle_eps(r["dataset"])))
            return recs
        recs = []
        for r in self.models([ds] if ds else None):
            block = self.block["datasets"][r["dataset"]]
            adir, sdir = paths.run_dir("attacks", r), paths.run_dir("stats", r)
            files = {}
            if kind == "accuracy":
                files = {c: f"{adir}/{a}.csv" for c, a in block["attacks"].items()}
            elif kind == "pgd":
                files = {"pgd": f"{adir}/{block['pgd']}.csv"}
                if "bim" in block["attacks"]:
                    files["bim"] = f"{adir}/{block['attacks']['bim']}.csv"
            elif kind == "step_sweep":
                if r["label"] not in self.sweep_labels(r["dataset"]):
                    continue
                names = list(block.get("step_sweep", []))
                names += [block["attacks"][c] for c in ("bim", "cw") if c in block["attacks"]]
                files = {a: f"{adir}/{a}.csv" for a in names}
            elif kind == "curve":
                files = {"curve": f"{adir}/{block['curve']}.csv"}
            elif kind == "indicator":
                files = {"indicator": f"{sdir}/indicator.csv", "curve": f"{adir}/{block['curve']}.csv"}
                r["eps"] = self.middle_eps(r["dataset"])
            elif kind == "training":
                files = {"epochs": f"{paths.model_dir(r)}/epochs.csv"}
            elif kind == "jacobian":
                if r["label"] not in compare:
                    continue
                files = {"jacobians": f"{sdir}/jacobians.pt"}
            elif kind in ("input_loss", "loss_vs_decision", "decision"):
                if kind == "loss_vs_decision" and r["label"] != compare[0]:
                    continue
                if kind != "loss_vs_decision" and r["label"] not in compare:
                    continue
                files = {"surface": f"{paths.run_dir('surfaces', r)}/input.npz"}
            elif kind == "param_surface":
                if r["label"] not in compare:
                    continue
                files = {"surface": f"{paths.run_dir('surfaces', r)}/param.npz"}
            recs.append(dict(r, files=files))
        return recs

    def inputs(self, name: str) -> list[str]:
        files = []
        for r in self.params(name):
            files += list(r["files"].values()) if "files" in r else [r["indicator"], r["attack"]]
        return files

    def used_attacks(self, name: str) -> dict[str, dict]:
        """Specs of the attacks one output reads (not every attack, so that changing one attack
        reruns only what shows it)."""
        names = set()
        for r in self.params(name):
            for path in r.get("files", {}).values():
                if "/attacks/" in path:
                    names.add(PurePosixPath(path).stem)
            if "attack" in r:
                names.add(PurePosixPath(r["attack"]).stem)
        return {a: self.attack(a) for a in sorted(names)}

    def used_recipes(self, name: str) -> dict[str, dict]:
        return {r["recipe"]: self.recipe(r["recipe"]) for r in self.params(name)}

    def study_params(self) -> dict:
        if not self.enabled:
            return {}
        return {"datasets": self.block["datasets"],
                "surfaces": {"compare": self.block["surfaces"]["compare"]}}

    def presentation(self, name: str) -> dict[str, Any]:
        """What output `name` shows besides its data (from the presentation section at the end
        of this module): its caption or title template, the display names of the regimes it
        shows (in display order) and, for tables, its readable columns."""
        spec = self.outputs()[name]
        kind = spec["kind"]
        shown = {r["label"] for r in self.params(name)}
        if spec["type"] == "figure":
            out: dict[str, Any] = {"title": FIGURE_TITLES[kind]}
            if kind != "scatter":
                out["labels"] = {k: v for k, v in LABELS_FIGURE.items() if k in shown}
            return out
        out = {"caption": TABLE_CAPTIONS[kind]}
        if kind == "accuracy":
            out["labels"] = {k: v for k, v in LABELS_TABLE.items() if k in shown}
            has_paper = self.block["datasets"][spec["dataset"]].get("reference")
            out["paper"] = PAPER_NOTE if has_paper else NO_PAPER_NOTE
        if kind in TABLE_COLUMNS:
            out["columns"] = TABLE_COLUMNS[kind]
        return out


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
