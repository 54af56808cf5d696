# Robust evaluation of studies 000-002: on every model in scope, the strong attacks
# (cross-entropy PGD, margin-loss PGD, Square), the gradient-masking checks and the validity gate
# at its study's headline eps, and the worst case over every attack run on it; gathered into
# results/masking.{csv,md}. Plan: curvrobust.plans.robustness.


rule craft_transfer:
    input:
        model=lambda w: paths.checkpoint_file(R.transfer_source(w.dataset)),
        test=lambda w: paths.data_file(
            w.dataset, R.transfer_source(w.dataset)["variant"], "test"
        ),
        code=code("craft_transfer"),
    output:
        f"{paths.RESULTS}/robust/transfer/{{dataset}}/adversarial.pt",
    log:
        f"{paths.LOGS}/craft_transfer/{{dataset}}.log",
    benchmark:
        f"{paths.BENCHMARKS}/craft_transfer/{{dataset}}.tsv"
    wildcard_constraints:
        dataset=alternatives(R.transfer_datasets()),
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        source=lambda w: R.transfer_source(w.dataset),
        eps=lambda w: R.transfer_eps(w.dataset),
        settings=R.suite(),
        subset=R.subset(),
        device=config["device"],
    script:
        "../workflow_scripts/craft_transfer.py"


rule evaluate_robustness:
    input:
        model=model_file,
        test=f"{paths.DATA}/test.pt",
        attacks=lambda w: R.record(w)["attacks"],
        transfer=lambda w: R.transfer_inputs(R.record(w)),
        code=code("evaluate_robustness"),
    output:
        outcomes=f"{paths.ROBUST_DIR}/outcomes.csv",
        summary=f"{paths.ROBUST_DIR}/summary.json",
    log:
        f"{paths.LOGS}/evaluate_robustness/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.log",
    benchmark:
        f"{paths.BENCHMARKS}/evaluate_robustness/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        record=lambda w: {k: v for k, v in R.record(w).items() if k != "attacks"},
        settings=R.suite(),
        subset=R.subset(),
        limits=R.limits(),
        validity=lambda w: R.validity(w.dataset),
        device=config["device"],
    script:
        "../workflow_scripts/evaluate_robustness.py"


rule make_masking_report:
    input:
        summaries=[R.summary_file(r) for r in R.models()],
        code=code("make_masking_report"),
    output:
        csv=report(
            R.report_files()["csv"],
            caption="../report/masking.rst",
            category="Robust evaluation",
            subcategory="Gradient-masking checks",
        ),
        md=report(
            R.report_files()["md"],
            caption="../report/masking.rst",
            category="Robust evaluation",
            subcategory="Gradient-masking checks",
        ),
        tex=R.report_files()["tex"],
    log:
        f"{REPORT_LOGS}/make_masking_report/masking.log",
    conda:
        "../envs/curvrobust.yaml"
    params:
        limits=R.limits(),
    script:
        "../workflow_scripts/make_masking_report.py"
