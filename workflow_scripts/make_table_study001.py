"""Snakemake adapter: one of study 001's tables on one dataset (rule make_table_study001).

table_robust_accuracy: clean, PGD and AutoAttack-style accuracy (%) of every model at every
epoch-end checkpoint, mean ± 95 % interval over seeds, with the attacks and subset named.
table_hvp_error: relative error of finite-difference Hessian-vector products against double
backprop on the traced HAAT model, per method and ξ (median over batches of the per-batch
median over examples)."""

import pandas as pd

from curvrobust.jobs import start_job
from curvrobust.tables import render_summary, summarise, write_table

log = start_job(snakemake)
name = snakemake.wildcards.table
ds = snakemake.wildcards.dataset
stem = snakemake.output.csv[: -len(".csv")]

if name == "table_eigvec_alignment":
    df = pd.concat([pd.read_csv(f).assign(seed=i) for i, f in enumerate(snakemake.input.data)],
                   ignore_index=True)
    rows = []
    for (method, k), g in df.groupby(["method", "k"], sort=False):
        rows.append(dict(method=method, k=k, xi=g["xi"].iloc[0],
                         cos_median=g["cos_median"].median(), cos_q10=g["cos_q10"].median(),
                         cos_mean=g["cos_mean"].mean(), batches=len(g),
                         examples=int(g["n"].sum())))
    numeric = pd.DataFrame(rows)
    readable = pd.DataFrame({
        "Method": numeric["method"], "k": numeric["k"], "ξ": [f"{v:g}" for v in numeric["xi"]],
        "median |cos(u_k, u₁)|": [f"{v:.3f}" for v in numeric["cos_median"]],
        "10th percentile": [f"{v:.3f}" for v in numeric["cos_q10"]],
        "Examples": numeric["examples"]})
    caption = (f"Study 001 on {ds}: does the power iteration find the input Hessian's dominant "
               "eigenvector u₁? |cos| between the k-step iterate and u₁ (50 exact power steps "
               "from the same start) at training images, traced HAAT model; median over "
               "batches of the per-batch statistic. Random directions give |cos| ≈ 1/√d.")
    write_table(numeric, readable, stem, caption)
    log(readable.to_string(index=False))
elif name == "table_hvp_error":
    df = pd.concat([pd.read_csv(f).assign(seed=i) for i, f in enumerate(snakemake.input.data)],
                   ignore_index=True)
    rows = []
    for (method, xi), g in df.groupby(["method", "xi"], sort=True):
        rows.append(dict(method=method, xi=xi, median_rel_error=g["median"].median(),
                         q90_rel_error=g["q90"].median(), mean_rel_error=g["mean"].mean(),
                         zero_frac=g["zero_frac"].mean(),
                         batches=len(g), examples=int(g["n"].sum())))
    numeric = pd.DataFrame(rows).sort_values(["method", "xi"], ascending=[True, False])
    readable = pd.DataFrame({
        "Method": numeric["method"], "ξ": [f"{v:g}" for v in numeric["xi"]],
        "median ‖Hu_fd − Hu‖/‖Hu‖": [f"{v:.3g}" for v in numeric["median_rel_error"]],
        "90th percentile": [f"{v:.3g}" for v in numeric["q90_rel_error"]],
        "Hu = 0 exactly (%)": [f"{100 * v:.1f}" for v in numeric["zero_frac"]],
        "Examples": numeric["examples"]})
    caption = (f"Study 001 on {ds}: finite-difference input Hessian-vector products (float32) "
               "against double backprop, random unit directions at training images, on the "
               "traced HAAT model; median over batches of the per-batch median relative error.")
    write_table(numeric, readable, stem, caption)
    log(readable.to_string(index=False))
else:
    frames = []
    for r in snakemake.params.records:
        adv = (snakemake.params.recipes[r["recipe"]].get("regime") or {}).get("adversary", {})
        for f in r["evals"]:
            frames.append(pd.read_csv(f).assign(
                label=r["label"], adversary=adv.get("kind", ""),
                xi=adv.get("xi", float("nan")) if adv.get("kind") == "haat" else float("nan"),
                k=adv.get("k", float("nan")) if adv.get("kind") == "haat" else float("nan")))
    df = pd.concat(frames, ignore_index=True)
    acc = [c for c in df.columns if c.endswith("_acc")]
    df[acc] = 100.0 * df[acc]
    numeric = summarise(df, ["label", "recipe", "epoch"], acc)
    first = df.groupby(["label", "recipe", "epoch"], sort=False).first().reset_index()
    for c in ("xi", "k", "n_examples", "subset_seed", "eps", "pgd_attack", "aa_attacks"):
        numeric[c] = first[c].to_numpy()
    names = {"clean_acc": "clean", "pgd_acc": "PGD", "aa_acc": "AutoAttack"}
    values = {c: (names.get(c, c[: -len("_acc")].upper()), 1) for c in acc}
    readable = render_summary(numeric, ["label", "epoch"], values)
    row = df.iloc[0]
    caption = (f"Study 001 on {ds}: accuracy (%) at every epoch-end checkpoint on a fixed "
               f"subset of {row['n_examples']} test images (seed {row['subset_seed']}), "
               f"ε = {row['eps']:g}; PGD: {row['pgd_attack']}; AutoAttack cascade: "
               f"{row['aa_attacks']} (each attack on the points still robust). Mean ± 95 % "
               f"interval over seeds {snakemake.params.seeds}.")
    write_table(numeric, readable, stem, caption)
    log(readable.to_string(index=False))
