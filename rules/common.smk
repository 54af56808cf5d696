# Helpers shared by every rule file: config cross-checks, paths, wildcard constraints and
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
            problems.append(f"studies.study000.dataset: {s['dataset']!r} is not in `datasets`")
        for key in ("clean_variant", "poisoned_variant"):
            if s[key] not in cfg["variants"]:
                problems.append(f"studies.study000.{key}: {s[key]!r} is not in `variants`")
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
            problems.append(f"studies.study000.attack: {s['attack']!r} is not in `attacks`")
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
                if r and ref_recipe and not set(seeds_for(s, ref_recipe)) & set(seeds_for(s, r)):
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


wildcard_constraints:
    dataset=_alternatives(config["datasets"]),
    variant=_alternatives(config["variants"]),
    recipe=_alternatives(config["recipes"]),
    attack=_alternatives(config["attacks"]),
    seed=r"\d+",
    ckpt="final|match-(?:" + _alternatives(config["recipes"]) + ")",


def lib_sources(*modules):
    """Library files a rule's script depends on, declared as inputs so that an edit reruns
    exactly the rules that use the edited module (Snakemake does not track imports)."""
    return [str(LIB / f"{m}.py") for m in ("__init__", "utils", *modules)]


def model_dir(w=None, **kw):
    d = dict(w.items()) if w is not None else {}
    d.update(kw)
    return f"{RESULTS}/models/{d['dataset']}/{d['variant']}/{d['recipe']}/seed{d['seed']}"


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
