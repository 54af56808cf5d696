"""Study 002 — Yu, Liu, Wang, Chen, *Interpreting Adversarial Robustness: A View from Decision
Surface in Input Space*: its plan.

Natural, adversarial, gradient-penalty and min-max training; FGSM / BIM / C&W tables (1, 2) with
stronger checks (PGD restarts, accuracy over ε, step-size sweep); input- and parameter-space
surfaces (Figs. 2, 3, 4, 6/9), Jacobian images (Fig. 8) and the robustness-indicator scatter over
every model of every study. The plan class: config checks, targets and each output's inputs and
params; its claims are declared in `claims`, its words in `text`.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from .. import paths
from ..base import StudyPlan, scatter_models
from ..robustness import images_file, model_key
from . import claims as study_claims
from .text import (FIGURE_TITLES, LABELS_FIGURE, LABELS_TABLE, NO_PAPER_NOTE, PAPER_NOTE,
                   TABLE_CAPTIONS, TABLE_COLUMNS, deviations)

LABELS = ["natural", "advtrain", "crossentropy", "ours", "minmax", "ours_minmax"]
# `ours_c<tag>` regimes: the margin penalty at another coefficient (configs/evidence.yaml's sweep
# up to the study's c = 500), shown after the fixed labels in the order of their coefficients
SWEEP_PREFIX = "ours_c"

# per-dataset outputs: name prefix -> (type, kind)
DATASET_FIGURES = {
    "fig2_param_surface": "param_surface",
    "fig3_input_loss_surface": "input_loss",
    "fig4_loss_vs_decision": "loss_vs_decision",
    "fig6_decision_surface": "decision",
    "fig8_jacobian": "jacobian",
}
# output kinds shown for one model per regime (its first seed): only those models get the files.
# The extra seeds of the headline's regimes serve the claims (their attacks and worst case);
# the PGD-restart table, the PGD-10 curve and the indicator's table and scatter show one model
# per kind of training, which saves two attacks per extra seed (docs/claims.md, "Budget").
FIRST_SEED_KINDS = ("input_loss", "loss_vs_decision", "decision", "param_surface", "jacobian",
                    "step_sweep", "pgd", "curve", "indicator")


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
                elif label.startswith(SWEEP_PREFIX) and (
                        cfg["recipes"][recipe].get("regime", {}).get("penalty", {}).get("kind")
                        != "margin_grad"):
                    out.append(f"{where}.{ds}.regimes.{label}: a sweep regime's recipe "
                               f"{recipe!r} needs regime.penalty.kind margin_grad")
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
        # a recipe no regime trains is allowed (a merged preset cannot delete config.yaml's
        # keys: configs/evidence.yaml)
        for recipe in s.get("seeds_per_recipe", {}):
            if recipe not in cfg["recipes"]:
                out.append(f"studies.study002.seeds_per_recipe.{recipe}: recipe {recipe!r} is "
                           "not in `recipes`")
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

    def sweep_coef(self, recipe: str) -> float:
        """The margin-penalty coefficient of a sweep regime's recipe."""
        return float(self.recipe(recipe)["regime"]["penalty"]["coef"])

    def regime_order(self, regimes: dict[str, str]) -> list[str]:
        """Display order of a dataset's regime labels: the fixed labels (LABELS), then the
        coefficient sweep's `ours_c<tag>` labels by their coefficient."""
        sweep = sorted((lb for lb in regimes if lb.startswith(SWEEP_PREFIX)),
                       key=lambda lb: self.sweep_coef(regimes[lb]))
        return [lb for lb in LABELS if lb in regimes] + sweep

    def display_labels(self, names: dict[str, str], shown: set[str]) -> dict[str, str]:
        """label -> display name of the shown regimes in display order; a sweep regime is named
        after its coefficient ("Ours, c = 500")."""
        regimes = {lb: rc for b in self.block["datasets"].values()
                   for lb, rc in b["regimes"].items()}
        out = {}
        for lb in self.regime_order(regimes):
            if lb in shown:
                out[lb] = names.get(lb) or (f"{names['ours'].split(' (')[0]}, "
                                            f"c = {self.sweep_coef(regimes[lb]):g}")
        return out

    def models(self, datasets=None, labels=None) -> list[dict]:
        """One record per (dataset, regime label, seed) model (the seeds of each regime's
        recipe: `seeds_per_recipe` overrides `seeds`)."""
        out = []
        for ds, block in self.block.get("datasets", {}).items():
            if datasets is not None and ds not in datasets:
                continue
            for label, recipe in block["regimes"].items():
                if labels is not None and label not in labels:
                    continue
                for seed in self.seeds_for(recipe):
                    out.append(dict(study="study002", label=label, dataset=ds,
                                    variant=block["variant"], recipe=recipe, seed=seed,
                                    ckpt="final"))
        return out

    def indicator_models(self) -> list[dict]:
        """Every kind of classifier the workflow trains on a dataset this study evaluates (all
        studies: the other studies' models through `base.scatter_models`), at its recipe's
        first seed: the points of the indicator scatter."""
        mine = list(self.block.get("datasets", {}))
        models = self.models() + scatter_models(self.cfg, mine)
        # every model enters at its recipe's first seed only (extra seeds serve the headline
        # claims; the scatter needs one point per kind of training)
        first: dict[tuple, int] = {}
        for r in models:
            k = (r["dataset"], r["variant"], r["recipe"])
            first[k] = min(first.get(k, r["seed"]), r["seed"])
        return [r for r in models
                if r["seed"] == first[(r["dataset"], r["variant"], r["recipe"])]]

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
            if kind in FIRST_SEED_KINDS and r["seed"] != min(self.seeds_for(r["recipe"])):
                continue  # surfaces and Jacobians are drawn for each regime's first seed
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
                out["labels"] = self.display_labels(LABELS_FIGURE, shown)
            return out
        out = {"caption": TABLE_CAPTIONS[kind]}
        if kind == "accuracy":
            out["labels"] = self.display_labels(LABELS_TABLE, shown)
            has_paper = self.block["datasets"][spec["dataset"]].get("reference")
            out["paper"] = PAPER_NOTE if has_paper else NO_PAPER_NOTE
        if kind in TABLE_COLUMNS:
            out["columns"] = TABLE_COLUMNS[kind]
        return out

    # ---- claims (declared in .claims; judged by curvrobust.reports.study002.claim_evidence) ----
    def headline_seeds(self) -> dict[str, list[int]]:
        """Seeds of the headline claim's arms: the margin penalty, natural training and the CE
        penalty on the headline dataset."""
        ds = self.headline_dataset() if self.enabled else None
        if ds is None:
            return {}
        regimes = self.block["datasets"][ds]["regimes"]
        return {lab: list(self.seeds_for(regimes[lab]))
                for lab in ("ours", "natural", "crossentropy") if lab in regimes}

    def headline_dataset(self) -> str | None:
        """The dataset block whose claims are the headline: the first with a printed study
        table (MNIST's Table 1 in every preset), else the first."""
        datasets = list(self.block.get("datasets", {}))
        with_table = [d for d in datasets if self.block["datasets"][d].get("reference")]
        return (with_table or datasets or [None])[0]

    def n_images(self, spec: dict) -> int | str:
        """How many images of the shared test subset an attack spec covers."""
        return spec.get("n_examples", self.cfg["robustness"]["n_examples"])

    def claims(self) -> list[dict]:
        return study_claims.claims(self)

    def claim_records(self) -> dict:
        """Per dataset: every regime's models (seed, robust-evaluation key, the per-image
        files of the study's attacks and the indicator)."""
        if not self.enabled:
            return {}
        out: dict[str, Any] = {"datasets": {}}
        for ds, block in self.block["datasets"].items():
            models: dict[str, list[dict]] = {}
            for r in self.models([ds]):
                adir, sdir = paths.run_dir("attacks", r), paths.run_dir("stats", r)
                files = {c: images_file(f"{adir}/{a}.csv") for c, a in block["attacks"].items()}
                files["indicator"] = f"{sdir}/indicator.csv"
                models.setdefault(r["label"], []).append(
                    dict(seed=r["seed"], recipe=r["recipe"], key=model_key(r), files=files))
            out["datasets"][ds] = dict(models=models, attacks=dict(block["attacks"]))
        return out

    def claim_inputs(self) -> list[str]:
        recs = self.claim_records().get("datasets", {})
        return sorted({f for d in recs.values() for ms in d["models"].values() for m in ms
                       for f in m["files"].values()})

    def deviations(self) -> list[str]:
        return deviations(self)
