"""Study 000 — Jiang, *Gauss-Newton under adversarial attacks*: its plan (the DAG).

SGD, Adam and Gauss-Newton (and K-FAC, the study's §4 next step) from one initialisation on
clean and 10 %-label-poisoned MNIST;
FGSM success (Tables 1, 2; 1b at equal training loss and 1c at equal training accuracy, ours),
SAM-style sharpness (Table 3), input-gradient norm and logit margin (Figs. 2, 3), training
summary and curves. The plan class: config checks, targets and each output's inputs and
params; its claims are declared in `claims`, its words in `text`.
"""

from __future__ import annotations

from typing import Any

from .. import paths
from ..base import StudyPlan
from ..robustness import model_key
from . import claims as study_claims
from .text import (CAPTIONS, FIGURE_TEXTS, FOOTER, LABELS, SHORT_LABELS, STUDY_DATASET,
                   data_name, deviations)

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
        return [on for on in MATCH_ON if m and on in m["by"]]

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

    def scatter_models(self, datasets: list[str]) -> list[dict]:
        """Every final model on the study's data sets among `datasets`, both variants."""
        return [dict(r, study="study000") for r in self.models(
            self.variants(), datasets=[d for d in self.datasets() if d in datasets])]

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

    # ---- claims (declared in .claims; evidence: curvrobust.reports.study000.claim_evidence) ----
    def claims(self) -> list[dict]:
        return study_claims.claims(self)

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
        return deviations(self)
