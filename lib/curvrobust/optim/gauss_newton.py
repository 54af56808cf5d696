"""Generalized Gauss-Newton (GGN) optimizer for softmax cross-entropy classifiers, and K-FAC,
its Kronecker-factored approximation (:class:`KFAC`, at the end).

One step is  θ ← θ − η (λI + G)⁻¹ g  with g the gradient of the batch-MEAN cross-entropy and
G = s Σ_i J_iᵀ H_i J_i, where J_i (C×P) is the Jacobian of example i's logits with respect to all
trainable parameters, H_i = diag(p_i) − p_i p_iᵀ the softmax Hessian and s = 1 ("sum", what the
original study used) or 1/N ("mean").

Solvers
-------
``exact``  Never forms the P×P matrix.  Factor H_i = R_i R_iᵀ with R_i = diag(√p_i) Q_i (C×(C−1),
    Q_i from a Householder reflector, see `softmax_hessian_factor`; the dropped direction is H's
    null vector 1) and stack the rows A = √s Rᵀ J  ((N·(C−1))×P).  Then G = AᵀA and by the
    push-through/Woodbury identity

        d = (λI + AᵀA)⁻¹ g = (g − Aᵀ (λI + AAᵀ)⁻¹ A g) / λ,

    which holds for any g (g = Jᵀr is not assumed to be exploited).  λI + AAᵀ is SPD (eigenvalues
    ≥ λ) and is formed and solved by Cholesky in float64.  The Jacobian pieces (Gram matrix, Jv,
    Jᵀu) come from one of two backends:
      * "structured": one forward pass with hooks on nn.Linear / nn.Conv2d layers plus C backward
        passes for the per-class output gradients δ.  Per-example Jacobian blocks are built from
        (δ, layer input): Conv2d explicitly via unfold; a Linear layer on (N, in) inputs stays
        Kronecker-factored, its Gram block is (δδᵀ) ⊙ (aaᵀ + 1), so the big 392×16 layer of the
        study CNN costs almost nothing.
      * "autodiff": explicit J via torch.func (vmap over examples of a vjp with C one-hot
        cotangents).  Works for any model that treats examples independently; slower.
    "auto" uses "structured" when every trainable parameter sits in a plain Linear/Conv2d layer
    (each called once per forward on batch-first inputs), else "autodiff"; it falls back to
    "autodiff" for good if the hooked forward breaks those assumptions, e.g. when a hooked
    layer's output is changed in place (``nn.ReLU(inplace=True)``), which the explicit
    "structured" backend refuses with a ValueError naming the layer.
``cg``  Matrix-free conjugate gradient on v ↦ Gv + λv with Jv from torch.func.jvp and Jᵀu from
    torch.func.vjp (no Jacobian is stored), for models too large for ``exact``.  Starts from 0,
    stops after ``cg_max_iter`` iterations or when ‖residual‖ ≤ cg_tol·‖g‖.  CG vectors and
    scalars are float64; the products run in the model's dtype.  Note that at λ = 0.01 the system
    is badly conditioned, so a few dozen iterations give only a rough direction.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp, vjp, vmap

from curvrobust._checks import check_int

Params = dict[str, torch.Tensor]

SOLVERS = ("exact", "cg")
GGN_SCALES = ("sum", "mean")
EXACT_BACKENDS = ("auto", "structured", "autodiff")


# ----------------------------------------------------------------------------- small helpers
def trainable_params(model: nn.Module) -> Params:
    """Detached trainable parameters, in `named_parameters` order (the flat-vector order)."""
    return {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}


def flatten(tensors: dict[str, torch.Tensor] | list[torch.Tensor] | tuple[torch.Tensor, ...]
            ) -> torch.Tensor:
    vals = tensors.values() if isinstance(tensors, dict) else tensors
    return torch.cat([t.reshape(-1) for t in vals])


def unflatten(vec: torch.Tensor, like: Params) -> Params:
    """Split a flat vector into tensors shaped (and typed) like `like`."""
    out, i = {}, 0
    for k, p in like.items():
        out[k] = vec[i:i + p.numel()].view(p.shape).to(p.dtype)
        i += p.numel()
    return out


def scale_factor(ggn_scale: str | float, n: int) -> float:
    """s in G = s Σ J_iᵀH_iJ_i: 1 for "sum", 1/n for "mean" (a number is used as is)."""
    if isinstance(ggn_scale, (int, float)):
        return float(ggn_scale)
    if ggn_scale == "sum":
        return 1.0
    if ggn_scale == "mean":
        return 1.0 / n
    raise ValueError(f"ggn_scale must be one of {GGN_SCALES}, got {ggn_scale!r}")


def softmax_hessian_factor(p: torch.Tensor) -> torch.Tensor:
    """R (N, C, C−1) with R_i R_iᵀ = H_i = diag(p_i) − p_i p_iᵀ (rank C−1, null vector 1).

    R_i = diag(√p_i) Q_i, where Q_i is the first C−1 columns of the Householder reflector that
    maps √p_i (a unit vector, since Σp = 1) to −e_C:  Q = I − w wᵀ/(1 + √p_C), w = √p + e_C.
    Then R Rᵀ = diag(√p)(I − √p√pᵀ)diag(√p) = diag(p) − ppᵀ."""
    s = p.clamp_min(0).sqrt()
    w = s.clone()
    w[..., -1] += 1
    Q = torch.eye(p.shape[-1], dtype=p.dtype, device=p.device) - \
        w.unsqueeze(-1) * w.unsqueeze(-2) / (1 + s[..., -1:]).unsqueeze(-1)
    return s.unsqueeze(-1) * Q[..., :-1]


def softmax_hessian_apply(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """H_i u_i = p_i ⊙ u_i − p_i (p_iᵀ u_i) for each row."""
    return p * u - p * (p * u).sum(-1, keepdim=True)


def _model_fn(model: nn.Module, x: torch.Tensor) -> Callable[[Params], torch.Tensor]:
    return lambda params: functional_call(model, params, (x,))


def _jvp(fn: Callable[[Params], torch.Tensor], params: Params, tangents: Params) -> Any:
    """torch.func.jvp, silencing torch's own one-time `torch.jit.script` deprecation warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        return jvp(fn, (params,), (tangents,))


# ----------------------------------------------------------------------------- Jacobians
@dataclass
class _FactoredLinear:
    """Rows of a Linear layer's per-example Jacobian, J_{(i,c)} = δ_ic ⊗ a_i for the weight and
    δ_ic for the bias, kept factored (δ: (N, C, out), a: (N, in)); offsets None if frozen."""

    d: torch.Tensor
    a: torch.Tensor
    w_off: int | None
    b_off: int | None


class BlockJacobian:
    """Per-example logit Jacobian, rows (example i, output c), columns = the flat parameters.

    Stored as an explicit float64 part E (N, C, q) for the parameter positions `cols` (None: all
    P in order) plus Kronecker-factored Linear layers.  Provides the Gram matrix JJᵀ, Jv, Jᵀu and
    the row transform J_i ↦ T_iᵀ J_i."""

    def __init__(self, n: int, c: int, total: int, explicit: torch.Tensor | None,
                 cols: torch.Tensor | None, factored: list[_FactoredLinear]) -> None:
        self.n, self.c, self.total = n, c, total
        self.explicit, self.cols, self.factored = explicit, cols, factored

    def transform(self, T: torch.Tensor) -> "BlockJacobian":
        """Rows T_iᵀ J_i for T (N, C, m): a Jacobian with m rows per example."""
        E = None if self.explicit is None else torch.einsum("ncm,ncq->nmq", T, self.explicit)
        fac = [_FactoredLinear(torch.einsum("ncm,nco->nmo", T, f.d), f.a, f.w_off, f.b_off)
               for f in self.factored]
        return BlockJacobian(self.n, T.shape[-1], self.total, E, self.cols, fac)

    def gram(self) -> torch.Tensor:
        """JJᵀ as an (N·C)×(N·C) float64 matrix."""
        n, c = self.n, self.c
        if self.explicit is not None:
            E = self.explicit.reshape(n * c, -1)
            K = E @ E.T
        else:
            K = torch.zeros(n * c, n * c, dtype=torch.float64, device=self.factored[0].d.device)
        for f in self.factored:
            D = f.d.reshape(n * c, -1)
            aa = (f.a @ f.a.T) if f.w_off is not None else f.a.new_zeros(n, n)
            if f.b_off is not None:
                aa = aa + 1.0
            K.view(n, c, n, c).add_((D @ D.T).view(n, c, n, c) * aa[:, None, :, None])
        return K

    def jvp(self, v: torch.Tensor) -> torch.Tensor:
        """J v for a flat float64 v; returns (N, C)."""
        out = torch.zeros(self.n, self.c, dtype=torch.float64, device=v.device)
        if self.explicit is not None:
            out += self.explicit @ (v if self.cols is None else v[self.cols])
        for f in self.factored:
            o, i = f.d.shape[-1], f.a.shape[-1]
            if f.w_off is not None:
                W = v[f.w_off:f.w_off + o * i].view(o, i)
                out += torch.einsum("nco,no->nc", f.d, f.a @ W.T)
            if f.b_off is not None:
                out += f.d @ v[f.b_off:f.b_off + o]
        return out

    def vjp(self, u: torch.Tensor) -> torch.Tensor:
        """Jᵀ u for u (N, C); returns a flat float64 vector of length P."""
        out = torch.zeros(self.total, dtype=torch.float64, device=u.device)
        if self.explicit is not None:
            gE = torch.einsum("nc,ncq->q", u, self.explicit)
            if self.cols is None:
                out += gE
            else:
                out[self.cols] = gE
        for f in self.factored:
            ud = torch.einsum("nc,nco->no", u, f.d)
            o, i = f.d.shape[-1], f.a.shape[-1]
            if f.w_off is not None:
                out[f.w_off:f.w_off + o * i] = (ud.T @ f.a).reshape(-1)
            if f.b_off is not None:
                out[f.b_off:f.b_off + o] = ud.sum(0)
        return out


def per_example_jacobian(model: nn.Module, x: torch.Tensor, params: Params | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Explicit per-example logit Jacobian J (N, C, P) in the model dtype and the logits (N, C).

    torch.func: vmap over examples of a single-example vjp with the C one-hot cotangents
    (measured faster on CPU than vmap(jacrev) for the study CNN)."""
    params = trainable_params(model) if params is None else params

    def one(xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, fn = vjp(lambda p: functional_call(model, p, (xi.unsqueeze(0),))[0], params)
        eye = torch.eye(out.shape[-1], dtype=out.dtype, device=out.device)
        (rows,) = vmap(fn)(eye)
        return torch.cat([r.reshape(eye.shape[0], -1) for r in rows.values()], 1), out

    J, logits = vmap(one)(x)
    return J, logits


def autodiff_jacobian(model: nn.Module, x: torch.Tensor) -> tuple[BlockJacobian, torch.Tensor]:
    """BlockJacobian holding the explicit torch.func Jacobian (any per-example model)."""
    J, logits = per_example_jacobian(model, x)
    n, c, P = J.shape
    return BlockJacobian(n, c, P, J.to(torch.float64), None, []), logits.detach()


def structured_supported(model: nn.Module) -> bool:
    """Static check for the "structured" backend: every trainable parameter is the weight/bias of
    a plain nn.Linear or nn.Conv2d (groups=1, zero padding given as numbers), none shared."""
    owners: dict[int, int] = {}
    for m in model.modules():
        for p in m.parameters(recurse=False):
            if not p.requires_grad:
                continue
            owners[id(p)] = owners.get(id(p), 0) + 1
            if type(m) is nn.Linear:
                continue
            if (type(m) is nn.Conv2d and m.groups == 1 and m.padding_mode == "zeros"
                    and not isinstance(m.padding, str)):
                continue
            return False
    return bool(owners) and all(v == 1 for v in owners.values())


class StructureError(RuntimeError):
    """The model's forward does not fit the "structured" backend's assumptions."""


class InPlaceModificationError(StructureError, ValueError):
    """A hooked layer's output (or input) was changed in place later in the forward pass (e.g.
    by ``nn.ReLU(inplace=True)``), so the recorded tensors no longer are the layer's output."""


def structured_jacobian(model: nn.Module, x: torch.Tensor) -> tuple[BlockJacobian, torch.Tensor]:
    """Per-example Jacobian from one hooked forward pass and C backward passes to the layer
    outputs (δ_c = ∂ logit_c / ∂ layer output), combined with each layer's input:
    Conv2d: J = δ · unfold(input) (explicit);  Linear on (N, in): J = δ ⊗ a (factored).

    Assumes `structured_supported(model)`; raises StructureError if a layer is not called exactly
    once or its input/output is not batch-first, and InPlaceModificationError (a StructureError
    and a ValueError, naming the layer) if a layer's output or input is modified in place after
    the layer ran (e.g. ``nn.ReLU(inplace=True)`` right after it): δ would then be the gradient
    with respect to the modified tensor, a silently wrong direction.  Detected by comparing the
    tensors' autograd version counters at hook time and after the forward pass."""
    offsets, total = {}, 0
    for p in model.parameters():
        if p.requires_grad:
            offsets[id(p)] = total
            total += p.numel()
    layers = [m for m in model.modules() if type(m) in (nn.Linear, nn.Conv2d)
              and any(p.requires_grad for p in m.parameters(recurse=False))]
    logits, records = _hooked_forward(model, x, layers)
    n, c = x.shape[0], logits.shape[1]
    outs = [r[2] for r in records]
    with torch.enable_grad():
        grads = [torch.autograd.grad(logits[:, k].sum(), outs, retain_graph=k < c - 1,
                                     allow_unused=True) for k in range(c)]
    blocks, factored = _layer_jacobians(records, grads, offsets, n, c)
    explicit = cols = None
    if blocks:
        explicit = torch.cat([blk for _, blk in blocks], 2).to(torch.float64)
        cols = torch.cat([torch.arange(off, off + blk.shape[2], device=x.device)
                          for off, blk in blocks])
    return BlockJacobian(n, c, total, explicit, cols, factored), logits.detach()


_Record = tuple[nn.Module, torch.Tensor, torch.Tensor]  # (layer, its input, its output)


def _hooked_forward(model: nn.Module, x: torch.Tensor, layers: list[nn.Module]
                    ) -> tuple[torch.Tensor, list[_Record]]:
    """The logits and each layer's (input, output) from one hooked forward pass, checked for
    :func:`structured_jacobian`'s assumptions (StructureError, InPlaceModificationError)."""
    records: list[_Record] = []
    versions: list[tuple[int, int]] = []  # (input, output) version counters at hook time

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        records.append((mod, inp[0].detach(), out))  # detach() shares the version counter
        versions.append((inp[0]._version, out._version))

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with torch.enable_grad():
            logits = model(x)
    finally:
        for h in handles:
            h.remove()
    n = x.shape[0]
    if (len(records) != len(layers) or {id(r[0]) for r in records} != {id(m) for m in layers}
            or logits.dim() != 2 or logits.shape[0] != n
            or any(r[1].shape[0] != n or r[2].shape[0] != n for r in records)):
        raise StructureError("a Linear/Conv2d layer is not called exactly once on a "
                             "batch-first input; use exact_backend='autodiff'")
    names = {id(m): name for name, m in model.named_modules()}
    for (mod, a, out), (va, vo) in zip(records, versions):
        for what, t, v in (("output", out, vo), ("input", a, va)):
            if t._version != v:
                raise InPlaceModificationError(
                    f"the {what} of layer {names.get(id(mod), '?')!r} ({type(mod).__name__}) "
                    "is modified in place later in the forward pass (e.g. by an in-place "
                    "activation such as nn.ReLU(inplace=True)); the structured Gauss-Newton "
                    "backend would compute a wrong direction. Use inplace=False or "
                    "exact_backend='autodiff'")
    return logits, records


def _layer_jacobians(records: list[_Record], grads: list[tuple[torch.Tensor | None, ...]],
                     offsets: dict[int, int], n: int, c: int
                     ) -> tuple[list[tuple[int, torch.Tensor]], list[_FactoredLinear]]:
    """Each layer's Jacobian from δ (``grads``, one tuple per logit) and its input: explicit
    blocks (offset, (N, C, p_k)) for convolutions and Linear layers on (N, ..., in), factored
    ones for Linear layers on (N, in)."""
    blocks: list[tuple[int, torch.Tensor]] = []  # (offset, (N, C, p_k) in the model dtype)
    factored: list[_FactoredLinear] = []
    for j, (mod, a, out) in enumerate(records):
        d = torch.stack([torch.zeros_like(out) if g[j] is None else g[j] for g in grads], 1)
        w, b = mod.weight, mod.bias
        w_off = offsets[id(w)] if w.requires_grad else None
        b_off = offsets[id(b)] if b is not None and b.requires_grad else None
        if isinstance(mod, nn.Linear) and a.dim() == 2:
            factored.append(_FactoredLinear(d.to(torch.float64), a.to(torch.float64),
                                            w_off, b_off))
            continue
        if isinstance(mod, nn.Linear):  # (N, ..., in): sum the per-position outer products
            d4, a3 = d.reshape(n, c, -1, d.shape[-1]), a.reshape(n, -1, a.shape[-1])
            jw = lambda: torch.einsum("ncto,nti->ncoi", d4, a3)  # noqa: E731
        else:
            u = F.unfold(a, mod.kernel_size, dilation=mod.dilation, padding=mod.padding,
                         stride=mod.stride)  # (N, Cin·kh·kw, L)
            d4 = d.reshape(n, c, d.shape[2], -1)  # (N, C, O, L)
            jw = lambda: torch.einsum("ncol,nkl->ncok", d4, u)  # noqa: E731
        if w_off is not None:
            blocks.append((w_off, jw().reshape(n, c, -1)))
        if b_off is not None:
            blocks.append((b_off, d4.sum(2 if isinstance(mod, nn.Linear) else -1)))
    return blocks, factored


# ----------------------------------------------------------------------------- GGN products
def ggn_vector_product(model: nn.Module, params: Params, x: torch.Tensor, v: torch.Tensor,
                       scale: str | float = "sum") -> torch.Tensor:
    """G v = s Σ_i J_iᵀ H_i J_i v for a flat v (no damping), via jvp + vjp; returns flat."""
    fn = _model_fn(model, x)
    logits, jv = _jvp(fn, params, unflatten(v, params))
    p = torch.softmax(logits.to(torch.float64), -1)
    hu = scale_factor(scale, x.shape[0]) * softmax_hessian_apply(p, jv.to(torch.float64))
    _, vjp_fn = vjp(fn, params)
    return flatten(vjp_fn(hu.to(logits.dtype))[0])


def _dense_ggn(J: torch.Tensor, logits: torch.Tensor, ggn_scale: str | float) -> torch.Tensor:
    p = torch.softmax(logits.to(torch.float64), -1)
    A = torch.einsum("nca,ncp->nap", softmax_hessian_factor(p), J.to(torch.float64))
    A = A.reshape(-1, J.shape[-1]) * scale_factor(ggn_scale, J.shape[0]) ** 0.5
    return A.T @ A


def dense_ggn(model: nn.Module, x: torch.Tensor, ggn_scale: str | float = "sum") -> torch.Tensor:
    """Explicit P×P float64 G = s Σ J_iᵀH_iJ_i from an explicit Jacobian (the dense method)."""
    J, logits = per_example_jacobian(model, x)
    return _dense_ggn(J, logits, ggn_scale)


def mean_ce_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat gradient of the batch-mean cross-entropy and the loss (plain autograd, model dtype)."""
    params = trainable_params(model)
    grads, loss = torch.func.grad_and_value(
        lambda p: F.cross_entropy(functional_call(model, p, (x,)), y))(params)
    return flatten(grads), loss.detach()


def dense_direction(model: nn.Module, x: torch.Tensor, y: torch.Tensor, damping: float,
                    ggn_scale: str | float = "sum") -> torch.Tensor:
    """Reference (λI + G)⁻¹ g by the dense method: explicit Jacobian, explicit P×P G, LU solve,
    all in float64 (g = Jᵀ(p − onehot)/N from the same Jacobian: a float32 autograd gradient
    would add ~1e-4 relative error to the direction at λ = 0.01).  Slow; tests/benchmark."""
    J, logits = per_example_jacobian(model, x)
    p = torch.softmax(logits.to(torch.float64), -1)
    r = (p - F.one_hot(y, p.shape[-1]).to(p)) / p.shape[0]
    g = torch.einsum("ncp,nc->p", J.to(torch.float64), r)
    G = _dense_ggn(J, logits, ggn_scale)
    G.diagonal().add_(damping)
    return torch.linalg.solve(G, g)


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       max_iter: int, tol: float) -> tuple[torch.Tensor, int, float]:
    """Solve A x = b (A SPD) from x=0; returns (x, iterations, relative residual)."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = r.dot(r)
    bnorm = b.norm()
    if bnorm == 0:
        return x, 0, 0.0
    it = 0
    for it in range(1, max_iter + 1):
        Ap = matvec(p)
        alpha = rs / p.dot(Ap)
        x.add_(alpha * p)
        r.sub_(alpha * Ap)
        rs_new = r.dot(r)
        if rs_new.sqrt() <= tol * bnorm:
            rs = rs_new
            break
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x, it, float(rs.sqrt() / bnorm)


# ----------------------------------------------------------------------------- optimizer
def _positive_finite(v: object) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and 0 < float(v) < float("inf"))


def check_damped_step(lr: object, damping: object, ggn_scale: object) -> None:
    """The arguments Gauss-Newton and K-FAC share: θ ← θ − lr·(curvature + damping·I)⁻¹ g."""
    if ggn_scale not in GGN_SCALES:
        raise ValueError(f"ggn_scale must be one of {GGN_SCALES}, got {ggn_scale!r}")
    if not _positive_finite(lr):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not _positive_finite(damping):
        raise ValueError(f"damping must be a positive finite number, got {damping!r}")


@torch.no_grad()
def descend(params: list[torch.Tensor], d: torch.Tensor, lr: float) -> None:
    """θ ← θ − lr·d for a flat float64 direction `d` in `params` order."""
    i = 0
    for prm in params:
        k = prm.numel()
        prm.add_(d[i:i + k].view_as(prm).to(prm.dtype), alpha=-lr)
        i += k


class GaussNewton:
    """Damped generalized Gauss-Newton steps  θ ← θ − lr·(damping·I + G)⁻¹ g  (see module doc).

    `exact_backend` ("auto" | "structured" | "autodiff") picks how the exact solver gets the
    per-example Jacobian; it does not change the result beyond rounding."""

    def __init__(self, model: nn.Module, lr: float = 0.01, damping: float = 0.01,
                 solver: str = "exact", ggn_scale: str = "sum", cg_max_iter: int = 50,
                 cg_tol: float = 1e-6, exact_backend: str = "auto") -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        check_damped_step(lr, damping, ggn_scale)
        check_int("cg_max_iter", cg_max_iter, 1)
        if not (isinstance(cg_tol, (int, float)) and cg_tol >= 0):
            raise ValueError(f"cg_tol must be a non-negative number, got {cg_tol!r}")
        if exact_backend not in EXACT_BACKENDS:
            raise ValueError(f"exact_backend must be one of {EXACT_BACKENDS}, "
                             f"got {exact_backend!r}")
        if exact_backend == "structured" and not structured_supported(model):
            raise ValueError("exact_backend='structured' needs every trainable parameter in a "
                             "plain nn.Linear / nn.Conv2d layer")
        self.model = model
        self.lr, self.damping = float(lr), float(damping)
        self.solver, self.ggn_scale = solver, ggn_scale
        self.cg_max_iter, self.cg_tol = cg_max_iter, float(cg_tol)
        self.exact_backend = exact_backend
        self._structured = exact_backend == "structured" or (
            exact_backend == "auto" and structured_supported(model))
        self.step_count = 0
        self.last_cg_iters: int | None = None
        self.last_cg_residual: float | None = None
        # the training loop's Stepper protocol: plain CE at a fixed lr, no diagnostics
        self.last_parts: dict[str, float] = {}
        self.diagnostic_rows: list[dict[str, float]] = []

    @property
    def last_lr(self) -> float:
        """The learning rate of the last step: fixed (no schedule)."""
        return self.lr

    def _fail(self, what: str) -> FloatingPointError:
        return FloatingPointError(
            f"Gauss-Newton step {self.step_count}: {what} (damping λ={self.damping:g}); "
            "the weights or the batch have probably diverged")

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float]:
        p = torch.softmax(logits.to(torch.float64), -1)
        loss = float(F.cross_entropy(logits.to(torch.float64), y))
        if not (loss == loss and abs(loss) != float("inf")):
            raise self._fail(f"non-finite loss {loss}")
        return p, loss

    def _jacobian(self, x: torch.Tensor) -> tuple[BlockJacobian, torch.Tensor]:
        if self._structured:
            try:
                return structured_jacobian(self.model, x)
            except StructureError:
                if self.exact_backend == "structured":
                    raise
                self._structured = False  # "auto": fall back for good
        return autodiff_jacobian(self.model, x)

    def _exact(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float]:
        J, logits = self._jacobian(x)
        p, loss = self._loss(logits, y)
        n, c = p.shape
        g = J.vjp((p - F.one_hot(y, c).to(p)) / n)  # Jᵀ ∂(mean CE)/∂logits
        s = scale_factor(self.ggn_scale, n)
        A = J.transform(s ** 0.5 * softmax_hessian_factor(p))  # G = AᵀA, A: (N·(C−1))×P
        M = A.gram()
        M.diagonal().add_(self.damping)
        L, info = torch.linalg.cholesky_ex(M)
        if int(info) != 0:
            raise self._fail("Cholesky of λI + AAᵀ failed (non-finite or not SPD)")
        z = torch.cholesky_solve(A.jvp(g).reshape(-1, 1), L).view(n, -1)
        return (g - A.vjp(z)) / self.damping, loss

    def _cg(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float]:
        params = trainable_params(self.model)
        fn = _model_fn(self.model, x)
        logits, vjp_fn = vjp(fn, params)
        p, loss = self._loss(logits, y)
        n, c = p.shape
        s = scale_factor(self.ggn_scale, n)
        dt = logits.dtype

        def jt(u: torch.Tensor) -> torch.Tensor:
            return flatten(vjp_fn(u.to(dt))[0]).to(torch.float64)

        def matvec(v: torch.Tensor) -> torch.Tensor:
            _, jv = _jvp(fn, params, unflatten(v, params))
            return jt(s * softmax_hessian_apply(p, jv.to(torch.float64))) + self.damping * v

        g = jt((p - F.one_hot(y, c).to(p)) / n)
        d, self.last_cg_iters, self.last_cg_residual = conjugate_gradient(
            matvec, g, self.cg_max_iter, self.cg_tol)
        return d, loss

    def solve_direction(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(λI + G)⁻¹ g as a flat float64 vector (named_parameters order) and the batch mean
        CE loss at the current weights.  Does not change the model."""
        with torch.enable_grad():  # also when called under torch.no_grad()
            d, loss = (self._exact if self.solver == "exact" else self._cg)(x, y)
        if not bool(torch.isfinite(d).all()):
            raise self._fail("non-finite update direction")
        return d, loss

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One GN step on the batch; returns the batch mean CE loss BEFORE the step (a float)."""
        self.step_count += 1
        d, loss = self.solve_direction(x, y)
        descend([p for p in self.model.parameters() if p.requires_grad], d, self.lr)
        self.last_parts = dict(ce=loss)
        return loss
