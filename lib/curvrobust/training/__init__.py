"""Training: the loop every recipe shares, its objectives and its schedules.

* :mod:`.loop`: seeded initialisation and batch order, optimiser steppers, checkpoints,
  matching a checkpoint by training loss or accuracy;
* :mod:`.regimes`: a recipe's objective (natural, adversarial, gradient or margin penalties);
* :mod:`.schedules`: when checkpoints happen (standard library only: the plans use it).

Import from the modules: this file imports nothing, so the plans can read the schedules
without torch.
"""

__all__ = ["loop", "regimes", "schedules"]
