rule fetch_dataset:
    output:
        manifest=f"{RESULTS}/data/{{dataset}}/raw/manifest.json",
    input:
        code=lib_sources("data"),
    params:
        sources=lambda w: config["datasets"][w.dataset]["sources"],
        local_dir=lambda w: config["datasets"][w.dataset].get("local_dir"),
    log:
        f"{RESULTS}/logs/fetch_dataset/{{dataset}}.log",
    script:
        "../workflow_scripts/fetch_dataset.py"


rule make_variant:
    output:
        train=f"{RESULTS}/data/{{dataset}}/{{variant}}/train.pt",
        test=f"{RESULTS}/data/{{dataset}}/{{variant}}/test.pt",
        manifest=f"{RESULTS}/data/{{dataset}}/{{variant}}/manifest.json",
    input:
        raw=f"{RESULTS}/data/{{dataset}}/raw/manifest.json",
        code=lib_sources("data", "variants"),
    params:
        spec=lambda w: config["variants"][w.variant],
    log:
        f"{RESULTS}/logs/make_variant/{{dataset}}_{{variant}}.log",
    script:
        "../workflow_scripts/make_variant.py"
