rule train_model:
    input:
        train=f"{RESULTS}/data/{{dataset}}/{{variant}}/train.pt",
        test=f"{RESULTS}/data/{{dataset}}/{{variant}}/test.pt",
        manifest=f"{RESULTS}/data/{{dataset}}/{{variant}}/manifest.json",
        code=code("train_model"),
    output:
        model=f"{RESULTS}/models/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/model.pt",
        epochs=f"{RESULTS}/models/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/epochs.csv",
        checkpoints=f"{RESULTS}/models/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/checkpoints.csv",
        checkpoint_dir=directory(
            f"{RESULTS}/models/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/checkpoints"
        ),
    log:
        f"{RESULTS}/logs/train_model/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_model/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}.tsv"
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        recipe=lambda w: config["recipes"][w.recipe],
        device=config["device"],
        deterministic=config.get("deterministic", True),
    script:
        "../workflow_scripts/train_model.py"


rule match_checkpoint:
    input:
        checkpoints=f"{RESULTS}/models/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/checkpoints.csv",
        checkpoint_dir=f"{RESULTS}/models/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/checkpoints",
        reference=lambda w: f"{paths.model_dir(dict(w.items()), recipe=w.ref)}/epochs.csv",
        train=f"{RESULTS}/data/{{dataset}}/{{variant}}/train.pt",
        manifest=f"{RESULTS}/data/{{dataset}}/{{variant}}/manifest.json",
        code=code("match_checkpoint"),
    output:
        model=f"{RESULTS}/models/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/match-{{ref}}.pt",
        info=f"{RESULTS}/models/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/match-{{ref}}.json",
    log:
        f"{RESULTS}/logs/match_checkpoint/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{ref}}.log",
    wildcard_constraints:
        ref=alternatives(config["recipes"]),
    conda:
        "../envs/curvrobust.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_resource,
    params:
        device=config["device"],
    script:
        "../workflow_scripts/match_checkpoint.py"
