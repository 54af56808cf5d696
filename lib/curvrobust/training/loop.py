"""Training loop shared by every recipe: seeded init and batch order, optimiser adapters with
an optional per-batch learning-rate schedule, checkpoints on a step schedule, full-training-set
loss at each checkpoint."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from curvrobust.models.networks import build_model, input_shape_kwargs, save_checkpoint
from curvrobust.training.regimes import Objective
from curvrobust.training.schedules import checkpoint_epochs
from curvrobust.seeds import derive_seed
from curvrobust.utils import write_csv


@runtime_checkable
class Stepper(Protocol):
    """What the training loop asks of an optimiser (:class:`FirstOrder`,
    :class:`~curvrobust.optim.gauss_newton.GaussNewton`, :class:`~curvrobust.optim.kfac.KFAC`):
    one step on a batch that returns the batch loss, and what the epoch log records of it.

    `last_parts`: the loss parts of the last step (ce, adv_ce, penalty; `regimes.Objective`),
    ``{"ce": loss}`` for a stepper that minimises plain cross-entropy. `last_lr`: the learning
    rate the last step used. `diagnostic_rows`: per-step diagnostics, each row with its
    ``step`` (K-FAC's `gn_cosine_every` cosines, ``cos_gn``); empty for optimisers that record
    none."""

    last_parts: dict[str, float]
    last_lr: float
    diagnostic_rows: list[dict[str, float]]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float: ...


class FirstOrder:
    """Adapter giving a torch.optim optimiser the `step(x, y) -> loss` convention.

    `objective` (a `regimes.Objective`; default: plain cross-entropy) gives the batch loss;
    its parts (ce, adv_ce, penalty) of the last step are kept in `last_parts`. A `scheduler`
    (torch.optim.lr_scheduler) is stepped after every optimiser step; the learning rate the
    last step used is kept in `last_lr`."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 objective: Objective | None = None,
                 scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> None:
        self.model = model
        self.optimizer = optimizer
        self.objective = objective
        self.scheduler = scheduler
        self.step_count = 0
        self.last_parts: dict[str, float] = {}
        self.last_lr = float(optimizer.param_groups[0]["lr"])
        self.diagnostic_rows: list[dict[str, float]] = []  # records none

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.step_count += 1
        self.optimizer.zero_grad(set_to_none=True)
        if self.objective is None:
            loss = F.cross_entropy(self.model(x), y)
            self.last_parts = dict(ce=float(loss.detach()), adv_ce=math.nan, penalty=math.nan)
        else:
            loss, self.last_parts = self.objective(self.model, x, y)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{type(self.optimizer).__name__} step {self.step_count}: non-finite loss {loss.item()}")
        loss.backward()
        self.last_lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return float(loss.detach())


SCHEDULE_KINDS = ("constant", "cyclic")
_SCHEDULE_KEYS = {"constant": {"kind"}, "cyclic": {"kind", "max_lr", "base_lr", "peak"}}


def cyclic_lr(step: float, total: int, max_lr: float, base_lr: float = 0.0,
              peak: float = 0.4) -> float:
    """The "cyclic" learning rate of Wong et al. (2020) and Rice et al. (2020): one triangle
    per run, linear from `base_lr` at step 0 up to `max_lr` at step `peak`·total and linear
    back down to `base_lr` at step `total` (clamped outside [0, total]).

    As in their code (``lr_schedule(epoch + (i + 1) / len(loader))``), the k-th optimiser step,
    k = 1..total, uses ``cyclic_lr(k, total, ...)``: the rate reached after that step."""
    if total < 1:
        raise ValueError(f"total must be >= 1, got total={total!r}")
    t = min(max(float(step), 0.0), float(total))
    top = peak * total
    if t <= top:
        return max_lr if top == 0 else base_lr + (max_lr - base_lr) * t / top
    return base_lr + (max_lr - base_lr) * (total - t) / (total - top)


def _parse_schedule(schedule: Any) -> dict[str, Any] | None:
    """A recipe's `schedule` block, checked, with defaults filled in; None for no schedule."""
    if schedule is None:
        return None
    if not isinstance(schedule, dict) or "kind" not in schedule:
        raise ValueError(f"optimizer schedule must be a mapping with a 'kind' (one of "
                         f"{', '.join(SCHEDULE_KINDS)}), got {schedule!r}")
    kind = schedule["kind"]
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"unknown schedule kind {kind!r} (known: {', '.join(SCHEDULE_KINDS)})")
    unknown = sorted(set(schedule) - _SCHEDULE_KEYS[kind])
    if unknown:
        raise ValueError(f"unknown keys for schedule kind {kind!r}: {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(_SCHEDULE_KEYS[kind]))})")
    if kind == "constant":
        return None
    if "max_lr" not in schedule:
        raise ValueError("schedule kind 'cyclic' needs max_lr")
    sched = dict(kind=kind, max_lr=float(schedule["max_lr"]),
                 base_lr=float(schedule.get("base_lr", 0.0)), peak=float(schedule.get("peak", 0.4)))
    if not (math.isfinite(sched["max_lr"]) and sched["max_lr"] > 0):
        raise ValueError(f"schedule max_lr must be a positive finite number, got "
                         f"{schedule['max_lr']!r}")
    if not 0.0 <= sched["base_lr"] <= sched["max_lr"]:
        raise ValueError(f"schedule base_lr must lie in [0, max_lr={sched['max_lr']}], got "
                         f"{schedule.get('base_lr')!r}")
    if not 0.0 < sched["peak"] < 1.0:
        raise ValueError(f"schedule peak must lie in (0, 1), got {schedule.get('peak')!r}")
    return sched


def make_stepper(model: nn.Module, spec: dict[str, Any],
                 objective: Objective | None = None, total_steps: int | None = None) -> Stepper:
    """Build the optimiser named in a recipe's `optimizer` block, minimising `objective`
    (default: plain cross-entropy). Gauss-Newton and K-FAC support natural training only.

    An optional `schedule` in the block (`{kind: cyclic, max_lr, base_lr, peak}`, see
    :func:`cyclic_lr`; `{kind: constant}` or none: fixed `lr`) sets SGD's or Adam's learning
    rate every batch over `total_steps` optimiser steps; with one, `lr` may be left out (it is
    max_lr)."""
    spec = dict(spec)
    name = spec.pop("name")
    schedule = _parse_schedule(spec.pop("schedule", None))
    if schedule is not None:
        if name in ("gauss_newton", "kfac"):
            raise ValueError(f"optimizer {name} takes no learning-rate schedule, got "
                             f"{schedule}")
        if total_steps is None or total_steps < 1:
            raise ValueError(f"a {schedule['kind']} schedule needs total_steps >= 1, got "
                             f"total_steps={total_steps!r}")
        if "lr" in spec and float(spec["lr"]) != schedule["max_lr"]:
            raise ValueError(f"optimizer lr={spec['lr']!r} contradicts schedule max_lr="
                             f"{schedule['max_lr']!r}; leave lr out")
        spec["lr"] = schedule["max_lr"]

    def first_order(optimizer: torch.optim.Optimizer) -> FirstOrder:
        scheduler = None
        if schedule is not None:
            top, base, peak = schedule["max_lr"], schedule["base_lr"], schedule["peak"]
            # LambdaLR's argument counts the steps taken; step k + 1 uses cyclic_lr(k + 1)
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda k: cyclic_lr(k + 1, total_steps, top, base, peak) / top)
        return FirstOrder(model, optimizer, objective, scheduler)

    if name == "sgd":
        return first_order(torch.optim.SGD(model.parameters(), lr=spec.pop("lr"),
                                           momentum=spec.pop("momentum", 0.0),
                                           weight_decay=spec.pop("weight_decay", 0.0)))
    if name == "adam":
        betas = tuple(spec.pop("betas", (0.9, 0.999)))
        return first_order(torch.optim.Adam(model.parameters(), lr=spec.pop("lr"),
                                            betas=betas, eps=spec.pop("eps", 1e-8)))
    if name in ("gauss_newton", "kfac"):
        from curvrobust.optim.kfac import KFAC
        from curvrobust.optim.gauss_newton import GaussNewton

        if objective is not None and not objective.is_natural:
            raise ValueError(f"optimizer {name} supports natural training only, got "
                             f"regime {objective}")
        return (GaussNewton if name == "gauss_newton" else KFAC)(model, **spec)
    raise ValueError(f"unknown optimizer name {name!r} (known: sgd, adam, gauss_newton, kfac)")


@dataclass
class TrainSpec:
    """Everything in a recipe that changes the trained model."""

    arch: str
    optimizer: dict[str, Any]
    epochs: int
    batch_size: int = 128
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint_every_steps: int = 0  # extra checkpoints every N steps in the first epochs (0: none)
    checkpoint_dense_epochs: int = 1  # how many first epochs get the every-N-steps checkpoints
    checkpoint_every_epochs: int = 1
    checkpoint_first_epoch: int | None = None  # first epoch-end checkpoint (None: every_epochs)
    regime: dict[str, Any] = field(default_factory=dict)  # training objective (regimes.py)

    @classmethod
    def from_recipe(cls, recipe: dict[str, Any]) -> "TrainSpec":
        ck = recipe.get("checkpoints", {})
        return cls(arch=recipe["arch"], optimizer=dict(recipe["optimizer"]),
                   epochs=int(recipe["epochs"]), batch_size=int(recipe.get("batch_size", 128)),
                   arch_kwargs=dict(recipe.get("arch_kwargs", {})),
                   checkpoint_every_steps=int(ck.get("every_steps", 0)),
                   checkpoint_dense_epochs=int(ck.get("dense_epochs", 1)),
                   checkpoint_every_epochs=int(ck.get("every_epochs", 1)),
                   checkpoint_first_epoch=(None if ck.get("first_epoch") is None
                                           else int(ck["first_epoch"])),
                   regime=dict(recipe.get("regime") or {}))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000,
             device: torch.device | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` over (x, y), in eval mode.

    Runs on a channels-last copy of the model: for these small CNNs that makes a pass over the
    60,000 training images about 3x faster on the CPU, which matters because every checkpoint
    evaluates the whole training set."""
    device = device or next(model.parameters()).device
    net = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
    total_loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device)
        if xb.dim() == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yb = y[i:i + batch_size].to(device)
        logits = net(xb)
        total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    return total_loss / len(x), correct / len(x)


def init_model(spec: TrainSpec, seed: int) -> nn.Module:
    """The initial weights depend on the run seed and the architecture only, not the optimiser."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        return build_model(spec.arch, **spec.arch_kwargs)


def batch_orders(n: int, epochs: int, seed: int) -> list[torch.Tensor]:
    """Per-epoch shuffles from the data-order seed (shared by every recipe with this seed)."""
    g = torch.Generator().manual_seed(derive_seed(seed, "data_order"))
    return [torch.randperm(n, generator=g) for _ in range(epochs)]


def _progress(total: int, desc: str):
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm

            return tqdm(total=total, desc=desc, leave=False)
        except ImportError:  # pragma: no cover
            pass
    return None


# ce, adv_ce, penalty: epoch means of the batch loss parts (regimes.Objective); NaN if unused
PART_FIELDS = ["ce", "adv_ce", "penalty"]
# lr: the learning rate of the epoch's last step
# cos_gn: the epoch's median cosine between the optimiser's and the exact Gauss-Newton
# direction, for optimisers that log it (K-FAC's gn_cosine_every), else empty
EPOCH_FIELDS = ["epoch", "step", "batch_loss_mean", "train_loss", "train_acc", "test_loss",
                "test_acc", "epoch_time_s", "wall_time_s", *PART_FIELDS, "lr", "cos_gn"]
CHECKPOINT_FIELDS = ["step", "epoch", "file", "train_loss", "train_acc", "test_loss", "test_acc"]


class _Checkpoints:
    """A run's checkpoint files and their rows (checkpoints.csv), each saved with the run's
    metadata."""

    def __init__(self, out: Path, model: nn.Module, spec: TrainSpec,
                 meta: dict[str, Any]) -> None:
        self.out, self.model, self.spec, self.meta = out, model, spec, meta
        self.rows: list[dict[str, Any]] = []

    def save(self, step: int, epoch: float, metrics: dict[str, float] | None = None) -> None:
        """Save the current weights; the training-set loss is recorded when already computed
        (epoch ends) and left empty otherwise (`match_train_loss` evaluates it on demand)."""
        name = f"checkpoints/step{step:07d}.pt"
        save_checkpoint(self.out / name, self.model, self.spec.arch, self.spec.arch_kwargs,
                        step=step, epoch=epoch, **self.meta)
        nan = float("nan")
        m = metrics or {}
        self.rows.append(dict(step=step, epoch=round(epoch, 4), file=name,
                              **{k: m.get(k, nan) for k in ("train_loss", "train_acc",
                                                            "test_loss", "test_acc")}))


@dataclass
class _Run:
    """What every epoch of one training run works with: the model, its stepper and objective,
    the data, and the checkpoints written so far."""

    spec: TrainSpec
    model: nn.Module
    objective: Objective
    stepper: Stepper
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    device: torch.device
    steps_per_epoch: int
    checkpoints: _Checkpoints

    def metrics(self) -> dict[str, float]:
        """Whole-training-set and test loss and accuracy at the current weights."""
        tr_loss, tr_acc = evaluate(self.model, self.train_x, self.train_y, device=self.device)
        te_loss, te_acc = evaluate(self.model, self.test_x, self.test_y, device=self.device)
        return dict(train_loss=tr_loss, train_acc=tr_acc, test_loss=te_loss, test_acc=te_acc)


def _fit_to_inputs(spec: TrainSpec, shape: tuple[int, ...],
                   log: Callable[[str], None]) -> TrainSpec:
    """The spec with the architecture's input-size arguments fitted to the data's `shape`."""
    fit = input_shape_kwargs(spec.arch, shape, spec.arch_kwargs)
    if fit:
        spec = dataclasses.replace(spec, arch_kwargs={**spec.arch_kwargs, **fit})
        log(f"{spec.arch} fitted to {shape} inputs: {fit}")
    return spec


def _run_meta(spec: TrainSpec, seed: int, meta: dict[str, Any] | None) -> dict[str, Any]:
    """The metadata every checkpoint of the run carries: the caller's and the recipe's."""
    meta = dict(meta or {}, seed=seed, optimizer=spec.optimizer, epochs=spec.epochs,
                batch_size=spec.batch_size)
    if spec.regime:
        meta["regime"] = spec.regime
    return meta


def _log_plan(log: Callable[[str], None], spec: TrainSpec, objective: Objective, n: int,
              steps_per_epoch: int, device: torch.device) -> None:
    """Say what the run will do (and the adversary's eps warm-up, if any) before it starts."""
    regime = f" regime {spec.regime}" if spec.regime else ""
    log(f"training {spec.arch} with {spec.optimizer}{regime} for {spec.epochs} epochs of "
        f"{steps_per_epoch} steps (batch {spec.batch_size}, {n} examples) on {device}")
    if objective.eps_ramp_epochs > 0.0:
        log(f"adversary eps warm-up: eps and step size rise linearly over the first "
            f"{objective.eps_ramp_epochs:g} epochs "
            f"({math.ceil(objective.eps_ramp_epochs * steps_per_epoch)} steps)")


def _train_epoch(run: _Run, epoch: int, order: torch.Tensor,
                 step: int) -> tuple[list[float], dict[str, list[float]], int]:
    """One pass over the training set in `order`, with the dense checkpoints due in it; the
    batch losses, their parts and the step count after the epoch."""
    spec, steps_per_epoch = run.spec, run.steps_per_epoch
    bar = _progress(steps_per_epoch, f"epoch {epoch}/{spec.epochs}")
    losses = []
    parts: dict[str, list[float]] = {k: [] for k in PART_FIELDS}
    every = spec.checkpoint_every_steps if epoch <= spec.checkpoint_dense_epochs else 0
    for b in range(steps_per_epoch):
        idx = order[b * spec.batch_size:(b + 1) * spec.batch_size]
        xb, yb = run.train_x[idx].to(run.device), run.train_y[idx].to(run.device)
        run.objective.set_progress((step + 1) / steps_per_epoch)  # the adversary's eps warm-up
        losses.append(run.stepper.step(xb, yb))
        for k in PART_FIELDS:
            parts[k].append(run.stepper.last_parts.get(k, math.nan))
        step += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if every and (b + 1) % every == 0 and b + 1 < steps_per_epoch:
            run.checkpoints.save(step, epoch - 1 + (b + 1) / steps_per_epoch)
    if bar is not None:
        bar.close()
    return losses, parts, step


def _epoch_row(run: _Run, epoch: int, step: int, losses: list[float],
               parts: dict[str, list[float]], m: dict[str, float], epoch_time: float,
               start: float) -> dict[str, Any]:
    """The epoch's row of epochs.csv (EPOCH_FIELDS), from its batch losses and end metrics."""
    cos = [r["cos_gn"] for r in run.stepper.diagnostic_rows
           if step - run.steps_per_epoch <= r["step"] < step]
    return dict(epoch=epoch, step=step, batch_loss_mean=sum(losses) / len(losses), **m,
                epoch_time_s=round(epoch_time, 3),
                wall_time_s=round(time.perf_counter() - start, 3),
                **{k: sum(v) / len(v) for k, v in parts.items()},
                lr=float(run.stepper.last_lr),
                cos_gn=statistics.median(cos) if cos else math.nan)


def _write_outputs(out: Path, run: _Run, rows: list[dict[str, Any]], step: int,
                   meta: dict[str, Any]) -> None:
    """The final model, epochs.csv, checkpoints.csv and the stepper's diagnostics.csv."""
    spec = run.spec
    save_checkpoint(out / "model.pt", run.model, spec.arch, spec.arch_kwargs, step=step,
                    epoch=spec.epochs, train_loss=rows[-1]["train_loss"], **meta)
    write_csv(out / "epochs.csv", rows, EPOCH_FIELDS)
    write_csv(out / "checkpoints.csv", run.checkpoints.rows, CHECKPOINT_FIELDS)
    diagnostics = run.stepper.diagnostic_rows
    if diagnostics:  # e.g. K-FAC's cosine with the exact Gauss-Newton direction
        write_csv(out / "diagnostics.csv", diagnostics, list(diagnostics[0]))


def train(spec: TrainSpec, seed: int, train_x: torch.Tensor, train_y: torch.Tensor,
          test_x: torch.Tensor, test_y: torch.Tensor, out_dir: str | os.PathLike,
          device: torch.device | str = "cpu", log: Callable[[str], None] = print,
          meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Train one model and write into `out_dir`: model.pt, epochs.csv, checkpoints/ and
    checkpoints.csv (and diagnostics.csv when the optimiser records per-step diagnostics, as
    K-FAC's `gn_cosine_every` does). Returns the per-epoch rows.

    `train_loss` everywhere is the mean cross-entropy over the whole training set (the labels
    the model was trained on) evaluated at that point, not the running mean of batch losses."""
    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    spec = _fit_to_inputs(spec, tuple(train_x.shape[1:]), log)
    model = init_model(spec, seed).to(device)
    objective = Objective.from_spec(spec.regime, seed)
    n = len(train_x)
    steps_per_epoch = math.ceil(n / spec.batch_size)
    stepper = make_stepper(model, spec.optimizer, None if objective.is_natural else objective,
                           total_steps=spec.epochs * steps_per_epoch)
    ckpt_epochs = set(checkpoint_epochs(spec.epochs, spec.checkpoint_every_epochs,
                                        spec.checkpoint_first_epoch))
    orders = batch_orders(n, spec.epochs, seed)
    meta = _run_meta(spec, seed, meta)
    _log_plan(log, spec, objective, n, steps_per_epoch, device)
    run = _Run(spec, model, objective, stepper, train_x, train_y, test_x, test_y, device,
               steps_per_epoch, _Checkpoints(out, model, spec, meta))

    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    step = 0
    run.checkpoints.save(0, 0.0, run.metrics())
    model.train()
    for epoch in range(1, spec.epochs + 1):
        t0 = time.perf_counter()
        losses, parts, step = _train_epoch(run, epoch, orders[epoch - 1], step)
        epoch_time = time.perf_counter() - t0
        m = run.metrics()
        model.train()
        if epoch in ckpt_epochs:
            run.checkpoints.save(step, float(epoch), m)
        rows.append(_epoch_row(run, epoch, step, losses, parts, m, epoch_time, start))
        log(f"epoch {epoch}/{spec.epochs}: train loss {m['train_loss']:.4f} acc "
            f"{m['train_acc']:.4f} | test loss {m['test_loss']:.4f} acc {m['test_acc']:.4f} | "
            f"{epoch_time:.1f} s")
    _write_outputs(out, run, rows, step, meta)
    return rows


def closest_checkpoint(checkpoints: list[dict[str, Any]], target_loss: float) -> dict[str, Any]:
    """The checkpoint whose full-training-set loss is closest to `target_loss` (ties: earliest);
    checkpoints without a recorded loss are ignored."""
    known = [r for r in checkpoints if math.isfinite(float(r["train_loss"]))]
    if not known:
        raise ValueError("no checkpoints with a training loss to choose from")
    return min(known, key=lambda r: (abs(float(r["train_loss"]) - target_loss), int(r["step"])))


def first_crossing(checkpoints: list[dict[str, Any]], target: float,
                   value: Callable[[dict[str, Any]], float], *, key: str = "train_loss",
                   rising: bool = False, nearest: bool = False) -> dict[str, Any]:
    """The first checkpoint (in step order) whose whole-training-set `key` reaches `target`:
    falls to it (`rising=False`, a loss) or rises to it (`rising=True`, an accuracy).

    Epoch-end checkpoints carry their value. In-between ones (value NaN) are evaluated
    (`value(row)`) in step order only inside the bracket where the known values first reach
    the target, and only until one reaches it: a match so costs a few passes over the training
    set instead of one per checkpoint. With `nearest`, the crossing checkpoint or its
    predecessor, whichever is closer to `target` (ties: the earlier). A run that never reaches
    the target gives its best known checkpoint (lowest loss / highest accuracy; ties: earliest).
    The first crossing, not the closest value anywhere: the curves are not monotone, and the
    comparison asks for the model at the moment training first gets there.

    Returns a copy of the chosen row, with `key` filled in and `reached` (bool) added."""
    sign = 1.0 if rising else -1.0

    def val(r: dict[str, Any]) -> float:
        return float(r[key])

    def reaches(r: dict[str, Any]) -> bool:
        return sign * (val(r) - target) >= 0.0

    rows = sorted((dict(r) for r in checkpoints), key=lambda r: int(r["step"]))
    known = [i for i, r in enumerate(rows) if math.isfinite(val(r))]
    if not known:
        raise ValueError(f"no checkpoints with a recorded {key} to choose from")
    hit = next((i for i in known if reaches(rows[i])), None)
    if hit is None:
        best = max(known, key=lambda i: (sign * val(rows[i]), -i))
        return dict(rows[best], reached=False)
    lo = max((i for i in known if i < hit), default=-1)
    for i in range(lo + 1, hit):
        rows[i][key] = float(value(rows[i]))
        if reaches(rows[i]):
            hit = i
            break
    prev = max((i for i in range(hit) if math.isfinite(val(rows[i]))), default=None)
    if nearest and prev is not None and \
            abs(val(rows[prev]) - target) <= abs(val(rows[hit]) - target):
        hit = prev
    return dict(rows[hit], reached=True)


def match_train_loss(checkpoints: list[dict[str, Any]], target_loss: float,
                     train_loss: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
    """The loss-matched checkpoint (Table 1b): at the first fall of the whole-training-set loss
    to `target_loss`, whichever of the crossing checkpoint and its predecessor is closer
    (`first_crossing`)."""
    return first_crossing(checkpoints, target_loss, train_loss, key="train_loss", nearest=True)


def match_train_accuracy(checkpoints: list[dict[str, Any]], target_acc: float,
                         train_acc: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
    """The accuracy-matched checkpoint (Table 1c): the first whose whole-training-set accuracy
    reaches `target_acc` (`first_crossing`)."""
    return first_crossing(checkpoints, target_acc, train_acc, key="train_acc", rising=True)

