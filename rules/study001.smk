# Study 001 (Mei, Yang, Wu, HAAT): PGD adversarial training against HAAT (PGD plus a
# second-order direction from power iteration with Hessian-vector products). Both train through
# train_model (their regimes name the adversary); every epoch-end checkpoint is evaluated by its
# own job (clean, PGD, AutoAttack-style); the power iteration's convergence is traced on the
# trained HAAT model. Helpers: common.smk.


rule study001:
    input:
        study001_targets(),


rule evaluate_checkpoint:
    input:
        checkpoints=lambda w: f"{s1_checkpoint_dir(w)}/checkpoints.csv",
        checkpoint_dir=lambda w: f"{s1_checkpoint_dir(w)}/checkpoints",
        test=lambda w: f"{RESULTS}/data/{w.dataset}/{S1['datasets'][w.dataset]['variant']}/test.pt",
        code=lib_sources("variants", "models", "attacks", "autoattack"),
    output:
        f"{S1_DIR}/{{dataset}}/eval/{{recipe}}/seed{{seed}}/epoch{{epoch}}.csv",
    log:
        f"{RESULTS}/logs/evaluate_checkpoint/{{dataset}}_{{recipe}}_seed{{seed}}_epoch{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_checkpoint/{{dataset}}_{{recipe}}_seed{{seed}}_epoch{{epoch}}.tsv"
    wildcard_constraints:
        epoch=r"\d+",
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        eps=lambda w: S1["datasets"][w.dataset]["eps"],
        pgd=lambda w: config["attacks"][S1["datasets"][w.dataset]["pgd"]],
        autoattack=S1.get("autoattack", {}),
        device=config["device"],
    script:
        "../workflow_scripts/evaluate_checkpoint.py"


rule trace_power_iteration:
    input:
        model=s1_convergence_model,
        train=lambda w: f"{RESULTS}/data/{w.dataset}/{S1['datasets'][w.dataset]['variant']}/train.pt",
        code=lib_sources("variants", "models", "attacks", "haat"),
    output:
        trace=f"{S1_DIR}/{{dataset}}/convergence/seed{{seed}}/trace.csv",
        hvp_error=f"{S1_DIR}/{{dataset}}/convergence/seed{{seed}}/hvp_error.csv",
        alignment=f"{S1_DIR}/{{dataset}}/convergence/seed{{seed}}/alignment.csv",
    log:
        f"{RESULTS}/logs/trace_power_iteration/{{dataset}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/trace_power_iteration/{{dataset}}_seed{{seed}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=S1.get("convergence", {}),
        adversary=s1_convergence_adversary,
        device=config["device"],
    script:
        "../workflow_scripts/trace_power_iteration.py"


rule make_table_study001:
    input:
        data=s1_inputs,
        code=lib_sources("tables"),
    output:
        csv=report(
            f"{S1_DIR}/{{dataset}}/{{table}}.csv",
            category="Study 001",
            subcategory="{dataset}",
            caption="../report/study001_table.rst",
        ),
        md=f"{S1_DIR}/{{dataset}}/{{table}}.md",
        tex=f"{S1_DIR}/{{dataset}}/{{table}}.tex",
    log:
        f"{RESULTS}/logs/make_table_study001/{{dataset}}_{{table}}.log",
    wildcard_constraints:
        table="table_robust_accuracy|table_hvp_error|table_eigvec_alignment",
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=s1_records,
        recipes=lambda w: {
            r["recipe"]: config["recipes"][r["recipe"]] for r in s1_records(w)
        },
        seeds=S1.get("seeds", []),
    script:
        "../workflow_scripts/make_table_study001.py"


rule plot_figure_study001:
    input:
        data=s1_inputs,
        code=lib_sources("plots"),
    output:
        png=report(
            f"{S1_DIR}/{{dataset}}/{{figure}}.png",
            category="Study 001",
            subcategory="{dataset}",
            caption="../report/study001_figure.rst",
        ),
        pdf=f"{S1_DIR}/{{dataset}}/{{figure}}.pdf",
    log:
        f"{RESULTS}/logs/plot_figure_study001/{{dataset}}_{{figure}}.log",
    wildcard_constraints:
        figure="fig1_haat_robust_accuracy|fig2a_xi_sweep|fig2b_k_sweep|fig3_haat_vs_pgd|fig4_fd_convergence",
    conda:
        "../envs/curvrobust.yaml"
    params:
        records=s1_records,
        eps=lambda w: (
            S1["datasets"][w.dataset]["eps"]
            if w.figure != "fig4_fd_convergence"
            else None
        ),
        convergence=lambda w: (
            S1["convergence"] if w.figure == "fig4_fd_convergence" else {}
        ),
        seeds=S1.get("seeds", []),
    script:
        "../workflow_scripts/plot_figure_study001.py"
