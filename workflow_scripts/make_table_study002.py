"""Snakemake adapter: render one of study 002's tables (rule make_table_study002)."""

import math

import pandas as pd

from curvrobust import tables
from curvrobust.jobs import start_job
from curvrobust.reference import load_reference

NAMES = {"natural": "Natural", "advtrain": "AdvTrain (Kurakin, C&W examples)",
         "crossentropy": "CrossEntropy (Ross & Doshi-Velez)", "ours": "Ours (margin penalty)",
         "minmax": "MinMax (Madry PGD)", "ours_minmax": "Ours + MinMax"}
log = start_job(snakemake)
name = snakemake.wildcards.table
spec = snakemake.params.kind
records = snakemake.params.records
study = snakemake.params.study
attacks = snakemake.params.attacks
recipes = snakemake.params.recipes
seeds = sorted({r["seed"] for r in records})
order = [k for k in NAMES if any(r["label"] == k for r in records)]


def attack_desc(a):
    s = attacks[a]
    bits = [s["kind"].upper() if s["kind"] != "cw" else "C&W"]
    if s["kind"] != "fgsm":
        bits.append(f"{s.get('steps', 10)} steps of {s.get('step_size', 0.1):g}")
    if s.get("random_start") or s["kind"] == "pgd":
        bits.append(f"{s.get('restarts', 1)} restart(s)")
    if "n_examples" in s:
        bits.append(f"first {s['n_examples']} test images")
    return ", ".join(bits)


def read_attack(r, key):
    df = pd.read_csv(r["files"][key])
    df["accuracy"] = 100.0 * df["adv_accuracy"]
    df["natural"] = 100.0 * df["correct"] / df["n_test"]
    for k in ("label", "seed", "dataset"):
        df[k] = r[k]
    return df


def mark_eps_unit(ds):
    return 255.0 if ds == "cifar10" else None


footer = f"Seeds {seeds}; mean ± 95 % interval over seeds where several."
if spec["kind"] == "accuracy":
    ds = spec["dataset"]
    block = study["datasets"][ds]
    columns = list(block["attacks"])
    frames = []
    for r in records:
        for col in columns:
            df = read_attack(r, col)
            df["column"] = col
            frames.append(df)
    res = pd.concat(frames, ignore_index=True)
    ref_key = block.get("reference")
    reference = load_reference("study002")["tables"][ref_key] if ref_key else None
    numeric = tables.accuracy_table(res, order, columns, reference)
    readable = tables.render_accuracy_table(numeric, columns, NAMES, mark_eps_unit(ds))
    used = "; ".join(f"{c}: {attack_desc(a)}" for c, a in block["attacks"].items())
    paper = (f" In brackets: the study's printed number ({load_reference('study002')['citation']})."
             if reference else " The study has no table for this dataset.")
    caption = (f"Test accuracy (%) on {ds} ({len(res['seed'].unique())} seed(s)) of each training "
               f"regime, naturally and under attack ({used}).{paper} {footer}")
elif spec["kind"] in ("pgd", "step_sweep", "curve"):
    frames = []
    for r in records:
        for key, path in r["files"].items():
            df = read_attack(r, key)
            a = df["attack"].iloc[0]
            df["regime"] = r["label"]
            df["attack_desc"] = attack_desc(a)
            df["steps"] = attacks[a].get("steps", 1)
            df["step_size"] = attacks[a].get("step_size", math.nan)
            frames.append(df)
    res = pd.concat(frames, ignore_index=True)
    by = ["dataset", "regime", "attack", "attack_desc", "eps"]
    numeric = tables.summarise(res, by, ["accuracy"])
    readable = tables.render_summary(numeric, ["dataset", "regime", "attack_desc", "eps"],
                                     {"accuracy": ("Accuracy (%)", 1)})
    what = {"pgd": "BIM (the study's setting) against PGD with random restarts, the stronger "
                   "attack the study does not run",
            "step_sweep": "BIM and C&W at the study's step size and at smaller steps with more "
                          "iterations (a step of 0.1 at ε = 0.1 is a full-radius jump)"}[spec["kind"]]
    caption = f"Test accuracy (%) under {what}. {footer}"
elif spec["kind"] == "indicator":
    frames = []
    for r in records:
        ind = pd.read_csv(r["files"]["indicator"])
        curve = pd.read_csv(r["files"]["curve"])
        at = curve[[math.isclose(e, r["eps"], rel_tol=1e-6) for e in curve["eps"]]]
        if at.empty:
            raise ValueError(f"{r['files']['curve']} has no row at eps={r['eps']} (the middle "
                             "eps of the table): add it to the curve attack's eps list")
        frames.append(dict(dataset=r["dataset"], regime=r["label"], seed=r["seed"],
                           grad_l1=ind["grad_l1"].mean(), grad_l2=ind["grad_l2"].mean(),
                           jac_zero_frac=100 * ind["jac_zero_frac"].mean(),
                           hess_top_eig=ind["hess_top_eig"].mean(),
                           hess_top_eig_median=ind["hess_top_eig"].median(),
                           hess_zero_frac=100 * ind["hess_zero_frac"].mean(),
                           pgd_eps=r["eps"], pgd_accuracy=100 * float(at["adv_accuracy"].iloc[0])))
    res = pd.DataFrame(frames)
    vals = ["grad_l1", "grad_l2", "jac_zero_frac", "hess_top_eig", "hess_top_eig_median",
            "hess_zero_frac", "pgd_accuracy"]
    numeric = tables.summarise(res, ["dataset", "regime", "pgd_eps"], vals)
    readable = tables.render_summary(numeric, ["dataset", "regime", "pgd_eps"], {
        "grad_l1": ("mean ‖∇ₓg‖₁", 3), "grad_l2": ("mean ‖∇ₓg‖₂", 3),
        "jac_zero_frac": ("near-zero ∇ₓg entries (%)", 1),
        "hess_top_eig": ("mean top λ(∇²ₓCE)", 4), "hess_top_eig_median": ("median top λ", 4),
        "hess_zero_frac": ("near-zero eigenvalues (%)", 2),
        "pgd_accuracy": ("PGD-10 accuracy (%)", 1)})
    caption = ("Robustness indicator per regime: mean over test images of the decision "
               "function's input gradient (norms, share of near-zero entries) and of the CE input "
               "Hessian's top eigenvalue and near-zero share, beside the accuracy under PGD-10 at "
               f"the table's middle ε. {footer}")
elif spec["kind"] == "training":
    frames = []
    for r in records:
        ep = pd.read_csv(r["files"]["epochs"])
        last = ep.iloc[-1]
        frames.append(dict(dataset=r["dataset"], regime=r["label"], seed=r["seed"],
                           recipe=r["recipe"], epochs=int(last["epoch"]),
                           train_loss=last["train_loss"], test_acc=100 * last["test_acc"],
                           epoch_time_s=ep["epoch_time_s"].mean()))
    res = pd.DataFrame(frames)
    nat = res[res["regime"] == "natural"].groupby("dataset")["epoch_time_s"].mean()
    res["time_vs_natural"] = [t / nat.get(d, math.nan) for d, t in
                              zip(res["dataset"], res["epoch_time_s"])]
    numeric = tables.summarise(res, ["dataset", "regime", "recipe", "epochs"],
                               ["train_loss", "test_acc", "epoch_time_s", "time_vs_natural"])
    readable = tables.render_summary(numeric, ["dataset", "regime", "recipe", "epochs"], {
        "train_loss": ("final train CE", 4), "test_acc": ("test accuracy (%)", 2),
        "epoch_time_s": ("s / epoch", 1), "time_vs_natural": ("× natural", 2)})
    regimes = "; ".join(f"{r}: {recipes[r].get('regime', {}) or 'natural'}"
                        for r in sorted({r['recipe'] for r in records}))
    caption = ("Training of every regime: final whole-training-set loss, natural test accuracy, "
               "mean wall time per epoch and its ratio to natural training's (the study reports "
               f"2.1× for its penalty on CIFAR-10). Regimes: {regimes}. {footer}")
else:
    raise ValueError(f"unknown table kind {spec}")

tables.write_table(numeric, readable, snakemake.output.csv[:-len(".csv")], caption)
log(f"wrote {name}:\n{readable.to_string(index=False)}")
