# Study 003 (Deng, He, Huang, Su, dynamics of first-order adversaries): a two-layer scalar
# network on a ±1 digit pair, inputs scaled by s (one input_scale variant per s, the threat
# radius and data range scaled alike); projected gradient ascent on the adversary from several
# random starts, at initialisation and after PGA adversarial training; tables and figures of
# convergence and landscape regularity against s. Helpers: common.smk.


rule study003:
    input:
        study003_targets(),


rule init_pga_model:
    input:
        code=lib_sources("seeds", "data", "models"),
    output:
        S3_INIT,
    log:
        f"{RESULTS}/logs/init_pga_model/{{dataset}}_seed{{seed}}.log",
    conda:
        "../envs/curvrobust.yaml"
    params:
        model=s3_model_spec(),
    script:
        "../workflow_scripts/init_pga_model.py"


rule train_pga_model:
    input:
        init=S3_INIT,
        train=f"{RESULTS}/data/{{dataset}}/{{variant}}/train.pt",
        test=f"{RESULTS}/data/{{dataset}}/{{variant}}/test.pt",
        code=lib_sources("seeds", "variants", "models", "attacks", "pga"),
    output:
        model=f"{S3_DIR}/{{dataset}}/{{variant}}/seed{{seed}}/model.pt",
        epochs=f"{S3_DIR}/{{dataset}}/{{variant}}/seed{{seed}}/epochs.csv",
        steps=f"{S3_DIR}/{{dataset}}/{{variant}}/seed{{seed}}/steps.csv",
    log:
        f"{RESULTS}/logs/train_pga_model/{{dataset}}_{{variant}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_pga_model/{{dataset}}_{{variant}}_seed{{seed}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        pair=S3.get("pair"),
        n_train=S3.get("n_train"),
        n_test=S3.get("n_test"),
        threat=s3_threat,
        spec=S3.get("adversarial_training", {}),
        device=config["device"],
        deterministic=config.get("deterministic", True),
    script:
        "../workflow_scripts/train_pga_model.py"


rule attack_pga:
    input:
        model=lambda w: (
            S3_INIT.format(dataset=w.dataset, seed=w.seed)
            if w.stage == "init"
            else f"{s3_run_dir(w.dataset, w.variant, w.seed)}/model.pt"
        ),
        test=f"{RESULTS}/data/{{dataset}}/{{variant}}/test.pt",
        code=lib_sources("seeds", "variants", "models", "attacks", "pga"),
    output:
        trace=f"{S3_DIR}/{{dataset}}/{{variant}}/seed{{seed}}/pga_{{stage}}_trace.csv",
        examples=f"{S3_DIR}/{{dataset}}/{{variant}}/seed{{seed}}/pga_{{stage}}_examples.csv",
    log:
        f"{RESULTS}/logs/attack_pga/{{dataset}}_{{variant}}_seed{{seed}}_{{stage}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/attack_pga/{{dataset}}_{{variant}}_seed{{seed}}_{{stage}}.tsv"
    wildcard_constraints:
        stage="|".join(S3_STAGES),
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        pair=S3.get("pair"),
        threat=s3_threat,
        spec=S3.get("pga", {}),
        device=config["device"],
    script:
        "../workflow_scripts/attack_pga.py"


rule make_table_study003:
    input:
        data=s3_inputs,
        code=lib_sources("tables"),
    output:
        csv=report(
            f"{S3_DIR}/{{dataset}}/{{table}}.csv",
            category="Study 003",
            subcategory="Tables",
            caption="../report/study003_table.rst",
        ),
        md=f"{S3_DIR}/{{dataset}}/{{table}}.md",
        tex=f"{S3_DIR}/{{dataset}}/{{table}}.tex",
    log:
        f"{RESULTS}/logs/make_table_study003/{{dataset}}_{{table}}.log",
    wildcard_constraints:
        table="|".join(S3_TABLES),
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=s3_params,
    script:
        "../workflow_scripts/make_table_study003.py"


rule plot_figure_study003:
    input:
        data=s3_inputs,
        code=lib_sources("plots", "tables"),
    output:
        png=report(
            f"{S3_DIR}/{{dataset}}/{{figure}}.png",
            category="Study 003",
            subcategory="Figures",
            caption="../report/study003_figure.rst",
        ),
        pdf=f"{S3_DIR}/{{dataset}}/{{figure}}.pdf",
    log:
        f"{RESULTS}/logs/plot_figure_study003/{{dataset}}_{{figure}}.log",
    wildcard_constraints:
        figure="|".join(S3_FIGURES),
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=s3_params,
        initial_steps=S3.get("adversarial_training", {}).get("initial_steps"),
    script:
        "../workflow_scripts/plot_figure_study003.py"
