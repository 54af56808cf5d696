# What every rules/*.smk file shares. The studies' plans (config checks, targets, the inputs and
# params of each table and figure) live in the curvrobust.plans package; this file makes one
# plan object per study (R, the robust evaluation across studies 000-002, and C, the claims)
# and adapts them to Snakemake's wildcards.

import sys
from pathlib import Path

LIB = Path(workflow.basedir) / "lib"
# The plans need only the standard library: import them from here, installed or not (--sdm conda).
sys.path.insert(0, str(LIB))

from curvrobust import plans
from curvrobust.plans import paths
from curvrobust.plans.base import alternatives
from curvrobust.plans.code import code_inputs
from snakemake.exceptions import WorkflowError

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"

try:
    plans.check_config(config, SCHEMA)
except plans.ConfigError as e:
    raise WorkflowError(str(e)) from None

STUDIES = plans.plan(config)
S0, S1, S2, S3 = STUDIES.values()
R = plans.robust_plan(config, STUDIES)
C = plans.claims_plan(config, STUDIES, R)


def code(script):
    """Library files `script` imports (directly or not): declared inputs of its rule."""
    return code_inputs(script, LIB)


def uses_cuda():
    """Whether jobs will run on CUDA; decides `resources: gpu` of the heavy rules."""
    dev = config["device"]
    if dev == "auto":
        import torch

        return torch.cuda.is_available()
    return dev.startswith("cuda")


def gpu_resource(wildcards):
    return 1 if uses_cuda() else 0


def model_file(w):
    """The checkpoint a `ckpt` wildcard names: the final model or a matched one (loss or accuracy)."""
    return paths.checkpoint_file(dict(w.items()))


def all_targets():
    return plans.all_targets(config)
