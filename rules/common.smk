# Helpers shared by every rules/*.smk file (config cross-checks, paths, study target lists) and
# the library sources each rule group depends on.

import json
from pathlib import Path

from snakemake.exceptions import WorkflowError

LIB = Path(workflow.basedir) / "lib" / "curvrobust"
RESULTS = "results"


def check_config(cfg):
    """Cross-references the schema cannot express; fail before any job runs."""
    problems = []
    for name, v in cfg["variants"].items():
        if v["kind"] == "label_poison" and "fraction" not in v:
            problems.append(f"variants.{name}: kind label_poison needs `fraction`")
        if v["kind"] == "input_scale" and "scale" not in v:
            problems.append(f"variants.{name}: kind input_scale needs `scale`")
    s = cfg["studies"].get("study000")
    if s and s["enabled"]:
        if s["dataset"] not in cfg["datasets"]:
            problems.append(
                f"studies.study000.dataset: {s['dataset']!r} is not in `datasets`"
            )
        for key in ("clean_variant", "poisoned_variant"):
            if s[key] not in cfg["variants"]:
                problems.append(
                    f"studies.study000.{key}: {s[key]!r} is not in `variants`"
                )
        for label, recipe in s["recipes"].items():
            if recipe not in cfg["recipes"]:
                problems.append(
                    f"studies.study000.recipes.{label}: recipe {recipe!r} is not in `recipes`"
                )
        for recipe in s.get("seeds_per_recipe", {}):
            if recipe not in s["recipes"].values():
                problems.append(
                    f"studies.study000.seeds_per_recipe: {recipe!r} is not a recipe of the study"
                )
        if s["attack"] not in cfg["attacks"]:
            problems.append(
                f"studies.study000.attack: {s['attack']!r} is not in `attacks`"
            )
        m = s.get("match")
        if m:
            for label in [m["reference"], *m["labels"]]:
                if label not in s["recipes"]:
                    problems.append(
                        f"studies.study000.match: label {label!r} is not in studies.study000.recipes"
                    )
            ref_recipe = s["recipes"].get(m["reference"])
            for label in m["labels"]:
                r = s["recipes"].get(label)
                if (
                    r
                    and ref_recipe
                    and not set(seeds_for(s, ref_recipe)) & set(seeds_for(s, r))
                ):
                    problems.append(
                        f"studies.study000.match: {label} and {m['reference']} share no seed"
                    )
    if problems:
        raise WorkflowError("Invalid configuration:\n  " + "\n  ".join(problems))


def seeds_for(study, recipe):
    return study.get("seeds_per_recipe", {}).get(recipe, study["seeds"])


check_config(config)


def _alternatives(names):
    return "|".join(sorted(names, key=len, reverse=True))


def lib_sources(*modules, data=()):
    """Library files a rule's script depends on, declared as inputs so that an edit reruns
    exactly the rules that use the edited module (Snakemake does not track imports).
    `utils` (I/O, devices, logging) is left out on purpose: nothing in it changes a result.
    """
    files = [LIB / f"{m}.py" for m in modules]
    return [str(f) for f in files] + [str(LIB / d) for d in data]


def model_dir(w=None, **kw):
    d = dict(w.items()) if w is not None else {}
    d.update(kw)
    return (
        f"{RESULTS}/models/{d['dataset']}/{d['variant']}/{d['recipe']}/seed{d['seed']}"
    )


def uses_cuda():
    """Whether jobs will run on CUDA; decides `resources: gpu` of the heavy rules."""
    dev = config["device"]
    if dev == "auto":
        import torch

        return torch.cuda.is_available()
    return dev.startswith("cuda")


def gpu_resource(wildcards):
    return 1 if uses_cuda() else 0


def all_targets():
    targets = []
    s = config["studies"].get("study000")
    if s and s["enabled"]:
        targets += study000_targets()
    return targets


def model_file(w):
    """The checkpoint a `ckpt` wildcard names: the final model or a loss-matched one."""
    name = "model.pt" if w.ckpt == "final" else f"{w.ckpt}.pt"
    return f"{model_dir(w)}/{name}"


# ---- study 000 ----
S0 = config["studies"].get("study000", {})
S0_DIR = f"{RESULTS}/study000"
S0_TABLES = [
    "table1_fgsm_clean",
    "table2_fgsm_poisoned",
    "table3_sam_median",
    "training_summary",
]
if S0.get("match"):
    S0_TABLES.append("table1b_fgsm_matched_loss")
S0_FIGURES = [
    "fig2_input_grad_norm",
    "fig3_logit_margin",
    "fig_sam_per_example",
    "fig_training_curves",
]


def s0_models(variants, ckpt="final", labels=None):
    """One record per (optimizer label, variant, seed) model of study 000."""
    out = []
    for label, recipe in S0["recipes"].items():
        if labels is not None and label not in labels:
            continue
        for variant in variants:
            for seed in seeds_for(S0, recipe):
                out.append(
                    dict(
                        label=label,
                        variant=variant,
                        recipe=recipe,
                        seed=seed,
                        dataset=S0["dataset"],
                        ckpt=ckpt,
                    )
                )
    return out


def s0_matched_models():
    """Table 1b: loss-matched checkpoints of the matched labels plus the reference's final model."""
    m = S0["match"]
    ref_recipe = S0["recipes"][m["reference"]]
    ref_seeds = set(seeds_for(S0, ref_recipe))
    recs = s0_models([S0["clean_variant"]], labels=[m["reference"]])
    for r in s0_models(
        [S0["clean_variant"]], ckpt=f"match-{ref_recipe}", labels=m["labels"]
    ):
        if r["seed"] in ref_seeds:
            recs.append(r)
    return recs


def s0_records(name):
    both = [S0["clean_variant"], S0["poisoned_variant"]]
    return {
        "table1_fgsm_clean": lambda: s0_models([S0["clean_variant"]]),
        "table2_fgsm_poisoned": lambda: s0_models([S0["poisoned_variant"]]),
        "table1b_fgsm_matched_loss": s0_matched_models,
        "table3_sam_median": lambda: s0_models([S0["clean_variant"]]),
        "training_summary": lambda: s0_models(both),
        "fig2_input_grad_norm": lambda: s0_models(both),
        "fig3_logit_margin": lambda: s0_models(both),
        "fig_sam_per_example": lambda: s0_models([S0["clean_variant"]]),
        "fig_training_curves": lambda: s0_models(both),
    }[name]()


def s0_file(rec, name):
    mdir = model_dir(**rec)
    sdir = f"{RESULTS}/stats/{rec['dataset']}/{rec['variant']}/{rec['recipe']}/seed{rec['seed']}/{rec['ckpt']}"
    adir = f"{RESULTS}/attacks/{rec['dataset']}/{rec['variant']}/{rec['recipe']}/seed{rec['seed']}/{rec['ckpt']}"
    if name.startswith(("table1", "table2")):
        return f"{adir}/{S0['attack']}.csv"
    if name == "table3_sam_median":
        return f"{sdir}/sam_batches.csv"
    if name == "fig_sam_per_example":
        return f"{sdir}/sam_examples.csv"
    if name in ("training_summary", "fig_training_curves"):
        return f"{mdir}/epochs.csv"
    return f"{sdir}/input_stats.csv"


def s0_inputs(w):
    name = w.get("table", w.get("figure"))
    recs = s0_records(name)
    files = [s0_file(r, name) for r in recs]
    if name == "table1b_fgsm_matched_loss":
        files += [
            f"{model_dir(**r)}/{r['ckpt']}.json" for r in recs if r["ckpt"] != "final"
        ]
    return files


def s0_params(w):
    name = w.get("table", w.get("figure"))
    recs = s0_records(name)
    for r in recs:
        r["file"] = s0_file(r, name)
        if r["ckpt"] != "final":
            r["match_info"] = f"{model_dir(**r)}/{r['ckpt']}.json"
    return recs


def study000_targets():
    out = []
    for t in S0_TABLES:
        out += [f"{S0_DIR}/{t}.{ext}" for ext in ("csv", "md", "tex")]
    for f in S0_FIGURES:
        out += [f"{S0_DIR}/{f}.{ext}" for ext in ("pdf", "png")]
    return out
