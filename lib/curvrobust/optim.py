"""Generalized Gauss-Newton (GGN) optimizer for softmax cross-entropy classifiers.

One step is  θ ← θ − η (λI + G)⁻¹ g  with g the gradient of the batch-MEAN cross-entropy and
G = s Σ_i J_iᵀ H_i J_i, where J_i (C×P) is the Jacobian of example i's logits with respect to all
trainable parameters, H_i = diag(p_i) − p_i p_iᵀ the softmax Hessian and s = 1 ("sum", what the
original study used) or 1/N ("mean").

Solvers
-------
``exact``  Never forms the P×P matrix.  Write H_i = S_i S_iᵀ with the closed-form factor
    S_i = diag(√p_i) − p_i √p_iᵀ  (check: S Sᵀ = diag p − 2ppᵀ + ppᵀ·Σp = H), stack the rows
    A = √s Sᵀ J  ((N·C)×P).  Then G = AᵀA and by the push-through/Woodbury identity

        d = (λI + AᵀA)⁻¹ g = (g − Aᵀ (λI + AAᵀ)⁻¹ A g) / λ,

    which holds for any g (g = Jᵀr is not assumed).  AAᵀ = s Sᵀ K S with K = JJᵀ the (N·C)×(N·C)
    Gram matrix of the per-example Jacobian; λI + AAᵀ is SPD (eigenvalues ≥ λ) and is solved by
    Cholesky in float64.  K, Jv and Jᵀu come from one of two backends:
      * "structured": a forward pass with hooks on nn.Linear / nn.Conv2d layers plus C backward
        passes for the per-class output gradients δ.  Per-example Jacobian blocks are built from
        (δ, layer input); for a Linear layer on (N, in) inputs the Gram block is never expanded:
        K_W = (δδᵀ) ⊙ (aaᵀ) (Kronecker structure), so the large dense layer costs almost nothing.
      * "autodiff": explicit J via torch.func (vmap over examples of a vjp with C one-hot
        cotangents), K = JJᵀ.  Works for any model that treats examples independently.
    "auto" uses "structured" when every trainable parameter sits in a plain Linear/Conv2d layer
    that is called once per forward, else "autodiff".
``cg``  Matrix-free conjugate gradient on v ↦ Gv + λv, with Jv from torch.func.jvp and Jᵀu from
    torch.func.vjp (no Jacobian is stored), for models too large for ``exact``.  Starts from 0,
    stops after ``cg_max_iter`` iterations or when ‖residual‖ ≤ cg_tol·‖g‖.  CG vectors and
    scalars are float64; the products run in the model's dtype.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp, vjp, vmap

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
    """S (N, C, C) with S_i S_iᵀ = diag(p_i) − p_i p_iᵀ:  S_i = diag(√p_i) − p_i √p_iᵀ."""
    s = p.clamp_min(0).sqrt()
    return torch.diag_embed(s) - p.unsqueeze(-1) * s.unsqueeze(-2)


def softmax_hessian_apply(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """H_i u_i = p_i ⊙ u_i − p_i (p_iᵀ u_i) for each row."""
    return p * u - p * (p * u).sum(-1, keepdim=True)


def _model_fn(model: nn.Module, x: torch.Tensor) -> Callable[[Params], torch.Tensor]:
    return lambda params: functional_call(model, params, (x,))


# ----------------------------------------------------------------------------- Jacobians
def per_example_jacobian(model: nn.Module, x: torch.Tensor, params: Params | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Explicit per-example logit Jacobian J (N, C, P) and the logits (N, C), via torch.func.

    vmap over examples of a single-example vjp with the C one-hot cotangents (measured faster
    on CPU than vmap(jacrev) for the study CNN)."""
    params = trainable_params(model) if params is None else params

    def one(xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, fn = vjp(lambda p: functional_call(model, p, (xi.unsqueeze(0),))[0], params)
        eye = torch.eye(out.shape[-1], dtype=out.dtype, device=out.device)
        (rows,) = vmap(fn)(eye)
        return torch.cat([r.reshape(eye.shape[0], -1) for r in rows.values()], 1), out

    J, logits = vmap(one)(x)
    return J, logits


class _DenseJacobian:
    """K, Jv, Jᵀu from an explicit (N·C)×P Jacobian (float64)."""

    def __init__(self, J: torch.Tensor) -> None:
        self.J = J.reshape(-1, J.shape[-1]).to(torch.float64)

    def gram(self) -> torch.Tensor:
        return self.J @ self.J.T

    def jvp(self, v: torch.Tensor) -> torch.Tensor:
        return self.J @ v

    def vjp(self, u: torch.Tensor) -> torch.Tensor:
        return self.J.T @ u


class _StructuredJacobian:
    """K, Jv, Jᵀu assembled per layer from output gradients δ and layer inputs (float64).

    Each block is either explicit — a (N·C)×p_k slice of J — or a factored Linear weight with
    J_{(i,c)} = δ_{ic} a_iᵀ (never expanded)."""

    def __init__(self, nc: int, n: int, c: int, total: int) -> None:
        self.nc, self.n, self.c, self.total = nc, n, c, total
        self.explicit: list[tuple[int, torch.Tensor]] = []  # (offset, (NC, p_k))
        self.factored: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (offset, δ (NC,o), a (N,i))

    def gram(self) -> torch.Tensor:
        dev = (self.explicit or self.factored)[0][1].device
        K = torch.zeros(self.nc, self.nc, dtype=torch.float64, device=dev)
        for _, Jk in self.explicit:
            K.addmm_(Jk, Jk.T)
        for _, d, a in self.factored:
            K.view(self.n, self.c, self.n, self.c).add_(
                (d @ d.T).view(self.n, self.c, self.n, self.c) * (a @ a.T)[:, None, :, None])
        return K

    def jvp(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.nc, dtype=torch.float64, device=v.device)
        for off, Jk in self.explicit:
            out.addmv_(Jk, v[off:off + Jk.shape[1]])
        for off, d, a in self.factored:
            W = v[off:off + d.shape[1] * a.shape[1]].view(d.shape[1], a.shape[1])
            out += ((d @ W).view(self.n, self.c, -1) * a[:, None, :]).sum(-1).reshape(-1)
        return out

    def vjp(self, u: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.total, dtype=torch.float64, device=u.device)
        for off, Jk in self.explicit:
            out[off:off + Jk.shape[1]] = Jk.T @ u
        for off, d, a in self.factored:
            ud = (u[:, None] * d).view(self.n, self.c, -1).sum(1)  # Σ_c u_ic δ_ic  (N, o)
            out[off:off + d.shape[1] * a.shape[1]] = (ud.T @ a).reshape(-1)
        return out


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


class _Unsupported(Exception):
    pass


def structured_jacobian(model: nn.Module, x: torch.Tensor
                        ) -> tuple[_StructuredJacobian, torch.Tensor]:
    """Per-example Jacobian operator from one hooked forward and C backward passes.

    Raises _Unsupported if a layer is called more than once or sees a non-batch-first input."""
    offsets, off = {}, 0
    for p in model.parameters():
        if p.requires_grad:
            offsets[id(p)] = off
            off += p.numel()
    layers = [m for m in model.modules()
              if type(m) in (nn.Linear, nn.Conv2d)
              and any(p.requires_grad for p in m.parameters(recurse=False))]
    records: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        records.append((mod, inp[0].detach(), out))

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
        raise _Unsupported("layer called more than once, skipped, or not batch-first")
    c = logits.shape[1]
    outs = [r[2] for r in records]
    deltas: list[list[torch.Tensor | None]] = []
    for k in range(c):  # C backward passes to the layer outputs only (no weight gradients)
        deltas.append(list(torch.autograd.grad(logits[:, k].sum(), outs, retain_graph=k < c - 1,
                                               allow_unused=True)))
    op = _StructuredJacobian(n * c, n, c, off)
    f64 = torch.float64
    for j, (mod, a, out) in enumerate(records):
        d = torch.stack([deltas[k][j] if deltas[k][j] is not None else torch.zeros_like(out)
                         for k in range(c)], 1).to(f64)  # (N, C, *out.shape[1:])
        a = a.to(f64)
        w, b = mod.weight, mod.bias
        if isinstance(mod, nn.Linear):
            if a.dim() == 2:  # Kronecker-factored weight, explicit bias
                d2 = d.reshape(n * c, -1)
                if w.requires_grad:
                    op.factored.append((offsets[id(w)], d2, a))
                if b is not None and b.requires_grad:
                    op.explicit.append((offsets[id(b)], d2))
                continue
            a3, d4 = a.reshape(n, -1, a.shape[-1]), d.reshape(n, c, -1, d.shape[-1])
            jw = lambda: torch.einsum("ncto,nti->ncoi", d4, a3)  # noqa: E731
            jb = lambda: d4.sum(2)  # noqa: E731
        else:
            u = F.unfold(a, mod.kernel_size, dilation=mod.dilation, padding=mod.padding,
                         stride=mod.stride)  # (N, Cin·kh·kw, L)
            d4 = d.reshape(n, c, d.shape[2], -1)  # (N, C, O, L)
            jw = lambda: torch.einsum("ncol,nkl->ncok", d4, u)  # noqa: E731
            jb = lambda: d4.sum(-1)  # noqa: E731
        if w.requires_grad:
            op.explicit.append((offsets[id(w)], jw().reshape(n * c, -1)))
        if b is not None and b.requires_grad:
            op.explicit.append((offsets[id(b)], jb().reshape(n * c, -1)))
    return op, logits.detach()


# ----------------------------------------------------------------------------- GGN products
def ggn_vector_product(model: nn.Module, params: Params, x: torch.Tensor, v: torch.Tensor,
                       scale: str | float = "sum") -> torch.Tensor:
    """G v = s Σ_i J_iᵀ H_i J_i v for a flat v (no damping), via jvp + vjp; returns flat."""
    fn = _model_fn(model, x)
    logits, jv = jvp(fn, (params,), (unflatten(v, params),))
    p = torch.softmax(logits.to(torch.float64), -1)
    hu = scale_factor(scale, x.shape[0]) * softmax_hessian_apply(p, jv.to(torch.float64))
    _, vjp_fn = vjp(fn, params)
    return flatten(vjp_fn(hu.to(logits.dtype))[0])


def dense_ggn(model: nn.Module, x: torch.Tensor, ggn_scale: str | float = "sum") -> torch.Tensor:
    """Explicit P×P float64 G = s Σ J_iᵀH_iJ_i from an explicit Jacobian (the dense method)."""
    J, logits = per_example_jacobian(model, x)
    p = torch.softmax(logits.to(torch.float64), -1)
    A = torch.einsum("nca,ncp->nap", softmax_hessian_factor(p), J.to(torch.float64))
    A = A.reshape(-1, J.shape[-1]) * scale_factor(ggn_scale, x.shape[0]) ** 0.5
    return A.T @ A


def mean_ce_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat gradient of the batch-mean cross-entropy and the loss (plain autograd)."""
    params = trainable_params(model)
    grads, loss = torch.func.grad_and_value(
        lambda p: F.cross_entropy(functional_call(model, p, (x,)), y))(params)
    return flatten(grads), loss.detach()


def dense_direction(model: nn.Module, x: torch.Tensor, y: torch.Tensor, damping: float,
                    ggn_scale: str | float = "sum") -> torch.Tensor:
    """Reference (λI + G)⁻¹ g by an explicit P×P solve in float64 (slow; tests/benchmark)."""
    G = dense_ggn(model, x, ggn_scale)
    g, _ = mean_ce_gradient(model, x, y)
    G.diagonal().add_(damping)
    return torch.linalg.solve(G, g.to(torch.float64))


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
class GaussNewton:
    """Damped generalized Gauss-Newton steps  θ ← θ − lr·(damping·I + G)⁻¹ g  (see module doc).

    `exact_backend` ("auto" | "structured" | "autodiff") picks how the exact solver gets the
    per-example Jacobian; it does not change the result beyond rounding."""

    def __init__(self, model: nn.Module, lr: float = 0.01, damping: float = 0.01,
                 solver: str = "exact", ggn_scale: str = "sum", cg_max_iter: int = 50,
                 cg_tol: float = 1e-6, exact_backend: str = "auto") -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if ggn_scale not in GGN_SCALES:
            raise ValueError(f"ggn_scale must be one of {GGN_SCALES}, got {ggn_scale!r}")
        if not (isinstance(lr, (int, float)) and lr > 0 and lr < float("inf")):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if not (isinstance(damping, (int, float)) and damping > 0 and damping < float("inf")):
            raise ValueError(f"damping must be a positive finite number, got {damping!r}")
        if not (isinstance(cg_max_iter, int) and cg_max_iter >= 1):
            raise ValueError(f"cg_max_iter must be a positive integer, got {cg_max_iter!r}")
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

    def _jacobian_operator(self, x: torch.Tensor
                           ) -> tuple[_DenseJacobian | _StructuredJacobian, torch.Tensor]:
        if self._structured:
            try:
                return structured_jacobian(self.model, x)
            except _Unsupported:
                if self.exact_backend == "structured":
                    raise
                self._structured = False
        J, logits = per_example_jacobian(self.model, x)
        return _DenseJacobian(J), logits

    def _exact(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float]:
        op, logits = self._jacobian_operator(x)
        p, loss = self._loss(logits, y)
        n, c = p.shape
        s = scale_factor(self.ggn_scale, n)
        r = (p - F.one_hot(y, c).to(p)) / n  # ∂(mean CE)/∂logits
        g = op.vjp(r.reshape(-1))
        S = softmax_hessian_factor(p)  # (N, C, C), H_i = S_i S_iᵀ
        K = op.gram().view(n, c, n, c)
        M = s * torch.einsum("iac,iajd,jdb->icjb", S, K, S).reshape(n * c, n * c)
        M.diagonal().add_(self.damping)
        L, info = torch.linalg.cholesky_ex(M)
        if int(info) != 0:
            raise self._fail("Cholesky of λI + SᵀKS failed (non-finite or non-SPD)")
        Ag = s ** 0.5 * torch.einsum("nca,nc->na", S, op.jvp(g).view(n, c))
        z = torch.cholesky_solve(Ag.reshape(-1, 1), L).view(n, c)
        AtZ = op.vjp((s ** 0.5 * torch.einsum("nac,nc->na", S, z)).reshape(-1))
        return (g - AtZ) / self.damping, loss

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
            _, jv = jvp(fn, (params,), (unflatten(v, params),))
            return jt(s * softmax_hessian_apply(p, jv.to(torch.float64))) + self.damping * v

        g = jt((p - F.one_hot(y, c).to(p)) / n)
        d, self.last_cg_iters, self.last_cg_residual = conjugate_gradient(
            matvec, g, self.cg_max_iter, self.cg_tol)
        return d, loss

    def solve_direction(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(λI + G)⁻¹ g as a flat float64 vector (named_parameters order) and the batch mean
        CE loss at the current weights.  Does not change the model."""
        d, loss = (self._exact if self.solver == "exact" else self._cg)(x, y)
        if not bool(torch.isfinite(d).all()):
            raise self._fail("non-finite update direction")
        return d, loss

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One GN step on the batch; returns the batch mean CE loss BEFORE the step (a float)."""
        self.step_count += 1
        d, loss = self.solve_direction(x, y)
        with torch.no_grad():
            i = 0
            for prm in self.model.parameters():
                if prm.requires_grad:
                    k = prm.numel()
                    prm.add_(d[i:i + k].view_as(prm).to(prm.dtype), alpha=-self.lr)
                    i += k
        return loss
