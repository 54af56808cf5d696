"""Study-000 benchmarks in one run: the Gauss-Newton step (exact and CG solvers against the
original dense method) and FGSM throughput against torchattacks, printed as ratios.

    python benchmarks/bench_study000.py [--threads N]

Not a test: the figures depend on the machine and its load; the README records them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fgsm  # noqa: E402
import bench_gauss_newton  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    extra = [] if args.threads is None else ["--threads", str(args.threads)]
    print("=== Gauss-Newton step, cnn000, batch 128 ===", flush=True)
    bench_gauss_newton.main(extra)
    print("\n=== FGSM throughput, cnn000, 10,000 images ===", flush=True)
    bench_fgsm.main(extra)
