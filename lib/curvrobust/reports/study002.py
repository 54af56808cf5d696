"""Study 002's tables: accuracy under attack per training regime (Tables 1/2, kind ``accuracy``),
the stronger checks (PGD restarts, ``pgd``; the step-size sweep, ``step_sweep``), the robustness
indicator beside PGD accuracy (``indicator``) and training cost (``training``), made by
:func:`make_table`; and the evidence for the study's claims (:func:`claim_evidence`, judged by
:mod:`curvrobust.claims`). Its figures are drawn by :mod:`curvrobust.reports.study002_figures`, which
shares this module's reading helpers; this module imports no plotting code.

Each table's `kind` (from the plan's outputs) picks one function in :data:`TABLES`. ``records``
are the plan's per-model records (model fields plus the ``files`` a table reads);
``presentation`` is ``Study002.presentation(name)``: display names (``labels``), the caption
template and the readable ``columns``. ``study``, ``attacks`` and ``recipes`` are the rule's
other params (the study block, the specs of the attacks and recipes the table reads).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from curvrobust.claims.evidence import (Absent, Evidence, Measures, PerImage, PerSeed,
                                        RankCorrelation)
from curvrobust.claims.stats import cube_from_frames
from curvrobust.evaluation.outcomes import read_outcomes, worst_case_images
from curvrobust.reference import load_reference
from curvrobust.reports import robustness, tables

Table = tuple[pd.DataFrame, pd.DataFrame, str]
Records = Sequence[dict[str, Any]]
EPS_UNIT = {"cifar10": 255.0}  # datasets whose radii the accuracy tables print as k/255


def attack_name(spec: dict[str, Any]) -> str:
    """FGSM, BIM, PGD, … or C&W."""
    return spec["kind"].upper() if spec["kind"] != "cw" else "C&W"


def attack_desc(spec: dict[str, Any]) -> str:
    """One attack's setting in words: kind, steps, restarts, how many test images."""
    bits = [attack_name(spec)]
    if spec["kind"] != "fgsm":
        bits.append(f"{spec.get('steps', 10)} steps of {spec.get('step_size', 0.1):g}")
    if spec.get("random_start") or spec["kind"] == "pgd":
        bits.append(f"{spec.get('restarts', 1)} restart(s)")
    if "n_examples" in spec:
        bits.append(f"first {spec['n_examples']} test images")
    return ", ".join(bits)


def read_attack(path: str, record: dict[str, Any]) -> pd.DataFrame:
    """One attack result file with accuracies in percent and the model's label, seed, dataset."""
    df = pd.read_csv(path)
    df["accuracy"] = 100.0 * df["adv_accuracy"]
    df["natural"] = 100.0 * df["correct"] / df["n_test"]
    for k in ("label", "seed", "dataset"):
        df[k] = record[k]
    return df


def at_eps(curve: pd.DataFrame, eps: float, path: str) -> pd.DataFrame:
    """The rows of an accuracy-over-ε file at `eps`; an error naming the file if there are none."""
    at = curve[[math.isclose(e, eps, rel_tol=1e-6) for e in curve["eps"]]]
    if at.empty:
        raise ValueError(f"{path} has no row at eps={eps} (the middle eps of the table): add it to "
                         "the curve attack's eps list")
    return at


def seed_counts(numeric: pd.DataFrame) -> str:
    """'3', or '1–3' when the rows (regimes) have different numbers of seeds."""
    counts = sorted({int(n) for n in numeric["n_seeds"]})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


def _caption(records: Records, presentation: dict[str, Any], **fields: Any) -> str:
    seeds = sorted({r["seed"] for r in records})
    return presentation["caption"].format(seeds=seeds, **fields)


def _summary(res: pd.DataFrame, by: Sequence[str], values: Sequence[str], shown: Sequence[str],
             presentation: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric (mean ± CI of `values` per `by` group) and readable frames (`shown` columns, then
    the presentation's value columns)."""
    numeric = tables.summarise(res, by, values)
    return numeric, tables.render_summary(numeric, shown, presentation["columns"])


# ---- tables ----

def accuracy_table(records: Records, presentation: dict[str, Any], *, kind: dict[str, Any],
                   study: dict[str, Any], attacks: dict[str, dict], **_: Any) -> Table:
    """Tables 1/2: natural accuracy and accuracy under each attack column per ε, one row per
    regime (display order), beside the study's printed numbers where it has them."""
    ds = kind["dataset"]
    block = study["datasets"][ds]
    columns = list(block["attacks"])
    frames = []
    for r in records:
        for col in columns:
            frames.append(read_attack(r["files"][col], r).assign(column=col))
    res = pd.concat(frames, ignore_index=True)
    ref_key = block.get("reference")
    reference = load_reference("study002")["tables"][ref_key] if ref_key else None
    labels = presentation["labels"]
    numeric = tables.accuracy_table(res, list(labels), columns, reference)
    readable = tables.render_accuracy_table(numeric, columns, labels, EPS_UNIT.get(ds))
    used = "; ".join(f"{c}: {attack_desc(attacks[a])}" for c, a in block["attacks"].items())
    paper = presentation["paper"].format(citation=load_reference("study002")["citation"])
    caption = _caption(records, presentation, dataset=ds, n_seeds=seed_counts(numeric),
                       attacks=used, paper=paper)
    return numeric, readable, caption


def attack_summary_table(records: Records, presentation: dict[str, Any], *,
                         attacks: dict[str, dict], **_: Any) -> Table:
    """Accuracy per dataset, regime, attack and ε for every attack file the records list (PGD
    restarts, step-size sweep)."""
    frames = []
    for r in records:
        for path in r["files"].values():
            df = read_attack(path, r)
            spec = attacks[df["attack"].iloc[0]]
            frames.append(df.assign(regime=r["label"], attack_desc=attack_desc(spec),
                                    steps=spec.get("steps", 1),
                                    step_size=spec.get("step_size", math.nan)))
    res = pd.concat(frames, ignore_index=True)
    numeric, readable = _summary(res, ["dataset", "regime", "attack", "attack_desc", "eps"],
                                 ["accuracy"], ["dataset", "regime", "attack_desc", "eps"],
                                 presentation)
    return numeric, readable, _caption(records, presentation)


INDICATOR_VALUES = ["grad_l1", "grad_l2", "jac_zero_frac", "hess_top_eig", "hess_top_eig_median",
                    "hess_zero_frac", "pgd_accuracy"]


def indicator_table(records: Records, presentation: dict[str, Any], **_: Any) -> Table:
    """Per regime, the indicator's means over test images beside the PGD-10 accuracy at the
    middle ε."""
    rows = []
    for r in records:
        ind = pd.read_csv(r["files"]["indicator"])
        at = at_eps(pd.read_csv(r["files"]["curve"]), r["eps"], r["files"]["curve"])
        rows.append(dict(dataset=r["dataset"], regime=r["label"], seed=r["seed"],
                         grad_l1=ind["grad_l1"].mean(), grad_l2=ind["grad_l2"].mean(),
                         jac_zero_frac=100 * ind["jac_zero_frac"].mean(),
                         hess_top_eig=ind["hess_top_eig"].mean(),
                         hess_top_eig_median=ind["hess_top_eig"].median(),
                         hess_zero_frac=100 * ind["hess_zero_frac"].mean(),
                         pgd_eps=r["eps"], pgd_accuracy=100 * float(at["adv_accuracy"].iloc[0])))
    by = ["dataset", "regime", "pgd_eps"]
    numeric, readable = _summary(pd.DataFrame(rows), by, INDICATOR_VALUES, by, presentation)
    return numeric, readable, _caption(records, presentation)


def training_table(records: Records, presentation: dict[str, Any], *,
                   recipes: dict[str, dict], **_: Any) -> Table:
    """Per regime, the last epoch's training loss and test accuracy, and the wall time per epoch
    (also relative to natural training on the same dataset)."""
    rows = []
    for r in records:
        ep = pd.read_csv(r["files"]["epochs"])
        last = ep.iloc[-1]
        rows.append(dict(dataset=r["dataset"], regime=r["label"], seed=r["seed"],
                         recipe=r["recipe"], epochs=int(last["epoch"]),
                         train_loss=last["train_loss"], test_acc=100 * last["test_acc"],
                         epoch_time_s=ep["epoch_time_s"].mean()))
    res = pd.DataFrame(rows)
    nat = res[res["regime"] == "natural"].groupby("dataset")["epoch_time_s"].mean()
    res["time_vs_natural"] = [t / nat.get(d, math.nan) for d, t in
                              zip(res["dataset"], res["epoch_time_s"])]
    by = ["dataset", "regime", "recipe", "epochs"]
    numeric, readable = _summary(res, by, ["train_loss", "test_acc", "epoch_time_s",
                                           "time_vs_natural"], by, presentation)
    regimes = "; ".join(f"{r}: {recipes[r].get('regime', {}) or 'natural'}"
                        for r in sorted({r['recipe'] for r in records}))
    return numeric, readable, _caption(records, presentation, regimes=regimes)


TABLES: dict[str, Callable[..., Table]] = {
    "accuracy": accuracy_table,
    "pgd": attack_summary_table,
    "step_sweep": attack_summary_table,
    "indicator": indicator_table,
    "training": training_table,
}


def make_table(name: str, records: Records, presentation: dict[str, Any], *,
               kind: dict[str, Any], **params: Any) -> Table:
    """Table `name` of study 002 (its kind from `kind`, the plan's spec): (numeric, readable,
    caption). `params`: the rule's `study`, `attacks` and `recipes`, and `robust` (model key ->
    robust-evaluation summary file: the worst case in the accuracy tables, the validity gate in
    all)."""
    if kind["kind"] not in TABLES:
        raise ValueError(f"{name}: unknown table kind {kind}")
    summaries = robustness.load_summaries(params.pop("robust", None))
    numeric, readable, caption = TABLES[kind["kind"]](records, presentation, kind=kind, **params)
    if summaries:
        if kind["kind"] == "accuracy":
            numeric, readable, note = robustness.annotate(
                numeric, readable, records, summaries, numeric_col="regime",
                readable_col="Regime", names=presentation["labels"], worst=True)
        else:  # rows per dataset and regime (and attack or ε)
            row_of = {robustness.model_key(r): f"{r['dataset']}/{r['label']}" for r in records}
            numeric = numeric.assign(row=numeric["dataset"] + "/" + numeric["regime"])
            numeric, readable, note = robustness.annotate(
                numeric, readable, records, summaries, row_of=row_of, numeric_col="row",
                readable_col="regime", worst=False)
        caption += note
    return numeric, readable, caption



# ---- claims (curvrobust.claims judges the evidence; the claims: Study002.claims) ----

class _Unavailable(Exception):
    """A claim's measure cannot be taken: ``status`` not_run or not_evaluable, with the reason."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class _ClaimData:
    """Reads (once) the per-image files a claim's models name: the study's attacks, the
    indicator, the robust evaluation's outcomes and summary."""

    def __init__(self, records: dict[str, Any], robust: dict[str, dict]):
        self.records, self.robust = records, robust or {}
        self._cache: dict[tuple, Any] = {}

    def _cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def models(self, ds: str, label: str) -> dict[int, dict[str, Any]]:
        """seed -> model record of one regime; not_run when the preset does not train it."""
        block = self.records.get("datasets", {}).get(ds)
        if block is None:
            raise _Unavailable("not_run", f"{ds} is not a study-002 dataset in this preset")
        models = block["models"].get(label)
        if not models:
            raise _Unavailable("not_run", f"regime {label!r} is not trained on {ds} in this "
                                          "preset")
        return {int(m["seed"]): m for m in models}

    def summary(self, model: dict[str, Any]) -> dict | None:
        entry = self.robust.get(model["key"])
        if not entry:
            return None
        return self._cached(("summary", model["key"]),
                            lambda: robustness.load_summaries({"s": entry["summary"]})["s"])

    def degenerate(self, label: str, model: dict[str, Any]) -> str | None:
        """'label seed N (key): reason' when the model failed the validity gate, else None."""
        s = self.summary(model)
        if s is not None and s["validity"]["degenerate"]:
            return f"{label} seed {model['seed']} ({model['key']}): {s['validity']['reason']}"
        return None

    def flags(self, label: str, model: dict[str, Any]) -> list[str]:
        s = self.summary(model)
        failed = s.get("failed_checks", []) if s else []
        return [f"{label} seed {model['seed']}: {', '.join(failed)}"] if failed else []

    def attack_rows(self, ds: str, model: dict[str, Any], attack: str) -> pd.DataFrame:
        if attack not in model["files"]:
            raise _Unavailable("not_run", f"no {attack.upper()} attack on {ds} in this preset")
        path = model["files"][attack]
        return self._cached(("file", path), lambda: read_outcomes(path))

    def robust_images(self, ds: str, model: dict[str, Any], attack: str,
                      eps: float) -> pd.Series:
        """Per image (by test-set index), 1 if robust at `eps` else 0: under one attack
        (correct and not broken) or, for attack 'worst', under every attack run at `eps`."""
        if attack == "worst":
            entry = self.robust.get(model["key"])
            if not entry:
                raise _Unavailable("not_run", f"{model['key']} is not in the robust evaluation "
                                              "(no worst case)")
            rows = self._cached(("outcomes", model["key"]),
                                lambda: read_outcomes(entry["outcomes"]))
            wc = self._cached(("worst", model["key"], eps),
                              lambda: worst_case_images(rows, eps))
            if wc.empty:
                raise _Unavailable("not_run", f"no attack ran at ε = {eps:g} on {model['key']}")
            return pd.Series(wc["robust"].to_numpy(float), index=wc["index"].to_numpy())
        rows = self.attack_rows(ds, model, attack)
        at = rows[np.isclose(rows["eps"], eps, rtol=1e-6, atol=1e-12)]
        if at.empty:
            raise _Unavailable("not_run", f"the {attack.upper()} attack on {ds} does not run at "
                                          f"ε = {eps:g}")
        at = at.drop_duplicates("index")
        ok = (at["correct"] == 1) & ~((at["attacked"] == 1) & (at["success"] == 1))
        return pd.Series(ok.to_numpy(float), index=at["index"].to_numpy())

    def correct_images(self, ds: str, model: dict[str, Any]) -> pd.Series:
        """Per image of the shared subset, 1 if classified correctly (the study's first attack
        file's rows)."""
        first = next(iter(self.records["datasets"][ds]["attacks"]))
        rows = self.attack_rows(ds, model, first).drop_duplicates("index")
        return pd.Series(rows["correct"].to_numpy(float), index=rows["index"].to_numpy())

    def indicator(self, model: dict[str, Any], column: str) -> pd.Series:
        path = model["files"]["indicator"]
        df = self._cached(("file", path), lambda: pd.read_csv(path))
        return pd.Series(df[column].to_numpy(float), index=df["index"].to_numpy())


def _pct(v: float, unit: str) -> str:
    return f"{100 * v:.1f} %" if unit == "%" else f"{v:.3g}"


MEASURES = Measures("study002")
"""Study 002's claim measures: (claim, the claim data) -> the claim's evidence."""


def _pairwise(claim: dict[str, Any], data: _ClaimData,
              values: Callable[[dict[str, Any]], pd.Series]) -> Evidence:
    """Evidence for 'arm a − arm b' of a per-image value: the cube seeds × images × (a, b) over
    the seeds both arms share, on the test images every seed's pair has."""
    args, unit = claim["args"], claim["unit"]
    ds, a, b = args["dataset"], args["a"], args["b"]
    arms = {a: data.models(ds, a), b: data.models(ds, b)}
    bad = [t for lb, ms in arms.items() for m in ms.values() if (t := data.degenerate(lb, m))]
    if bad:
        return Absent(status="not_evaluable", reason="degenerate final model: " + "; ".join(bad))
    flags = [f for lb, ms in arms.items() for m in ms.values() for f in data.flags(lb, m)]
    common = sorted(set(arms[a]) & set(arms[b]))

    def paired(seed_a: int, seed_b: int) -> pd.DataFrame:
        va, vb = values(arms[a][seed_a]), values(arms[b][seed_b])
        df = pd.concat({"a": va, "b": vb}, axis=1, join="inner")
        if df.empty:
            raise _Unavailable("not_evaluable", f"{a} and {b} share no test image")
        return df

    if common:
        cube = cube_from_frames({s: paired(s, s) for s in common}, ["a", "b"])
        ma, mb = cube["images_num"].mean(axis=(0, 1))
        n = cube["images_num"].shape[1]
        runs = f"{len(common)} seeds, mean" if len(common) > 1 else f"one run, seed {common[0]}"
        return PerImage.from_cube(
            cube, flags=flags, ours=f"{a} {_pct(ma, unit)}, {b} {_pct(mb, unit)} ({runs}; {n} "
                                    "images)")
    # no shared seed: arm means only (no paired comparison, no interval)
    ma = float(np.mean([values(m).mean() for m in arms[a].values()]))
    mb = float(np.mean([values(m).mean() for m in arms[b].values()]))
    return PerSeed(flags=flags, effect=ma - mb,
                   ours=f"{a} {_pct(ma, unit)} (seeds {sorted(arms[a])}), {b} {_pct(mb, unit)} "
                        f"(seeds {sorted(arms[b])}): no shared seed to pair")


@MEASURES.register("robust_accuracy")
def _robust_accuracy(claim: dict[str, Any], data: _ClaimData) -> Evidence:
    args = claim["args"]
    return _pairwise(claim, data, lambda m: data.robust_images(
        args["dataset"], m, args["attack"], float(args["eps"])))


@MEASURES.register("natural_accuracy")
def _natural_accuracy(claim: dict[str, Any], data: _ClaimData) -> Evidence:
    return _pairwise(claim, data, lambda m: data.correct_images(claim["args"]["dataset"], m))


@MEASURES.register("jacobian_zero_share")
def _jacobian_zero_share(claim: dict[str, Any], data: _ClaimData) -> Evidence:
    return _pairwise(claim, data, lambda m: data.indicator(m, "jac_zero_frac"))


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's ρ between the columns of each row of `x` and `y` (shape (B, k)): Pearson's
    correlation of their ranks (ties averaged); NaN where either row is constant."""
    from scipy.stats import rankdata

    rx, ry = rankdata(np.atleast_2d(x), axis=1), rankdata(np.atleast_2d(y), axis=1)
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    den = np.sqrt((rx ** 2).sum(1) * (ry ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(1) / np.where(den > 0, den, 1.0), np.nan)


def _spearman_run(data: _ClaimData, ds: str, eps: float, column: str, run: dict[str, dict],
                  flags: list[str], left_out: list[str]
                  ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One run per regime: the non-degenerate regimes (the others into ``left_out``, their
    checks into ``flags``) and their (images, regimes) indicator and worst-case robustness on
    the images both cover."""
    kept = {}
    for lb, m in run.items():
        why = data.degenerate(lb, m)
        if why:
            left_out.append(why)
        else:
            kept[lb] = m
            flags.extend(data.flags(lb, m))
    if len(kept) < 3:
        raise _Unavailable("not_evaluable", "fewer than 3 regimes left after leaving out "
                                            "degenerate models: " + "; ".join(left_out))
    ind = pd.concat({lb: data.indicator(m, column) for lb, m in kept.items()}, axis=1,
                    join="inner")
    rob = pd.concat({lb: data.robust_images(ds, m, "worst", eps) for lb, m in kept.items()},
                    axis=1, join="inner")
    idx = ind.index.intersection(rob.index)
    if idx.empty:
        raise _Unavailable("not_evaluable", "no test image has both the indicator and the "
                                            "worst case (indicator rows not on the shared "
                                            "subset?)")
    return list(kept), ind.loc[idx].to_numpy(float), rob.loc[idx].to_numpy(float)


def _spearman_text(labels: list[str], ind: np.ndarray, rob: np.ndarray, where: str,
                   column: str) -> str:
    """One run's ρ and its regimes' mean indicator / worst-case accuracy, for the report."""
    rho = spearman_rows(ind.mean(0), rob.mean(0))[0]
    parts = ", ".join(f"{lb} {i:.3g} / {100 * r:.1f} %" for lb, i, r in
                      zip(labels, ind.mean(0), rob.mean(0)))
    return (f"ρ = {rho:.2f} over {len(labels)} regimes ({where}, {len(ind)} images); "
            f"mean {column} / worst-case accuracy: {parts}")


@MEASURES.register("indicator_spearman")
def _indicator_spearman(claim: dict[str, Any], data: _ClaimData) -> Evidence:
    """ρ between each regime's mean indicator and its worst-case robust accuracy (each averaged
    over the seeds every regime shares, else one run per regime): ``rank_x``/``rank_y`` for
    the engine's permutation test, which needs claims_stats.MIN_RANK_MODELS regimes.
    Degenerate models are left out (flagged)."""
    args = claim["args"]
    ds, eps, column = args["dataset"], float(args["eps"]), args.get("indicator", "grad_l2")
    arms = {}
    for label in args["labels"]:
        try:
            arms[label] = data.models(ds, label)
        except _Unavailable:
            continue
    if len(arms) < 3:
        return Absent(status="not_run", reason=f"ρ needs at least 3 regimes; {ds} has "
                                               f"{len(arms)} in this preset")
    common = sorted(set.intersection(*(set(ms) for ms in arms.values())))
    runs = [{lb: ms[s] for lb, ms in arms.items()} for s in common] if common else \
        [{lb: ms[min(ms)] for lb, ms in arms.items()}]
    flags, left_out = [], []
    measured = [(s, *_spearman_run(data, ds, eps, column, run, flags, left_out))
                for s, run in zip(common or [None], runs)]
    labels = [lb for lb in measured[0][1] if all(lb in m[1] for m in measured)]
    ind = np.mean([[m[2][:, m[1].index(lb)].mean() for lb in labels] for m in measured], axis=0)
    rob = np.mean([[m[3][:, m[1].index(lb)].mean() for lb in labels] for m in measured], axis=0)
    texts = [_spearman_text(lbs, i, r, f"seed {s}" if s is not None else "one run per regime",
                            column) for s, lbs, i, r in measured]
    if left_out:
        flags.append("left out (degenerate): " + "; ".join(left_out))
    return RankCorrelation(
        flags=flags, rank_x=ind.tolist(), rank_y=rob.tolist(), n_seeds=len(measured),
        seeds_text=(f"means over seeds {', '.join(str(m[0]) for m in measured)}"
                    if common else "one run per regime"),
        ours=" | ".join(texts))


def claim_evidence(claims: Sequence[dict[str, Any]], records: dict[str, Any],
                   robust: dict[str, dict]) -> dict[str, Evidence]:
    """Evidence for each of study 002's claims, each by its claim's measure (:data:`MEASURES`)
    (claim id -> evidence; curvrobust.claims.judge judges it).

    Args:
        claims: ``Study002.claims()``: each names its ``measure`` (robust_accuracy,
            natural_accuracy, jacobian_zero_share, indicator_spearman) and ``args`` (dataset,
            the arms ``a`` and ``b``, attack column or ``worst``, ε, regime labels).
        records: ``Study002.claim_records()``: per dataset the models of every regime (seed,
            robust-evaluation key, per-image files of the study's attacks and the indicator).
        robust: model key -> {summary, outcomes} of the robust evaluation (validity, failed
            masking checks, per-image rows of every attack for the worst case).

    Returns:
        Pairwise claims: per-image cubes (seeds × images × arms) on the test images every
        seed shares; the Spearman claim: each regime's seed-averaged indicator and robust
        accuracy (``rank_x``, ``rank_y``). A regime the preset does not train gives ``not_run``; a
        degenerate model ``not_evaluable`` naming it; failed masking checks become flags.
    """
    data = _ClaimData(records, robust)
    out = {}
    for c in claims:
        measure = MEASURES.get(c["measure"], c["id"])
        try:
            out[c["id"]] = measure(c, data)
        except _Unavailable as e:
            out[c["id"]] = Absent(status=e.status, reason=e.reason)
    return out
