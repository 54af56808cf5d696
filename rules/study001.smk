# Study 001 (Mei, Yang, Wu, HAAT): PGD adversarial training against HAAT (PGD plus a
# second-order direction from power iteration with Hessian-vector products), HAAT's sweeps and
# twins (w2 = 0, random direction). All train through train_model (their regimes name the
# adversary); every epoch-end checkpoint is evaluated by its own job (clean, PGD,
# AutoAttack-style); the power iteration's convergence is traced for each k on the model trained
# with that k (else on the HAAT model). Plan: curvrobust.plans.study001.


rule study001:
    input:
        S1.targets(),


rule evaluate_checkpoint:
    input:
        checkpoints=lambda w: f"{S1.checkpoint_dir(w.dataset, w.recipe, w.seed)}/checkpoints.csv",
        checkpoint_dir=lambda w: f"{S1.checkpoint_dir(w.dataset, w.recipe, w.seed)}/checkpoints",
        test=lambda w: paths.data_file(w.dataset, S1.variant(w.dataset), "test"),
        code=code("evaluate_checkpoint"),
    output:
        csv=f"{S1.dir}/{{dataset}}/eval/{{recipe}}/seed{{seed}}/epoch{{epoch}}.csv",
        images=f"{S1.dir}/{{dataset}}/eval/{{recipe}}/seed{{seed}}/epoch{{epoch}}_images.csv",
    log:
        f"{REPORT_LOGS}/evaluate_checkpoint/{{dataset}}_{{recipe}}_seed{{seed}}_epoch{{epoch}}.log",
    benchmark:
        f"{REPORT_BENCHMARKS}/evaluate_checkpoint/{{dataset}}_{{recipe}}_seed{{seed}}_epoch{{epoch}}.tsv"
    wildcard_constraints:
        epoch=r"\d+",
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        eps=lambda w: S1.block["datasets"][w.dataset]["eps"],
        pgd=lambda w: config["attacks"][S1.block["datasets"][w.dataset]["pgd"]],
        pgd_name=lambda w: S1.block["datasets"][w.dataset]["pgd"],
        subset_seed=R.subset()["seed"],
        autoattack=S1.block.get("autoattack", {}),
        device=config["device"],
    script:
        "../workflow_scripts/evaluate_checkpoint.py"


rule trace_power_iteration:
    input:
        # the convergence model (HVP error, alignment, and the ks no model was trained with)
        # first, then each k's own model (Fig. 5's traces come from each k's own model)
        model=lambda w: S1.convergence_model(w.dataset, w.seed),
        models=lambda w: S1.convergence_models(w.dataset, w.seed),
        train=lambda w: paths.data_file(w.dataset, S1.variant(w.dataset), "train"),
        code=code("trace_power_iteration"),
    output:
        trace=f"{S1.dir}/{{dataset}}/convergence/seed{{seed}}/trace.csv",
        hvp_error=f"{S1.dir}/{{dataset}}/convergence/seed{{seed}}/hvp_error.csv",
        alignment=f"{S1.dir}/{{dataset}}/convergence/seed{{seed}}/alignment.csv",
    log:
        f"{REPORT_LOGS}/trace_power_iteration/{{dataset}}_seed{{seed}}.log",
    benchmark:
        f"{REPORT_BENCHMARKS}/trace_power_iteration/{{dataset}}_seed{{seed}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=S1.block.get("convergence", {}),
        adversary=lambda w: S1.convergence_adversary(w.dataset),
        per_k=lambda w: S1.convergence_per_k(w.dataset, w.seed),
        device=config["device"],
    script:
        "../workflow_scripts/trace_power_iteration.py"


rule make_table_study001:
    input:
        data=lambda w: S1.inputs(w.dataset, w.table),
        code=code("make_table_study001"),
        robust=lambda w: list(R.summary_map(S1.params(w.dataset, w.table)).values()),
    output:
        csv=report(
            f"{S1.dir}/{{dataset}}/{{table}}.csv",
            category="Study 001",
            subcategory="{dataset}",
            caption="../report/study001_table.rst",
        ),
        md=f"{S1.dir}/{{dataset}}/{{table}}.md",
        tex=f"{S1.dir}/{{dataset}}/{{table}}.tex",
    log:
        f"{REPORT_LOGS}/make_table_study001/{{dataset}}_{{table}}.log",
    wildcard_constraints:
        table=alternatives(plans.study001.TABLE_NAMES),
    conda:
        "../envs/curvrobust.yaml"
    params:
        robust=lambda w: R.summary_map(S1.params(w.dataset, w.table)),
        records=lambda w: S1.params(w.dataset, w.table),
        recipes=lambda w: S1.used_recipes(w.dataset, w.table),
        seeds=S1.block.get("seeds", []),
        presentation=lambda w: S1.presentation(w.table),
    script:
        "../workflow_scripts/make_table_study001.py"


rule plot_figure_study001:
    input:
        data=lambda w: S1.inputs(w.dataset, w.figure),
        code=code("plot_figure_study001"),
    output:
        png=report(
            f"{S1.dir}/{{dataset}}/{{figure}}.png",
            category="Study 001",
            subcategory="{dataset}",
            caption="../report/study001_figure.rst",
        ),
        pdf=f"{S1.dir}/{{dataset}}/{{figure}}.pdf",
    log:
        f"{REPORT_LOGS}/plot_figure_study001/{{dataset}}_{{figure}}.log",
    wildcard_constraints:
        figure=alternatives(plans.study001.FIGURE_NAMES),
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=lambda w: S1.params(w.dataset, w.figure),
        eps=lambda w: (
            S1.block["datasets"][w.dataset]["eps"]
            if w.figure != "fig4_fd_convergence"
            else None
        ),
        convergence=lambda w: (
            S1.block["convergence"] if w.figure == "fig4_fd_convergence" else {}
        ),
        seeds=S1.block.get("seeds", []),
        presentation=lambda w: S1.presentation(w.figure),
    script:
        "../workflow_scripts/plot_figure_study001.py"
