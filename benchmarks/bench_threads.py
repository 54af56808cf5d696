"""Two one-thread jobs side by side against one two-thread job at a time (config key `threads`).

Usage: python benchmarks/bench_threads.py [--jobs 2] [--adam-steps 300] [--gn-steps 40]
       [--attack-images 500]

Each "job" is a fresh Python process, as a Snakemake `script:` job is: it imports torch and
this package, then does one piece of the default run's work — Adam steps of the study-000 CNN
(`adam`), exact Gauss-Newton steps of it (`gn`), or one FGSM attack of a short attack job
(`attack`). For each kind the script runs `--jobs` such processes one after another with
2 threads each (`threads: 2`, `--cores 2`) and then two at a time with 1 thread each
(`threads: 1`, `--cores 2`), and prints both wall times and their ratio (> 1: one thread per
job is faster). Random data, so no download is needed. Not a test: the figures depend on the
machine and its load; run it on an otherwise idle 2-core machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"

JOB = r"""
import sys, torch
sys.path.insert(0, {lib!r})
from curvrobust import attacks
from curvrobust.models import build_model
from curvrobust.training.loop import make_stepper
torch.set_num_threads({threads})
torch.manual_seed(0)
model = build_model("cnn000")
kind, n = {kind!r}, {n}
if kind == "attack":
    x, y = torch.rand(n, 1, 28, 28), torch.randint(0, 10, (n,))
    attacks.fgsm(model.eval(), x, y, eps=0.1)
else:
    opt = ({{"name": "adam", "lr": 1e-3}} if kind == "adam" else
           {{"name": "gauss_newton", "lr": 0.01, "damping": 0.01, "solver": "exact",
            "ggn_scale": "sum"}})
    stepper = make_stepper(model, opt)
    x, y = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
    for _ in range(n):
        stepper.step(x, y)
"""


def _run(kind: str, n: int, threads: int, jobs: int, parallel: int) -> float:
    """Wall time of `jobs` processes, `parallel` at a time, each with `threads` threads."""
    code = JOB.format(lib=str(LIB), threads=threads, kind=kind, n=n)
    start = time.perf_counter()
    pending = list(range(jobs))
    while pending:
        batch, pending = pending[:parallel], pending[parallel:]
        procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in batch]
        for p in procs:
            if p.wait() != 0:
                raise SystemExit(f"benchmark job {kind} failed with exit code {p.returncode}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2, help="jobs per kind (even)")
    ap.add_argument("--adam-steps", type=int, default=300)
    ap.add_argument("--gn-steps", type=int, default=40)
    ap.add_argument("--attack-images", type=int, default=500)
    args = ap.parse_args()
    print(f"{'job kind':<10} {'2 threads, serial (s)':>22} {'1 thread, 2 at once (s)':>24} "
          f"{'ratio':>7}")
    for kind, n in [("adam", args.adam_steps), ("gn", args.gn_steps),
                    ("attack", args.attack_images)]:
        serial = _run(kind, n, threads=2, jobs=args.jobs, parallel=1)
        side = _run(kind, n, threads=1, jobs=args.jobs, parallel=2)
        print(f"{kind:<10} {serial:>22.1f} {side:>24.1f} {serial / side:>6.2f}×", flush=True)


if __name__ == "__main__":
    main()
