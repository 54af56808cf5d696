"""Robust evaluation: are the attack outcomes real robustness, and what is the worst case?

* :mod:`.outcomes`: reading per-image outcome files and the worst case over attacks (pandas
  only, no torch: the reports use it);
* :mod:`.robustness`: the robust evaluation of one model (rule ``evaluate_robustness``);
* :mod:`.masking`: the strong attack suite and the gradient-masking and convergence checks;
* :mod:`.checkpoints`: study 001's per-checkpoint evaluation;
* :mod:`.referee`: the official AutoAttack as an independent referee of the worst case.

Import from the modules: this file imports nothing, so reading outcomes does not load torch.
"""

__all__ = ["checkpoints", "masking", "outcomes", "referee", "robustness"]
