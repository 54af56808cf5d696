rule compute_input_stats:
    input:
        model=model_file,
        test=f"{paths.DATA}/test.pt",
        code=code("compute_input_stats"),
    output:
        f"{paths.STATS_DIR}/input_stats.csv",
    log:
        f"{paths.LOGS}/compute_input_stats/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.log",
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=config["statistics"]["input_stats"],
        device=config["device"],
    script:
        "../workflow_scripts/compute_input_stats.py"


rule compute_sharpness:
    input:
        model=model_file,
        test=f"{paths.DATA}/test.pt",
        code=code("compute_sharpness"),
    output:
        batches=f"{paths.STATS_DIR}/sam_batches.csv",
        examples=f"{paths.STATS_DIR}/sam_examples.csv",
    log:
        f"{paths.LOGS}/compute_sharpness/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.log",
    benchmark:
        f"{paths.BENCHMARKS}/compute_sharpness/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        spec=config["statistics"]["sam"],
        device=config["device"],
    script:
        "../workflow_scripts/compute_sharpness.py"
