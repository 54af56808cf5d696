# Study 000 (Jiang, Gauss-Newton under adversarial attacks): Tables 1, 1b, 2, 3 and
# Figures 2, 3, plus the training summary the study reports in prose. Plan: curvrobust.plans.study000.


rule study000:
    input:
        S0.targets(),


rule make_table_study000:
    input:
        results=lambda w: S0.inputs(w.table),
        code=code("make_table_study000"),
        robust=lambda w: list(R.summary_map(S0.params(w.table)).values()),
    output:
        csv=report(
            f"{S0.dir}/{{table}}.csv",
            caption="../report/study000_table.rst",
            category="Study 000",
            subcategory="Tables",
            labels={"table": "{table}"},
        ),
        md=f"{S0.dir}/{{table}}.md",
        tex=f"{S0.dir}/{{table}}.tex",
    log:
        f"{paths.LOGS}/make_table_study000/{{table}}.log",
    wildcard_constraints:
        table=alternatives(S0.tables()),
    conda:
        "../envs/curvrobust.yaml"
    params:
        robust=lambda w: R.summary_map(S0.params(w.table)),
        records=lambda w: S0.params(w.table),
        study=S0.block,
        recipes=S0.used_recipes() if S0.enabled else {},
        presentation=lambda w: S0.presentation(w.table),
    script:
        "../workflow_scripts/make_table_study000.py"


rule plot_figure_study000:
    input:
        results=lambda w: S0.inputs(w.figure),
        code=code("plot_figure_study000"),
    output:
        pdf=f"{S0.dir}/{{figure}}.pdf",
        png=report(
            f"{S0.dir}/{{figure}}.png",
            caption="../report/study000_figure.rst",
            category="Study 000",
            subcategory="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        f"{paths.LOGS}/plot_figure_study000/{{figure}}.log",
    wildcard_constraints:
        figure=alternatives(S0.figures()),
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=lambda w: S0.params(w.figure),
        study=S0.block,
        presentation=lambda w: S0.presentation(w.figure),
    script:
        "../workflow_scripts/plot_figure_study000.py"
