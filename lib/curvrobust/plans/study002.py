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
from .base import StudyPlan, claim_sesoi

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
        studies), at its recipe's first seed: the points of the indicator scatter."""
        from .study000 import Study000
        from .study001 import Study001

        recs = self.models()
        mine = self.block.get("datasets", {})
        others = []
        s1 = Study001(self.cfg)
        if s1.enabled:
            datasets = [d for d in s1.block["datasets"] if d in mine]
            others += s1.models(datasets, labels=["pgd_at", "haat"])
        s0 = Study000(self.cfg)
        if s0.enabled:
            others += [dict(r, study="study000") for r in s0.models(
                s0.variants(), datasets=[d for d in s0.datasets() if d in mine])]
        # every model enters at its recipe's first seed only (extra seeds serve the headline
        # claims; the scatter needs one point per kind of training)
        models = recs + others
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

    # ---- claims (curvrobust.claims; evidence: curvrobust.reports.study002.claim_evidence) ----
    def claim_eps(self, ds: str) -> list[float]:
        """The radii the claims compare at: the table's middle ε (the headline's) and its
        largest."""
        attacks = self.block["datasets"][ds]["attacks"]
        eps = self.attack(attacks.get("fgsm", next(iter(attacks.values()))))["eps"]
        return sorted({self.middle_eps(ds), max(eps)})

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
        return spec.get("n_examples", (self.cfg.get("robustness") or {}).get("n_examples", 500))

    def claims(self) -> list[dict]:
        if not self.enabled:
            return []
        out = []
        for ds in self.block["datasets"]:
            out += self._dataset_claims(ds)
        return out

    def _dataset_claims(self, ds: str) -> list[dict]:
        """Every claim on one dataset block, in display order (headline first)."""
        from ..reference import load_reference

        block = self.block["datasets"][ds]
        tables = load_reference("study002")["tables"]
        ref = tables.get(block.get("reference") or "", {})
        mid, eps_all = self.middle_eps(ds), self.claim_eps(ds)
        n_attack = self.n_images(self.attack(next(iter(block["attacks"].values()))))
        ind = self.block.get("indicator", {})
        where_t = {"mnist": "Table 1", "cifar10": "Table 2"}.get(block.get("reference") or "",
                                                                 "no study table for " + ds)
        labels = self.regime_order(block["regimes"])
        out = []

        def add(suffix: str, **c: Any) -> None:
            claim = dict(id=f"002-{ds}-{suffix}", study="study002", margin=0.0, unit="%",
                         headline=False, ours=False, worst_case=False, study_value="",
                         sesoi=None, sesoi_source="")
            claim.update(c)
            claim["args"] = dict(dataset=ds, **claim.get("args", {}))
            claim["sesoi"] = claim_sesoi(claim["id"], claim["direction"], claim["margin"],
                                         claim["sesoi"], claim["sesoi_source"])
            out.append(claim)

        def robust_claim(b: str, attack: str, eps: float, headline: bool) -> None:
            what = CLAIM_ATTACKS[attack]
            if attack == "worst":
                metric = (f"worst-case robust accuracy at ε = {_eps_text(ds, eps)}: share of the "
                          f"shared test subset's images (the first {n_attack}) classified "
                          "correctly that no attack run there broke")
            else:
                spec = self.attack(block["attacks"][attack]) if attack in block["attacks"] \
                    else {}
                metric = (f"{what} robust accuracy at ε = {_eps_text(ds, eps)}: share of the "
                          f"attacked images (first {self.n_images(spec) if spec else n_attack} "
                          "of the shared subset) classified correctly and not broken")
            add(f"ours-{b}-{attack}-{_eps_id(ds, eps)}",
                text=CLAIM_TEXT[b], where=f"§5.2, {where_t}", metric=metric,
                comparison=f"ours − {b} on {ds}, same seed (paired)", direction="greater",
                headline=headline, worst_case=attack == "worst",
                study_value=_study_robust_value(ref, "ours", b, attack, eps),
                sesoi=ROBUST_SESOI, sesoi_source=ROBUST_SOURCE,
                measure="robust_accuracy", args=dict(a="ours", b=b, attack=attack, eps=eps))

        headline = ds == self.headline_dataset()
        for b in ("natural", "crossentropy"):
            robust_claim(b, "worst", mid, headline)
        for b in ("natural", "crossentropy"):
            for eps in eps_all:
                for attack in CLAIM_ATTACKS:
                    if attack == "worst" and (eps == mid or eps != max(eps_all)):
                        continue
                    robust_claim(b, attack, eps, False)
        nat = ref.get("rows", {})
        add("ours-natural-clean",
            text="The margin penalty costs little natural accuracy (within 2 points: our margin)",
            where=f"§5.2, {where_t}",
            metric=f"natural accuracy on the shared test subset (first {n_attack} images)",
            comparison=f"ours − natural on {ds}, same seed (paired)", direction="at_least",
            margin=NATURAL_MARGIN, sesoi_source=NATURAL_SOURCE,
            study_value=(f"Ours {nat['ours']['natural']:g} % vs Natural "
                         f"{nat['natural']['natural']:g} %") if "ours" in nat else "",
            measure="natural_accuracy", args=dict(a="ours", b="natural"))
        c10 = tables.get("cifar10", {})
        add(f"ours_minmax-minmax-worst-{_eps_id(ds, mid)}",
            text="The margin penalty on top of min-max training is at least as robust as "
                 "min-max training alone (the study's Ours+AdvTrain against MinMax)",
            where="§5.2, Table 2",
            metric=(f"worst-case robust accuracy at ε = {_eps_text(ds, mid)} (first {n_attack} "
                    "images of the shared subset)"),
            comparison=f"ours_minmax − minmax on {ds}, same seed (paired)",
            direction="at_least", margin=MINMAX_MARGIN, worst_case=True,
            sesoi_source=MINMAX_SOURCE,
            study_value=("CIFAR-10 only, ε = 6/255: " if ds != "cifar10" else "ε = 6/255: ")
            + _study_attacks_value(c10, "ours_minmax", "minmax", 1),
            measure="robust_accuracy", args=dict(a="ours_minmax", b="minmax", attack="worst",
                                                 eps=mid))
        tol = ind.get("jac_zero_tol", 1e-3)
        for a in ("ours", "minmax"):
            add(f"{a}-natural-jaczero",
                text="Robust models have sparser Jacobians: more near-zero entries of ∇ₓg",
                where="§4.3 (Fig. 8)" if a == "minmax" else "§4.3, §5.3",
                metric=(f"share of ∇ₓg entries with |·| < {tol:g} per image, over the first "
                        f"{ind.get('n_examples', n_attack)} images of the shared subset"),
                comparison=f"{a} − natural on {ds}, same seed (paired)", direction="greater",
                study_value=JACOBIAN_ZEROS if a == "minmax" else "",
                sesoi=JACZERO_SESOI, sesoi_source=JACZERO_SOURCE,
                measure="jacobian_zero_share", args=dict(a=a, b="natural"))
        add("indicator-spearman",
            text="The robustness indicator ranks models by robustness without attacking them: "
                 "the smaller the decision function's input gradient, the more robust",
            where="§4.1 (Eq. 9), §4.3", unit="",
            metric=(f"Spearman ρ over the regimes between the mean ‖∇ₓg‖₂ (first "
                    f"{ind.get('n_examples', n_attack)} subset images) and the worst-case "
                    f"robust accuracy at ε = {_eps_text(ds, mid)}; degenerate models left out"),
            comparison=f"across the regimes of {ds} ({', '.join(labels)}), same seed",
            direction="less", sesoi=SPEARMAN_SESOI, sesoi_source=SPEARMAN_SOURCE,
            measure="indicator_spearman", args=dict(indicator="grad_l2", eps=mid, labels=labels))
        return out

    def claim_records(self) -> dict:
        """Per dataset: every regime's models (seed, robust-evaluation key, the per-image
        files of the study's attacks and the indicator)."""
        if not self.enabled:
            return {}
        from .robustness import images_file, model_key

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
        if not self.enabled:
            return []
        out = []
        seeds = self.block["seeds"]
        extra = self.block.get("seeds_per_recipe", {})
        if extra:
            out.append("seeds: " + "; ".join(f"{r}: {', '.join(map(str, s))}"
                                             for r, s in extra.items())
                       + f"; every other regime: {', '.join(map(str, seeds))} (the study: one "
                         "run each, no intervals)")
        else:
            out.append(f"seeds: {', '.join(map(str, seeds))} for every regime (the study: one run "
                       "each, no intervals)")
        for ds, block in self.block["datasets"].items():
            out += self._dataset_deviations(ds, block)
        ind = self.block.get("indicator", {})
        out.append(f"indicator: ∇ₓg entries below {ind.get('jac_zero_tol', 1e-3):g} count as zero "
                   "(the study's footnote thresholds are lost from its text), on the first "
                   f"{ind.get('n_examples')} images of the shared test subset (the study: "
                   "randomly taken test images)")
        return out

    def _dataset_deviations(self, ds: str, block: dict) -> list[str]:
        """One dataset block's differences from the study's setting (or from Madry et al.'s
        where the study follows them), formatted from the config."""
        out = []
        regimes = block["regimes"]
        mnist_like = ds != "cifar10"
        nat = self.recipe(regimes["natural"]) if "natural" in regimes else None
        if nat and nat["arch"] == "mnist002" and nat.get("arch_kwargs", {}) != MADRY_MNIST_NET:
            kw = ", ".join(f"{k} {v}" for k, v in nat.get("arch_kwargs", {}).items())
            out.append(f"{ds}: net mnist002 with {kw} (Madry et al.'s MNIST net: widths "
                       "[32, 64], hidden 1024; the study names only the layer types)")
        subset = (self.cfg["variants"].get(block["variant"], {}).get("subset") or {})
        if subset.get("train"):
            out.append(f"{ds}: the first {subset['train']:,} training images (the study: the "
                       "whole training set)")
        epochs: dict[int, list[str]] = {}
        for label, recipe in regimes.items():
            epochs.setdefault(self.recipe(recipe)["epochs"], []).append(label)
        out.append(f"{ds}: epochs " + "; ".join(f"{e} ({', '.join(ls)})" for e, ls in
                                                epochs.items())
                   + (" (the study gives none for MNIST)" if mnist_like else
                      " (the study: about 30 natural, 100 with its penalty, over 400 min-max)"))
        for label in ("ours", "ours_minmax"):
            pen = self.recipe(regimes[label]).get("regime", {}).get("penalty") \
                if label in regimes else None
            if pen:
                out.append(f"{ds}: {label}: margin penalty c = {pen['coef']:g} with the "
                           f"{pen.get('norm', 'l2').upper()} norm (the study: c = 500, norm not "
                           "named; it collapses our nets, docs/study002.md)")
        if "crossentropy" in regimes:
            pen = self.recipe(regimes["crossentropy"]).get("regime", {}).get("penalty", {})
            out.append(f"{ds}: CE gradient penalty λ = {pen.get('coef', float('nan')):g} (the "
                       "study gives none)")
        for label in ("minmax", "ours_minmax"):
            adv = self.recipe(regimes[label]).get("regime", {}).get("adversary") \
                if label in regimes else None
            if not adv or not mnist_like:
                continue  # the study gives no min-max setting on CIFAR-10
            ramp = adv.get("eps_ramp_epochs") or 0
            madry = (adv["kind"], adv.get("steps"), adv.get("step_size"), adv["eps"]) == \
                ("pgd", 40, 0.01, 0.3)
            if not madry or ramp:
                out.append(
                    f"{ds}: {label}: {adv['kind'].upper()}-{adv.get('steps', 1)} of step "
                    f"{adv.get('step_size', 0):g} at ε = {adv['eps']:g}"
                    + (f", ε warmed up over the first {ramp:g} epoch(s)" if ramp else "")
                    + " (Madry et al.: PGD-40 of 0.01 at ε = 0.3, no warm-up)")
        if block.get("reference") and "advtrain" not in regimes:
            out.append(f"{ds}: no AdvTrain (Kurakin et al.) row: configs/extended.yaml trains it")
        n = self.n_images(self.attack(next(iter(block["attacks"].values()))))
        if n != "all" and int(n) < TEST_IMAGES:
            out.append(f"{ds}: FGSM, BIM and C&W on the first {n} images of a seeded "
                       f"permutation of the {TEST_IMAGES:,} test images, shared by every model "
                       "(the study: its test set)")
        return out


# ---- claims ----
MADRY_MNIST_NET = {"widths": [32, 64], "hidden": 1024}  # mnist002 at Madry et al.'s size
TEST_IMAGES = 10_000  # test-set size of MNIST, Fashion-MNIST and CIFAR-10
# The study's attacks (Tables 1, 2) and the worst case over every attack run on a model
CLAIM_ATTACKS = {"fgsm": "FGSM", "bim": "BIM", "cw": "C&W", "worst": "worst case"}
CLAIM_TEXT = {
    "natural": "The margin penalty (Ours) is more robust than natural training",
    "crossentropy": "The margin penalty stays more robust than the cross-entropy gradient "
                    "penalty (CrossEntropy, Ross & Doshi-Velez) as ε grows, where the latter "
                    "drops fast",
}
# §4.3's Jacobian zero shares of Madry's MNIST models (not in the printed tables)
JACOBIAN_ZEROS = "zeros in the Jacobian: natural 1.1 %, robust (min-max) 54.0 %"
# Margins and smallest effects of interest (accuracy and shares as fractions), fixed before any
# run. Robust accuracy: the study calls Ours and CrossEntropy "similar robustness" at ε = 0.1
# (§5.2), where Table 1 differs by at most 1.1 points, and CrossEntropy's "drops very fast" at
# ε = 0.2, 0.3, where it differs by 10 to 53 points: 5 points lies between.
ROBUST_SESOI = 0.05
ROBUST_SOURCE = ('"achieves similar robustness as ours" at ε = 0.1 (§5.2; Table 1: ≤ 1.1 points '
                 'apart) against "drops very fast" (10–53 points at ε = 0.2, 0.3): 5 points')
NATURAL_MARGIN = 0.02   # our claim "costs little natural accuracy": within 2 points
NATURAL_SOURCE = ("the study sets its penalty's natural accuracy beside Natural's without "
                  "comment (Table 1: 98.4 vs 99.1 %; Table 2: 84.2 vs 87.2 %): the "
                  "non-inferiority margin, 2 points (ours)")
MINMAX_MARGIN = 0.02    # Ours+AdvTrain "at least as robust as" MinMax: within 2 points (ours)
MINMAX_SOURCE = ('"can achieves comparable robustness" (§5.2, Ours against MinMax): the '
                 'non-inferiority margin, 2 points (ours; Table 2 at 6/255 prints Ours+AdvTrain '
                 '7–10 points below MinMax)')
# Jacobian zero share: §4.3 prints 1.1 % (natural) vs 54.0 % (min-max), a 53-point gap; 10
# points is about a fifth of it
JACZERO_SESOI = 0.10
JACZERO_SOURCE = ('"robust model\'s Jacobian and Hessian are more sparse" (§4.3; zeros 1.1 % vs '
                  '54.0 %): 10 points, about a fifth of that gap')
# The indicator's rank correlation with robustness: "correlates well" (abstract): |ρ| ≥ 0.5
SPEARMAN_SESOI = 0.5
SPEARMAN_SOURCE = ('"the geometry property of decision surface in input space correlates well '
                   'with the adversarial robustness" (abstract): a Spearman ρ of at least 0.5 '
                   'in size')


def _eps_text(ds: str, eps: float) -> str:
    return f"{eps * 255:.3g}/255" if ds == "cifar10" else f"{eps:g}"


def _eps_id(ds: str, eps: float) -> str:
    return f"{eps * 255:.3g}of255" if ds == "cifar10" else f"{eps:g}"


def _eps_index(ref: dict, eps: float) -> int | None:
    return next((i for i, e in enumerate(ref.get("eps", []))
                 if abs(float(e) - eps) <= 1e-6 * max(abs(eps), 1e-12)), None)


def _study_attacks_value(ref: dict, a: str, b: str, idx: int | None) -> str:
    """'Ours 70.3/64.9/72.6 vs Natural 12.9/0.0/0.0 % (FGSM/BIM/C&W)' from a printed table."""
    rows = ref.get("rows", {})
    if idx is None or a not in rows or b not in rows:
        return ""
    cols = [c for c in ("fgsm", "bim", "cw") if c in rows[a] and c in rows[b]]
    vals = {r: "/".join(f"{rows[r][c][idx]:g}" for c in cols) for r in (a, b)}
    names = "/".join(CLAIM_ATTACKS[c] for c in cols)
    return (f"{rows[a]['paper_label']} {vals[a]} vs {rows[b]['paper_label']} {vals[b]} % "
            f"({names}); worst of them {min(rows[a][c][idx] for c in cols):g} vs "
            f"{min(rows[b][c][idx] for c in cols):g} %")


def _study_robust_value(ref: dict, a: str, b: str, attack: str, eps: float) -> str:
    """The study's numbers for one robust-accuracy claim ('' where its table has no row)."""
    idx = _eps_index(ref, eps)
    rows = ref.get("rows", {})
    if attack == "worst":
        return _study_attacks_value(ref, a, b, idx)
    if idx is None or a not in rows or b not in rows or attack not in rows[a]:
        return ""
    return (f"{rows[a]['paper_label']} {rows[a][attack][idx]:g} % vs {rows[b]['paper_label']} "
            f"{rows[b][attack][idx]:g} %")


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
