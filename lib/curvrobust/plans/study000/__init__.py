"""Study 000 — Jiang, *Gauss-Newton under adversarial attacks*: its plan (`dag`), its claims
(`claims`) and its words (`text`: display names, captions, deviations)."""

from .dag import FIGURES, TABLES, Study000

__all__ = ["FIGURES", "TABLES", "Study000"]
