"""curvrobust: how the optimiser or regulariser that trains a network shapes its curvature
and adversarial robustness. Library behind the Snakemake workflow; every module is usable
from a notebook without Snakemake."""

__version__ = "0.1.0"
