# Study 002 (Yu et al., decision surfaces in input space): Tables 1 and 2 with the stronger
# checks (PGD with restarts, accuracy over eps, step-size sweep), input- and parameter-space
# surfaces (figs 2, 3, 4, 6/9), Jacobian images (fig 8) and the robustness-indicator scatter
# over every model of every study. Plan: curvrobust.plans.study002.


rule study002:
    input:
        S2.targets(),


rule compute_indicator:
    input:
        model=model_file,
        test=f"{paths.DATA}/test.pt",
        code=code("compute_indicator"),
    output:
        table=f"{paths.STATS_DIR}/indicator.csv",
        jacobians=f"{paths.STATS_DIR}/jacobians.pt",
    log:
        f"{paths.LOGS}/compute_indicator/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.log",
    benchmark:
        f"{paths.BENCHMARKS}/compute_indicator/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=S2.block.get("indicator", {}),
        subset=R.subset(),
        device=config["device"],
    script:
        "../workflow_scripts/compute_indicator.py"


rule compute_input_surface:
    input:
        model=model_file,
        test=f"{paths.DATA}/test.pt",
        code=code("compute_input_surface"),
    output:
        f"{paths.SURFACES_DIR}/input.npz",
    log:
        f"{paths.LOGS}/compute_input_surface/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.log",
    benchmark:
        f"{paths.BENCHMARKS}/compute_input_surface/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=S2.block.get("surfaces", {}),
        half_width=lambda w: S2.block["datasets"][w.dataset].get("surface_range", 0.5),
        device=config["device"],
    script:
        "../workflow_scripts/compute_input_surface.py"


rule compute_param_surface:
    input:
        model=model_file,
        train=f"{paths.DATA}/train.pt",
        code=code("compute_param_surface"),
    output:
        f"{paths.SURFACES_DIR}/param.npz",
    log:
        f"{paths.LOGS}/compute_param_surface/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.log",
    benchmark:
        f"{paths.BENCHMARKS}/compute_param_surface/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=S2.block.get("surfaces", {}),
        device=config["device"],
    script:
        "../workflow_scripts/compute_param_surface.py"


rule make_table_study002:
    input:
        results=lambda w: S2.inputs(w.table),
        code=code("make_table_study002"),
        robust=lambda w: list(R.summary_map(S2.params(w.table)).values()),
    output:
        csv=report(
            f"{S2.dir}/{{table}}.csv",
            caption="../report/study002_table.rst",
            category="Study 002",
            subcategory="Tables",
            labels={"table": "{table}"},
        ),
        md=f"{S2.dir}/{{table}}.md",
        tex=f"{S2.dir}/{{table}}.tex",
    log:
        f"{REPORT_LOGS}/make_table_study002/{{table}}.log",
    wildcard_constraints:
        table=alternatives(S2.tables()),
    conda:
        "../envs/curvrobust.yaml"
    params:
        robust=lambda w: R.summary_map(S2.params(w.table)),
        records=lambda w: S2.params(w.table),
        kind=lambda w: S2.kind(w.table),
        study=S2.study_params(),
        attacks=lambda w: S2.used_attacks(w.table),
        recipes=lambda w: S2.used_recipes(w.table),
        presentation=lambda w: S2.presentation(w.table),
    script:
        "../workflow_scripts/make_table_study002.py"


rule plot_figure_study002:
    input:
        results=lambda w: S2.inputs(w.figure),
        code=code("plot_figure_study002"),
    output:
        pdf=f"{S2.dir}/{{figure}}.pdf",
        png=report(
            f"{S2.dir}/{{figure}}.png",
            caption="../report/study002_figure.rst",
            category="Study 002",
            subcategory="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        f"{REPORT_LOGS}/plot_figure_study002/{{figure}}.log",
    wildcard_constraints:
        figure=alternatives(S2.figures()),
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=lambda w: S2.params(w.figure),
        kind=lambda w: S2.kind(w.figure),
        study=S2.study_params(),
        attacks=lambda w: S2.used_attacks(w.figure),
        presentation=lambda w: S2.presentation(w.figure),
    script:
        "../workflow_scripts/plot_figure_study002.py"
