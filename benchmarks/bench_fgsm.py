"""Throughput of curvrobust.attacks.fgsm vs torchattacks.FGSM on cnn000 (images/s).

Usage: PYTHONPATH=lib python benchmarks/bench_fgsm.py [--n 10000] [--threads N]
       [--batch-size 1000] [--repeats 3] [--eps 0.1] [--device cpu]
Both attacks see the same model (eval mode) and the same random images in batches; each is
timed over ``--repeats`` full passes (interleaved) and the best pass is reported. The
outputs are also checked to be identical.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from curvrobust.attacks import fgsm  # noqa: E402
from curvrobust.models import build_model  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_pass(attack, batches, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for xb, yb in batches:
        attack(xb, yb)
    _sync(device)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="number of random images")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torchattacks

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model("cnn000").to(device).eval()
    x = torch.rand(args.n, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (args.n,), device=device)
    batches = [(x[i:i + args.batch_size], y[i:i + args.batch_size])
               for i in range(0, args.n, args.batch_size)]

    ta = torchattacks.FGSM(model, eps=args.eps)
    attacks = {
        "curvrobust.fgsm": lambda xb, yb: fgsm(model, xb, yb, args.eps),
        "torchattacks.FGSM": lambda xb, yb: ta(xb, yb),
    }
    xb, yb = batches[0]
    identical = torch.equal(attacks["curvrobust.fgsm"](xb, yb), attacks["torchattacks.FGSM"](xb, yb))
    for attack in attacks.values():  # warm-up
        attack(xb, yb)
    best = {name: float("inf") for name in attacks}
    for _ in range(args.repeats):
        for name, attack in attacks.items():
            best[name] = min(best[name], _time_pass(attack, batches, device))

    rate = {name: args.n / t for name, t in best.items()}
    ratio = rate["curvrobust.fgsm"] / rate["torchattacks.FGSM"]
    print(f"device={device} threads={torch.get_num_threads()} n={args.n} "
          f"batch={args.batch_size} eps={args.eps} repeats={args.repeats} "
          f"torch={torch.__version__} torchattacks={torchattacks.__version__}")
    print(f"outputs identical on first batch: {identical}")
    for name, r in rate.items():
        print(f"{name:>18}: {r:10.0f} images/s  (best pass {best[name]:.3f} s)")
    print(f"{'ratio':>18}: {ratio:.3f}x  (goal >= 1.0x)")
    return {**rate, "ratio": ratio}


if __name__ == "__main__":
    main()
