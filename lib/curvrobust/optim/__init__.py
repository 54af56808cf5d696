"""Second-order optimisers of study 000: Gauss-Newton and its Kronecker-factored successor.

* :mod:`.gauss_newton`: per-example Jacobians, GGN products, conjugate gradient and the
  :class:`GaussNewton` step;
* :mod:`.kfac`: :class:`KFAC`, the same damped step with K-FAC's curvature (curvlinops);
* :mod:`.kfac_inverse`: K-FAC's damped inverse in float64 from PSD-clamped factor spectra.

First-order optimisers are torch's own (:func:`curvrobust.training.loop.make_stepper`).
"""

# optimisers
from curvrobust.optim.gauss_newton import GaussNewton, InPlaceModificationError, StructureError
from curvrobust.optim.kfac import KFAC

# the generalized Gauss-Newton matrix
from curvrobust.optim.gauss_newton import (dense_ggn, flatten, ggn_vector_product,
                                           per_example_jacobian, trainable_params, unflatten)

__all__ = [
    # optimisers
    "GaussNewton", "KFAC", "InPlaceModificationError", "StructureError",
    # the generalized Gauss-Newton matrix
    "dense_ggn", "flatten", "ggn_vector_product", "per_example_jacobian", "trainable_params",
    "unflatten",
]
