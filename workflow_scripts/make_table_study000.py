"""Snakemake adapter: render one of study 000's tables (rule make_table)."""

import json
from pathlib import Path

import pandas as pd

from curvrobust import tables
from curvrobust.reference import load_reference
from curvrobust.jobs import start_job

LABELS = {"sgd": "SGD", "adam": "Adam", "gn": "Gauss-Newton"}
log = start_job(snakemake)
name = snakemake.wildcards.table
records = snakemake.params.records
study = snakemake.params.study
recipes = snakemake.params.recipes
order = [k for k in ("adam", "sgd", "gn") if k in study["recipes"]]
ref = load_reference("study000")
gn_recipe = recipes.get(study["recipes"].get("gn", ""), {})
settings = "; ".join(f"{LABELS[k]}: {json.dumps(recipes[study['recipes'][k]]['optimizer'])}, "
                     f"{recipes[study['recipes'][k]]['epochs']} epochs" for k in order)
seeds = sorted({r["seed"] for r in records})
footer = f"Ours: {settings}; seeds {seeds}; mean ± 95 % interval over seeds where several."


def with_display(df, col="optimizer"):
    df = df.copy()
    df[col] = [LABELS.get(v, v) for v in df[col]]
    return df


def attack_results():
    frames = []
    for r in records:
        df = pd.read_csv(r["file"])
        df["label"], df["seed"] = r["label"], r["seed"]
        if "match_info" in r:
            info = json.loads(Path(r["match_info"]).read_text())
            df["ckpt_step"], df["ckpt_train_loss"] = info["step"], info["train_loss"]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


if name in ("table1_fgsm_clean", "table2_fgsm_poisoned"):
    paper_variant = "clean" if name.startswith("table1") else "poison10"
    reference = {k: v[paper_variant] for k, v in ref["fgsm"].items()}
    numeric = tables.attack_table(attack_results(), order, reference)
    readable = tables.render_attack_table(with_display(numeric))
    what = "clean" if paper_variant == "clean" else "label-poisoned (10 %)"
    caption = (f"Table {name[5]}: FGSM on models trained on {what} MNIST: correctly classified "
               f"test images and successful attacks among them (rate = successes / correct); "
               f"paper: {ref['citation']}. {footer}")
elif name == "table1b_fgsm_matched_loss":
    res = attack_results()
    numeric = tables.attack_table(res, order)
    steps = res.groupby("label")[["ckpt_step", "ckpt_train_loss"]].mean() if "ckpt_step" in res \
        else pd.DataFrame()
    numeric["checkpoint_step_mean"] = [steps["ckpt_step"].get(k, float("nan")) if len(steps)
                                       else float("nan") for k in numeric["optimizer"]]
    numeric["checkpoint_train_loss_mean"] = [steps["ckpt_train_loss"].get(k, float("nan"))
                                             if len(steps) else float("nan")
                                             for k in numeric["optimizer"]]
    readable = tables.render_attack_table(with_display(numeric))
    readable = readable.drop(columns=[c for c in readable.columns if "(paper)" in c])
    numeric = numeric.drop(columns=[c for c in numeric.columns if c.startswith("paper_")])
    readable.insert(2, "Checkpoint step", [f"{v:.0f}" if v == v else "final"
                                           for v in numeric["checkpoint_step_mean"]])
    readable.insert(3, "Train loss at checkpoint", [f"{v:.3f}" if v == v else "–"
                                                   for v in numeric["checkpoint_train_loss_mean"]])
    ref_label = LABELS[study["match"]["reference"]]
    caption = (f"Table 1b (not in the study): FGSM on clean-trained models compared at equal "
               f"training loss: for {', '.join(LABELS[k] for k in study['match']['labels'])} the "
               f"checkpoint whose whole-training-set loss is closest to {ref_label}'s final one, "
               f"{ref_label} at its final model. {footer}")
elif name == "table3_sam_median":
    frames = []
    for r in records:
        df = pd.read_csv(r["file"])
        med = df.groupby("rho")["loss_increase"].median().reset_index(name="median")
        med["label"], med["seed"] = r["label"], r["seed"]
        frames.append(med)
    numeric = tables.sam_table(pd.concat(frames, ignore_index=True), order, ref["sam_median"])
    readable = tables.render_sam_table(numeric, order)
    readable.columns = [c.replace("gn ", "Gauss-Newton ").replace("adam ", "Adam ")
                        .replace("sgd ", "SGD ") for c in readable.columns]
    caption = (f"Table 3: median over test batches of 256 of the loss increase "
               f"L(θ + ρ g/‖g‖) − L(θ) (the study's 'SAM analysis'), clean-trained models; "
               f"paper: {ref['citation']}. {footer}")
elif name == "training_summary":
    rows = []
    for r in records:
        df = pd.read_csv(r["file"])
        last = df.iloc[-1]
        rows.append(dict(label=r["label"], variant=r["variant"], seed=r["seed"],
                         epochs=int(last["epoch"]), train_loss=last["train_loss"],
                         train_acc=last["train_acc"], test_acc=last["test_acc"],
                         minutes=last["wall_time_s"] / 60))
    per_model = pd.DataFrame(rows)
    out = []
    for (variant, label), g in per_model.groupby(["variant", "label"], sort=False):
        row = dict(variant=variant, optimizer=label, n_seeds=len(g), epochs=int(g.epochs.max()))
        for c in ("train_loss", "train_acc", "test_acc", "minutes"):
            row[f"{c}_mean"], row[f"{c}_ci95"] = tables.mean_ci(g[c])
        out.append(row)
    numeric = pd.DataFrame(out)
    readable = pd.DataFrame({
        "Variant": numeric.variant, "Optimizer": [LABELS.get(v, v) for v in numeric.optimizer],
        "Seeds": numeric.n_seeds, "Epochs": numeric.epochs,
        "Train loss": [tables.fmt_ci(m, h, 4) for m, h in zip(numeric.train_loss_mean, numeric.train_loss_ci95)],
        "Test accuracy": [tables.fmt_ci(100 * m, 100 * h, 2, "%") for m, h in
                          zip(numeric.test_acc_mean, numeric.test_acc_ci95)],
        "Train minutes": [tables.fmt_ci(m, h, 1) for m, h in zip(numeric.minutes_mean, numeric.minutes_ci95)],
    })
    caption = (f"Training summary: whole-training-set loss (on the labels trained on) and test "
               f"accuracy of the final models; the study trained every model to about 95 % test "
               f"accuracy and reports GN's final train loss ≈ 1.0 vs Adam's 0.06. {footer}")
else:
    raise ValueError(f"unknown study000 table {name!r}")

stem = str(Path(snakemake.output.csv).with_suffix(""))
tables.write_table(numeric, readable, stem, caption)
log(f"wrote {stem}.{{csv,md,tex}}\n{readable.to_string(index=False)}")
