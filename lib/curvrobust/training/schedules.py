"""When things happen during training. Standard library only: the study plans use it too, so
the workflow's list of checkpoint files and the trainer's checkpoints come from one rule."""

from __future__ import annotations


def checkpoint_epochs(epochs: int, every: int = 1, first: int | None = None) -> list[int]:
    """The epochs whose end gets a checkpoint: first, first + every, first + 2·every, … and
    always the last one. `first` defaults to `every` (i.e. every epoch divisible by it).

    Args:
        epochs: number of training epochs (none is checkpointed when < 1).
        every: epochs between checkpoints (≥ 1).
        first: first checkpointed epoch (≥ 1), default `every`.
    Returns:
        The sorted epoch numbers (1-based).
    """
    first = every if first is None else first
    if every < 1 or first < 1:
        raise ValueError(f"checkpoint every and first epoch must be >= 1, got every={every!r}, "
                         f"first={first!r}")
    if epochs < 1:
        return []
    return sorted(set(range(first, epochs + 1, every)) | {epochs})
