rule fetch_dataset:
    input:
        code=code("fetch_dataset"),
    output:
        manifest=paths.RAW_MANIFEST,
    log:
        f"{paths.LOGS}/fetch_dataset/{{dataset}}.log",
    conda:
        "../envs/curvrobust.yaml"
    params:
        sources=lambda w: config["datasets"][w.dataset]["sources"],
        local_dir=lambda w: config["datasets"][w.dataset].get("local_dir"),
    script:
        "../workflow_scripts/fetch_dataset.py"


rule make_variant:
    input:
        raw=paths.RAW_MANIFEST,
        code=code("make_variant"),
    output:
        train=f"{paths.DATA}/train.pt",
        test=f"{paths.DATA}/test.pt",
        manifest=f"{paths.DATA}/manifest.json",
    log:
        f"{paths.LOGS}/make_variant/{{dataset}}_{{variant}}.log",
    conda:
        "../envs/curvrobust.yaml"
    params:
        spec=lambda w: config["variants"][w.variant],
    script:
        "../workflow_scripts/make_variant.py"
