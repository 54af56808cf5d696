rule fetch_dataset:
    input:
        code=code("fetch_dataset"),
    output:
        manifest=f"{RESULTS}/data/{{dataset}}/raw/manifest.json",
    log:
        f"{RESULTS}/logs/fetch_dataset/{{dataset}}.log",
    conda:
        "../envs/curvrobust.yaml"
    params:
        sources=lambda w: config["datasets"][w.dataset]["sources"],
        local_dir=lambda w: config["datasets"][w.dataset].get("local_dir"),
    script:
        "../workflow_scripts/fetch_dataset.py"


rule make_variant:
    input:
        raw=f"{RESULTS}/data/{{dataset}}/raw/manifest.json",
        code=code("make_variant"),
    output:
        train=f"{RESULTS}/data/{{dataset}}/{{variant}}/train.pt",
        test=f"{RESULTS}/data/{{dataset}}/{{variant}}/test.pt",
        manifest=f"{RESULTS}/data/{{dataset}}/{{variant}}/manifest.json",
    log:
        f"{RESULTS}/logs/make_variant/{{dataset}}_{{variant}}.log",
    conda:
        "../envs/curvrobust.yaml"
    params:
        spec=lambda w: config["variants"][w.variant],
    script:
        "../workflow_scripts/make_variant.py"
