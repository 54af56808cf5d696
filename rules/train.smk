rule train_model:
    input:
        train=f"{paths.DATA}/train.pt",
        test=f"{paths.DATA}/test.pt",
        manifest=f"{paths.DATA}/manifest.json",
        code=code("train_model"),
    output:
        model=f"{paths.MODEL_DIR}/model.pt",
        epochs=f"{paths.MODEL_DIR}/epochs.csv",
        checkpoints=f"{paths.MODEL_DIR}/checkpoints.csv",
        checkpoint_dir=directory(f"{paths.MODEL_DIR}/checkpoints"),
    log:
        f"{paths.LOGS}/train_model/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}.log",
    benchmark:
        f"{paths.BENCHMARKS}/train_model/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}.tsv"
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


# match-{ref}: the first checkpoint whose whole-training-set loss falls to {ref}'s final one
# (Table 1b); matchacc-{ref}: the first whose whole-training-set accuracy rises to it (Table 1c)
rule match_checkpoint:
    input:
        checkpoints=f"{paths.MODEL_DIR}/checkpoints.csv",
        checkpoint_dir=f"{paths.MODEL_DIR}/checkpoints",
        reference=lambda w: f"{paths.model_dir(dict(w.items()), recipe=w.ref)}/epochs.csv",
        train=f"{paths.DATA}/train.pt",
        manifest=f"{paths.DATA}/manifest.json",
        code=code("match_checkpoint"),
    output:
        model=f"{paths.MODEL_DIR}/{{match}}-{{ref}}.pt",
        info=f"{paths.MODEL_DIR}/{{match}}-{{ref}}.json",
    log:
        f"{paths.LOGS}/match_checkpoint/{{dataset}}_{{variant}}_{{recipe}}_seed{{seed}}_{{match}}-{{ref}}.log",
    wildcard_constraints:
        match="match|matchacc",
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
