"""Referee of a finished run's worst case: the official AutoAttack on the real models.

Usage: PYTHONPATH=lib python benchmarks/autoattack_referee.py [--results results] [--n 200]
       [--out results/referee/autoattack.csv] [--models 'mnist/*/final'] [--threads 1]
       [--device auto] [--seed 0] [--batch-size 500] [--extra-outcomes PATTERN ...]

For every model the robust evaluation covered (each
results/robust/<dataset>/<variant>/<recipe>/seed<seed>/<ckpt>/summary.json), it loads the
checkpoint and the test set of the model's variant as workflow_scripts/evaluate_robustness.py
does, takes the shared evaluation subset (curvrobust.data.subsets.eval_subset with the summary's
n_examples and subset_seed) and compares, on its first --n images that the project's worst case
covers, the project's verdict with the official AutoAttack's (pyautoattack 0.2.0, the authors'
fra31/auto-attack; curvrobust.evaluation.referee.official_autoattack, standard version, at the summary's
eps).

The project's worst case is curvrobust.evaluation.outcomes.worst_case_images over the model's outcomes.csv and
every results/attacks/<dataset>/<variant>/<recipe>/seed<seed>/<ckpt>/*_images.csv (plus the
files --extra-outcomes names: glob patterns with {dataset} {variant} {recipe} {seed} {ckpt}).
summary.json does not list the studies' outcome files, so the script recomputes the worst case
on all of the summary's images and checks it against the summary's own (robust accuracy, image
count, attacks): `summary_match` is False, with a warning, when a study's file is missing.

One CSV row per model (written atomically): model, study, eps, n, project_robust,
official_robust, project_only (robust for the project, broken by the official AutoAttack — a
hole in the project's worst case), official_only, seconds (the official AutoAttack's wall time),
then the indices of the disagreeing images, the worst case's attacks and summary_match. Not a
test: the official AutoAttack takes minutes per model on a CPU.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from curvrobust.models import load_model  # noqa: E402
from curvrobust.plans import paths  # noqa: E402
from curvrobust.evaluation.referee import compare_robust, official_autoattack  # noqa: E402
from curvrobust.data.subsets import eval_subset  # noqa: E402
from curvrobust.evaluation.outcomes import read_outcomes, worst_case_images  # noqa: E402
from curvrobust.utils import select_device, write_csv  # noqa: E402
from curvrobust.data.variants import load_variant  # noqa: E402

FIELDS = ["model", "study", "eps", "n", "project_robust", "official_robust", "project_only",
          "official_only", "seconds", "project_only_indices", "official_only_indices",
          "attacks", "summary_match"]


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _under(results: Path, path: str) -> Path:
    """A workflow path (``results/...``, curvrobust.plans.paths) under ``results`` instead."""
    return results / Path(path).relative_to(paths.RESULTS)


def model_key(rec: dict[str, Any]) -> str:
    """'dataset/variant/recipe/seedN/ckpt' (as curvrobust.plans.robustness.model_key)."""
    return "/".join([str(rec["dataset"]), str(rec["variant"]), str(rec["recipe"]),
                     f"seed{rec['seed']}", str(rec["ckpt"])])


def summaries(results: Path) -> list[Path]:
    """Every summary.json of the robust evaluation under ``results``, sorted."""
    return sorted((results / "robust").glob("*/*/*/seed*/*/summary.json"))


def outcome_files(results: Path, rec: dict[str, Any], summary_file: Path,
                  extra: list[str]) -> list[Path]:
    """outcomes.csv beside the summary, the model's attack files, and the --extra-outcomes."""
    files = [summary_file.parent / "outcomes.csv"]
    files += sorted(_under(results, paths.run_dir("attacks", rec)).glob("*_images.csv"))
    fields = {k: rec[k] for k in ("dataset", "variant", "recipe", "seed", "ckpt")}
    for pattern in extra:
        files += sorted(Path(p) for p in glob.glob(pattern.format(**fields)))
    return list(dict.fromkeys(files))


def _summary_worst(summary: dict[str, Any], eps: float) -> dict[str, Any] | None:
    for w in summary.get("worst_case", []):
        if math.isclose(float(w["eps"]), eps, rel_tol=1e-9):
            return w
    return None


def referee_model(summary_file: Path, args: argparse.Namespace,
                  device: torch.device) -> dict[str, Any]:
    """One CSV row: the project's and the official verdicts on one model's first ``n`` images."""
    results = Path(args.results)
    summary = json.loads(summary_file.read_text())
    rec, eps = summary["record"], float(summary["eps"])
    key = model_key(rec)
    files = outcome_files(results, rec, summary_file, args.extra_outcomes)
    worst = worst_case_images(read_outcomes(files), eps)
    attacks = worst.attrs.get("attacks", "")

    # the recomputed worst case on all the summary's images against the summary's own
    own = _summary_worst(summary, eps)
    match = own is not None and own["n"] == len(worst) and own["attacks"] == attacks and (
        len(worst) == 0 or math.isclose(own["robust_accuracy"], float(worst["robust"].mean()),
                                        abs_tol=1e-12))
    if not match:
        _progress(f"WARNING {key}: the worst case over {len(files)} file(s) ({len(worst)} images, "
                  f"{attacks or 'no attacks'}) differs from summary.json's "
                  f"({own and own['n']} images, {own and own['attacks']}): a study's outcome "
                  f"file missing? (--extra-outcomes)")

    x_test, y_test = load_variant(
        _under(results, paths.data_file(rec["dataset"], rec["variant"], "test")).parent, "test")
    order = eval_subset(len(x_test), int(summary["n_examples"]), int(summary["subset_seed"]))
    covered = set(worst["index"].tolist())
    index = torch.tensor([i for i in order.tolist() if i in covered][:args.n], dtype=torch.long)
    if len(index) < args.n:
        _progress(f"WARNING {key}: only {len(index)} of the subset's images have a worst case")
    project = worst.set_index("index").loc[index.tolist(), "robust"].to_numpy().astype(bool)

    model = load_model(_under(results, paths.checkpoint_file(rec)), map_location=device)
    _progress(f"{key}: official AutoAttack at eps={eps:g} on {len(index)} images ({device})")
    t0 = time.perf_counter()
    official = official_autoattack(model, x_test[index], y_test[index], eps, seed=args.seed,
                                   batch_size=args.batch_size)
    seconds = time.perf_counter() - t0
    cmp = compare_robust(project, official, index)
    _progress(f"{key}: project {cmp['project_robust']}, official {cmp['official_robust']} "
              f"robust of {cmp['n']}; project only {cmp['project_only']} "
              f"({seconds:.0f} s)")
    return {"model": key, "study": rec.get("study", ""), "eps": eps, "n": cmp["n"],
            "project_robust": cmp["project_robust"], "official_robust": cmp["official_robust"],
            "project_only": cmp["project_only"], "official_only": cmp["official_only"],
            "seconds": round(seconds, 1),
            "project_only_indices": ";".join(map(str, cmp["project_only_indices"])),
            "official_only_indices": ";".join(map(str, cmp["official_only_indices"])),
            "attacks": attacks, "summary_match": match}


def print_table(rows: list[dict[str, Any]]) -> None:
    """The rows' main columns as an aligned text table on stdout."""
    cols = FIELDS[:9] + ["summary_match"]
    cells = [[str(c) for c in cols]] + [[f"{r[c]:g}" if isinstance(r[c], float) else str(r[c])
                                         for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    for j, row in enumerate(cells):
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w)
                        for i, (v, w) in enumerate(zip(row, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=paths.RESULTS, help="the run's results folder")
    ap.add_argument("--n", type=int, default=200, help="images per model")
    ap.add_argument("--out", default=None,
                    help="CSV to write (default: <results>/referee/autoattack.csv)")
    ap.add_argument("--models", default=None,
                    help="glob on the model key dataset/variant/recipe/seedN/ckpt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0, help="the official AutoAttack's seed")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--extra-outcomes", action="append", default=[], metavar="PATTERN",
                    help="more per-image outcome files of a model (glob; {dataset} {variant} "
                         "{recipe} {seed} {ckpt} filled in); repeatable")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be >= 1")
    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    out = Path(args.out) if args.out else Path(args.results) / "referee" / "autoattack.csv"

    files = []
    for f in summaries(Path(args.results)):
        key = model_key(json.loads(f.read_text())["record"])
        if args.models is None or fnmatch.fnmatchcase(key, args.models):
            files.append(f)
    if not files:
        ap.error(f"no robust-evaluation summary under {args.results}/robust"
                 + (f" matching {args.models!r}" if args.models else ""))
    rows = []
    for i, f in enumerate(files, 1):
        _progress(f"[{i}/{len(files)}] {f.parent}")
        rows.append(referee_model(f, args, device))
        write_csv(out, rows, FIELDS)  # after every model: a long run keeps what it has
    print_table(rows)
    print(f"\nwritten: {out}")
    return rows


if __name__ == "__main__":
    main()
