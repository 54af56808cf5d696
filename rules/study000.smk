# Study 000 (Jiang, Gauss-Newton under adversarial attacks): Tables 1, 1b, 1c, 2, 3 and
# Figures 2, 3, plus the training summary the study reports in prose, on each data set of
# `studies.study000.datasets` (results/study000/{dataset}/). Plan: curvrobust.plans.study000.


rule study000:
    input:
        S0.targets(),


rule make_table_study000:
    input:
        results=lambda w: S0.inputs(w.dataset, w.table),
        code=code("make_table_study000"),
        robust=lambda w: list(R.summary_map(S0.params(w.dataset, w.table)).values()),
    output:
        csv=report(
            f"{S0.dir}/{{dataset}}/{{table}}.csv",
            caption="../report/study000_table.rst",
            category="Study 000",
            subcategory="{dataset}",
            labels={"table": "{table}"},
        ),
        md=f"{S0.dir}/{{dataset}}/{{table}}.md",
        tex=f"{S0.dir}/{{dataset}}/{{table}}.tex",
    log:
        f"{REPORT_LOGS}/make_table_study000/{{dataset}}_{{table}}.log",
    wildcard_constraints:
        dataset=alternatives(S0.datasets()),
        table=alternatives(plans.study000.TABLES),
    conda:
        "../envs/curvrobust.yaml"
    params:
        robust=lambda w: R.summary_map(S0.params(w.dataset, w.table)),
        records=lambda w: S0.params(w.dataset, w.table),
        study=S0.block,
        recipes=S0.used_recipes() if S0.enabled else {},
        presentation=lambda w: S0.presentation(w.dataset, w.table),
    script:
        "../workflow_scripts/make_table_study000.py"


rule plot_figure_study000:
    input:
        results=lambda w: S0.inputs(w.dataset, w.figure),
        code=code("plot_figure_study000"),
    output:
        pdf=f"{S0.dir}/{{dataset}}/{{figure}}.pdf",
        png=report(
            f"{S0.dir}/{{dataset}}/{{figure}}.png",
            caption="../report/study000_figure.rst",
            category="Study 000",
            subcategory="{dataset}",
            labels={"figure": "{figure}"},
        ),
    log:
        f"{REPORT_LOGS}/plot_figure_study000/{{dataset}}_{{figure}}.log",
    wildcard_constraints:
        dataset=alternatives(S0.datasets()),
        figure=alternatives(plans.study000.FIGURES),
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=lambda w: S0.params(w.dataset, w.figure),
        study=S0.block,
        presentation=lambda w: S0.presentation(w.dataset, w.figure),
    script:
        "../workflow_scripts/plot_figure_study000.py"
