# Verdicts: every enabled study's claims (declared as data next to its plan) judged from the
# per-seed and per-image results, with 95 % intervals, validity and masking flags; gathered into
# results/claims.{csv,md}, the run's answer, and results/power.{csv,md}, what it would take to
# decide (priced on this run's benchmarks, read when the report is made). Plan:
# curvrobust.plans.claims; statistics: curvrobust.claims, curvrobust.claims.stats,
# curvrobust.claims.power.


rule judge_claims:
    input:
        results=lambda w: C.inputs(w.study),
        code=lambda w: code("judge_claims", f"curvrobust.reports.{w.study}"),
    output:
        csv=f"{REPORT}/{{study}}/claims.csv",
        md=f"{REPORT}/{{study}}/claims.md",
        json=f"{REPORT}/{{study}}/claims.json",
    log:
        f"{REPORT_LOGS}/judge_claims/{{study}}.log",
    wildcard_constraints:
        study=alternatives(C.judged()),
    conda:
        "../envs/curvrobust.yaml"
    params:
        plan=lambda w: C.params(w.study),
        statistics=config["claims"],
    script:
        "../workflow_scripts/judge_claims.py"


rule make_claims_report:
    input:
        studies=[C.study_files(s)["json"] for s in C.judged()],
        code=code("make_claims_report"),
    output:
        csv=report(
            C.report_files()["csv"],
            caption="../report/claims.rst",
            category="Claims",
            subcategory="Verdicts",
        ),
        md=report(
            C.report_files()["md"],
            caption="../report/claims.rst",
            category="Claims",
            subcategory="Verdicts",
        ),
        power_csv=C.power_files()["csv"],
        power_md=report(
            C.power_files()["md"],
            caption="../report/power.rst",
            category="Claims",
            subcategory="What it would take",
        ),
    log:
        f"{REPORT_LOGS}/make_claims_report/claims.log",
    conda:
        "../envs/curvrobust.yaml"
    params:
        deviations={s: STUDIES[s].deviations() for s in C.judged()},
        benchmarks=paths.BENCHMARKS,
        power=C.power_spec(config["robustness"]["n_examples"]),
    script:
        "../workflow_scripts/make_claims_report.py"
