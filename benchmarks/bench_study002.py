"""Study-002 training cost: seconds per step of each regime on mnist002, and the ratio to
natural training (the study: margin-gradient penalty ≈ 2.1× natural per epoch).

Usage: PYTHONPATH=lib python benchmarks/bench_study002.py [--steps 50] [--batch-size 128]
       [--threads N] [--widths 32 64] [--hidden 1024] [--activation relu] [--repeats 1]
       [--only natural margin_l2 ...] [--device cpu]

Every regime trains a copy of the same initial model with Adam (lr 1e-4, Madry et al.'s) on
the same random 1×28×28 batches through `make_stepper` + `regimes.Objective`, i.e. exactly the
training loop's step. After ``--warmup`` untimed steps, ``--steps`` steps are timed; with
``--repeats`` > 1 the regimes are timed in turn that many times and the best run is kept.
Not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from curvrobust.models import build_model, count_parameters  # noqa: E402
from curvrobust.training.regimes import Objective  # noqa: E402
from curvrobust.training.loop import make_stepper  # noqa: E402

# The configs' settings (MNIST, pixel range [0, 1]): penalties as in config.yaml (the study's
# c = 500 collapses the net, see docs/study002.md; the coefficient does not change the cost);
# adversarial training with C&W, 10 iterations of step 0.1; Madry et al.'s PGD, 40 iterations
# of 0.01 from a random start.
REGIMES: dict[str, dict] = {
    "natural": {},
    "ce_grad": {"penalty": {"kind": "ce_grad", "coef": 1.0}},
    "margin_l2": {"penalty": {"kind": "margin_grad", "coef": 0.1, "norm": "l2"}},
    "kurakin_cw10": {"adversary": {"kind": "cw", "eps": 0.3, "steps": 10, "step_size": 0.1},
                     "adv_weight": 0.5},
    "madry_pgd40": {"adversary": {"kind": "pgd", "eps": 0.3, "steps": 40, "step_size": 0.01,
                                  "random_start": True}, "adv_weight": 1.0},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_steps(stepper, batches, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for xb, yb in batches:
        stepper.step(xb, yb)
    _sync(device)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--widths", type=int, nargs=2, default=[32, 64])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--activation", default="relu", choices=["relu", "softplus"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--only", nargs="+", choices=list(REGIMES), default=list(REGIMES))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model("mnist002", widths=args.widths, hidden=args.hidden,
                        activation=args.activation).to(device)
    g = torch.Generator().manual_seed(1)
    n = args.warmup + args.steps
    x = torch.rand(n, args.batch_size, 1, 28, 28, generator=g).to(device)
    y = torch.randint(0, 10, (n, args.batch_size), generator=g).to(device)
    warm = list(zip(x[:args.warmup], y[:args.warmup]))
    timed = list(zip(x[args.warmup:], y[args.warmup:]))

    names = ["natural", *[r for r in args.only if r != "natural"]]  # ratios need natural
    steppers = {}
    for name in names:
        net = copy.deepcopy(model)
        objective = Objective.from_spec(REGIMES[name], seed=0)
        steppers[name] = make_stepper(net, {"name": "adam", "lr": 1e-4},
                                      None if objective.is_natural else objective)
        _time_steps(steppers[name], warm, device)
    best = {name: float("inf") for name in names}
    for _ in range(args.repeats):
        for name in names:
            best[name] = min(best[name], _time_steps(steppers[name], timed, device))

    per_step = {name: t / args.steps for name, t in best.items()}
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"mnist002 widths={args.widths} hidden={args.hidden} activation={args.activation} "
          f"({count_parameters(model):,} parameters) batch={args.batch_size} "
          f"steps={args.steps} repeats={args.repeats}")
    for name in names:
        ratio = per_step[name] / per_step["natural"]
        note = "  (study: 2.1x)" if name == "margin_l2" else ""
        print(f"{name:>13}: {per_step[name] * 1e3:9.2f} ms/step  {ratio:6.2f}x natural{note}")
    return {name: per_step[name] / per_step["natural"] for name in names}


if __name__ == "__main__":
    main()
