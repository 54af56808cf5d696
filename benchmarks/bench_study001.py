"""Study-001 cost: HAAT against PGD adversarial training per training step (hence per epoch)
and per attack batch, and exact (double-backprop) against forward-difference Hessian-vector
products.

Usage: PYTHONPATH=lib python benchmarks/bench_study001.py [--arch cnn000] [--steps 10]
       [--batch-size 128] [--threads N] [--device cpu] [--haat-steps 5] [--k 5] [--repeats 1]

Every regime trains a copy of the same initial model with Adam on the same random batches
through `make_stepper` + `regimes.Objective` (exactly the training loop's step); the attack
rows time the attack alone on one batch (model in eval mode). The settings are config.yaml's
reduced ones (PGD-10, HAAT with 5 attack steps and k = 5); `--haat-steps 10` gives the study's.
An epoch is steps_per_epoch × the step time, so the ratios hold per epoch. Not a test: the
figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from curvrobust import attacks  # noqa: E402
from curvrobust.attacks.second_order import input_hvp_batch, input_loss_grad  # noqa: E402
from curvrobust.models.inference import eval_mode  # noqa: E402
from curvrobust.models import build_model, count_parameters  # noqa: E402
from curvrobust.training.regimes import Objective  # noqa: E402
from curvrobust.training.loop import make_stepper  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, repeats: int, device: torch.device) -> float:
    """Best wall time of `repeats` calls of fn()."""
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="cnn000", choices=["cnn000", "mnist002", "resnet18_cifar"])
    ap.add_argument("--steps", type=int, default=10, help="timed training steps per regime")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--haat-steps", type=int, default=5)
    ap.add_argument("--pgd-steps", type=int, default=10)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = (3, 32, 32) if args.arch == "resnet18_cifar" else (1, 28, 28)
    model = build_model(args.arch).to(device)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(args.steps + 1, args.batch_size, *shape, generator=g).to(device)
    y = torch.randint(0, 10, (args.steps + 1, args.batch_size), generator=g).to(device)
    step = 2.0 * args.eps / args.pgd_steps
    adversaries = {
        "pgd": {"kind": "pgd", "eps": args.eps, "steps": args.pgd_steps, "step_size": step,
                "random_start": True},
        "haat_fd": {"kind": "haat", "eps": args.eps, "steps": args.haat_steps, "step_size": step,
                    "k": args.k, "xi": 5e-6, "hvp": "fd"},
        "haat_exact": {"kind": "haat", "eps": args.eps, "steps": args.haat_steps,
                       "step_size": step, "k": args.k, "hvp": "exact"},
    }
    train_s, attack_s = {}, {}
    for name, adv in adversaries.items():
        net = copy.deepcopy(model)
        objective = Objective.from_spec({"adversary": adv, "adv_weight": 1.0}, seed=0)
        stepper = make_stepper(net, {"name": "adam", "lr": 1e-3}, objective)
        stepper.step(x[0], y[0])  # warm-up

        def run(stepper=stepper):
            for i in range(1, args.steps + 1):
                stepper.step(x[i], y[i])

        train_s[name] = _timed(run, args.repeats, device) / args.steps
        params = {k: v for k, v in adv.items() if k not in ("kind",)}
        with eval_mode(net):
            attack_s[name] = _timed(lambda: attacks.run_attack(adv["kind"], net, x[1], y[1],
                                                               **params), args.repeats, device)
    with eval_mode(model):
        grad = input_loss_grad(model, x[1], y[1])
        u = torch.randn_like(x[1])
        hvp_s = {m: _timed(lambda m=m: [input_hvp_batch(model, x[1], y[1], u, method=m, xi=1e-3,
                                                          grad_x=grad) for _ in range(10)],
                           args.repeats, device) / 10
                 for m in ("fd", "fd_central", "exact")}
        grad_s = _timed(lambda: [input_loss_grad(model, x[1], y[1]) for _ in range(10)],
                        args.repeats, device) / 10

    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"{args.arch} ({count_parameters(model):,} parameters) batch={args.batch_size} "
          f"eps={args.eps} PGD-{args.pgd_steps}, HAAT steps={args.haat_steps} k={args.k}")
    for name in adversaries:
        print(f"{name:>10}: train step {train_s[name] * 1e3:8.1f} ms "
              f"({train_s[name] / train_s['pgd']:5.2f}x PGD-AT), attack batch "
              f"{attack_s[name] * 1e3:8.1f} ms ({attack_s[name] / attack_s['pgd']:5.2f}x PGD)")
    print(f"input gradient {grad_s * 1e3:.2f} ms; Hessian-vector product: " + ", ".join(
        f"{m} {t * 1e3:.2f} ms ({t / hvp_s['fd']:.2f}x fd)" for m, t in hvp_s.items()))
    return {"haat_vs_pgd_train": train_s["haat_fd"] / train_s["pgd"],
            "exact_vs_fd_hvp": hvp_s["exact"] / hvp_s["fd"]}


if __name__ == "__main__":
    main()
