"""Seeds derived from a run seed, one per purpose."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, purpose: str) -> int:
    """A stable 63-bit seed for one purpose ('init', 'data_order', ...) derived from the run seed.

    Recipes never enter the derivation, so every recipe with the same seed starts from the
    same weights and sees the same batches."""
    digest = hashlib.sha256(f"{int(seed)}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
