"""What it would take: the seeds and test images a claim needs to reach 80 % power at its
smallest effect of interest (SESOI), and the cheapest such design in job-minutes.

The projection reuses this run's own variance estimates (:mod:`curvrobust.claims.stats`). A
claim measured with S₀ seeds on n₀ shared test images has SE² = se_seed² + se_image², where
se_seed² = s²/S₀ (s² the sample variance of the per-seed effects) holds each seed's own image
noise se_image_own² = V_c/S₀, and se_image² = V_b is the image noise the seeds share. Only the
image parts scale as 1/n, so a design with S seeds and n images has

    SE(S, n)² = σ²/S + v_own/(n·S) + v/n,   σ² = s² − V_c,   v_own = V_c·n₀,
    v = se_image²·n₀,   df = S − 1,

σ² the training's own variance (≥ 0). It assumes these are the true variances (they are
estimates: with 3 seeds, s² is uncertain by a factor of several), that the image parts keep
their 1/n scaling on a subsample or superset of the same test distribution, and that more seeds
do not change them.

"Detects" is the power rule of :func:`claims_stats.judge_directional`: the probability that the
interval lies on the asserted side of 0 when the true effect equals the SESOI is at least
80 %, i.e. ``minimum_detectable_effect(se, df, 0) ≤ sesoi``. (The verdict's "holds" also asks
the *estimate* to reach the SESOI; at a true effect equal to the SESOI that happens at most
about half the time, at most 68 % with one degree of freedom, so no design reaches 80 % on that
rule: the claims table's MDE column, the effect "holds" needs, always exceeds the SESOI.) For
"at_least" (non-inferiority, A − B > −m) the same rule is applied at the margin m (true effect
0, bound −m); for "equivalent" claims, :func:`claims_stats.equivalence_power` at the margin.
Power rises with S (smaller SE, more degrees of freedom) and with n, so every search below is
a bisection.

With one training run s² is unknown and nothing can be projected: those rows say so.
"""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from curvrobust.claims.stats import POWER, equivalence_power, holds_probability

MAX_SEEDS = 200
MAX_IMAGES = 10000           # default test-set size when a study gives none
MINUS = "\u2212"
MISSING = "–"
ONE_RUN_NOTE = "unknown: one training run (no between-seed variance)"
COLUMNS = ["study", "id", "headline", "verdict", "sesoi", "unit", "mde", "power", "seeds",
           "images", "seeds_needed", "images_needed", "cheapest_seeds", "cheapest_images",
           "cheapest_job_minutes", "note"]


# --------------------------------------------------------------------------- projection

def design_se(s2_seed: float, v_image_1: float, seeds: int, images: int,
              v_own_1: float = 0.0) -> float:
    """Projected standard error of the effect for a design.

    Args:
        s2_seed: variance of one seed's effect beyond its own image noise (the training's).
        v_image_1: image variance the seeds share, per image (se_image²·n₀).
        seeds, images: the design (both ≥ 1).
        v_own_1: each seed's own image noise, per image (se_image_own²·S₀·n₀).

    Returns:
        sqrt(s2_seed/seeds + v_own_1/(images·seeds) + v_image_1/images) (nan when s2_seed is
        nan).
    """
    if seeds < 1 or images < 1:
        raise ValueError(f"seeds and images must be ≥ 1, got {seeds}, {images}")
    return math.sqrt(s2_seed / seeds + v_own_1 / (images * seeds) + v_image_1 / images)


def detects(s2_seed: float, v_image_1: float, seeds: int, images: int, sesoi: float,
            equivalence: bool = False, v_own_1: float = 0.0) -> bool:
    """Whether the design has ≥ 80 % power at the SESOI (module docstring).

    Args:
        s2_seed, v_image_1: as in :func:`design_se` (v_own_1 too).
        seeds: S ≥ 2 (df = S − 1).
        images: n ≥ 1.
        sesoi: the SESOI for directional claims, the margin for equivalence (and
            non-inferiority) claims, in the variances' units.
        equivalence: True for "equivalent" claims (two one-sided tests at true effect 0).

    Returns:
        True when the power reaches 80 % (always True at SE = 0 with sesoi > 0); False when
        s2_seed is unknown (nan).
    """
    if seeds < 2:
        raise ValueError(f"a design needs seeds ≥ 2 (df = seeds − 1), got {seeds}")
    if not (math.isfinite(s2_seed) and math.isfinite(v_image_1)):
        return False
    if s2_seed < 0 or v_image_1 < 0:
        raise ValueError(f"variances must be ≥ 0, got {s2_seed}, {v_image_1}")
    if not sesoi > 0:
        return False
    se = design_se(s2_seed, v_image_1, seeds, images, v_own_1)
    if se == 0:
        return True
    df = float(seeds - 1)
    # how much of SE² the S − 1 degrees of freedom estimate: the per-seed effects' spread
    share = (s2_seed + v_own_1 / images) / seeds / se ** 2
    power = (equivalence_power(sesoi, se, df, seed_share=share) if equivalence
             else holds_probability(sesoi, se, df, 0.0, seed_share=share))
    return power >= POWER


def _smallest(ok, lo: int, hi: int) -> int | None:
    """Smallest k in [lo, hi] with ok(k), ok monotone (False … False True … True)."""
    if lo > hi or not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def seeds_needed(s2_seed: float, v_image_1: float, sesoi: float, images: int,
                 equivalence: bool = False, max_seeds: int = MAX_SEEDS,
                 v_own_1: float = 0.0) -> int | None:
    """The fewest seeds (≥ 2) that detect the SESOI at a fixed number of images.

    Args:
        s2_seed, v_image_1, sesoi, equivalence, v_own_1: as in :func:`detects`.
        images: the images per seed.
        max_seeds: the largest design considered.

    Returns:
        the smallest S in [2, max_seeds], or None (unknown s2_seed, or not reachable).
    """
    if not math.isfinite(s2_seed):
        return None
    return _smallest(lambda s: detects(s2_seed, v_image_1, s, images, sesoi, equivalence,
                                       v_own_1), 2, max_seeds)


def images_needed(s2_seed: float, v_image_1: float, sesoi: float, seeds: int,
                  equivalence: bool = False, max_images: int = MAX_IMAGES,
                  v_own_1: float = 0.0) -> int | None:
    """The fewest test images (≥ 1) that detect the SESOI at a fixed number of seeds.

    Args:
        s2_seed, v_image_1, sesoi, equivalence, v_own_1: as in :func:`detects`.
        seeds: S ≥ 2.
        max_images: the test-set size (no more images exist).

    Returns:
        the smallest n in [1, max_images], or None (unknown s2_seed, or not reachable).
    """
    if not math.isfinite(s2_seed):
        return None
    return _smallest(lambda n: detects(s2_seed, v_image_1, seeds, n, sesoi, equivalence,
                                       v_own_1), 1, max_images)


def job_minutes(seeds: int, images: int, cost_seed_minutes: float,
                cost_image_minutes: float) -> float:
    """Cost of a design: seeds·(cost_seed_minutes + images·cost_image_minutes).

    Args:
        seeds, images: the design.
        cost_seed_minutes: job-minutes per seed that do not depend on the images (training).
        cost_image_minutes: job-minutes per image per seed (attacks, evaluation).

    Returns:
        the job-minutes.
    """
    return seeds * (cost_seed_minutes + images * cost_image_minutes)


def cheapest_design(s2_seed: float, v_image_1: float, sesoi: float, cost_seed_minutes: float,
                    cost_image_minutes: float, equivalence: bool = False,
                    max_seeds: int = MAX_SEEDS, max_images: int = MAX_IMAGES,
                    v_own_1: float = 0.0) -> tuple[int, int, float] | None:
    """The design that detects the SESOI at the fewest job-minutes (:func:`job_minutes`).

    For each S in [2, max_seeds] the fewest images that detect it (non-increasing in S, so
    each bisection starts below the previous answer); the search stops once S·cost_seed alone
    exceeds the best cost. Ties go to the fewer seeds.

    Args:
        s2_seed, v_image_1, sesoi, equivalence, v_own_1: as in :func:`detects`.
        cost_seed_minutes, cost_image_minutes: as in :func:`job_minutes` (finite, ≥ 0).
        max_seeds, max_images: the largest design considered.

    Returns:
        (seeds, images, job_minutes), or None (unknown s2_seed, or not reachable).
    """
    costs = (cost_seed_minutes, cost_image_minutes)
    if not all(math.isfinite(c) and c >= 0 for c in costs):
        raise ValueError(f"costs must be finite and ≥ 0, got {costs}")
    if not math.isfinite(s2_seed):
        return None
    best: tuple[int, int, float] | None = None
    hi = max_images
    for s in range(2, max_seeds + 1):
        if best is not None and s * cost_seed_minutes > best[2]:
            break
        n = _smallest(lambda k: detects(s2_seed, v_image_1, s, k, sesoi, equivalence, v_own_1),
                      1, hi)
        if n is None:
            continue
        hi = n
        cost = job_minutes(s, n, *costs)
        if best is None or cost < best[2]:
            best = (s, n, cost)
    return best


# --------------------------------------------------------------------------- costs

@dataclass(frozen=True)
class StudyCost:
    """A study's benchmarked job-minutes and the cost model built on them.

    train_minutes: mean wall minutes of one training job (one model, one seed);
    attack_minutes: mean wall minutes of one attack / evaluation job; images_per_job: the
    test images one such job scores; arms: models a claim trains per seed; attacks_per_model:
    attack jobs a claim needs per model; train_jobs, attack_jobs: benchmark files averaged."""

    train_minutes: float
    attack_minutes: float
    images_per_job: int
    arms: int = 2
    attacks_per_model: int = 1
    train_jobs: int = 0
    attack_jobs: int = 0

    @property
    def per_seed(self) -> float:
        """Job-minutes of one more seed, apart from the images: arms × a training job."""
        return self.arms * self.train_minutes

    @property
    def per_image(self) -> float:
        """Job-minutes of one more image per seed: arms × attacks × (attack job / images)."""
        if self.images_per_job < 1:
            return math.nan
        return self.arms * self.attacks_per_model * self.attack_minutes / self.images_per_job

    @property
    def pair(self) -> tuple[float, float]:
        """(per_seed, per_image), the form :func:`power_table` takes."""
        return self.per_seed, self.per_image


def _mean_minutes(paths: Iterable[Path]) -> tuple[float, int]:
    secs = []
    for p in paths:
        frame = pd.read_csv(p, sep="\t")
        if "s" not in frame.columns:
            raise ValueError(f"{p}: a Snakemake benchmark needs an 's' column, has "
                             f"{list(frame.columns)}")
        secs.extend(float(v) for v in frame["s"] if math.isfinite(float(v)))
    return (sum(secs) / len(secs) / 60.0 if secs else math.nan), len(secs)


def benchmark_costs(bench_dir: str | Path,
                    studies: Mapping[str, Mapping[str, Any]]) -> dict[str, StudyCost]:
    """Job-minutes per seed and per image, per study, from Snakemake benchmark files.

    The cost model, an approximation: one more seed of a claim trains each of its `arms`
    models once (the mean of the study's training jobs), and one more image per seed costs
    each model's `attacks_per_model` attack jobs divided by the images such a job scores
    (the mean of the study's attack jobs / `images`). It treats attack time as linear in the
    images (a job's fixed start-up, data and model loading, is spread over its images, so the
    per-image cost is overstated for small image counts and the extra cost of images beyond
    the current test set is a linear extrapolation); it ignores the jobs a claim shares with
    other claims (a model trained once serves every claim about it), queueing, and the
    machine the benchmarks ran on (wall seconds, column ``s``, of this run's jobs). Repeated
    benchmark rows (``--benchmark-repeats``) are averaged with the rest.

    Args:
        bench_dir: the benchmarks folder (results/benchmarks), holding <rule>/<job>.tsv.
        studies: study -> {"train": glob patterns relative to bench_dir (e.g.
            "train_model/mnist_clean_cnn_*.tsv"), "attack": patterns of its attack or
            evaluation jobs, "images": test images per attack job, optional "arms" (2) and
            "attacks_per_model" (1)}.

    Returns:
        study -> :class:`StudyCost` (nan minutes where no file matched).
    """
    root = Path(bench_dir)
    out = {}
    for study, spec in studies.items():
        found = {}
        for key in ("train", "attack"):
            pats = spec.get(key) or []
            if isinstance(pats, str):
                pats = [pats]
            files = sorted({Path(f) for pat in pats for f in glob.glob(str(root / pat))})
            found[key] = _mean_minutes(files)
        images = int(spec.get("images", 0))
        if found["attack"][1] and images < 1:
            raise ValueError(f"study {study!r}: 'images' (per attack job) must be ≥ 1")
        out[study] = StudyCost(
            train_minutes=found["train"][0], attack_minutes=found["attack"][0],
            images_per_job=images, arms=int(spec.get("arms", 2)),
            attacks_per_model=int(spec.get("attacks_per_model", 1)),
            train_jobs=found["train"][1], attack_jobs=found["attack"][1])
    return out


def describe_costs(costs: Mapping[str, StudyCost]) -> str:
    """A sentence per study for :func:`power_markdown`'s `costs_text`.

    Args:
        costs: as returned by :func:`benchmark_costs`.

    Returns:
        the text (one line per study).
    """
    lines = []
    for study, c in costs.items():
        lines.append(
            f"{study}: {c.arms} arms × {_num(c.train_minutes, 3)} min per training job "
            f"(mean of {c.train_jobs}) = {_num(c.per_seed, 3)} job-minutes per seed; "
            f"{c.arms} × {c.attacks_per_model} attack job(s) × {_num(c.attack_minutes, 3)} min "
            f"(mean of {c.attack_jobs}) / {c.images_per_job} images = "
            f"{_num(c.per_image, 3, 'g')} job-minutes per image per seed.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- table

def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _claim_kind(row: Mapping[str, Any]) -> tuple[float, bool]:
    """(the threshold power is measured at, equivalence?) for a judged row."""
    direction = str(row.get("direction", ""))
    margin = _f(row.get("margin"))
    if direction in ("equivalent", "at_least") and math.isfinite(margin) and margin > 0:
        return margin, direction == "equivalent"
    return _f(row.get("sesoi")), direction == "equivalent"


def _variance_parts(row: Mapping[str, Any], se_image: float, S: int,
                    n: int) -> tuple[float, float, float]:
    """The training's part of the seed variance s² (nan with one run), the per-image variance
    v and each seed's own image noise v_own, from a judged row's standard errors."""
    se_seed = _f(row.get("se_seed"))
    own = _f(row.get("se_image_own"))
    vc = own ** 2 * S if math.isfinite(own) else 0.0  # each seed's own image noise at n
    s2 = (max(0.0, se_seed ** 2 * S - vc)              # the training's part of s²
          if math.isfinite(se_seed) else math.nan)
    return s2, se_image ** 2 * n, vc * n


def _claim_needs(row: Mapping[str, Any], se_image: float,
                 cost: tuple[float, float] | StudyCost | None, cap: int,
                 max_seeds: int) -> dict[str, Any]:
    """One claim's row of the power table: seeds and images it needs, its cheapest design and
    a note saying why any of them is missing."""
    S, n = int(row["seeds"]), int(row["images"])
    s2, v, v_own = _variance_parts(row, se_image, S, n)
    sesoi, equiv = _claim_kind(row)
    rec = {"study": str(row["study"]), "id": row["id"], "headline": row.get("headline"),
           "verdict": row.get("verdict"), "sesoi": _f(row.get("sesoi")),
           "unit": row.get("unit", ""), "mde": _f(row.get("mde")),
           "power": _f(row.get("power")), "seeds": S, "images": n,
           "seeds_needed": None, "images_needed": None, "cheapest_seeds": None,
           "cheapest_images": None, "cheapest_job_minutes": None, "note": ""}
    if not math.isfinite(s2):
        rec["note"] = ONE_RUN_NOTE
        return rec
    if not sesoi > 0:
        rec["note"] = ("SESOI 0: power at an effect of 0 is the test's size; "
                       "no design reaches 80 %")
        return rec
    rec["seeds_needed"] = seeds_needed(s2, v, sesoi, n, equiv, max_seeds, v_own)
    if S >= 2:
        rec["images_needed"] = images_needed(s2, v, sesoi, S, equiv, cap, v_own)
    reachable, notes = _cheapest(rec, cost, s2, v, v_own, sesoi, equiv, cap, max_seeds)
    if S >= 2 and detects(s2, v, S, n, sesoi, equiv, v_own):
        notes.insert(0, "already detects the SESOI")
    elif not reachable:
        notes.insert(0, f"not reachable within {max_seeds:,} seeds / {cap:,} images")
    rec["note"] = "; ".join(notes)
    return rec


def _cheapest(rec: dict[str, Any], cost: tuple[float, float] | StudyCost | None, s2: float,
              v: float, v_own: float, sesoi: float, equiv: bool, cap: int,
              max_seeds: int) -> tuple[bool, list[str]]:
    """Fill in the claim's cheapest design at the study's cost (when benchmarked); whether any
    design within the limits detects the SESOI, and the notes so far."""
    notes = []
    pair = cost.pair if isinstance(cost, StudyCost) else cost
    if pair is None or not all(math.isfinite(_f(x)) and _f(x) >= 0 for x in pair):
        notes.append("no benchmark for this study: cost unknown")
        return detects(s2, v, max_seeds, cap, sesoi, equiv, v_own), notes
    best = cheapest_design(s2, v, sesoi, float(pair[0]), float(pair[1]), equiv,
                           max_seeds, cap, v_own)
    if best:
        rec["cheapest_seeds"], rec["cheapest_images"] = best[0], best[1]
        rec["cheapest_job_minutes"] = best[2]
    return best is not None, notes


def power_table(rows: Sequence[Mapping[str, Any]],
                costs: Mapping[str, tuple[float, float] | StudyCost],
                max_images: Mapping[str, int] | None = None,
                max_seeds: int = MAX_SEEDS) -> pd.DataFrame:
    """What each headline or inconclusive claim would need (module docstring).

    Args:
        rows: judged claim rows with study, id, headline ("headline"/"exploratory"), verdict,
            direction, unit, sesoi, se_seed (nan: one run), se_image, seeds, images, mde,
            power; "margin" is used for "equivalent" and "at_least" claims when present.
            Rows neither headline nor inconclusive, or without a finite se_image, are left out.
        costs: study -> (job-minutes per seed, per image per seed), or a :class:`StudyCost`.
        max_images: study -> test-set size (default 10,000).
        max_seeds: the largest number of seeds considered.

    Returns:
        a frame with ``COLUMNS``: counts as nullable integers (missing where unknown or not
        reachable), job-minutes nan there.
    """
    max_images = max_images or {}
    out = []
    for row in rows:
        se_image = _f(row.get("se_image"))
        if not (row.get("headline") == "headline" or row.get("verdict") == "inconclusive"):
            continue
        if not math.isfinite(se_image):
            continue
        study = str(row["study"])
        out.append(_claim_needs(row, se_image, costs.get(study),
                                int(max_images.get(study, MAX_IMAGES)), max_seeds))
    frame = pd.DataFrame(out, columns=COLUMNS)
    for col in ("seeds", "images", "seeds_needed", "images_needed", "cheapest_seeds",
                "cheapest_images"):
        frame[col] = pd.array([None if pd.isna(v) else int(v) for v in frame[col]],
                              dtype="Int64")
    for col in ("sesoi", "mde", "power", "cheapest_job_minutes"):
        frame[col] = frame[col].astype(float)
    return frame


# --------------------------------------------------------------------------- output

def _num(v: Any, digits: int = 3, fmt: str = "g") -> str:
    x = _f(v)
    if not math.isfinite(x):
        return MISSING
    text = f"{x:.{digits}{fmt}}"
    return text.replace("-", MINUS)


def _minutes(v: Any) -> str:
    x = _f(v)
    if not math.isfinite(x):
        return MISSING
    return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"


def _int(v: Any) -> str:
    x = _f(v)
    return MISSING if not math.isfinite(x) else f"{int(round(x)):,}"


def power_markdown(frame: pd.DataFrame, costs_text: str) -> str:
    """results/power.md: what it would take for each claim to reach 80 % power.

    Args:
        frame: :func:`power_table`'s frame.
        costs_text: how the job-minutes were obtained (e.g. :func:`describe_costs`).

    Returns:
        the Markdown text.
    """
    head = ("# What it would take\n\n"
            "For each headline claim and each inconclusive claim: the seeds and test images "
            "that would give 80 % power at the claim's SESOI (the probability that the 95 % "
            "interval lies on the asserted side of 0 when the true effect equals the SESOI; "
            "for equivalence claims, that it lies inside ±margin when the true effect is 0), "
            "projected from this run's own per-seed and per-image variances: "
            "SE² = σ²/S + v_own/(n·S) + v/n, with σ² the training's variance of one seed's "
            "effect, v_own each model's own image noise and v the image noise the seeds "
            "share (per image), all estimated here, and df = S − 1. "
            "These are estimates: with few seeds s² is itself uncertain by a large factor, "
            "so the counts are a guide, not a guarantee. A claim measured with one training "
            "run has no between-seed variance and cannot be projected. SESOI and MDE are in "
            "the claim's units (pp: percentage points); MDE and power are this run's. "
            "\"Seeds needed\" keeps this run's images, \"images needed\" this run's seeds "
            "(fewer than now means the current count is more than enough); the cheapest "
            "design minimises job-minutes = S·(per-seed + n·per-image cost).\n\n"
            "Job-minutes come from this run's benchmarks:\n\n"
            + "\n".join(f"- {line}" for line in costs_text.strip().splitlines() if line.strip())
            + "\n\n")
    cols = ["Study", "Claim", "Kind", "Verdict", "SESOI", "MDE", "Power", "Seeds", "Images",
            "Seeds needed", "Images needed", "Cheapest (S × n)", "Job-minutes", "Note"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in frame.to_dict("records"):
        unit = " pp" if r.get("unit") == "%" else ""
        cheap = (f"{_int(r['cheapest_seeds'])} × {_int(r['cheapest_images'])}"
                 if math.isfinite(_f(r["cheapest_seeds"])) else MISSING)
        power = _f(r["power"])
        cells = [r["study"], f"`{r['id']}`", r["headline"], r["verdict"],
                 _num(r["sesoi"]) + (unit if math.isfinite(_f(r["sesoi"])) else ""),
                 _num(r["mde"]) + (unit if math.isfinite(_f(r["mde"])) else ""),
                 MISSING if not math.isfinite(power) else f"{100 * power:.0f} %",
                 _int(r["seeds"]), _int(r["images"]), _int(r["seeds_needed"]),
                 _int(r["images_needed"]), cheap, _minutes(r["cheapest_job_minutes"]),
                 r["note"] or MISSING]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    if frame.empty:
        lines.append("| " + " | ".join(MISSING for _ in cols) + " |")
    return head + "\n".join(lines) + "\n"


def write_power(frame: pd.DataFrame, csv_path: str | Path, md_path: str | Path,
                costs_text: str) -> None:
    """Write the table as CSV and as Markdown, each atomically.

    Args:
        frame: :func:`power_table`'s frame.
        csv_path, md_path: the two outputs (results/power.csv, results/power.md).
        costs_text: as in :func:`power_markdown`.
    """
    from curvrobust.utils import atomic_path

    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_path(md_path) as tmp:
        tmp.write_text(power_markdown(frame, costs_text), encoding="utf-8")
