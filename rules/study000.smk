# Study 000 (Jiang, Gauss-Newton under adversarial attacks): Tables 1, 1b, 2, 3 and
# Figures 2, 3, plus the training summary the study reports in prose.

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
    for r in s0_models([S0["clean_variant"]], ckpt=f"match-{ref_recipe}", labels=m["labels"]):
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


rule make_table:
    output:
        csv=report(
            f"{S0_DIR}/{{table}}.csv",
            caption="../report/study000_table.rst",
            category="Study 000",
            subcategory="Tables",
            labels={"table": "{table}"},
        ),
        md=f"{S0_DIR}/{{table}}.md",
        tex=f"{S0_DIR}/{{table}}.tex",
    input:
        results=s0_inputs,
        code=lib_sources("tables") + [str(LIB / "reference" / "study000.yaml")],
    params:
        records=s0_params,
        study=S0,
        recipes={r: config["recipes"][r] for r in S0.get("recipes", {}).values()},
    wildcard_constraints:
        table="|".join(S0_TABLES),
    log:
        f"{RESULTS}/logs/make_table/study000_{{table}}.log",
    script:
        "../workflow_scripts/make_table_study000.py"


rule plot_figure:
    output:
        pdf=f"{S0_DIR}/{{figure}}.pdf",
        png=report(
            f"{S0_DIR}/{{figure}}.png",
            caption="../report/study000_figure.rst",
            category="Study 000",
            subcategory="Figures",
            labels={"figure": "{figure}"},
        ),
    input:
        results=s0_inputs,
        code=lib_sources("plots"),
    params:
        records=s0_params,
        study=S0,
    wildcard_constraints:
        figure="|".join(S0_FIGURES),
    log:
        f"{RESULTS}/logs/plot_figure/study000_{{figure}}.log",
    script:
        "../workflow_scripts/plot_figure_study000.py"
