# Study 003 (Deng, He, Huang, Su, dynamics of first-order adversaries): a two-layer scalar
# network on a ±1 digit pair, inputs scaled by s (one input_scale variant per s, the threat
# radius and data range scaled alike); projected gradient ascent on the adversary from several
# random starts, at initialisation and after PGA adversarial training (one run per learning-rate
# scaling, in lr_{scaling}/ of each scale and seed); tables and figures of convergence and
# landscape regularity against s; its claims in rules/claims.smk. Plan: curvrobust.plans.study003.


rule study003:
    input:
        S3.targets(),


rule init_pga_model:
    input:
        code=code("init_pga_model"),
    output:
        S3.init_pattern(),
    log:
        f"{REPORT_LOGS}/init_pga_model/{{dataset}}_seed{{seed}}.log",
    conda:
        "../envs/curvrobust.yaml"
    params:
        model=S3.model_spec(),
    script:
        "../workflow_scripts/init_pga_model.py"


rule train_pga_model:
    input:
        init=S3.init_pattern(),
        train=f"{paths.DATA}/train.pt",
        test=f"{paths.DATA}/test.pt",
        code=code("train_pga_model"),
    output:
        model=f"{S3.training_pattern()}/model.pt",
        epochs=f"{S3.training_pattern()}/epochs.csv",
        steps=f"{S3.training_pattern()}/steps.csv",
    log:
        f"{REPORT_LOGS}/train_pga_model/{{dataset}}_{{variant}}_seed{{seed}}_{{lr_scaling}}.log",
    benchmark:
        f"{REPORT_BENCHMARKS}/train_pga_model/{{dataset}}_{{variant}}_seed{{seed}}_{{lr_scaling}}.tsv"
    wildcard_constraints:
        lr_scaling=alternatives(plans.study003.LR_SCALINGS),
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        pair=S3.block.get("pair"),
        n_train=S3.block.get("n_train"),
        n_test=S3.block.get("n_test"),
        threat=lambda w: S3.threat(w.variant),
        spec=S3.training_spec(),
        device=config["device"],
        deterministic=config.get("deterministic", True),
    script:
        "../workflow_scripts/train_pga_model.py"


rule attack_pga:
    input:
        model=S3.init_pattern(),
        test=f"{paths.DATA}/test.pt",
        code=code("attack_pga"),
    output:
        trace=f"{S3.dir}/{{dataset}}/{{variant}}/seed{{seed}}/pga_{{stage}}_trace.csv",
        examples=f"{S3.dir}/{{dataset}}/{{variant}}/seed{{seed}}/pga_{{stage}}_examples.csv",
    log:
        f"{REPORT_LOGS}/attack_pga/{{dataset}}_{{variant}}_seed{{seed}}_{{stage}}.log",
    benchmark:
        f"{REPORT_BENCHMARKS}/attack_pga/{{dataset}}_{{variant}}_seed{{seed}}_{{stage}}.tsv"
    wildcard_constraints:
        stage="init",
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        pair=S3.block.get("pair"),
        threat=lambda w: S3.threat(w.variant),
        spec=S3.pga_settings(),
        device=config["device"],
    script:
        "../workflow_scripts/attack_pga.py"


rule attack_pga_trained:
    input:
        model=f"{S3.training_pattern()}/model.pt",
        test=f"{paths.DATA}/test.pt",
        code=code("attack_pga"),
    output:
        trace=f"{S3.training_pattern()}/pga_{{stage}}_trace.csv",
        examples=f"{S3.training_pattern()}/pga_{{stage}}_examples.csv",
    log:
        f"{REPORT_LOGS}/attack_pga/{{dataset}}_{{variant}}_seed{{seed}}_{{lr_scaling}}_{{stage}}.log",
    benchmark:
        f"{REPORT_BENCHMARKS}/attack_pga/{{dataset}}_{{variant}}_seed{{seed}}_{{lr_scaling}}_{{stage}}.tsv"
    wildcard_constraints:
        stage="trained",
        lr_scaling=alternatives(plans.study003.LR_SCALINGS),
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        pair=S3.block.get("pair"),
        threat=lambda w: S3.threat(w.variant),
        spec=S3.pga_settings(),
        device=config["device"],
    script:
        "../workflow_scripts/attack_pga.py"


rule make_table_study003:
    input:
        data=lambda w: S3.inputs(w.dataset, w.table),
        code=code("make_table_study003"),
    output:
        csv=report(
            f"{S3.dir}/{{dataset}}/{{table}}.csv",
            category="Study 003",
            subcategory="Tables",
            caption="../report/study003_table.rst",
        ),
        md=f"{S3.dir}/{{dataset}}/{{table}}.md",
        tex=f"{S3.dir}/{{dataset}}/{{table}}.tex",
    log:
        f"{REPORT_LOGS}/make_table_study003/{{dataset}}_{{table}}.log",
    wildcard_constraints:
        table="|".join(plans.study003.TABLES),
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=lambda w: S3.params(w.dataset, w.table),
        presentation=lambda w: S3.presentation(w.table),
        settings=lambda w: S3.settings(w.table),
    script:
        "../workflow_scripts/make_table_study003.py"


rule plot_figure_study003:
    input:
        data=lambda w: S3.inputs(w.dataset, w.figure),
        code=code("plot_figure_study003"),
    output:
        png=report(
            f"{S3.dir}/{{dataset}}/{{figure}}.png",
            category="Study 003",
            subcategory="Figures",
            caption="../report/study003_figure.rst",
        ),
        pdf=f"{S3.dir}/{{dataset}}/{{figure}}.pdf",
    log:
        f"{REPORT_LOGS}/plot_figure_study003/{{dataset}}_{{figure}}.log",
    wildcard_constraints:
        figure="|".join(plans.study003.FIGURES),
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=lambda w: S3.params(w.dataset, w.figure),
        presentation=lambda w: S3.presentation(w.figure),
        settings=lambda w: S3.settings(w.figure),
    script:
        "../workflow_scripts/plot_figure_study003.py"
