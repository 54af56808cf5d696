"""Study 001 — Mei, Yang, Wu, *HAAT*: its plan (`dag`), its claims (`claims`), its HAAT
adversaries' settings (`haat`) and its words (`text`: display names, captions, deviations)."""

from .dag import FIGURE_NAMES, OUTPUTS, TABLE_NAMES, Study001

__all__ = ["FIGURE_NAMES", "OUTPUTS", "TABLE_NAMES", "Study001"]
