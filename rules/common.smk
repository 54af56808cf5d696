# What every rules/*.smk file shares. The studies' plans (config checks, targets, the inputs and
# params of each table and figure) live in the curvrobust.plans package; this file makes one
# plan object per study (R, the robust evaluation across studies 000-002, and C, the claims)
# and adapts them to Snakemake's wildcards.

import os
import sys
from pathlib import Path

LIB = Path(workflow.basedir) / "lib"
# The plans need only the standard library: import them from here, installed or not (--sdm conda).
sys.path.insert(0, str(LIB))

from curvrobust import plans
from curvrobust.plans import paths
from curvrobust.plans.base import alternatives
from curvrobust.plans.code import code_inputs
from curvrobust.plans.publish import PublishPlan
from snakemake.exceptions import WorkflowError

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"

try:
    plans.check_config(config, SCHEMA)
except plans.ConfigError as e:
    raise WorkflowError(str(e)) from None

# the report folder (config key report_dir): studies' folders, claims, power and masking reports
# and the logs and benchmarks of their jobs; per-model results stay under results/
REPORT = paths.report_root(config)
REPORT_LOGS = paths.report_logs(REPORT)
REPORT_BENCHMARKS = paths.report_benchmarks(REPORT)
STUDIES = plans.plan(config)
S0, S1, S2, S3 = STUDIES.values()
R = plans.robust_plan(config, STUDIES)
C = plans.claims_plan(config, STUDIES, R)
P = PublishPlan(config, C)


def code(script, *modules):
    """Library files `script` imports (directly or not), and those of `modules` it imports by
    name (a study's report module): declared inputs of its rule."""
    return code_inputs(script, LIB, modules)


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
    """Every study's tables and figures, the masking and claims reports and, with a `publish`
    block (configs/evidence.yaml), the published page."""
    return plans.all_targets(config) + P.targets()


def configfiles():
    """This run's --configfile files, relative to the workflow (a published page records them)."""
    base = Path(workflow.basedir).resolve()
    given = workflow.overwrite_configfiles or ["config.yaml"]
    return [os.path.relpath(Path(f).resolve(), base) for f in given]
