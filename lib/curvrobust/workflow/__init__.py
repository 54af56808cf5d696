"""What the Snakemake workflow needs around the science: job start-up, progress, cost.

* :mod:`.jobs`: a job's log, threads and provenance sidecar (every workflow script uses it);
* :mod:`.run_summary`: what ``make run`` prints;
* :mod:`.forecast`: a run's cost before it runs (``make evidence-plan``).

Import from the modules: this file imports nothing.
"""

__all__ = ["forecast", "jobs", "run_summary"]
