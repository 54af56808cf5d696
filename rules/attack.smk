def model_file(w):
    """The checkpoint a `ckpt` wildcard names: the final model or a loss-matched one."""
    name = "model.pt" if w.ckpt == "final" else f"{w.ckpt}.pt"
    return f"{model_dir(w)}/{name}"


rule attack_model:
    output:
        f"{RESULTS}/attacks/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/{{ckpt}}/{{attack}}.csv",
    input:
        model=model_file,
        test=f"{RESULTS}/data/{{dataset}}/{{variant}}/test.pt",
        code=lib_sources("variants", "models", "attacks"),
    params:
        spec=lambda w: config["attacks"][w.attack],
        device=config["device"],
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    log:
        f"{RESULTS}/logs/attack_model/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}_{{attack}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/attack_model/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ckpt}}_{{attack}}.tsv"
    script:
        "../workflow_scripts/attack_model.py"
