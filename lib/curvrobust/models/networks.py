"""Model registry: architecture name -> constructor, and one-call checkpoint loading."""

from __future__ import annotations

import inspect
import math
import os
import pickle
from typing import Any, Callable

import torch
from torch import nn

from curvrobust.utils import check_result_file, torch_save_atomic, unreadable

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering an architecture constructor under ``name``.

    Args:
        name: the architecture name used in configs and checkpoints (``arch``).

    Returns:
        A decorator that records the constructor (a class or function returning an
        ``nn.Module``) and returns it unchanged.
    """

    def wrap(ctor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = ctor
        return ctor

    return wrap


def available() -> list[str]:
    """Names of the registered architectures, sorted (what :func:`build_model` accepts)."""
    return sorted(_REGISTRY)


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """Construct a registered architecture; unknown names fail with the list of known ones.

    Args:
        arch: a name from :func:`available` (``"cnn000"``, ``"mnist002"``, ``"cifar002"``,
            ``"resnet18_cifar"``, ``"twolayer"``).
        **kwargs: the constructor's arguments (e.g. ``num_classes``, ``widths``,
            ``activation``); initialisation draws from torch's global generator.

    Returns:
        A freshly initialised ``nn.Module`` in train mode, on the CPU. Classifiers map
        (N, C, H, W) float inputs to (N, num_classes) logits; ``"twolayer"`` maps (N, ...) to
        (N,).

    Raises:
        KeyError: ``arch`` is not registered.

    Examples:
        >>> import torch
        >>> from curvrobust.models import build_model, count_parameters
        >>> _ = torch.manual_seed(0)
        >>> model = build_model("cnn000").eval()      # study 000's CNN, random initial weights
        >>> count_parameters(model), model(torch.rand(2, 1, 28, 28)).shape
        (6794, torch.Size([2, 10]))
        >>> build_model("mnist002", widths=[4, 8], hidden=16)(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    if arch not in _REGISTRY:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(available())}")
    return _REGISTRY[arch](**kwargs)


def input_shape_kwargs(arch: str, shape: tuple[int, ...], given: dict[str, Any]) -> dict[str, Any]:
    """The ``in_channels`` / ``image_size`` arguments that fit an architecture to its inputs:
    the study-000 CNN on 3×32×32 CIFAR-10 without a recipe per data set.

    Args:
        arch: a registered architecture name.
        shape: one input's shape (C, H, W).
        given: the recipe's ``arch_kwargs`` (never overridden).

    Returns:
        The arguments the constructor accepts, `given` lacks and whose default does not already
        fit `shape` (empty for MNIST and the study's CNN, or for an unknown `arch`).
    """
    if arch not in _REGISTRY or len(shape) != 3:
        return {}
    params = inspect.signature(_REGISTRY[arch]).parameters
    want = {"in_channels": int(shape[0]), "image_size": int(shape[-1])}
    return {k: v for k, v in want.items() if k in params and k not in given
            and params[k].default != v}


def lecun_normal_(weight: torch.Tensor) -> torch.Tensor:
    """JAX/Flax `lecun_normal`: truncated normal on [-2σ, 2σ] with variance 1/fan_in.

    The untruncated σ is divided by 0.8796..., the std of a unit normal truncated to [-2, 2],
    so that the truncated draw has variance exactly 1/fan_in."""
    fan_in = weight[0].numel()
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


@register("cnn000")
class StudyCNN(nn.Module):
    """Study 000's MNIST CNN (6,794 parameters), inputs in [0, 1] of shape (N, 1, 28, 28).

    Conv(1→4,3×3,same)→ReLU→AvgPool2→Conv(4→8,3×3,same)→ReLU→AvgPool2→Linear(392→16)→ReLU→
    Linear(16→10); LeCun-normal weights, zero biases, as in the authors' code."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 width1: int = 4, width2: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width1, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(width1, width2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        )
        flat = width2 * (image_size // 4) ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                lecun_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


ACTIVATIONS = ("relu", "softplus", "tanh", "quadratic")


class Quadratic(nn.Module):
    """σ(z) = z², the activation of the quadratic two-layer networks studied in theory."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def make_activation(name: str, softplus_beta: float = 10.0) -> nn.Module:
    """ReLU, or Softplus(β) — a smooth stand-in for ReLU whose input Hessian is not zero a.e.;
    also tanh and the quadratic σ(z) = z² (smooth activations of two-layer theory)."""
    if name == "relu":
        return nn.ReLU()
    if name == "softplus":
        return nn.Softplus(beta=float(softplus_beta))
    if name == "tanh":
        return nn.Tanh()
    if name == "quadratic":
        return Quadratic()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def _widths(widths: Any, n: int) -> tuple[int, ...]:
    """Layer widths as a tuple (YAML and checkpoints may hand back a list)."""
    out = tuple(int(w) for w in widths)
    if len(out) != n or any(w < 1 for w in out):
        raise ValueError(f"widths must be {n} positive integers, got {widths!r}")
    return out


@register("mnist002")
class SmallConvNet(nn.Module):
    """Study 002's MNIST net: two conv + two fully connected layers.

    Conv(k×k, same)→act→MaxPool2→Conv(k×k, same)→act→MaxPool2→Linear(hidden)→act→
    Linear(num_classes). The defaults are Madry et al.'s MNIST challenge net (32/64 filters of
    5×5, 1024 hidden units; 3,274,634 parameters). PyTorch's default initialisation."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 widths: tuple[int, int] | list[int] = (32, 64), hidden: int = 1024,
                 kernel: int = 5, activation: str = "relu", softplus_beta: float = 10.0) -> None:
        super().__init__()
        w1, w2 = _widths(widths, 2)
        act = lambda: make_activation(activation, softplus_beta)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w1, kernel, padding="same"), act(), nn.MaxPool2d(2),
            nn.Conv2d(w1, w2, kernel, padding="same"), act(), nn.MaxPool2d(2),
        )
        flat = w2 * (image_size // 4) ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), act(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register("cifar002")
class AllConvGAP(nn.Module):
    """Study 002's CIFAR-10 net: five conv layers and global average pooling.

    Conv3×3(→w0)→act→Conv3×3(→w1, stride 2)→act→Conv3×3(→w2)→act→Conv3×3(→w3, stride 2)→act→
    Conv1×1(→num_classes)→global average pool. No batch norm, so every example's logits depend
    on that example only. PyTorch's default initialisation."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10,
                 widths: tuple[int, int, int, int] | list[int] = (64, 128, 128, 256),
                 activation: str = "relu", softplus_beta: float = 10.0) -> None:
        super().__init__()
        w0, w1, w2, w3 = _widths(widths, 4)
        act = lambda: make_activation(activation, softplus_beta)  # noqa: E731
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, w0, 3, padding=1), act(),
            nn.Conv2d(w0, w1, 3, stride=2, padding=1), act(),
            nn.Conv2d(w1, w2, 3, padding=1), act(),
            nn.Conv2d(w2, w3, 3, stride=2, padding=1), act(),
            nn.Conv2d(w3, num_classes, 1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register("resnet18_cifar")
def resnet18_cifar(in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    """He et al.'s ResNet18 as used for CIFAR-10 adversarial training (Madry et al., Rice et
    al.): torchvision's implementation with the CIFAR stem, a 3×3 stride-1 first convolution
    and no max pooling (11,173,962 parameters for 10 classes).

    It has BatchNorm, so its logits depend on the batch in train mode: attacks and evaluation
    must run it in eval mode (`curvrobust.models.inference.eval_mode`)."""
    from torchvision.models import resnet18

    model = resnet18(num_classes=num_classes, weights=None)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    # initialised like torchvision initialises every other convolution of the net
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of scalar entries over ``model.parameters()`` (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def save_checkpoint(path: str | os.PathLike, model: nn.Module, arch: str,
                    arch_kwargs: dict[str, Any] | None = None, **extra: Any) -> None:
    """Write architecture name + kwargs + state dict (+ any metadata) atomically.

    Args:
        path: the file to write (replaced atomically: readers never see a partial file).
        model: the model; its ``state_dict()`` is saved as CPU tensors.
        arch: the registered architecture name :func:`load_model` rebuilds it with.
        arch_kwargs: the keyword arguments it was built with (``build_model(arch, **kwargs)``).
        **extra: metadata stored alongside (must be loadable with ``weights_only=True``:
            numbers, strings, lists, dicts, tensors).
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch_save_atomic({"arch": arch, "arch_kwargs": dict(arch_kwargs or {}),
                       "state_dict": state, **extra}, path)


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu",
               eval_mode: bool = True) -> nn.Module:
    """Rebuild a model from a checkpoint written by `save_checkpoint`, in eval mode by default.

    Args:
        path: the checkpoint file.
        map_location: device the weights are loaded to and the model is moved to.
        eval_mode: return the model in eval mode (default) or in train mode.

    Returns:
        The ``nn.Module`` built with the checkpoint's ``arch`` and ``arch_kwargs``, its
        weights loaded, on ``map_location``.

    Raises:
        ValueError: the file is not a curvrobust checkpoint, or its weights do not fit the
            architecture; a :class:`~curvrobust.utils.ResultFileError` (a ValueError) naming
            the file and the rebuild command when it is missing, unreadable (truncated), or
            not what its job wrote (the digest in its provenance sidecar).

    Examples:
        A run's models are ``results/models/<dataset>/<variant>/<recipe>/seed<seed>/model.pt``;
        here a checkpoint written by hand:

        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> from curvrobust.models import build_model, load_model, save_checkpoint
        >>> _ = torch.manual_seed(0)
        >>> kwargs = {"widths": [4, 8], "hidden": 16}
        >>> net = build_model("mnist002", **kwargs).eval()
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     save_checkpoint(Path(tmp) / "model.pt", net, "mnist002", kwargs)
        ...     model = load_model(Path(tmp) / "model.pt")
        >>> x = torch.rand(3, 1, 28, 28)
        >>> model.training, torch.equal(model(x), net(x))    # eval mode, the same weights
        (False, True)
    """
    check_result_file(path, "trained model")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as e:
        raise unreadable(path, "trained model", e) from e
    if not isinstance(ckpt, dict) or not {"arch", "arch_kwargs", "state_dict"} <= set(ckpt):
        raise ValueError(f"{path}: not a curvrobust checkpoint (needs arch, arch_kwargs and "
                         "state_dict; write it with curvrobust.models.save_checkpoint)")
    model = build_model(ckpt["arch"], **ckpt["arch_kwargs"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise ValueError(f"{path}: its weights do not fit architecture {ckpt['arch']!r} with "
                         f"{ckpt['arch_kwargs']}: {e}") from None
    model.to(map_location)
    return model.eval() if eval_mode else model


@register("twolayer")
class TwoLayerNet(nn.Module):
    """Study 003's two-layer network with a scalar output, f(x) = aᵀσ(Wx + b) (Deng et al. 2020).

    Inputs (N, C, H, W) or (N, d) are flattened to (N, d); the output has shape (N,), for the
    quadratic loss (y − f(x))² with y = ±1. W (``hidden.weight``, m × d) has N(0, 1/d) entries,
    so Wx is O(1) for inputs of unit scale; b = 0 (only with ``bias``); a_j = ±1/√m with random
    signs. As in the paper's analysis the second layer is fixed by default: ``a`` is then a
    buffer (saved in checkpoints, not returned by ``parameters()``), else a Parameter.
    Initialisation draws from torch's global generator (seed it with ``torch.manual_seed``)."""

    def __init__(self, in_features: int = 784, width: int = 256, activation: str = "relu",
                 train_second_layer: bool = False, bias: bool = False,
                 softplus_beta: float = 10.0) -> None:
        super().__init__()
        d, m = int(in_features), int(width)
        if d < 1 or m < 1:
            raise ValueError(f"in_features and width must be >= 1, got {in_features!r}, {width!r}")
        self.hidden = nn.Linear(d, m, bias=bool(bias))
        nn.init.normal_(self.hidden.weight, mean=0.0, std=1.0 / math.sqrt(d))
        if self.hidden.bias is not None:
            nn.init.zeros_(self.hidden.bias)
        signs = torch.randint(0, 2, (m,)).mul_(2).sub_(1).to(self.hidden.weight.dtype)
        a = signs / math.sqrt(m)
        if train_second_layer:
            self.a = nn.Parameter(a)
        else:
            self.register_buffer("a", a)
        self.act = make_activation(activation, softplus_beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.hidden(x.flatten(1))) @ self.a
