"""Study 003 — Deng, He, Huang, Su, *Towards Understanding the Dynamics of the First-Order
Adversaries*: its plan (`dag`), its claims (`claims`), its design (`design`: stages,
learning-rate scalings, input scales) and its words (`text`: display names, captions,
deviations)."""

from .dag import FIGURES, TABLES, Study003
from .design import LR_SCALINGS

__all__ = ["FIGURES", "LR_SCALINGS", "TABLES", "Study003"]
