# Study 002 (Yu et al., decision surfaces in input space): Tables 1 and 2 with the stronger
# checks (PGD with restarts, accuracy over eps, step-size sweep), input- and parameter-space
# surfaces (figs 2, 3, 4, 6/9), Jacobian images (fig 8) and the robustness-indicator scatter
# over every model of every study. Helpers: common.smk.


rule study002:
    input:
        study002_targets(),


rule compute_indicator:
    input:
        model=model_file,
        test=f"{RESULTS}/data/{{dataset}}/{{variant}}/test.pt",
        code=lib_sources("variants", "models", "attacks", "regimes", "curvature"),
    output:
        table=f"{RESULTS}/stats/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/{{ckpt}}/indicator.csv",
        jacobians=f"{RESULTS}/stats/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/{{ckpt}}/jacobians.pt",
    log:
        f"{RESULTS}/logs/compute_indicator/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/compute_indicator/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=S2.get("indicator", {}),
        device=config["device"],
    script:
        "../workflow_scripts/compute_indicator.py"


rule compute_input_surface:
    input:
        model=model_file,
        test=f"{RESULTS}/data/{{dataset}}/{{variant}}/test.pt",
        code=lib_sources("variants", "models", "attacks", "regimes", "surfaces"),
    output:
        f"{RESULTS}/surfaces/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/{{ckpt}}/input.npz",
    log:
        f"{RESULTS}/logs/compute_input_surface/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/compute_input_surface/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=S2.get("surfaces", {}),
        half_width=lambda w: S2["datasets"][w.dataset].get("surface_range", 0.5),
        device=config["device"],
    script:
        "../workflow_scripts/compute_input_surface.py"


rule compute_param_surface:
    input:
        model=model_file,
        train=f"{RESULTS}/data/{{dataset}}/{{variant}}/train.pt",
        code=lib_sources("variants", "models", "surfaces"),
    output:
        f"{RESULTS}/surfaces/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/{{ckpt}}/param.npz",
    log:
        f"{RESULTS}/logs/compute_param_surface/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/compute_param_surface/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=S2.get("surfaces", {}),
        device=config["device"],
    script:
        "../workflow_scripts/compute_param_surface.py"


rule make_table_study002:
    input:
        results=s2_inputs,
        code=lib_sources("tables", data=["reference/study002.yaml"]),
    output:
        csv=report(
            f"{S2_DIR}/{{table}}.csv",
            caption="../report/study002_table.rst",
            category="Study 002",
            subcategory="Tables",
            labels={"table": "{table}"},
        ),
        md=f"{S2_DIR}/{{table}}.md",
        tex=f"{S2_DIR}/{{table}}.tex",
    log:
        f"{RESULTS}/logs/make_table_study002/{{table}}.log",
    wildcard_constraints:
        table=_alternatives(S2_TABLES) if S2_TABLES else "^$",
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=s2_params,
        kind=lambda w: S2_TABLES[w.table],
        study=s2_study_params() if s2_enabled() else {},
        attacks=s2_used_attacks,
        recipes=s2_used_recipes,
    script:
        "../workflow_scripts/make_table_study002.py"


rule plot_figure_study002:
    input:
        results=s2_inputs,
        code=lib_sources("plots", "surfaces"),
    output:
        pdf=f"{S2_DIR}/{{figure}}.pdf",
        png=report(
            f"{S2_DIR}/{{figure}}.png",
            caption="../report/study002_figure.rst",
            category="Study 002",
            subcategory="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        f"{RESULTS}/logs/plot_figure_study002/{{figure}}.log",
    wildcard_constraints:
        figure=_alternatives(S2_FIGURES) if S2_FIGURES else "^$",
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=s2_params,
        kind=lambda w: S2_FIGURES[w.figure],
        study=s2_study_params() if s2_enabled() else {},
        attacks=s2_used_attacks,
    script:
        "../workflow_scripts/plot_figure_study002.py"
