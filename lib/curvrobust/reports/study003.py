"""Study 003's tables, its adversarial-training rate measures and the evidence for its claims.

Tables (made by `make_table`; mean ± 95 % interval over seeds):

* ``table_pga_by_scale``: per PGA stage (the initialisation, and the network trained with each
  learning-rate scaling) and input scale s: loss at start / end, iterations to a fixed fraction
  of each start's climb, the share of starts that converged and the distinct maxima among them,
  and the earlier measures (iterations to the loss tolerance, distinct maxima of all starts,
  their relative spread);
* ``table_adversarial_training``: per learning-rate scaling and scale: the first SGD step whose
  robust batch loss is below 1 (:func:`steps_below`, censored runs shown "> N"), the slope of
  the log robust batch loss over the first steps (:func:`log_loss_slope`), the robust training
  loss in the first and last epoch and the clean / robust test accuracy at the end.

Its figures are drawn by :mod:`curvrobust.reports.study003_figures`; this module imports no
plotting code. ``records`` are the plan's (``Study003.pga_records`` / ``training_records``:
variant, scale, seed, [lr_scaling,] files), read by :func:`frames`; ``presentation`` is the
plan's ``Study003.presentation(name)`` and ``settings`` its ``Study003.settings(name)``.

:func:`claim_evidence` turns the plan's ``claim_records()`` into per-seed trends against log₂ s
for :mod:`curvrobust.claims`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from curvrobust.claims.evidence import Absent, Censored, Evidence, Measures, PerImage, PerSeed
from curvrobust.claims.stats import contrast_weights, cube_from_frames
from curvrobust.reports.tables import fmt_ci, mean_ci, render_summary, summarise

Table = tuple[pd.DataFrame, pd.DataFrame, str]
Frames = dict[str, pd.DataFrame]

LOSS_OF_ZERO = 1.0  # (y − 0)² for y = ±1: the loss of f ≡ 0 at every input scale


# ---- reading the per-run files ----
def frames(records: Sequence[dict[str, Any]]) -> Frames:
    """Read study 003's per-run CSVs into four frames, every row tagged with variant, scale,
    seed (and lr_scaling for a training run): ``trace`` (PGA loss and mapping norm per
    iteration), ``pga`` (one row per stage × scale × seed: the mean over examples of every
    numeric per-example column, NaN-skipping, and ``n_examples``), ``epochs`` and ``steps``
    (adversarial training). A PGA file's key is '<stage key>_trace' or '<stage key>_examples';
    the stage key ('init', 'trained_<lr_scaling>') becomes the ``stage`` column."""
    trace, pga_rows, epochs, steps = [], [], [], []
    for r in records:
        tag = dict(variant=r["variant"], scale=float(r["scale"]), seed=int(r["seed"]))
        if "lr_scaling" in r:
            tag["lr_scaling"] = r["lr_scaling"]
        for key, path in r["files"].items():
            df = pd.read_csv(path).assign(**tag)
            if key.endswith("_trace"):
                trace.append(df.assign(stage=key[: -len("_trace")]))
            elif key.endswith("_examples"):
                row = dict(tag, stage=key[: -len("_examples")], n_examples=len(df))
                num = df.drop(columns=["example", "stage", "lr_scaling", *tag], errors="ignore")
                num = num.select_dtypes("number")
                row.update({c: float(num[c].mean()) for c in num.columns if c not in row})
                pga_rows.append(row)
            elif key == "epochs":
                epochs.append(df)
            elif key == "steps":
                steps.append(df)
    return {"trace": _concat(trace), "pga": pd.DataFrame(pga_rows), "epochs": _concat(epochs),
            "steps": _concat(steps)}


def _concat(dfs: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(dfs, ignore_index=True) if dfs else pd.DataFrame()


# ---- adversarial-training rate measures ----
def steps_below(steps: Sequence[int], loss: Sequence[float],
                threshold: float = LOSS_OF_ZERO) -> tuple[int, bool]:
    """The first SGD step whose robust batch loss is below ``threshold`` (1: the loss of
    f ≡ 0, the same at every input scale), and whether the run is censored.

    Step k's loss is that of its batch at the PGA adversary before its update (k − 1 updates
    made), as in steps.csv. A run that never gets below returns (N, True) with N its number of
    steps: its value is "> N".

    Args:
        steps: step numbers 1 … N in order.
        loss: the robust batch loss of each step.
        threshold: the level to fall below.

    Returns:
        ``(step, censored)``.
    """
    steps, loss = np.asarray(steps), np.asarray(loss, dtype=float)
    if steps.size == 0 or steps.shape != loss.shape:
        raise ValueError(f"steps and loss must be equally long and non-empty, got "
                         f"{steps.shape} and {loss.shape}")
    below = np.flatnonzero(loss < threshold)
    if below.size:
        return int(steps[below[0]]), False
    return int(steps.max()), True


def log_loss_slope(steps: Sequence[int], loss: Sequence[float], first: int) -> float:
    """OLS slope of log(robust batch loss) against the step over the first ``first`` steps
    (all of them when the run is shorter): the initial rate of the robust loss's relative fall
    per SGD step (negative: falling; −0.1 ≈ 10 % per step). Scale-free, unlike the loss
    itself, whose starting level grows with the input scale.

    Args:
        steps: step numbers in order.
        loss: the robust batch loss of each step, > 0.
        first: steps to fit, >= 2.

    Returns:
        The slope (NaN with fewer than two steps).
    """
    if int(first) != first or first < 2:
        raise ValueError(f"first must be an integer >= 2, got first={first!r}")
    x = np.asarray(steps, dtype=float)[: int(first)]
    y = np.asarray(loss, dtype=float)[: int(first)]
    if x.shape != y.shape:
        raise ValueError(f"steps and loss must be equally long, got {x.shape} and {y.shape}")
    if (y <= 0).any():
        raise ValueError("the robust batch loss must be > 0 to take its log")
    if x.size < 2:
        return math.nan
    x = x - x.mean()
    return float((x * np.log(y)).sum() / (x * x).sum())


def run_rates(steps: pd.DataFrame, first: int, threshold: float = LOSS_OF_ZERO) -> dict:
    """The rate measures of one training run's steps.csv (sorted by step): the first step
    below ``threshold`` (``steps_below``), whether censored, the run's step count, the log-loss
    slope over the first ``first`` steps and the first step's robust batch loss."""
    steps = steps.sort_values("step")
    k, censored = steps_below(steps["step"], steps["robust_batch_loss"], threshold)
    return dict(steps_below=k, censored=censored, n_steps=int(steps["step"].max()),
                log_loss_slope=log_loss_slope(steps["step"], steps["robust_batch_loss"], first),
                robust_loss_step1=float(steps["robust_batch_loss"].iloc[0]))


def fmt_steps(step: int, censored: bool) -> str:
    """'12', or '> 96' for a run that never got below the threshold in its 96 steps."""
    return f"> {step}" if censored else f"{step}"


def steps_cell(values: Sequence[int], censored: Sequence[bool]) -> str:
    """A table cell for one group of runs: mean ± 95 % interval when no run is censored, else
    every run's value (e.g. '11, > 96, > 96'), since a censored count has no mean."""
    if not any(censored):
        return fmt_ci(*mean_ci(values), 1)
    return ", ".join(fmt_steps(v, c) for v, c in zip(values, censored))


# ---- tables ----
def _summary_table(df: pd.DataFrame, presentation: dict[str, Any], **fields: Any) -> Table:
    """Mean ± 95 % interval over seeds of the presentation's ``columns`` (column -> (heading
    template, digits)) per ``by`` group (column -> heading; groups in order of first appearance);
    `fields` fill the heading and caption templates."""
    by = presentation["by"]
    values = {c: (heading.format(**fields), digits)
              for c, (heading, digits) in presentation["columns"].items()}
    numeric = summarise(df, list(by), list(values))
    readable = render_summary(numeric, list(by), values).rename(columns=by)
    return numeric, readable, presentation["caption"].format(**fields)


def pga_by_scale(f: Frames, presentation: dict[str, Any], dataset: str,
                 settings: Mapping[str, Any]) -> Table:
    """Per stage (in the presentation's ``stages`` order; the numeric table keeps its key, the
    readable one shows its label) and scale, PGA's per-run means over the attacked examples;
    the numeric table also gets the number of examples."""
    labels = presentation["stages"]
    df = f["pga"]
    unknown = sorted(set(df["stage"]) - set(labels))
    if unknown:
        raise ValueError(f"PGA stages {unknown} have no label in the presentation's `stages`")
    order = {st: i for i, st in enumerate(labels)}
    df = df.assign(order=df["stage"].map(order)).sort_values(["order", "scale", "seed"],
                                                              kind="stable")
    n_examples = int(df["n_examples"].iloc[0])
    numeric, readable, caption = _summary_table(df, presentation, dataset=dataset,
                                                n_examples=n_examples, **settings)
    heading = presentation["by"]["stage"]
    readable[heading] = readable[heading].map(labels)
    numeric["n_examples"] = n_examples
    return numeric, readable, caption


def training_runs(f: Frames, settings: Mapping[str, Any]) -> pd.DataFrame:
    """One row per training run (lr_scaling, scale, seed): :func:`run_rates` of its steps,
    the robust training loss of the first and last epoch, the clean / robust test accuracy
    (percent) after the last epoch."""
    ep, st = f["epochs"], f["steps"]
    keys = ["lr_scaling", "scale", "seed"]
    last_epoch = int(ep["epoch"].max())
    rows = []
    for key, g in st.groupby(keys, sort=False):
        rows.append(dict(zip(keys, key), **run_rates(g, settings["log_slope_steps"],
                                                      settings["loss_threshold"])))
    rates = pd.DataFrame(rows)
    first = ep[ep["epoch"] == 1][keys + ["robust_train_loss"]].rename(
        columns={"robust_train_loss": "robust_train_loss_epoch1"})
    last = ep[ep["epoch"] == last_epoch][keys + ["robust_train_loss", "test_acc",
                                                 "robust_test_acc"]]
    df = rates.merge(first, on=keys).merge(last, on=keys)
    df[["test_acc", "robust_test_acc"]] *= 100
    return df


def adversarial_training(f: Frames, presentation: dict[str, Any], dataset: str,
                         settings: Mapping[str, Any]) -> Table:
    """Per learning-rate scaling (in the presentation's ``lr_labels`` order) and scale: the
    first step with robust batch loss below the threshold (mean ± interval, or every seed's
    value when a run is censored), the log-loss slope over the first steps, the robust
    training loss in the first and last epoch and the clean / robust test accuracy (percent)
    after the last epoch."""
    labels = presentation["lr_labels"]
    last_epoch = int(f["epochs"]["epoch"].max())
    df = training_runs(f, settings)
    order = {sc: i for i, sc in enumerate(labels)}
    df = df.assign(order=df["lr_scaling"].map(order)).sort_values(
        ["order", "scale", "seed"], kind="stable")
    fields = dict(settings, dataset=dataset, last_epoch=last_epoch)
    numeric, readable, caption = _summary_table(df, presentation, **fields)
    heading = presentation["steps_heading"].format(**fields)
    cells, n_cens, mean, half = [], [], [], []
    for (sc, s), g in df.groupby(["lr_scaling", "scale"], sort=False):
        cells.append(steps_cell(g["steps_below"].tolist(), g["censored"].tolist()))
        n_cens.append(int(g["censored"].sum()))
        m, h = (math.nan, math.nan) if g["censored"].any() else mean_ci(g["steps_below"])
        mean.append(m), half.append(h)
    numeric.insert(3, "steps_below_mean", mean)
    numeric.insert(4, "steps_below_ci95", half)
    numeric.insert(5, "steps_below_censored", n_cens)
    numeric.insert(6, "n_steps", df.groupby(["lr_scaling", "scale"], sort=False)["n_steps"]
                   .max().to_list())
    readable.insert(3, heading, cells)
    readable["lr"] = readable["lr"].map(lambda sc: f"{sc} ({labels.get(sc, sc)})")
    return numeric, readable, caption


TABLES: dict[str, Callable[[Frames, dict[str, Any], str, Mapping[str, Any]], Table]] = {
    "table_pga_by_scale": pga_by_scale,
    "table_adversarial_training": adversarial_training,
}


def make_table(name: str, records: Sequence[dict[str, Any]], presentation: dict[str, Any], *,
               dataset: str, settings: Mapping[str, Any]) -> Table:
    """Table `name` of study 003 on `dataset`: (numeric, readable, caption); `settings` are the
    plan's ``Study003.settings(name)``."""
    if name not in TABLES:
        raise KeyError(f"study003 has no table {name!r}; known: {sorted(TABLES)}")
    return TABLES[name](frames(records), presentation, dataset, settings)


# ---- claims ----
def slope_log2(x: Sequence[float], y: Sequence[float]) -> float:
    """OLS slope of y against log₂ x (the claims engine's contrast for a trend)."""
    return float(np.asarray(y, dtype=float) @ contrast_weights(len(x), x))


def censored_order(values: Sequence[int], censored: Sequence[bool]) -> int:
    """How one seed orders the scales (values listed by increasing s): +1 when the counts
    strictly increase with s, −1 when they strictly decrease, 0 otherwise. A censored count
    ("> N") is larger than any observed one (every run of a seed has the same N steps), and two
    censored counts are tied (not ordered)."""
    def cmp(a: tuple[int, bool], b: tuple[int, bool]) -> int:
        (va, ca), (vb, cb) = a, b
        if ca and cb:
            return 0
        if ca or cb:
            return 1 if ca else -1
        return (va > vb) - (va < vb)

    pairs = list(zip(values, censored))
    signs = [cmp(b, a) for a, b in zip(pairs, pairs[1:])]
    if signs and all(s == 1 for s in signs):
        return 1
    if signs and all(s == -1 for s in signs):
        return -1
    return 0


def _by_seed(rows: list[dict], value: Callable[[dict], Any]) -> dict[int, dict[float, Any]]:
    out: dict[int, dict[float, Any]] = {}
    for r in rows:
        out.setdefault(int(r["seed"]), {})[float(r["scale"])] = value(r)
    return out


def _trend(per_seed_values: dict[int, dict[float, float]]) -> tuple[dict[int, float], list]:
    """Per seed, the OLS slope of its values against log₂ s (seeds with a value at every
    scale), and the scales."""
    scales = sorted({s for v in per_seed_values.values() for s in v})
    slopes = {}
    for seed, v in sorted(per_seed_values.items()):
        ys = [v.get(s, math.nan) for s in scales]
        if len(scales) >= 2 and all(np.isfinite(ys)):
            slopes[seed] = slope_log2(scales, ys)
    return slopes, scales


def _means_text(per_seed_values: dict[int, dict[float, float]], scales: list, digits: int,
                unit: str) -> str:
    n = len(per_seed_values)
    parts = []
    for s in scales:
        v = [per_seed_values[k][s] for k in per_seed_values
             if np.isfinite(per_seed_values[k].get(s, math.nan))]
        parts.append(f"s = {s:g}: {np.mean(v):.{digits}f}" if v else f"s = {s:g}: –")
    return f"{', '.join(parts)} {unit} ({n} seed{'s' if n != 1 else ''}, mean)"


MEASURES = Measures("study003")
"""Study 003's claim measures: (claim, records) -> the claim's evidence."""


@MEASURES.register("pga_mean")
def _pga_mean(claim: dict, records: dict) -> Evidence:
    """The cube seeds × examples × scales of a per-example PGA column on the examples with a
    value at every scale in every seed (an example with no converged start has no maxima
    count), ``x`` the scales: the engine's trend is the slope against log₂ s. ``ours`` shows
    the NaN-skipping per-scale means. Iterations to climb with a start that never climbs
    (censored at T) are judged by the per-seed order of the scales instead
    (:func:`censored_order`, the censored mean larger than any uncensored one)."""
    args = claim["args"]
    col = args["column"]
    rows = records.get("pga", [])
    if not rows:
        return Absent(status="not_run", reason="no PGA measurement in this configuration")
    tables = {(int(r["seed"]), float(r["scale"])): pd.read_csv(r["examples"])[col].to_numpy(float)
              for r in rows}

    def mean(r: dict) -> float:
        v = tables[(int(r["seed"]), float(r["scale"]))]
        return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan

    values = _by_seed(rows, mean)
    per_seed, scales = _trend(values)
    if not per_seed:
        return Absent(status="not_evaluable",
                      reason=f"no seed has a value of {col} at every scale (e.g. no converged "
                             f"start)")
    frames = {}
    for seed in per_seed:
        frame = pd.DataFrame({sc: tables[(seed, sc)] for sc in scales})
        frames[seed] = frame[np.isfinite(frame.to_numpy()).all(axis=1)]
    ours = _means_text(values, scales, args.get("digits", 2), args.get("label", ""))
    try:
        cube = cube_from_frames(frames, scales)
    except ValueError as e:
        return Absent(status="not_evaluable", reason=f"{col}: {e} with a value at every scale")
    dropped = sorted(set(values) - set(per_seed))
    flags = [f"seed {k}: no value at some scale, left out" for k in dropped]
    censored = _climb_censored(rows) if col == "iters_to_climb" else {}
    if any(any(d.values()) for d in censored.values()):
        n = sum(v for d in censored.values() for v in d.values())
        flags.append(f"{n} (seed, scale) measurement(s) with a start that never climbs "
                     f"(counted as its T iterations, censored): the per-seed order of the "
                     f"scales decides")
        orders = {k: censored_order([values[k][sc] for sc in scales],
                                    [censored[k][sc] for sc in scales]) for k in per_seed}
        return Censored(orders=orders, x=scales, ours=ours, flags=flags)
    return PerImage.from_cube(cube, x=scales, ours=ours, flags=flags)


def _climb_censored(rows: list[dict]) -> dict[int, dict[float, bool]]:
    """Per seed and scale, whether some start of some example never climbed (the PGA file's
    ``climb_censored`` > 0; files without the column: none)."""
    def any_censored(r: dict) -> bool:
        df = pd.read_csv(r["examples"])
        return bool("climb_censored" in df and (df["climb_censored"] > 0).any())

    return _by_seed(rows, any_censored)


def _training_rows(claim: dict, records: dict) -> tuple[list[dict], Absent | None]:
    sc = claim["args"]["lr_scaling"]
    if sc not in records.get("lr_scalings", []):
        return [], Absent(status="not_run",
                          reason=f"lr scaling {sc!r} is not in studies.study003."
                                 "adversarial_training.lr_scalings")
    rows = [r for r in records.get("training", []) if r["lr_scaling"] == sc]
    if not rows:
        return [], Absent(status="not_run", reason=f"no training run with lr scaling {sc!r}")
    return rows, None


def _run_steps(path: str) -> tuple[pd.Series, pd.Series]:
    """(step, robust_batch_loss) of one training run's steps.csv, in step order."""
    d = pd.read_csv(path).sort_values("step")
    return d["step"], d["robust_batch_loss"]


@MEASURES.register("at_steps_below")
def _at_steps_below(claim: dict, records: dict) -> Evidence:
    """Per seed and scale, the first step with robust batch loss below the threshold; the
    per-seed trend against log₂ s (a censored run counted as its N steps, a lower bound), and
    when any run is censored the per-seed order of the scales (:func:`censored_order`), which
    then decides."""
    rows, absent = _training_rows(claim, records)
    if absent:
        return absent
    thr = claim["args"].get("threshold", LOSS_OF_ZERO)
    runs = _by_seed(rows, lambda r: steps_below(*_run_steps(r["steps"]), thr))
    values = {k: {s: float(v[0]) for s, v in d.items()} for k, d in runs.items()}
    per_seed, scales = _trend(values)
    censored = any(c for d in runs.values() for _, c in d.values())
    parts = []
    for s in scales:
        vals = [runs[k][s] for k in sorted(runs) if s in runs[k]]
        if censored:  # then every scale's per-seed values, in seed order
            parts.append(f"s = {s:g}: " + ", ".join(fmt_steps(v, c) for v, c in vals))
        else:
            parts.append(f"s = {s:g}: {np.mean([v for v, _ in vals]):.1f}")
    n = len(runs)
    ours = (f"{'; '.join(parts)} steps ({n} seed{'s' if n != 1 else ''}"
            f"{', per seed' if censored else ', mean'})")
    if censored:
        orders = {k: censored_order([runs[k][s][0] for s in scales],
                                    [runs[k][s][1] for s in scales])
                  for k in sorted(runs) if all(s in runs[k] for s in scales)}
        return Censored(orders=orders, per_seed=per_seed, x=scales, ours=ours)
    return PerSeed(per_seed=per_seed, x=scales, ours=ours)


@MEASURES.register("at_log_slope")
def _at_log_slope(claim: dict, records: dict) -> Evidence:
    """Per seed and scale, the OLS slope of the log robust batch loss over the first steps;
    the per-seed trend of that slope against log₂ s."""
    rows, absent = _training_rows(claim, records)
    if absent:
        return absent
    first = int(claim["args"]["steps"])
    values = _by_seed(rows, lambda r: log_loss_slope(*_run_steps(r["steps"]), first))
    per_seed, scales = _trend(values)
    if not per_seed:
        return Absent(status="not_evaluable", reason="fewer than two steps per run")
    return PerSeed(per_seed=per_seed, x=scales, ours=_means_text(values, scales, 4, "per step"))


def claim_evidence(claims: list[dict], records: dict, robust: dict) -> dict[str, Evidence]:
    """Evidence for each of study 003's claims (``Study003.claims()``), each by its claim's
    measure (:data:`MEASURES`), from the plan's
    ``claim_records()``: per seed the OLS slope of the claim's measure against log₂ s (the same
    initialisation at every scale), ``x`` the scales, ``ours`` the per-scale means; for the
    steps-below-1 claims with a censored run also ``censored`` and the per-seed ``orders``.
    ``robust`` is unused (study 003 is outside the robust evaluation)."""
    out = {}
    for c in claims:
        if not records:
            out[c["id"]] = Absent(status="not_run", reason="study 003 is not enabled")
            continue
        out[c["id"]] = MEASURES.get(c["measure"], c["id"])(c, records)
    return out
