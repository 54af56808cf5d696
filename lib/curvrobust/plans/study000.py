"""Study 000 — Jiang, *Gauss-Newton under adversarial attacks*: its plan.

SGD, Adam and Gauss-Newton (and K-FAC, the study's §4 next step) from one initialisation on
clean and 10 %-label-poisoned MNIST;
FGSM success (Tables 1, 2; 1b at equal training loss and 1c at equal training accuracy, ours),
SAM-style sharpness (Table 3), input-gradient norm and logit margin (Figs. 2, 3), training
summary and curves; and the study's claims as data (`claims`), judged by
curvrobust.reports.study000.claim_evidence and curvrobust.claims.
"""

from __future__ import annotations

import functools
from typing import Any

from . import paths
from .base import StudyPlan, make_claim
from .robustness import model_key

ORDER = ("adam", "sgd", "gn", "kfac")

TABLES = {
    "table1_fgsm_clean": "attack",
    "table2_fgsm_poisoned": "attack",
    "table3_sam_median": "sam_batches",
    "training_summary": "epochs",
    "table1b_fgsm_matched_loss": "attack",
    "table1c_fgsm_matched_accuracy": "attack",
}
FIGURES = {
    "fig2_input_grad_norm": "input_stats",
    "fig3_logit_margin": "input_stats",
    "fig_sam_per_example": "sam_examples",
    "fig_training_curves": "epochs",
}
READS = {**TABLES, **FIGURES}   # output -> the per-model file it reads

# what a matched checkpoint is matched on -> its `ckpt` prefix (match_checkpoint's `match`
# wildcard) and the table that shows it
MATCH_ON = ("loss", "accuracy")
MATCH_PREFIX = {"loss": "match", "accuracy": "matchacc"}
MATCHED_TABLE = {"loss": "table1b_fgsm_matched_loss", "accuracy": "table1c_fgsm_matched_accuracy"}


class Study000(StudyPlan):
    name = "study000"

    def check(self) -> list[str]:
        s, cfg, out = self.block, self.cfg, []
        where = "studies.study000"
        for i, ds in enumerate(s["datasets"]):
            if ds not in cfg["datasets"]:
                out.append(f"{where}.datasets[{i}]: {ds!r} is not in `datasets`")
        for ds, attack in s.get("attack_by_dataset", {}).items():
            if ds not in s["datasets"]:
                out.append(f"{where}.attack_by_dataset.{ds}: {ds!r} is not in "
                           f"{where}.datasets")
            if attack not in cfg["attacks"]:
                out.append(f"{where}.attack_by_dataset.{ds}: {attack!r} is not in `attacks`")
        for key in ("clean_variant", "poisoned_variant"):
            if s.get(key) is not None and s[key] not in cfg["variants"]:
                out.append(f"{where}.{key}: {s[key]!r} is not in `variants`")
        for label, recipe in s["recipes"].items():
            if recipe not in cfg["recipes"]:
                out.append(f"{where}.recipes.{label}: recipe {recipe!r} is not in `recipes`")
        # a recipe the study does not train is allowed: a preset merged onto config.yaml can
        # swap a label's recipe but not delete config.yaml's key (configs/evidence.yaml)
        for recipe in s.get("seeds_per_recipe", {}):
            if recipe not in cfg["recipes"]:
                out.append(
                    f"{where}.seeds_per_recipe.{recipe}: recipe {recipe!r} is not in `recipes`"
                )
        for i, label in enumerate((s.get("headline") or {}).get("labels", [])):
            if label not in s["recipes"]:
                out.append(f"{where}.headline.labels[{i}]: label {label!r} is not in "
                           "studies.study000.recipes")
        if s["attack"] not in cfg["attacks"]:
            out.append(f"{where}.attack: {s['attack']!r} is not in `attacks`")
        m = s.get("match")
        if m:
            for key, label in [("reference", m["reference"])] + [
                (f"labels[{i}]", lab) for i, lab in enumerate(m["labels"])
            ]:
                if label not in s["recipes"]:
                    out.append(
                        f"{where}.match.{key}: label {label!r} is not in studies.study000.recipes"
                    )
            clean = s["clean_variant"]
            if m["reference"] in s["recipes"]:
                ref_seeds = set(self.seeds_of(m["reference"], clean))
                for i, label in enumerate(m["labels"]):
                    if label in s["recipes"] and not ref_seeds & set(self.seeds_of(label, clean)):
                        out.append(
                            f"{where}.match.labels[{i}]: {label} and {m['reference']} share no seed"
                        )
        return out

    def datasets(self) -> list[str]:
        """The data sets the whole design runs on, the study's (MNIST) first where listed."""
        return list(self.block.get("datasets", []))

    def attack_name(self, ds: str) -> str:
        """The FGSM attack run on data set `ds` (`attack_by_dataset`, else `attack`)."""
        return self.block.get("attack_by_dataset", {}).get(ds, self.block["attack"])

    def match_on(self) -> list[str]:
        """What the matched checkpoints are matched on ('loss', 'accuracy': `match.by`); none
        without `match`."""
        m = self.block.get("match")
        return [on for on in MATCH_ON if m and on in m.get("by", MATCH_ON)]

    def variants(self) -> list[str]:
        """The clean variant, and the poisoned one when configured."""
        return [v for v in (self.block["clean_variant"], self.block.get("poisoned_variant"))
                if v is not None]

    def outputs(self) -> dict[str, dict[str, Any]]:
        """'<dataset>/<table or figure>' -> its type, what it reads, dataset and name."""
        out = {}
        skip = {MATCHED_TABLE[on] for on in MATCH_ON if on not in self.match_on()}
        if self.block.get("poisoned_variant") is None:
            skip.add("table2_fgsm_poisoned")
        for ds in self.datasets():
            for kind, names in (("table", TABLES), ("figure", FIGURES)):
                for name, reads in names.items():
                    if name not in skip:
                        out[f"{ds}/{name}"] = dict(type=kind, reads=reads, dataset=ds, name=name)
        return out

    def order(self) -> list[str]:
        """Optimizer labels of the study in display order."""
        return [k for k in ORDER if k in self.block["recipes"]]

    def seeds_of(self, label: str, variant: str) -> list[int]:
        """Seeds of one optimizer label on one variant (of every data set): the headline seeds
        for the headline labels on the clean variant (the headline claim's arms), else
        `seeds_for` its recipe."""
        h = self.block.get("headline")
        if h and label in h["labels"] and variant == self.block["clean_variant"]:
            return list(h["seeds"])
        return self.seeds_for(self.block["recipes"][label])

    def headline_seeds(self) -> dict[str, list[int]]:
        """Seeds of the headline claim's arms: Gauss-Newton and Adam on the clean variant."""
        if not self.enabled:
            return {}
        clean = self.block["clean_variant"]
        return {lab: self.seeds_of(lab, clean) for lab in ("gn", "adam")
                if lab in self.block["recipes"]}

    def clean_only(self) -> list[str]:
        """The labels trained on the clean variant only (`clean_only`; a label listed there
        that `recipes` does not have is simply not trained, so a narrowed preset stays valid)."""
        return list(self.block.get("clean_only", []))

    def models(self, variants, ckpt: str = "final", labels=None, datasets=None) -> list[dict]:
        """One record per (data set, optimizer label, variant, seed) model."""
        out = []
        poisoned = self.block.get("poisoned_variant")
        for ds in self.datasets():
            if datasets is not None and ds not in datasets:
                continue
            for label, recipe in self.block["recipes"].items():
                if labels is not None and label not in labels:
                    continue
                for variant in variants:
                    if variant == poisoned and label in self.clean_only():
                        continue
                    for seed in self.seeds_of(label, variant):
                        out.append(dict(label=label, variant=variant, recipe=recipe, seed=seed,
                                        dataset=ds, ckpt=ckpt))
        return out

    def matched_ckpt(self, on: str) -> str:
        """The `ckpt` of the checkpoints matched on `on` to the reference: match-<recipe> or
        matchacc-<recipe>."""
        return f"{MATCH_PREFIX[on]}-{self.block['recipes'][self.block['match']['reference']]}"

    def matched_models(self, on: str = "loss", datasets=None) -> list[dict]:
        """Tables 1b (`on` 'loss') and 1c ('accuracy'): the matched checkpoints of the matched
        labels (seeds the reference also has) plus the reference's final models."""
        m = self.block["match"]
        clean = [self.block["clean_variant"]]
        ref_seeds = set(self.seeds_of(m["reference"], clean[0]))
        recs = self.models(clean, labels=[m["reference"]], datasets=datasets)
        for r in self.models(clean, ckpt=self.matched_ckpt(on), labels=m["labels"],
                             datasets=datasets):
            if r["seed"] in ref_seeds:
                recs.append(r)
        return recs

    def _models_for(self, ds: str, name: str) -> list[dict]:
        ds = [ds]
        clean, poisoned = self.block["clean_variant"], self.block.get("poisoned_variant")
        for on, table in MATCHED_TABLE.items():
            if name == table:
                return self.matched_models(on, datasets=ds)
        if name == "table2_fgsm_poisoned":
            return self.models([poisoned], datasets=ds)
        if name in ("table1_fgsm_clean", "table3_sam_median", "fig_sam_per_example"):
            return self.models([clean], datasets=ds)
        return self.models(self.variants(), datasets=ds)

    def file(self, rec: dict, reads: str) -> str:
        """The per-model file that an output reading `reads` ('attack', 'epochs', or a
        statistics file's stem) takes from model record `rec`."""
        if reads == "attack":
            return f"{paths.run_dir('attacks', rec)}/{self.attack_name(rec['dataset'])}.csv"
        if reads == "epochs":
            return f"{paths.model_dir(rec)}/epochs.csv"
        return f"{paths.run_dir('stats', rec)}/{reads}.csv"

    def params(self, ds: str, name: str) -> list[dict]:
        """Records of output `name` on data set `ds`: model fields, `file`, and `match_info` for
        matched checkpoints."""
        recs = self._models_for(ds, name)
        reads = READS[name]
        for r in recs:
            r["file"] = self.file(r, reads)
            if r["ckpt"] != "final":
                r["match_info"] = f"{paths.model_dir(r)}/{r['ckpt']}.json"
        return recs

    def inputs(self, ds: str, name: str) -> list[str]:
        recs = self.params(ds, name)
        return [r["file"] for r in recs] + [r["match_info"] for r in recs if "match_info" in r]

    def headline_eps(self, ds: str | None = None) -> float:
        """The radius of the robust evaluation on data set `ds` (default: the first): the
        largest of its FGSM radii."""
        return max(self.attack(self.attack_name(ds or self.datasets()[0]))["eps"])

    def robust_models(self) -> list[dict]:
        recs = self.models(self.variants())
        for on in self.match_on():
            recs += [r for r in self.matched_models(on) if r["ckpt"] != "final"]
        return [dict(r, study=self.name, eps=self.headline_eps(r["dataset"])) for r in recs]

    def attack_inputs(self) -> list[str]:
        return sorted({self.file(r, "attack") for spec in self.outputs().values()
                       if spec["reads"] == "attack"
                       for r in self._models_for(spec["dataset"], spec["name"])})

    def used_recipes(self) -> dict[str, dict]:
        return {r: self.recipe(r) for r in self.block.get("recipes", {}).values()}

    def presentation(self, ds: str, name: str) -> dict[str, Any]:
        """What output `name` on data set `ds` shows beyond its data: the display names and
        order of the study's optimizer labels and its caption (tables) or title and axis label
        (figures), naming the data set."""
        data = data_name(ds)
        order = self.order()
        out: dict[str, Any] = dict(name=name, dataset=ds, order=order,
                                   labels={k: LABELS[k] for k in order},
                                   paper=ds == STUDY_DATASET)
        if name in CAPTIONS:
            out.update(caption=CAPTIONS[name].replace("{data}", data), footer=FOOTER)
        out.update({k: v.replace("{data}", data) for k, v in FIGURE_TEXTS.get(name, {}).items()})
        return out

    # ---- claims (curvrobust.claims; evidence: curvrobust.reports.study000.claim_evidence) ----
    def claim_eps(self) -> list[float]:
        """FGSM radii of the claims: the study's, and any other the config's attack has."""
        attack = self.attack_name(STUDY_DATASET)
        cfg_eps = self.attack(attack)["eps"] if attack in self.cfg.get("attacks", {}) else []
        return sorted({*STUDY_EPS, *(float(e) for e in cfg_eps)}, reverse=True)

    def sam_rho(self) -> float | None:
        """The largest ρ of the per-example sharpness (Table 3's and the figure's)."""
        rho = self.cfg.get("statistics", {}).get("sam", {}).get("rho", [])
        return max(rho) if rho else None

    def claims(self) -> list[dict]:
        if not self.enabled:
            return []
        out: list[dict] = []
        same = "same seed (initial weights and batch order)"

        def images(ds):
            attack = self.attack_name(ds)
            fgsm = self.attack(attack) if attack in self.cfg.get("attacks", {}) else {}
            n = fgsm.get("n_examples", "all")
            return "all test images" if n in (None, "all") else f"{n} test images"

        def fgsm_metric(eps, ds=STUDY_DATASET):
            return (f"FGSM success rate among correctly classified test images "
                    f"(successes / correct), {images(ds)}, ε = {eps:g}")

        def worst_metric(eps, ds=STUDY_DATASET):
            return ("worst-case success rate among correctly classified images over every "
                    f"attack at ε = {eps:g} (FGSM, PGD-CE, margin PGD, Square, transfer), the "
                    "robust evaluation's shared test subset")

        def arm(label, role="clean", ckpt="final", ds=STUDY_DATASET):
            return dict(dataset=ds, label=label, variant=role, ckpt=ckpt)

        def pair(a, b, role="clean", ckpt_b="final", ds=STUDY_DATASET):
            return [arm(a, role, ds=ds), arm(b, role, ckpt_b, ds)]

        def ours_rate_sesoi(direction, data="MNIST"):
            if direction == "equivalent":
                return dict(sesoi_source="K-FAC \"as robust as\" Gauss-Newton (§4's next step): "
                                         "the equivalence margin, 5 points, about a fifth of "
                                         "the printed 24-point Gauss-Newton − Adam gap")
            return dict(sesoi=HEADLINE_SESOI,
                        sesoi_source=f"the headline's SESOI (5 points, \"a clear decrease\", "
                                     f"§3.1) on {data}")

        h_eps = HEADLINE_EPS
        out.append(claim(
            f"000-gn-adam-fgsm-clean-{h_eps:g}",
            "Gauss-Newton results in a clear decrease in the number of successful attacks "
            "(clean data)", "§3.1, Table 1", fgsm_metric(h_eps),
            f"Gauss-Newton − Adam, clean MNIST, {same}", "less", "fgsm_rate",
            dict(eps=h_eps, arms=pair("gn", "adam")), headline=True,
            study_value=printed_pair("gn", "adam", "clean", h_eps), **fgsm_sesoi(h_eps)))
        out.append(claim(
            f"000-gn-adam-worst-clean-{h_eps:g}",
            "the headline under the worst case of all attacks, not only FGSM", "ours",
            worst_metric(h_eps), f"Gauss-Newton − Adam, clean MNIST, {same}", "less",
            "worst_rate", dict(eps=h_eps, arms=pair("gn", "adam")), ours=True,
            worst_case=True, sesoi=HEADLINE_SESOI,
            sesoi_source="the headline's SESOI (5 points), under the worst case of all attacks"))
        for role, where, data in (("clean", "§3.1, Table 1", "clean MNIST"),
                                  ("poisoned", "§3.1, Table 2", "10 %-label-poisoned MNIST")):
            for eps in self.claim_eps():
                for other in ("sgd", "adam"):
                    cid = f"000-gn-{other}-fgsm-{role}-{eps:g}"
                    if cid == out[0]["id"]:
                        continue
                    out.append(claim(
                        cid, f"Gauss-Newton is attacked successfully less often than "
                        f"{LABELS[other]} ({'clean' if role == 'clean' else 'poisoned'} data)",
                        where, fgsm_metric(eps),
                        f"Gauss-Newton − {LABELS[other]}, {data}, {same}", "less", "fgsm_rate",
                        dict(eps=eps, arms=pair("gn", other, role)),
                        study_value=printed_pair("gn", other, role, eps), **fgsm_sesoi(eps)))
        poison = [arm("gn", "poisoned"), arm("gn")]
        out.append(claim(
            f"000-gn-poison-unchanged-{h_eps:g}",
            "Gauss-Newton did not significantly change at all (poisoned vs clean training)",
            "§3.1", fgsm_metric(h_eps), "Gauss-Newton poisoned − Gauss-Newton clean, same seed",
            "equivalent", "fgsm_rate", dict(eps=h_eps, arms=poison), margin=POISON_MARGIN,
            study_value=printed_poison("gn", h_eps),
            sesoi_source='"did not significantly change at all" (§3.1): the equivalence margin, '
                         '3 points (printed change 0.49 point, Tables 1, 2)'))
        for k in ("sgd", "adam"):
            out.append(claim(
                f"000-{k}-poison-{h_eps:g}",
                f"{LABELS[k]} actually improved robustness when trained on poisoned labels",
                "§3.1", fgsm_metric(h_eps), f"{LABELS[k]} poisoned − {LABELS[k]} clean, "
                "same seed", "less", "fgsm_rate",
                dict(eps=h_eps, arms=[arm(k, "poisoned"), arm(k)]),
                study_value=printed_poison(k, h_eps), sesoi=HEADLINE_SESOI,
                sesoi_source='"actually improved robustness" (§3.1), set against Gauss-Newton\'s '
                             '"did not significantly change" (3-point margin): the headline\'s '
                             '5 points'))
        out.append(claim(
            "000-gn-adam-gradnorm", "Gauss-Newton resulted in significantly larger average "
            "input-gradient norm compared to Adam", "§3.2.1, Fig. 2",
            "mean over the test images of ‖∇ₓ CE‖₂ (not squared, as the code)",
            f"Gauss-Newton − Adam, clean MNIST, {same}", "greater", "input_stat",
            dict(column="input_grad_norm", arms=pair("gn", "adam")), unit="",
            sesoi=GRADNORM_SESOI,
            sesoi_source='"significantly larger average norm" (§3.2.1; Fig. 2, no printed '
                         'numbers): 0.1 nat per unit L2 input change, 0.28 nat more first-order '
                         'loss rise along an L2 step of FGSM\'s length at ε = 0.1 (2.8)'))
        out.append(claim(
            "000-gn-adam-margin", "the Gauss-Newton model is more unsure: smaller logit margins "
            "than Adam", "§3.2.1, Fig. 3",
            "mean over the test images of the logit margin z_y − max_{j≠y} z_j",
            f"Gauss-Newton − Adam, clean MNIST, {same}", "less", "input_stat",
            dict(column="logit_margin", arms=pair("gn", "adam")), unit="",
            sesoi=MARGIN_SESOI,
            sesoi_source='"more unsure in absolute magnitude", "timid" (§3.2.1; Fig. 3, no '
                         'printed numbers): one logit, a factor e in the odds of the label '
                         'against the runner-up'))
        rho = self.sam_rho()
        out.append(claim(
            "000-gn-adam-sam", "the Gauss-Newton model has greater curvature at the loss: a "
            "larger SAM loss increase than Adam", "§3.2.2, Table 3",
            "mean over the test images of the per-example loss increase "
            f"CE_i(θ + ρ g_i/‖g_i‖) − CE_i(θ), ρ = {rho:g} (the study: median over batches)"
            if rho is not None else "per-example SAM loss increase (no ρ configured)",
            f"Gauss-Newton − Adam, clean MNIST, {same}", "greater", "sam_example",
            dict(rho=rho, arms=pair("gn", "adam")), unit="",
            study_value=printed_sam(rho),
            sesoi=SAM_SESOI_PER_RHO * (rho if rho is not None else max(PRINTED_SAM["adam"])),
            sesoi_source='"greater curvature at the loss" (§3.2.2): half Adam\'s printed '
                         'increase at the same ρ (Table 3: Adam ≈ 1.0·ρ, Gauss-Newton ≈ '
                         '2.7·ρ), 0.5·ρ'))
        for on, what in (("loss", "loss"), ("accuracy", "acc")):
            for other in ("adam", "sgd"):
                out.append(claim(
                    f"000-gn-{other}-fgsm-match{what}-{h_eps:g}",
                    f"the Gauss-Newton advantage over {LABELS[other]} holds at equal training "
                    f"{on}", "ours", fgsm_metric(h_eps),
                    f"Gauss-Newton final − {LABELS[other]} at the first checkpoint whose "
                    f"whole-training-set {on} reaches Gauss-Newton's final one, clean MNIST, "
                    f"{same}", "less", "fgsm_rate",
                    dict(eps=h_eps, arms=pair("gn", other, ckpt_b=on)), ours=True,
                    sesoi=HEADLINE_SESOI,
                    sesoi_source="the headline's SESOI (5 points) at equal training " + on))
        out.append(claim(
            f"000-gn-sgd-worst-clean-{h_eps:g}",
            "the Gauss-Newton advantage over SGD holds under the worst case of all attacks",
            "ours", worst_metric(h_eps), f"Gauss-Newton − SGD, clean MNIST, {same}", "less",
            "worst_rate", dict(eps=h_eps, arms=pair("gn", "sgd")), ours=True, worst_case=True,
            sesoi=HEADLINE_SESOI,
            sesoi_source="the headline's SESOI (5 points), under the worst case of all attacks"))
        # K-FAC, the study's §4 next step (ours): on the headline's seeds where configured
        kfac_text = {"adam": ("K-FAC is attacked successfully less often than Adam", "less", 0.0),
                     "gn": ("K-FAC is attacked successfully as often as Gauss-Newton", "equivalent",
                            KFAC_GN_MARGIN)}
        for other, (text, direction, margin) in kfac_text.items():
            for kind, metric, measure in (("fgsm", fgsm_metric, "fgsm_rate"),
                                          ("worst", worst_metric, "worst_rate")):
                out.append(claim(
                    f"000-kfac-{other}-{kind}-clean-{h_eps:g}",
                    text + ("" if kind == "fgsm" else ", under the worst case of all attacks"),
                    "§4 (future work), ours", metric(h_eps),
                    f"K-FAC − {LABELS[other]}, clean MNIST, {same}", direction, measure,
                    dict(eps=h_eps, arms=pair("kfac", other)), margin=margin, ours=True,
                    worst_case=kind == "worst", **ours_rate_sesoi(direction)))
        # beyond MNIST (ours, the study's §4): the headline and K-FAC's comparisons on every
        # other configured data set, and always on Fashion-MNIST ("not run" where untrained)
        others = [d for d in dict.fromkeys([*self.datasets(), *CLAIM_DATASETS])
                  if d != STUDY_DATASET]
        for ds in others:
            eps, data = self.other_eps(ds), data_name(ds)
            arms = [("gn", "adam", "Gauss-Newton is attacked successfully less often than Adam",
                     "less", 0.0)]
            arms += [("kfac", other, text, direction, margin)
                     for other, (text, direction, margin) in kfac_text.items()]
            for a, b, text, direction, margin in arms:
                for kind, metric, measure in (("fgsm", fgsm_metric, "fgsm_rate"),
                                              ("worst", worst_metric, "worst_rate")):
                    out.append(claim(
                        f"000-{ds}-{a}-{b}-{kind}-clean-{eps:g}",
                        f"{text} on {data}"
                        + ("" if kind == "fgsm" else ", under the worst case of all attacks"),
                        "§4 (future work), ours", metric(eps, ds),
                        f"{LABELS[a]} − {LABELS[b]}, clean {data}, MNIST's hyper-parameters, "
                        f"{same}", direction, measure,
                        dict(eps=eps, arms=pair(a, b, ds=ds)), margin=margin, ours=True,
                        worst_case=kind == "worst", **ours_rate_sesoi(direction, data)))
        return out

    def other_eps(self, ds: str) -> float:
        """The claims' radius on a data set other than MNIST: the study's headline ε unless
        `attack_by_dataset` gives the data set its own attack (then that attack's largest)."""
        if ds in self.block.get("attack_by_dataset", {}) and \
                self.attack_name(ds) in self.cfg.get("attacks", {}):
            return self.headline_eps(ds)
        return HEADLINE_EPS

    def claim_models(self) -> list[dict]:
        """Every model record the claims read, with its role ('clean' / 'poisoned'), `match`
        ('final', 'loss', 'accuracy'), robust-evaluation key and result files."""
        if not self.enabled:
            return []
        clean, poisoned = self.block["clean_variant"], self.block.get("poisoned_variant")
        role = {clean: "clean", poisoned: "poisoned"}
        out = []
        recs = [(r, "final") for r in self.models(self.variants())]
        recs += [(r, on) for on in self.match_on() for r in self.matched_models(on)
                 if r["ckpt"] != "final"]
        for r, match in recs:
            rec = dict(r, role=role[r["variant"]], match=match, key=model_key(r),
                       fgsm_images=f"{paths.run_dir('attacks', r)}/"
                                   f"{self.attack_name(r['dataset'])}_images.csv")
            if match == "final":
                rec["input_stats"] = f"{paths.run_dir('stats', r)}/input_stats.csv"
                if r["variant"] == clean:
                    rec["sam_examples"] = f"{paths.run_dir('stats', r)}/sam_examples.csv"
            else:
                rec["match_info"] = f"{paths.model_dir(r)}/{r['ckpt']}.json"
            out.append(rec)
        return out

    def claim_records(self) -> dict:
        if not self.enabled:
            return {}
        return dict(labels=dict(SHORT_LABELS), reference=(self.block.get("match") or {}).get(
            "reference"), models=self.claim_models())

    def claim_inputs(self) -> list[str]:
        return sorted({r[k] for r in self.claim_models()
                       for k in ("fgsm_images", "input_stats", "sam_examples", "match_info")
                       if k in r})

    def deviations(self) -> list[str]:
        if not self.enabled:
            return []
        s, out = self.block, []
        recipes = {k: self.cfg["recipes"][r] for k, r in s["recipes"].items()
                   if r in self.cfg["recipes"]}
        for k, r in recipes.items():
            if k == "kfac":
                o = r["optimizer"]
                out.append(
                    f"K-FAC (not trained in the study; its §4 next step): {r['epochs']} epochs, "
                    f"lr {o.get('lr'):g}, λ {o.get('damping', 0.01):g} added to the whole "
                    f"curvature, type-2 Fisher of the "
                    f"{'summed' if o.get('ggn_scale', 'sum') == 'sum' else 'mean'} loss, "
                    f"convolutions '{o.get('kfac_approx', 'expand')}', factors and inverse from "
                    f"the current batch every {o.get('update_every', 1)} steps, no running average")
                continue
            if r["epochs"] != STUDY_EPOCHS:
                out.append(f"{LABELS[k]}: {r['epochs']} of the study's {STUDY_EPOCHS} epochs")
            if r.get("batch_size") != STUDY_BATCH:
                out.append(f"{LABELS[k]}: batch {r.get('batch_size')} (the study: {STUDY_BATCH})")
            opt, ref = r["optimizer"], STUDY_OPTIMIZERS.get(k, {})
            diff = [p for p, v in ref.items() if opt.get(p, v) != v]
            if diff:
                ours = ", ".join(f"{p} {opt.get(p):g}" for p in diff)
                theirs = ", ".join(f"{p} {ref[p]:g}" for p in diff)
                out.append(f"{LABELS[k]}: {ours} (the study: {theirs})")
        gn = recipes.get("gn", {}).get("optimizer", {})
        if gn:
            solver = gn.get("solver", "exact")
            out.append(
                "Gauss-Newton: the step (λI + G)⁻¹g solved exactly through the N·(C−1) kernel "
                "system (solver: exact), equal to the study's dense solve up to rounding"
                if solver == "exact" else
                f"Gauss-Newton: the step solved by conjugate gradients (solver: cg, at most "
                f"{gn.get('cg_max_iter', 50)} iterations), an approximation of the study's "
                "dense solve")
            scale = gn.get("ggn_scale", "sum")
            out.append(
                "Gauss-Newton: G summed over the batch with g the mean-loss gradient "
                "(ggn_scale: sum), as the code behind the study's tables"
                if scale == "sum" else
                "Gauss-Newton: G averaged over the batch (ggn_scale: mean), the later code's "
                "optimiser, not the one behind the study's tables")
        seeds = sorted({sd for label in s["recipes"] for v in self.variants()
                        for sd in self.seeds_of(label, v)})
        h = s.get("headline")
        by_seeds: dict[tuple, list[str]] = {}
        for k in s["recipes"]:
            by_seeds.setdefault(tuple(self.seeds_for(s["recipes"][k])), []).append(LABELS[k])
        others = "; ".join(f"{', '.join(labs)}: seeds {list(sd)}" for sd, labs in by_seeds.items())
        head = (f"; the headline arms ({', '.join(LABELS[k] for k in h['labels'])}, clean) "
                f"seeds {list(h['seeds'])}, the other models {others}" if h else "")
        out.append(f"Seeds {seeds} (the study: one run, seed 42){head}; initial weights and "
                   "batch order drawn by torch, not the JAX code's draws")
        pv = self.cfg["variants"].get(s.get("poisoned_variant") or "", {})
        if pv.get("kind") == "label_poison":
            out.append(f"Poisoning: {100 * pv['fraction']:g} % of the training labels replaced "
                       f"by a uniformly random wrong label, drawn without replacement with seed "
                       f"{pv.get('seed', 0)} (the study: drawn with replacement, unseeded)")
        for v in self.variants():
            sub = self.cfg["variants"].get(v, {}).get("subset")
            if sub:
                size = ", ".join(f"{k} {n}" for k, n in sub.items())
                out.append(f"Variant {v}: a subset of MNIST ({size} images), not the full set")
        for ds in self.datasets():
            if ds != STUDY_DATASET:
                attack = self.attack_name(ds)
                radius = (f"FGSM {attack} (radii {', '.join(f'{e:g}' for e in self.attack(attack)['eps'])})"
                          if attack in self.cfg.get("attacks", {}) else f"FGSM {attack}")
                out.append(f"{data_name(ds)} (not in the study; its §4 next step): the whole "
                           f"design with MNIST's recipes, seeds and hyper-parameters unchanged "
                           f"(nothing tuned on {data_name(ds)}), {radius}")
        fgsm = self.cfg.get("attacks", {}).get(self.attack_name(STUDY_DATASET), {})
        if fgsm.get("n_examples", "all") not in (None, "all"):
            out.append(f"FGSM on {fgsm['n_examples']} test images, not all 10,000")
        missing = [e for e in STUDY_EPS if not any(abs(e - x) < 1e-12
                                                   for x in fgsm.get("eps", []))]
        if missing:
            out.append(f"FGSM ε {missing} of the study not run")
        return out


# ---- claims: the study's numbers and fixed thresholds ----
# Set before any run and never tuned to its outcome.
STUDY_DATASET = "mnist"
# data sets whose claims are listed even when the preset does not run them (they read "not run")
CLAIM_DATASETS = ("fashion_mnist",)
STUDY_EPS = (0.1, 0.05, 0.01)
HEADLINE_EPS = 0.1
STUDY_EPOCHS = 15
STUDY_BATCH = 128
STUDY_OPTIMIZERS = {"sgd": {"lr": 0.01}, "adam": {"lr": 0.001},
                    "gn": {"lr": 0.01, "damping": 0.01}}
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
SHORT_LABELS = {"sgd": "SGD", "adam": "Adam", "gn": "GN", "kfac": "K-FAC"}


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


claim = functools.partial(make_claim, "study000")


def fgsm_sesoi(eps: float) -> dict:
    """sesoi and sesoi_source of an MNIST FGSM-rate claim at ε (HEADLINE_SESOI, or
    SMALL_EPS_SESOI below SMALL_EPS, where the study's rates are all small)."""
    if eps < SMALL_EPS - 1e-12:
        return dict(sesoi=SMALL_EPS_SESOI, sesoi_source=SMALL_EPS_SOURCE.format(eps=eps))
    return dict(sesoi=HEADLINE_SESOI, sesoi_source=HEADLINE_SOURCE)

DATA_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def data_name(ds: str) -> str:
    """How captions and claims name data set `ds` ('Fashion-MNIST'; else the config's name)."""
    return DATA_NAMES.get(ds, ds)


# ---- presentation ----
# Display names and texts of the study's outputs, read by `Study000.presentation` (so through the
# rules' `params`): editing one reruns exactly the outputs that show it. Every text is a
# `str.format` template (literal braces doubled); the data-dependent parts are the placeholders.

LABELS = {"sgd": "SGD", "adam": "Adam", "gn": "Gauss-Newton", "kfac": "K-FAC"}

# Every table caption ends with this; {settings}: each optimizer's settings, {seeds}: the seeds.
FOOTER = "Ours: {settings}; seeds {seeds}; mean ± 95 % interval over seeds where several."

# Table captions; {citation}: the study's reference, {footer}: FOOTER filled in, and for Tables
# 1b and 1c {matched}: the matched optimizers, {reference}: the optimizer they are matched to.
CAPTIONS = {
    "table1_fgsm_clean": (
        "Table 1: FGSM on models trained on clean {data}: correctly classified test images and "
        "successful attacks among them (rate = successes / correct); paper: {citation}. {footer}"
    ),
    "table2_fgsm_poisoned": (
        "Table 2: FGSM on models trained on label-poisoned (10 %) {data}: correctly classified "
        "test images and successful attacks among them (rate = successes / correct); "
        "paper: {citation}. {footer}"
    ),
    "table1b_fgsm_matched_loss": (
        "Table 1b (not in the study): FGSM on clean-trained {data} models compared at equal training "
        "loss: for {matched} the checkpoint where the whole-training-set loss first falls to "
        "{reference}'s final one (the crossing checkpoint or its predecessor, whichever is "
        "closer), {reference} at its final model. {footer}"
    ),
    "table1c_fgsm_matched_accuracy": (
        "Table 1c (not in the study): FGSM on clean-trained {data} models compared at equal training "
        "accuracy, as the study's protocol trains every model to about the same accuracy: for "
        "{matched} the first checkpoint whose whole-training-set accuracy reaches {reference}'s "
        "final one, {reference} at its final model. {footer}"
    ),
    "table3_sam_median": (
        "Table 3: median over test batches of 256 of the loss increase L(θ + ρ g/‖g‖) − L(θ) "
        "(the study's 'SAM analysis'), clean-trained {data} models; paper: {citation}. {footer}"
    ),
    "training_summary": (
        "Training summary, {data}: whole-training-set loss (on the labels trained on) and test accuracy "
        "of the final models; the study trained every model to about 95 % test accuracy and "
        "reports GN's final train loss ≈ 1.0 vs Adam's 0.06.{cos_note} {footer}"
    ),
}

# Figure title and x-axis label; {rho}: the largest ρ (the one plotted). The training curves
# show only the display names.
FIGURE_TEXTS = {
    "fig2_input_grad_norm": dict(
        title="Fig. 2: input-gradient norm on the {data} test set",
        xlabel="‖∇ₓ CE‖₂ (per test image)",
    ),
    "fig3_logit_margin": dict(
        title="Fig. 3: logit margin on the {data} test set",
        xlabel="logit margin z_y − max_{{j≠y}} z_j",
    ),
    "fig_sam_per_example": dict(
        title="Per-example sharpness CE_i(θ+ρg_i/‖g_i‖) − CE_i(θ), {data}",
        xlabel="per-example loss increase, ρ={rho:g}",
    ),
    "fig_training_curves": {},
}
