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
    problems += check_study001(cfg)
    problems += check_study002(cfg)
    problems += check_study003(cfg)
    if problems:
        raise WorkflowError("Invalid configuration:\n  " + "\n  ".join(problems))


def _haat_adversary(cfg, recipe):
    adv = (cfg["recipes"].get(recipe, {}).get("regime") or {}).get("adversary") or {}
    return adv if adv.get("kind") == "haat" else None


def check_study001(cfg):
    s = cfg["studies"].get("study001")
    if not s or not s["enabled"]:
        return []
    problems = []
    where = "studies.study001.datasets"
    for ds, block in s["datasets"].items():
        if ds not in cfg["datasets"]:
            problems.append(f"{where}: {ds!r} is not in `datasets`")
        if block["variant"] not in cfg["variants"]:
            problems.append(
                f"{where}.{ds}.variant: {block['variant']!r} is not in `variants`"
            )
        named = [(f"models.{k}", r) for k, r in block["models"].items()]
        named += [
            (f"{sw}", r) for sw in ("xi_sweep", "k_sweep") for r in block.get(sw, [])
        ]
        for key, recipe in named:
            if recipe not in cfg["recipes"]:
                problems.append(
                    f"{where}.{ds}.{key}: recipe {recipe!r} is not in `recipes`"
                )
            elif key != "models.pgd_at" and _haat_adversary(cfg, recipe) is None:
                problems.append(
                    f"{where}.{ds}.{key}: recipe {recipe!r} has no haat adversary in its regime"
                )
            elif key in ("xi_sweep", "k_sweep"):
                swept = key.split("_")[0]
                if swept not in _haat_adversary(cfg, recipe):
                    problems.append(
                        f"{where}.{ds}.{key}: recipe {recipe!r} must set its adversary's {swept!r} (the swept value)"
                    )
        if block["pgd"] not in cfg["attacks"]:
            problems.append(
                f"{where}.{ds}.pgd: attack {block['pgd']!r} is not in `attacks`"
            )
    if s["convergence"]["model"] not in ("pgd_at", "haat"):
        problems.append(
            f"studies.study001.convergence.model: {s['convergence']['model']!r} is not a label of `models` (pgd_at, haat)"
        )
    return problems


def check_study002(cfg):
    s = cfg["studies"].get("study002")
    if not s or not s["enabled"]:
        return []
    problems = []
    where = "studies.study002.datasets"
    for ds, block in s["datasets"].items():
        if ds not in cfg["datasets"]:
            problems.append(f"{where}: {ds!r} is not in `datasets`")
        if block["variant"] not in cfg["variants"]:
            problems.append(
                f"{where}.{ds}.variant: {block['variant']!r} is not in `variants`"
            )
        for label, recipe in block["regimes"].items():
            if recipe not in cfg["recipes"]:
                problems.append(
                    f"{where}.{ds}.regimes.{label}: recipe {recipe!r} is not in `recipes`"
                )
        names = [(f"attacks.{c}", a) for c, a in block["attacks"].items()]
        names += [("pgd", block["pgd"]), ("curve", block["curve"])]
        names += [("step_sweep", a) for a in block.get("step_sweep", [])]
        for key, a in names:
            if a not in cfg["attacks"]:
                problems.append(f"{where}.{ds}.{key}: attack {a!r} is not in `attacks`")
        for label in s["surfaces"]["compare"] + block.get("step_sweep_regimes", []):
            if label not in block["regimes"]:
                problems.append(
                    f"{where}.{ds}: regime {label!r} (surfaces.compare / step_sweep_regimes) is not in its `regimes`"
                )
    return problems


def check_study003(cfg):
    s = cfg["studies"].get("study003")
    if not s or not s["enabled"]:
        return []
    problems = []
    where = "studies.study003"
    if s["dataset"] not in cfg["datasets"]:
        problems.append(f"{where}.dataset: {s['dataset']!r} is not in `datasets`")
    for v in s["variants"]:
        spec = cfg["variants"].get(v)
        if v == "init":
            problems.append(
                f"{where}.variants: 'init' names the initialisations' folder; rename the variant"
            )
        elif spec is None:
            problems.append(f"{where}.variants: {v!r} is not in `variants`")
        elif spec["kind"] not in ("input_scale", "clean"):
            problems.append(
                f"{where}.variants: {v!r} has kind {spec['kind']!r}; the study needs input_scale (or clean for s = 1)"
            )
    scales = [s3_scale(v, cfg) for v in s["variants"] if v in cfg["variants"]]
    if len(set(scales)) != len(scales):
        problems.append(
            f"{where}.variants: two variants have the same input scale {scales}"
        )
    if s["pair"][0] == s["pair"][1]:
        problems.append(f"{where}.pair: needs two different classes, got {s['pair']}")
    return problems


def s3_scale(variant, cfg=None):
    """Input scale s of a study-003 variant (the data range is [0, s])."""
    spec = (cfg or config)["variants"][variant]
    return float(spec["scale"]) if spec["kind"] == "input_scale" else 1.0


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


def train_sources(w):
    """Library modules a recipe's training runs through: the regime and attack code only
    for recipes that use them, so that an attack edit retrains only adversarial models.
    """
    regime = config["recipes"][w.recipe].get("regime") or {}
    mods = ["seeds", "variants", "models", "optim", "train"]
    if regime:
        mods.append("regimes")
    adversary = regime.get("adversary")
    if adversary:
        mods.append("attacks")
        if adversary["kind"] == "haat":
            mods.append("haat")
    return lib_sources(*mods)


def attack_sources(w):
    mods = ["variants", "models", "attacks"]
    if config["attacks"][w.attack]["kind"] == "haat":
        mods.append("haat")
    return lib_sources(*mods)


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
    if s1_enabled():
        targets += study001_targets()
    if s2_enabled():
        targets += study002_targets()
    if s3_enabled():
        targets += study003_targets()
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


# ---- study 001 ----
S1 = config["studies"].get("study001", {})
S1_DIR = f"{RESULTS}/study001"


def s1_enabled():
    return bool(S1) and S1["enabled"]


def recipe_epochs(recipe):
    """Epochs with an epoch-end checkpoint (the rule of curvrobust.train.checkpoint_epochs)."""
    r = config["recipes"][recipe]
    ck = r.get("checkpoints", {})
    every = ck.get("every_epochs", 1)
    first = ck.get("first_epoch", every)
    return sorted(set(range(first, r["epochs"] + 1, every)) | {r["epochs"]})


def s1_sweep_value(recipe, key):
    """The adversary's xi or k of a HAAT sweep recipe (check_study001 makes sure it is set)."""
    return config["recipes"][recipe]["regime"]["adversary"][key]


def s1_recipes(ds):
    """Every recipe study 001 trains on `ds`: label -> recipe, models first, then sweeps."""
    block = S1["datasets"][ds]
    out = dict(block["models"])
    for sweep, key in (("xi_sweep", "xi"), ("k_sweep", "k")):
        for recipe in block.get(sweep, []):
            if recipe not in out.values():
                out[f"haat_{key}={s1_sweep_value(recipe, key):g}"] = recipe
    return out


def s1_models(datasets=None, labels=None):
    out = []
    for ds, block in S1.get("datasets", {}).items():
        if datasets is not None and ds not in datasets:
            continue
        for label, recipe in s1_recipes(ds).items():
            if labels is not None and label not in labels:
                continue
            for seed in S1["seeds"]:
                out.append(
                    dict(
                        study="study001",
                        label=label,
                        dataset=ds,
                        variant=block["variant"],
                        recipe=recipe,
                        seed=seed,
                        ckpt="final",
                    )
                )
    return out


def s1_eval_file(ds, recipe, seed, epoch):
    return f"{S1_DIR}/{ds}/eval/{recipe}/seed{seed}/epoch{epoch}.csv"


def s1_convergence_dir(ds, seed):
    return f"{S1_DIR}/{ds}/convergence/seed{seed}"


def s1_outputs(ds):
    """name -> kind of every table and figure of study 001 on dataset `ds`."""
    block = S1["datasets"][ds]
    out = {
        "table_robust_accuracy": "table",
        "table_hvp_error": "table",
        "table_eigvec_alignment": "table",
        "fig1_haat_robust_accuracy": "fig1",
        "fig3_haat_vs_pgd": "fig3",
        "fig4_fd_convergence": "fig4",
    }
    if block.get("xi_sweep"):
        out["fig2a_xi_sweep"] = "xi_sweep"
    if block.get("k_sweep"):
        out["fig2b_k_sweep"] = "k_sweep"
    return out


def s1_records(w):
    """Per model and checkpoint: the evaluation files a study-001 output reads."""
    ds, name = w.dataset, w.get("table", w.get("figure"))
    kind = s1_outputs(ds)[name]
    block = S1["datasets"][ds]
    if kind == "fig4" or name in CONVERGENCE_FILES:
        return []
    labels = {
        "table": None,
        "fig1": ["haat"],
        "fig3": ["haat", "pgd_at"],
        "xi_sweep": None,
        "k_sweep": None,
    }[kind]
    recs = []
    for r in s1_models([ds], labels):
        if kind in ("xi_sweep", "k_sweep"):
            sweep = block[kind]
            if r["recipe"] not in sweep:
                continue
            r["value"] = s1_sweep_value(r["recipe"], kind.split("_")[0])
        r["evals"] = [
            s1_eval_file(ds, r["recipe"], r["seed"], e)
            for e in recipe_epochs(r["recipe"])
        ]
        recs.append(r)
    return recs


CONVERGENCE_FILES = {
    "fig4_fd_convergence": "trace.csv",
    "table_hvp_error": "hvp_error.csv",
    "table_eigvec_alignment": "alignment.csv",
}


def s1_inputs(w):
    name = w.get("table", w.get("figure"))
    if name in CONVERGENCE_FILES:
        f = CONVERGENCE_FILES[name]
        return [f"{s1_convergence_dir(w.dataset, s)}/{f}" for s in S1["seeds"]]
    return [f for r in s1_records(w) for f in r["evals"]]


def s1_convergence_model(w):
    block = S1["datasets"][w.dataset]
    recipe = block["models"][S1["convergence"]["model"]]
    return f"{model_dir(dataset=w.dataset, variant=block['variant'], recipe=recipe, seed=w.seed)}/model.pt"


def s1_convergence_adversary(w):
    block = S1["datasets"][w.dataset]
    recipe = block["models"][S1["convergence"]["model"]]
    return config["recipes"][recipe]["regime"]["adversary"]


def s1_checkpoint_dir(w):
    return model_dir(w, variant=S1["datasets"][w.dataset]["variant"])


def study001_targets():
    out = []
    for ds in S1["datasets"]:
        for name in s1_outputs(ds):
            exts = ("csv", "md", "tex") if name.startswith("table") else ("pdf", "png")
            out += [f"{S1_DIR}/{ds}/{name}.{ext}" for ext in exts]
    return out


# ---- study 002 ----
S2 = config["studies"].get("study002", {})
S2_DIR = f"{RESULTS}/study002"
S2_LABELS = ["natural", "advtrain", "crossentropy", "ours", "minmax", "ours_minmax"]


def s2_enabled():
    return bool(S2) and S2["enabled"]


def s2_table_name(ds):
    return S2["datasets"][ds].get("table", f"table_{ds}_attacks")


def s2_tables():
    if not s2_enabled():
        return {}
    out = {
        s2_table_name(ds): dict(kind="accuracy", dataset=ds) for ds in S2["datasets"]
    }
    out["table_pgd_restarts"] = dict(kind="pgd")
    if any(d.get("step_sweep") for d in S2["datasets"].values()):
        out["table_step_sweep"] = dict(kind="step_sweep")
    out["table_indicator"] = dict(kind="indicator")
    out["training_summary"] = dict(kind="training")
    return out


def s2_figures():
    if not s2_enabled():
        return {}
    out = {}
    for ds in S2["datasets"]:
        out[f"fig2_param_surface_{ds}"] = dict(kind="param_surface", dataset=ds)
        out[f"fig3_input_loss_surface_{ds}"] = dict(kind="input_loss", dataset=ds)
        out[f"fig4_loss_vs_decision_{ds}"] = dict(kind="loss_vs_decision", dataset=ds)
        out[f"fig6_decision_surface_{ds}"] = dict(kind="decision", dataset=ds)
        out[f"fig8_jacobian_{ds}"] = dict(kind="jacobian", dataset=ds)
    out["fig_accuracy_vs_eps"] = dict(kind="curve")
    if any(d.get("step_sweep") for d in S2["datasets"].values()):
        out["fig_step_sweep"] = dict(kind="step_sweep")
    out["fig_indicator_scatter"] = dict(kind="scatter")
    return out


S2_TABLES = s2_tables()
S2_FIGURES = s2_figures()


def s2_models(datasets=None, labels=None):
    """One record per (dataset, regime label, seed) model of study 002."""
    out = []
    for ds, block in S2.get("datasets", {}).items():
        if datasets is not None and ds not in datasets:
            continue
        for label, recipe in block["regimes"].items():
            if labels is not None and label not in labels:
                continue
            for seed in S2["seeds"]:
                out.append(
                    dict(
                        study="study002",
                        label=label,
                        dataset=ds,
                        variant=block["variant"],
                        recipe=recipe,
                        seed=seed,
                        ckpt="final",
                    )
                )
    return out


def indicator_models():
    """Every classifier the workflow trains on a dataset study 002 evaluates (all studies):
    the points of the indicator scatter. Later studies add their models here."""
    recs = s2_models()
    if s1_enabled():
        datasets = [d for d in S1["datasets"] if d in S2.get("datasets", {})]
        recs += s1_models(datasets, labels=["pgd_at", "haat"])
    s0 = config["studies"].get("study000")
    if s0 and s0["enabled"] and s0["dataset"] in S2.get("datasets", {}):
        for r in s0_models([s0["clean_variant"], s0["poisoned_variant"]]):
            recs.append(dict(r, study="study000"))
    return recs


def run_dir(kind, rec):
    """results/{attacks|stats|surfaces}/... folder of one model checkpoint."""
    return f"{RESULTS}/{kind}/{rec['dataset']}/{rec['variant']}/{rec['recipe']}/seed{rec['seed']}/{rec['ckpt']}"


def s2_middle_eps(ds):
    eps = config["attacks"][
        S2["datasets"][ds]["attacks"].get(
            "fgsm", next(iter(S2["datasets"][ds]["attacks"].values()))
        )
    ]["eps"]
    return sorted(eps)[len(eps) // 2]


def s2_sweep_labels(ds):
    block = S2["datasets"][ds]
    return block.get("step_sweep_regimes", list(block["regimes"]))


def s2_records(name):
    """Records (model + the files a table or figure reads) of one study-002 output."""
    spec = {**S2_TABLES, **S2_FIGURES}[name]
    kind, ds = spec["kind"], spec.get("dataset")
    recs = []
    compare = S2["surfaces"]["compare"]
    if kind == "scatter":
        for r in indicator_models():
            curve = S2["datasets"][r["dataset"]]["curve"]
            recs.append(
                dict(
                    r,
                    indicator=f"{run_dir('stats', r)}/indicator.csv",
                    attack=f"{run_dir('attacks', r)}/{curve}.csv",
                    eps=s2_middle_eps(r["dataset"]),
                )
            )
        return recs
    for r in s2_models([ds] if ds else None):
        block = S2["datasets"][r["dataset"]]
        files = {}
        if kind == "accuracy":
            files = {
                c: f"{run_dir('attacks', r)}/{a}.csv"
                for c, a in block["attacks"].items()
            }
        elif kind == "pgd":
            files = {"pgd": f"{run_dir('attacks', r)}/{block['pgd']}.csv"}
            if "bim" in block["attacks"]:
                files["bim"] = f"{run_dir('attacks', r)}/{block['attacks']['bim']}.csv"
        elif kind == "step_sweep":
            if r["label"] not in s2_sweep_labels(r["dataset"]):
                continue
            names = list(block.get("step_sweep", []))
            names += [
                block["attacks"][c] for c in ("bim", "cw") if c in block["attacks"]
            ]
            files = {a: f"{run_dir('attacks', r)}/{a}.csv" for a in names}
        elif kind == "curve":
            files = {"curve": f"{run_dir('attacks', r)}/{block['curve']}.csv"}
        elif kind == "indicator":
            files = {
                "indicator": f"{run_dir('stats', r)}/indicator.csv",
                "curve": f"{run_dir('attacks', r)}/{block['curve']}.csv",
            }
            r["eps"] = s2_middle_eps(r["dataset"])
        elif kind == "training":
            files = {"epochs": f"{model_dir(**r)}/epochs.csv"}
        elif kind == "jacobian":
            files = {"jacobians": f"{run_dir('stats', r)}/jacobians.pt"}
        elif kind in ("input_loss", "loss_vs_decision", "decision"):
            if kind == "loss_vs_decision" and r["label"] != compare[0]:
                continue
            if kind != "loss_vs_decision" and r["label"] not in compare:
                continue
            files = {"surface": f"{run_dir('surfaces', r)}/input.npz"}
        elif kind == "param_surface":
            if r["label"] not in compare:
                continue
            files = {"surface": f"{run_dir('surfaces', r)}/param.npz"}
        if kind in ("jacobian",) and r["label"] not in compare:
            continue
        recs.append(dict(r, files=files))
    return recs


def s2_inputs(w):
    name = w.get("table", w.get("figure"))
    files = []
    for r in s2_records(name):
        files += (
            list(r["files"].values()) if "files" in r else [r["indicator"], r["attack"]]
        )
    return files


def s2_params(w):
    return s2_records(w.get("table", w.get("figure")))


def study002_targets():
    out = []
    for t in S2_TABLES:
        out += [f"{S2_DIR}/{t}.{ext}" for ext in ("csv", "md", "tex")]
    for f in S2_FIGURES:
        out += [f"{S2_DIR}/{f}.{ext}" for ext in ("pdf", "png")]
    return out


def s2_used_attacks(w):
    """Specs of the attacks one study-002 table or figure reads (not every attack, so that
    changing one attack reruns only what shows it)."""
    names = set()
    for r in s2_records(w.get("table", w.get("figure"))):
        for path in r.get("files", {}).values():
            if "/attacks/" in path:
                names.add(Path(path).stem)
        if "attack" in r:
            names.add(Path(r["attack"]).stem)
    return {a: config["attacks"][a] for a in sorted(names)}


def s2_used_recipes(w):
    recs = s2_records(w.get("table", w.get("figure")))
    return {r["recipe"]: config["recipes"][r["recipe"]] for r in recs}


def s2_study_params():
    return {
        "datasets": S2["datasets"],
        "surfaces": {"compare": S2["surfaces"]["compare"]},
    }


# ---- study 003 ----
S3 = config["studies"].get("study003", {})
S3_DIR = f"{RESULTS}/study003"
S3_STAGES = ["init", "trained"]
S3_INIT = f"{S3_DIR}/{{dataset}}/init/seed{{seed}}/model.pt"  # shared by every scale
S3_TABLES = ["table_pga_by_scale", "table_adversarial_training"]
S3_FIGURES = [
    "fig_pga_loss_curves",
    "fig_iters_to_tolerance",
    "fig_local_maxima",
    "fig_adversarial_training",
]


def s3_enabled():
    return bool(S3) and S3["enabled"]


def s3_run_dir(dataset, variant, seed):
    return f"{S3_DIR}/{dataset}/{variant}/seed{seed}"


def s3_records(w):
    """One record per (scale variant, seed): its scale and the files a table/figure reads."""
    recs = []
    for v in S3["variants"]:
        for seed in S3["seeds"]:
            d = s3_run_dir(w.dataset, v, seed)
            files = {"epochs": f"{d}/epochs.csv", "steps": f"{d}/steps.csv"}
            for stage in S3_STAGES:
                files[f"{stage}_trace"] = f"{d}/pga_{stage}_trace.csv"
                files[f"{stage}_examples"] = f"{d}/pga_{stage}_examples.csv"
            recs.append(dict(variant=v, scale=s3_scale(v), seed=seed, files=files))
    return recs


S3_TRAINING_OUTPUTS = ["table_adversarial_training", "fig_adversarial_training"]


def s3_params(w):
    """Records with only the files one table or figure reads: the training curves for the
    adversarial-training outputs, the PGA runs for the others, so that a PGA setting does not
    rerun the training table and figure."""
    name = w.get("table", w.get("figure"))
    training = name in S3_TRAINING_OUTPUTS
    recs = []
    for r in s3_records(w):
        files = {
            k: f
            for k, f in r["files"].items()
            if (k in ("epochs", "steps")) == training
        }
        recs.append(dict(r, files=files))
    return recs


def s3_inputs(w):
    return [f for r in s3_params(w) for f in r["files"].values()]


def s3_model_spec():
    """TwoLayerNet kwargs; the input size comes from the data set."""
    return dict(S3.get("model", {}))


def s3_threat(w):
    """The adversary's set for one variant: eps and the data range scaled by its s."""
    s = s3_scale(w.variant)
    return {
        "norm": S3["threat"]["norm"],
        "eps": S3["threat"]["eps"] * s,
        "data_range": [0.0, s],
        "scale": s,
    }


def study003_targets():
    if not s3_enabled():
        return []
    ds = S3["dataset"]
    out = [
        f"{S3_DIR}/{ds}/{t}.{ext}" for t in S3_TABLES for ext in ("csv", "md", "tex")
    ]
    out += [f"{S3_DIR}/{ds}/{f}.{ext}" for f in S3_FIGURES for ext in ("pdf", "png")]
    return out
