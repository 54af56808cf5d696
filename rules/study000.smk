# Study 000 (Jiang, Gauss-Newton under adversarial attacks): Tables 1, 1b, 2, 3 and
# Figures 2, 3, plus the training summary the study reports in prose. Helpers: common.smk.


rule study000:
    input:
        study000_targets(),


rule make_table:
    input:
        results=s0_inputs,
        code=lib_sources("tables", data=["reference/study000.yaml"]),
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
    log:
        f"{RESULTS}/logs/make_table/study000_{{table}}.log",
    wildcard_constraints:
        table="|".join(S0_TABLES),
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=s0_params,
        study=S0,
        recipes={r: config["recipes"][r] for r in S0.get("recipes", {}).values()},
    script:
        "../workflow_scripts/make_table_study000.py"


rule plot_figure:
    input:
        results=s0_inputs,
        code=lib_sources("plots"),
    output:
        pdf=f"{S0_DIR}/{{figure}}.pdf",
        png=report(
            f"{S0_DIR}/{{figure}}.png",
            caption="../report/study000_figure.rst",
            category="Study 000",
            subcategory="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        f"{RESULTS}/logs/plot_figure/study000_{{figure}}.log",
    wildcard_constraints:
        figure="|".join(S0_FIGURES),
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=s0_params,
        study=S0,
    script:
        "../workflow_scripts/plot_figure_study000.py"
