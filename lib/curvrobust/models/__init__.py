"""Networks and running them: the architecture registry, checkpoints, inference helpers.

* :mod:`.networks`: architecture name -> constructor, one-call checkpoint saving and loading;
* :mod:`.inference`: a model's mode and device, and the decision margin of its logits.
"""

# architectures and checkpoints
from curvrobust.models.networks import (available, build_model, count_parameters,
                                        input_shape_kwargs, load_model, register,
                                        save_checkpoint)
from curvrobust.models.networks import TwoLayerNet

# inference
from curvrobust.models.inference import decision_margin, eval_mode, model_device

__all__ = [
    # architectures and checkpoints
    "available", "build_model", "count_parameters", "input_shape_kwargs", "load_model",
    "register", "save_checkpoint",
    # study 003's network
    "TwoLayerNet",
    # inference
    "decision_margin", "eval_mode", "model_device",
]
