"""Study 003's experimental design: the PGA stages, the learning-rate scalings of adversarial
training and the input scale of a variant."""

from __future__ import annotations

STAGES = ["init", "trained"]
LR_SCALINGS = ["inverse_square", "none"]
LOSS_OF_ZERO = 1.0  # (y − 0)² for y = ±1: the loss of f ≡ 0, the same at every input scale


def scale_of(cfg: dict, variant: str) -> float:
    """Input scale s of a study-003 variant (the data range is [0, s])."""
    spec = cfg["variants"][variant]
    return float(spec["scale"]) if spec["kind"] == "input_scale" else 1.0


def stage_key(stage: str, lr_scaling: str | None = None) -> str:
    """What one PGA measurement attacked: 'init' (the shared initialisation) or
    'trained_<lr_scaling>' (the network adversarially trained with that learning-rate
    scaling)."""
    if stage == "init":
        return "init"
    if stage != "trained" or lr_scaling not in LR_SCALINGS:
        raise ValueError(f"no PGA stage {stage!r} with lr_scaling {lr_scaling!r}")
    return f"trained_{lr_scaling}"
