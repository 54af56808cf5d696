"""Study 002 — Yu, Liu, Wang, Chen, *Interpreting Adversarial Robustness*: its plan (`dag`), its
claims (`claims`) and its words (`text`: display names, captions, deviations)."""

from .dag import Study002

__all__ = ["Study002"]
