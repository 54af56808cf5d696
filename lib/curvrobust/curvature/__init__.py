"""Curvature and sensitivity statistics of trained models.

* :mod:`.statistics`: input-gradient norms, logit margins, SAM sharpness, input-Hessian
  spectra, study 002's robustness indicator;
* :mod:`.surfaces`: loss and decision surfaces on 2-D slices of input and parameter space
  (study 002);
* :mod:`.power_trace`: study 001's power-iteration traces of HAAT's Hessian direction.

Import from the modules: this file imports nothing, so each job depends on what it uses.
"""

__all__ = ["power_trace", "statistics", "surfaces"]
