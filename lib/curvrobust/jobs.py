"""Start-of-job boilerplate for the workflow's scripts: log file, threads, provenance.

Every script imports it, so it is among every rule's code inputs (the import closure): an edit
here reruns the whole workflow."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from .utils import job_logger, set_threads

PACKAGES = ("curvrobust", "torch", "torchvision", "numpy", "pandas", "snakemake")


def git_state(repo: str | Path) -> dict[str, Any]:
    """Commit of the workflow checkout and whether its tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty if commit else None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(smk: Any) -> dict[str, Any]:
    """What produced a job's outputs: rule, wildcards, the params (and their hash), code
    version, package versions and the host; the device and wall time are logged by the job."""
    params = {k: v for k, v in smk.params.items()}
    blob = json.dumps(params, sort_keys=True, default=str)
    # the checkout this (editable-installed) library lives in: <repo>/lib/curvrobust/jobs.py
    repo = Path(__file__).resolve().parents[2]
    return dict(rule=getattr(smk, "rule", None), wildcards=dict(smk.wildcards.items()),
                params=params, params_sha256=hashlib.sha256(blob.encode()).hexdigest(),
                git=git_state(repo), packages=package_versions())


def start_job(smk: Any) -> Callable[[str], None]:
    """Open the rule's log, pin torch's threads to the rule's `threads:` and write the job's
    provenance as the log's first lines; returns the `log(msg)` function."""
    log = job_logger(smk.log[0] if smk.log else None)
    set_threads(getattr(smk, "threads", None))
    prov = provenance(smk)
    log("provenance " + json.dumps(prov, sort_keys=True, default=str))
    start, started_at = time.perf_counter(), time.time()

    def finish() -> None:
        wall = time.perf_counter() - start
        log(f"job finished after {wall:.1f} s")
        write_sidecars([str(o) for o in smk.output], dict(prov, wall_time_s=round(wall, 3)),
                       started_at)

    import atexit

    atexit.register(finish)
    return log


def write_sidecars(outputs: list[str], prov: dict[str, Any], started_at: float) -> None:
    """Write `<output>.prov.json` beside every output, only when all of them were written by
    this job (a failed or cancelled job leaves none)."""
    from .utils import write_json_atomic

    paths = [Path(o) for o in outputs]
    if not paths or not all(p.exists() and p.stat().st_mtime >= started_at - 1 for p in paths):
        return
    for p in paths:
        write_json_atomic(p.with_name(p.name + ".prov.json"), dict(prov, output=str(p)))
