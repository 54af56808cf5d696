"""Adversarial attacks under one calling convention, and the one list of those that exist.

Every attack is ``attack(model, x, y, eps, *, data_range=(0.0, 1.0), **params)`` returning
detached adversarial inputs on ``x``'s device (:mod:`.base`); importing this package registers
every attack in :data:`ATTACKS`, as torchattacks' ``__init__`` lists its attacks. One module per
family:

* :mod:`.base`: the calling convention, the registry (:func:`get_attack`), clipping;
* :mod:`.gradient`: FGSM, BIM, PGD, C&W-L∞ and their losses;
* :mod:`.second_order`: HAAT, PGD with a second-order direction from the input Hessian
  (study 001);
* :mod:`.random_search`: the Square attack (score-based random search), a black-box check on
  gradient masking;
* :mod:`.autoattack`: the AutoAttack-style cascade (APGD-CE, APGD-T, FAB-T, Square);
* :mod:`.pga_dynamics`: study 003's instrumented projected gradient ascent;
* :mod:`.outcomes`: running an attack on a model, per-image outcomes and the success table.

The cascade and study 003's ascent are imported from their modules, not re-exported here.
"""

# the calling convention and the registry
from curvrobust.attacks.base import ATTACKS, Attack, clip_to_range, get_attack, register_attack

# attacks (importing a module registers its attacks)
from curvrobust.attacks.gradient import (SWEEPS, bim, ce_loss, cw, cw_margin_loss, fgsm,
                                         fgsm_sweep, input_grad_sign, iterative_linf,
                                         linf_ascent_steps, pgd)
from curvrobust.attacks.second_order import haat, haat_trace
from curvrobust.attacks.random_search import square

# running attacks on a model
from curvrobust.attacks.outcomes import (attack_outcomes, attack_success_table,
                                         fgsm_success_table, run_attack, summarise_outcomes)
from curvrobust.evaluation.outcomes import OUTCOME_COLUMNS

__all__ = [
    # registry
    "ATTACKS", "Attack", "clip_to_range", "get_attack", "register_attack",
    # attacks
    "bim", "cw", "fgsm", "haat", "pgd", "square",
    # building blocks
    "SWEEPS", "ce_loss", "cw_margin_loss", "fgsm_sweep", "haat_trace", "input_grad_sign",
    "iterative_linf", "linf_ascent_steps",
    # outcomes
    "OUTCOME_COLUMNS", "attack_outcomes", "attack_success_table", "fgsm_success_table",
    "run_attack", "summarise_outcomes",
]
