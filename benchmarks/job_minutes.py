"""Job minutes of a finished run, per rule: the sum of `s` (wall seconds) over every benchmark
file under results/benchmarks/<rule>/ — the number DEVELOPERS.md's run budget is about.

    python benchmarks/job_minutes.py [results/benchmarks] [--compare OTHER_BENCHMARKS_DIR]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def job_minutes(folder: Path) -> dict[str, tuple[int, float]]:
    """rule -> (jobs, minutes) over the benchmark TSVs under `folder`/<rule>/."""
    out: dict[str, tuple[int, float]] = {}
    for tsv in sorted(Path(folder).glob("*/*.tsv")):
        with open(tsv, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if not rows:
            continue
        n, m = out.get(tsv.parent.name, (0, 0.0))
        out[tsv.parent.name] = (n + 1, m + sum(float(r["s"]) for r in rows) / 60.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default="results/benchmarks", type=Path)
    ap.add_argument("--compare", type=Path, help="another run's benchmark folder (before)")
    args = ap.parse_args()
    after = job_minutes(args.folder)
    before = job_minutes(args.compare) if args.compare else None
    rules = sorted(set(after) | set(before or {}))
    head = "| rule | jobs | job-minutes |" if before is None else \
        "| rule | jobs before | job-minutes before | jobs after | job-minutes after |"
    print(head)
    print("|" + " --- |" * (head.count("|") - 1))
    for r in rules:
        a = after.get(r, (0, 0.0))
        if before is None:
            print(f"| {r} | {a[0]} | {a[1]:.1f} |")
        else:
            b = before.get(r, (0, 0.0))
            print(f"| {r} | {b[0]} | {b[1]:.1f} | {a[0]} | {a[1]:.1f} |")
    tot_a = sum(m for _, m in after.values())
    if before is None:
        print(f"| total | {sum(n for n, _ in after.values())} | {tot_a:.1f} |")
    else:
        tot_b = sum(m for _, m in before.values())
        print(f"| total | {sum(n for n, _ in before.values())} | {tot_b:.1f} | "
              f"{sum(n for n, _ in after.values())} | {tot_a:.1f} |")


if __name__ == "__main__":
    main()
