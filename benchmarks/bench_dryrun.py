"""Wall time of `snakemake -n` on a finished run (goal: ≤ 3 s and 0 jobs scheduled).

    python benchmarks/bench_dryrun.py [--configfile configs/X.yaml] [--repeats 3]

Run it after a complete `snakemake --cores all`; it prints the median wall time and whether
Snakemake found nothing to do. Not a test: the time depends on the machine."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1"]
    if args.configfile:
        cmd += ["--configfile", args.configfile]
    times, nothing = [], True
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        nothing &= "Nothing to be done" in p.stdout + p.stderr
    print(f"snakemake -n: median {statistics.median(times):.2f} s over {args.repeats} runs "
          f"(min {min(times):.2f} s); nothing to be done: {nothing} (goal: <= 3 s, 0 jobs)")
