"""Study 001's tables (HAAT against PGD adversarial training): `table_robust_accuracy` (clean,
PGD and AutoAttack-style accuracy of every model at every epoch-end checkpoint, mean ± 95 %
interval over seeds), `table_hvp_error` (finite-difference Hessian-vector products against
double backprop) and `table_eigvec_alignment` (the power iteration's iterate against the dominant
eigenvector), made by `make_table`; and the evidence of the study's claims (`claim_evidence`:
paired per-image robust accuracy at the final epoch, and the power iteration's last step). Its
figures are drawn by `curvrobust.reports.study001_figures`; this module imports no plotting code
(nor torch, but for the claims' outcome files).

`presentation` is what `curvrobust.plans.study001.Study001.presentation(name)` returns: display
names (`metrics`, `columns`) and the `caption` template whose {placeholders} are filled here.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from curvrobust.claims.evidence import Absent, Evidence, Measures, PerImage
from curvrobust.claims.stats import cube_from_frames
from curvrobust.evaluation.outcomes import read_outcomes, worst_case_images
from curvrobust.reports import robustness
from curvrobust.reports.tables import render_summary, summarise

Record = dict[str, Any]
Tables = tuple[pd.DataFrame, pd.DataFrame, str]  # numeric, readable, caption

# how the readable tables print each numeric column (columns not listed are shown as they are)
FORMATS: dict[str, Callable[[Any], str]] = {
    "xi": "{:g}".format,
    "median_rel_error": "{:.3g}".format,
    "q90_rel_error": "{:.3g}".format,
    "zero_frac": lambda v: f"{100 * v:.1f}",
    "cos_median": "{:.3f}".format,
    "cos_q10": "{:.3f}".format,
}


def read_per_seed(files: Sequence[str]) -> pd.DataFrame:
    """The per-seed convergence CSVs (trace, HVP error, alignment) stacked, `seed` = file index."""
    return pd.concat([pd.read_csv(f).assign(seed=i) for i, f in enumerate(files)],
                     ignore_index=True)


def readable_columns(numeric: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """`columns` (numeric column -> heading) of `numeric`, printed through FORMATS."""
    return pd.DataFrame({
        heading: [FORMATS[c](v) for v in numeric[c]] if c in FORMATS else numeric[c]
        for c, heading in columns.items()})


# ---- tables ----

def hvp_error_numeric(df: pd.DataFrame) -> pd.DataFrame:
    """Per (start, method, ξ): median over batches of the per-batch median and 90th-percentile
    relative error, mean relative error and fraction of exactly-zero products; ξ descending per
    method, starts in file order (`fd_start`: the direction is the raw N(0, I) draw or the unit
    one; files without the column are of unit directions)."""
    if "fd_start" not in df:
        df = df.assign(fd_start="normalised")
    order = {v: i for i, v in enumerate(dict.fromkeys(df["fd_start"]))}
    rows = []
    for (start, method, xi), g in df.groupby(["fd_start", "method", "xi"], sort=True):
        rows.append(dict(fd_start=start, method=method, xi=xi,
                         median_rel_error=g["median"].median(),
                         q90_rel_error=g["q90"].median(), mean_rel_error=g["mean"].mean(),
                         zero_frac=g["zero_frac"].mean(),
                         batches=len(g), examples=int(g["n"].sum())))
    out = pd.DataFrame(rows)
    out["_order"] = out["fd_start"].map(order)
    return (out.sort_values(["_order", "method", "xi"], ascending=[True, True, False])
            .drop(columns="_order").reset_index(drop=True))


def alignment_numeric(df: pd.DataFrame) -> pd.DataFrame:
    """Per (method, k), in file order: median over batches of the per-batch |cos| statistics."""
    rows = []
    for (method, k), g in df.groupby(["method", "k"], sort=False):
        rows.append(dict(method=method, k=k, xi=g["xi"].iloc[0],
                         cos_median=g["cos_median"].median(), cos_q10=g["cos_q10"].median(),
                         cos_mean=g["cos_mean"].mean(), batches=len(g),
                         examples=int(g["n"].sum())))
    return pd.DataFrame(rows)


def _convergence_table(
        numeric_of: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[..., Tables]:
    """A table of the per-seed convergence CSVs: `numeric_of` the stacked rows, the readable
    columns and caption from the presentation."""
    def table(records: list[Record], presentation: dict[str, Any], fields: dict[str, Any],
              data: Sequence[str], recipes: dict[str, dict]) -> Tables:
        numeric = numeric_of(read_per_seed(data))
        return (numeric, readable_columns(numeric, presentation["columns"]),
                presentation["caption"].format(**fields))
    return table


def robust_accuracy_frame(records: list[Record], recipes: dict[str, dict]) -> pd.DataFrame:
    """Every evaluation row of every model, tagged with its label and its recipe's adversary
    (kind; ξ and k for HAAT), accuracies in %."""
    frames = []
    for r in records:
        adv = (recipes[r["recipe"]].get("regime") or {}).get("adversary", {})
        haat = adv.get("kind") == "haat"
        for f in r["evals"]:
            frames.append(pd.read_csv(f).assign(
                label=r["label"], adversary=adv.get("kind", ""),
                xi=adv.get("xi", float("nan")) if haat else float("nan"),
                k=adv.get("k", float("nan")) if haat else float("nan")))
    df = pd.concat(frames, ignore_index=True)
    acc = [c for c in df.columns if c.endswith("_acc")]
    df[acc] = 100.0 * df[acc]
    return df


def robust_accuracy_table(records: list[Record], presentation: dict[str, Any],
                          fields: dict[str, Any], data: Sequence[str],
                          recipes: dict[str, dict]) -> Tables:
    """Mean ± 95 % interval over seeds per (label, recipe, epoch) of every accuracy column,
    with the attack settings of the first row of each group; the caption names the first
    evaluation row's subset and attacks."""
    df = robust_accuracy_frame(records, recipes)
    acc = [c for c in df.columns if c.endswith("_acc")]
    numeric = summarise(df, ["label", "recipe", "epoch"], acc)
    first = df.groupby(["label", "recipe", "epoch"], sort=False).first().reset_index()
    for c in ("xi", "k", "n_examples", "subset_seed", "eps", "pgd_attack", "aa_attacks"):
        numeric[c] = first[c].to_numpy()
    names = presentation["metrics"]
    values = {c: (names.get(c, c[: -len("_acc")].upper()), 1) for c in acc}
    readable = render_summary(numeric, ["label", "epoch"], values)
    caption = presentation["caption"].format_map({**df.iloc[0].to_dict(), **fields})
    return numeric, readable, caption


TABLES = {
    "table_robust_accuracy": robust_accuracy_table,
    "table_hvp_error": _convergence_table(hvp_error_numeric),
    "table_eigvec_alignment": _convergence_table(alignment_numeric),
}


def make_table(name: str, records: list[Record], presentation: dict[str, Any], *,
               dataset: str, data: Sequence[str] = (), recipes: dict[str, dict] | None = None,
               seeds: Sequence[int] = (), robust: dict[str, str] | None = None) -> Tables:
    """Table `name` on `dataset`: (numeric, readable, caption). `records` are the plan's
    per-model records (with their `evals` files), `data` the per-seed convergence CSVs,
    `recipes` the records' recipes, `robust` model key -> robust-evaluation summary file (the
    worst case and validity gate of each final model)."""
    fields = dict(dataset=dataset, seeds=list(seeds))
    numeric, readable, caption = TABLES[name](records, presentation, fields, data, recipes or {})
    summaries = robustness.load_summaries(robust)
    if summaries and name == "table_robust_accuracy":
        # rows per (label, epoch): the worst case and the gate describe the final model, so
        # they go on its final epoch's rows only
        final = {r["label"]: max(int(e) for e in numeric[numeric["label"] == r["label"]]["epoch"])
                 for r in records}
        numeric = numeric.assign(row=[lab if int(e) == final.get(lab) else f"{lab}@{e}"
                                      for lab, e in zip(numeric["label"], numeric["epoch"])])
        numeric, readable, note = robustness.annotate(
            numeric, readable, records, summaries, numeric_col="row", readable_col="label",
            worst=True)
        caption += note
    return numeric, readable, caption



# ---- claims (curvrobust.plans.study001.Study001.claims; judged by curvrobust.claims) ----

def _summary(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _gate(models: Sequence[tuple[str, Any, str]], robust: Mapping[str, Mapping[str, Any]],
          names: Mapping[str, str]) -> tuple[str, list[str]]:
    """The validity gate of the final models a claim compares: ('' or the not-evaluable reason
    naming each degenerate model, flags naming each failed masking check). `models` are
    (label, seed, robust-evaluation key); models outside the robust evaluation are not gated."""
    reasons, flags = [], []
    for label, seed, key in models:
        entry = robust.get(key)
        if not entry or not entry.get("summary"):
            continue
        s = _summary(entry["summary"])
        name = names.get(label, label)
        validity = s.get("validity") or {}
        if validity.get("degenerate"):
            reasons.append(f"{name} seed {seed} is degenerate: "
                           f"{validity.get('reason') or 'failed the validity gate'}")
        flags += [f"{name} seed {seed}: {c}" for c in s.get("failed_checks") or []]
    return "; ".join(reasons), flags


def _robust_images(ds: Mapping[str, Any], label: str, seed: Any, attacks: str,
                   robust: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per image of one final model: `index` and `robust` (correct and not broken) under the
    claim's attacks at the dataset's ε — `autoattack` (the cascade's stages), `pgd` (the PGD
    evaluation attack) from the final-epoch outcome file of evaluate_checkpoint, or `all` (every
    attack on the model: that file and the robust evaluation's outcomes)."""
    model = ds["models"][label]
    own = model["images"][str(seed)]
    files = [own]
    if attacks == "all":
        files += [f for f in (robust.get(model["keys"][str(seed)]) or {}).get("outcomes", [])
                  if f != own]
    df = read_outcomes(files)
    if attacks == "autoattack":
        df = df[df["attack"].isin(ds["autoattack"])]
    elif attacks == "pgd":
        df = df[df["attack"] == ds["pgd"]]
    images = worst_case_images(df, ds["eps"])
    if images.empty:
        raise ValueError(f"{own}: no {attacks} outcome rows at eps {ds['eps']:g} for {label} "
                         f"seed {seed}")
    return images[["index", "robust"]]


def _not_run(reason: str) -> Absent:
    return Absent(status="not_run", reason=reason)


MEASURES = Measures("study001")
"""Study 001's claim measures: (claim, records, robust) -> the claim's evidence."""


@MEASURES.register("robust_accuracy")
def robust_accuracy_evidence(claim: Mapping[str, Any], records: Mapping[str, Any],
                             robust: Mapping[str, Mapping[str, Any]]) -> Evidence:
    """Arm a − arm b of the per-image robust accuracy at the final epoch (claim args: dataset,
    a, b, attacks, missing): the per-image cube (seeds × images × arms a, b) on the images every
    seed's models cover (claims_stats.cube_from_frames)."""
    args = claim["args"]
    ds = (records.get("datasets") or {}).get(args["dataset"])
    if ds is None:
        return _not_run(f"dataset {args['dataset']} is not in studies.study001.datasets")
    names = ds.get("names", {})
    a, b = args["a"], args["b"]
    absent = [str(lab) for lab in (a, b) if lab is None or lab not in ds["models"]]
    if absent:
        return _not_run(args.get("missing") or
                        f"no model {' / '.join(absent)} in studies.study001.datasets."
                        f"{args['dataset']}")
    ma, mb = ds["models"][a], ds["models"][b]
    seeds = [s for s in ma["seeds"] if s in mb["seeds"]]
    if not seeds:
        return _not_run(f"{a} (seeds {ma['seeds']}) and {b} (seeds {mb['seeds']}) share no seed")
    reason, flags = _gate([(lab, s, ds["models"][lab]["keys"][str(s)])
                           for lab in (a, b) for s in seeds], robust, names)
    if reason:
        return Absent(status="not_evaluable", reason=reason, flags=flags)
    frames = {s: _robust_images(ds, a, s, args["attacks"], robust).merge(
        _robust_images(ds, b, s, args["attacks"], robust), on="index", suffixes=("_a", "_b"))
        .set_index("index") for s in seeds}
    cube = cube_from_frames(frames, ["robust_a", "robust_b"])
    mean_a, mean_b = cube["images_num"].mean(axis=(0, 1))
    basis = (f"{len(seeds)} seeds, mean" if len(seeds) > 1 else f"seed {seeds[0]}")
    return PerImage.from_cube(
        cube, flags=flags, ours=(f"{names.get(a, a)} {100 * mean_a:.1f} %, {names.get(b, b)} "
                                 f"{100 * mean_b:.1f} % ({basis}; "
                                 f"{cube['images_num'].shape[1]} images)"))


@MEASURES.register("fd_convergence")
def fd_convergence_evidence(claim: Mapping[str, Any], records: Mapping[str, Any],
                            robust: Mapping[str, Mapping[str, Any]]) -> Evidence:
    """fd − exact of the power iteration's last step ‖u⁽ᵏ⁾ − u⁽ᵏ⁻¹⁾‖₂ (trace.csv `diff_mean`:
    the mean over a batch's images, in the last attack step) at the claim's k, paired by batch
    (the same batch and draws for both methods): the cube seeds × batches × (fd, exact); the
    batches play the images' part."""
    args = claim["args"]
    ds = (records.get("datasets") or {}).get(args["dataset"])
    if ds is None:
        return _not_run(f"dataset {args['dataset']} is not in studies.study001.datasets")
    trace, k = ds["trace"], int(args["k"])
    names = ds.get("names", {})
    reason, flags = _gate([(m["label"], s, m["key"]) for s, m in trace["models"].items()],
                          robust, names)
    if reason:
        return Absent(status="not_evaluable", reason=reason, flags=flags)
    frames = {}
    for seed, f in trace["files"].items():
        df = pd.read_csv(f)
        last = df[(df["k"] == k) & (df["iteration"] == k)]
        got = set(last["method"])
        if not {"fd", "exact"} <= got:
            return _not_run(f"{f}: no fd and exact traces at k = {k} (methods traced: "
                            f"{sorted(got) or 'none'}; studies.study001.convergence)")
        by = last.pivot_table(index="batch", columns="method", values="diff_mean")
        frames[int(seed)] = by[["fd", "exact"]].dropna()
    cube = cube_from_frames(frames, ["fd", "exact"])
    models = {m["label"] + ("" if m["own"] else f" (no model trained with k = {k})")
              for m in trace["models"].values()}
    fd, ex = cube["images_num"].mean(axis=(0, 1))
    return PerImage.from_cube(
        cube, flags=flags, ours=(f"fd {fd:.3f}, exact {ex:.3f} (k = {k}, last power step; "
                                 f"{cube['images_num'].shape[1]} batches, {len(frames)} "
                                 f"seed(s); model {', '.join(sorted(models))})"))


def claim_evidence(claims: Sequence[Mapping[str, Any]], records: Mapping[str, Any],
                   robust: Mapping[str, Mapping[str, Any]]) -> dict[str, Evidence]:
    """Evidence per claim id for curvrobust.claims.judge, each by its claim's measure
    (:data:`MEASURES`): `records` is the plan's
    claim_records() (per dataset: ε, the attack names, every model label's seeds, final-epoch
    per-image files and robust-evaluation keys, the convergence traces), `robust` model key ->
    {summary, outcomes} of the robust evaluation (validity gate, failed masking checks, and
    every attack for the worst-case claim). A claim whose models the configuration does not
    train is "not_run" with the reason; one with a degenerate final model "not_evaluable"."""
    return {c["id"]: MEASURES.get(c["measure"], c["id"])(c, records, robust) for c in claims}
