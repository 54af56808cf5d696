rule attack_model:
    input:
        model=model_file,
        test=f"{paths.DATA}/test.pt",
        code=code("attack_model"),
    output:
        csv=f"{paths.ATTACKS_DIR}/{{attack}}.csv",
        images=f"{paths.ATTACKS_DIR}/{{attack}}_images.csv",
    log:
        f"{paths.LOGS}/attack_model/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}_{{attack}}.log",
    benchmark:
        f"{paths.BENCHMARKS}/attack_model/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}_{{attack}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=lambda w: config["attacks"][w.attack],
        subset=R.subset(),
        device=config["device"],
    script:
        "../workflow_scripts/attack_model.py"
