"""Study 001: how much noisier is the first finite-difference product of HAAT's power iteration
when it starts from the normalised draw u/‖u‖₂ instead of the raw N(0, I) draw u (Algorithm 1)?

Usage: PYTHONPATH=lib python benchmarks/haat_fd_start.py [--model results/models/.../model.pt
       --data results/data/<dataset>/<variant>] [--xi 5e-6] [--n 256] [--seed 0] [--threads 1]

For n images x (training split of the variant folder `--data`) and one draw u ~ N(0, I) per
image, it compares the forward differences (∇ₓL(x + ξv) − ∇ₓL(x))/ξ along v = u (`raw`, the
default `fd_start`) and along v = u/‖u‖₂ (`normalised`) with the exact product Hu (double
backprop; H is linear, so both point the same way in exact arithmetic), in float32, and prints
the median over images of |cos(Hu_fd, Hu_exact)| for both starts and the share of products that
vanish in rounding (x + ξv == x). Without `--model` it trains a tiny cnn000 for a few Adam steps
on a few hundred MNIST-like random images (a class-dependent bright block plus noise) and says
so: a stand-in, not a study-001 model. Not a test: the numbers depend on the model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from curvrobust.attacks.second_order import input_hvp_batch  # noqa: E402
from curvrobust.models import build_model, load_model  # noqa: E402
from curvrobust.data.variants import load_variant  # noqa: E402


def mnist_like(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n random 1×28×28 images in [0, 1]: noise plus a bright 7×7 block whose position is the
    class (10 classes)."""
    y = torch.arange(n) % 10
    x = 0.3 * torch.rand(n, 1, 28, 28, generator=gen)
    for c in range(10):
        r, col = 3 + 7 * (c // 5), 2 + 5 * (c % 5)
        x[y == c, :, r:r + 7, col:col + 5] += 0.6
    return x.clamp(0, 1), y


def tiny_model(seed: int, steps: int = 40) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """cnn000 trained `steps` Adam steps (batch 128) on 512 mnist_like images; returns the model
    (eval mode) and 512 fresh images of the same kind."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_model("cnn000")
    xt, yt = mnist_like(512, gen)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for s in range(steps):
        idx = torch.randint(0, len(xt), (128,), generator=gen)
        opt.zero_grad()
        F.cross_entropy(model(xt[idx]), yt[idx]).backward()
        opt.step()
    model.eval()
    model.zero_grad(set_to_none=True)
    return model, *mnist_like(512, gen)


def abs_cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-example |cos| of two (N, ...) tensors (0 where either is 0), in float64."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(1).abs() / den.clamp_min(1e-300),
                       torch.zeros_like(den))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="a trained model.pt (e.g. study 001's HAAT model)")
    ap.add_argument("--data", type=Path,
                    help="the variant folder of its dataset (results/data/<dataset>/<variant>)")
    ap.add_argument("--xi", type=float, default=5e-6)
    ap.add_argument("--n", type=int, default=256, help="images (one draw each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.model is not None:
        if args.data is None:
            ap.error("--model needs --data (the variant folder of the model's dataset)")
        model = load_model(args.model)
        x, y = load_variant(args.data, "train")
        g = torch.Generator().manual_seed(args.seed)
        idx = torch.randperm(len(x), generator=g)[:args.n]
        x, y = x[idx], y[idx]
        print(f"model: {args.model}; {len(x)} training images of {args.data}")
    else:
        model, x, y = tiny_model(args.seed)
        x, y = x[:args.n], y[:args.n]
        acc = float((model(x).argmax(1) == y).float().mean())
        print("model: no --model given, so a STAND-IN: cnn000 trained 40 Adam steps on 512 "
              f"MNIST-like random images (accuracy {acc:.2f} on {len(x)} fresh ones)")

    d = x[0].numel()
    u = torch.randn(x.shape, generator=torch.Generator().manual_seed(args.seed + 1))
    unit = u / u.flatten(1).norm(dim=1).view(-1, *[1] * (u.dim() - 1))
    exact = input_hvp_batch(model, x, y, u, method="exact")
    keep = exact.flatten(1).norm(dim=1) > 0
    print(f"d = {d}, ξ = {args.xi:g}, {int(keep.sum())} of {len(x)} images with Hu ≠ 0, "
          f"median ‖u‖₂ of the raw draws {float(u.flatten(1).norm(dim=1).median()):.1f}")
    for name, v in (("raw", u), ("normalised", unit)):
        fd = input_hvp_batch(model, x, y, v, method="fd", xi=args.xi)
        cos = abs_cos(fd, exact)[keep]
        vanished = float((fd.flatten(1) == 0).all(dim=1).double().mean())
        print(f"fd_start={name:<10}  median |cos(Hu_fd, Hu_exact)| = {float(cos.median()):.3f}"
              f"  (10th percentile {float(torch.quantile(cos, 0.1)):.3f}; "
              f"products exactly 0: {100 * vanished:.1f} %)")


if __name__ == "__main__":
    main()
