"""Time one Gauss-Newton step on the study CNN: dense P×P solve vs the exact (Woodbury) and CG
solvers of curvrobust.optim, and compare their directions with the dense one.

    python benchmarks/bench_gauss_newton.py [--batch 128] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from typing import Callable

import torch

from curvrobust.models import build_model, count_parameters
from curvrobust.optim import GaussNewton
from curvrobust.optim.gauss_newton import dense_direction


def timed(fn: Callable[[], object], repeats: int, warmup: bool = True) -> list[float]:
    if warmup:
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--damping", type=float, default=0.01)
    ap.add_argument("--ggn-scale", default="sum", choices=["sum", "mean"])
    ap.add_argument("--cg-iters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    model = build_model("cnn000")
    x = torch.rand(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    P = count_parameters(model)
    print(f"cnn000: P={P}, batch={args.batch}, C=10, damping={args.damping}, "
          f"ggn_scale={args.ggn_scale}, torch {torch.__version__}, threads "
          f"{torch.get_num_threads()}, {platform.processor() or platform.machine()}, "
          f"load avg {os.getloadavg()[0]:.2f}")

    solvers = {
        "exact (structured)": dict(solver="exact", exact_backend="structured"),
        "exact (autodiff J)": dict(solver="exact", exact_backend="autodiff"),
        f"cg ({args.cg_iters} it)": dict(solver="cg", cg_max_iter=args.cg_iters, cg_tol=1e-10),
    }
    kw = dict(damping=args.damping, ggn_scale=args.ggn_scale)

    ref = dense_direction(model, x, y, args.damping, args.ggn_scale)
    # float64 ground truth: the exact solver on a float64 copy of the model and batch
    truth, _ = GaussNewton(copy.deepcopy(model).double(), **kw).solve_direction(x.double(), y)
    times = {"dense P×P solve": timed(
        lambda: dense_direction(model, x, y, args.damping, args.ggn_scale), args.repeats,
        warmup=False)}
    errors = {"dense P×P solve": 0.0}
    errors64 = {"dense P×P solve": float((ref - truth).norm() / truth.norm())}
    for name, opts in solvers.items():
        opt = GaussNewton(model, **kw, **opts)
        d, _ = opt.solve_direction(x, y)
        errors[name] = float((d - ref).norm() / ref.norm())
        errors64[name] = float((d - truth).norm() / truth.norm())
        stepper = GaussNewton(copy.deepcopy(model), **kw, **opts)  # step() changes the weights
        times[name] = timed(lambda: stepper.step(x, y), args.repeats)

    dense = statistics.median(times["dense P×P solve"])
    print(f"\n{'method':<22}{'s/step (median)':>17}{'min':>10}{'dense/this':>12}"
          f"{'rel. diff vs dense':>20}{'vs float64 model':>18}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<22}{med:>17.4f}{min(ts):>10.4f}{dense / med:>11.1f}×"
              f"{errors[name]:>20.2e}{errors64[name]:>18.2e}")
    ex = statistics.median(times["exact (structured)"])
    print(f"\nexact: {ex:.4f} s/step → {ex * 469 / 60:.1f} min per MNIST epoch (469 steps of 128)")


if __name__ == "__main__":
    main()
