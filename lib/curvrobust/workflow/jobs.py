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

from curvrobust.utils import echo_logs, job_logger, set_threads

# the checkout this (editable-installed) library lives in: <repo>/lib/curvrobust/workflow/jobs.py
REPO = Path(__file__).resolve().parents[3]
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
    repo = REPO
    return dict(rule=getattr(smk, "rule", None), wildcards=dict(smk.wildcards.items()),
                params=params, params_sha256=hashlib.sha256(blob.encode()).hexdigest(),
                git=git_state(repo), packages=package_versions())


def process_age() -> float | None:
    """Seconds since this process started, from Linux's /proc (10 ms ticks); None elsewhere.
    A job logs it as its start-up: interpreter, imports and provenance before any work."""
    import os

    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(stat[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


TAIL_LINES = 15   # lines of a failed job's log shown in the terminal
WIDTH = 240       # characters of each (a provenance line is thousands)


def done_line(rule: str | None, outputs: list[str], wall: float) -> str:
    """The one terminal line of a finished job: rule, what it made, seconds."""
    made = outputs[0] if outputs else "no output"
    more = f" (+{len(outputs) - 1} more)" if len(outputs) > 1 else ""
    return f"done {rule}: {made}{more} in {wall:.0f} s"


def failure_report(rule: str | None, log_path: str | None, exc: BaseException,
                   n: int = TAIL_LINES) -> str:
    """What the terminal shows of a failed job: the error, its log's path and last lines."""
    head = f"FAILED {rule}: {type(exc).__name__}: {exc}"
    if not log_path:
        return head
    log = Path(log_path)
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    tail = "\n".join(f"  | {line[:WIDTH]}{'…' if len(line) > WIDTH else ''}"
                     for line in lines[-n:])
    return f"{head}\n  log: {log_path} (last {min(n, len(lines))} lines below)\n{tail}"


def start_job(smk: Any) -> Callable[[str], None]:
    """Open the rule's log, pin torch's threads to the rule's `threads:` and write the job's
    provenance as the log's first lines; returns the `log(msg)` function.

    The log file gets everything (provenance, device, progress); the terminal one line when the
    job ends (`done_line`), or on an error the traceback's summary with the log's path and last
    lines (`failure_report`; the full traceback is in the log). CURVROBUST_ECHO_LOGS=1 echoes
    the log lines too."""
    import sys
    import traceback
    import warnings

    log_path = str(smk.log[0]) if smk.log else None
    log = job_logger(log_path)
    set_threads(getattr(smk, "threads", None))
    prov = provenance(smk)
    log("provenance " + json.dumps(prov, sort_keys=True, default=str))
    age = process_age()
    if age is not None:
        log(f"start-up {age:.2f} s (process start to the job's first line of work)")
    start, started_at = time.perf_counter(), time.time()
    rule = prov["rule"]
    failed = []

    def on_error(kind, exc, tb) -> None:
        failed.append(exc)
        log("job failed:\n" + "".join(traceback.format_exception(kind, exc, tb)).rstrip())
        print(failure_report(rule, log_path, exc), file=sys.stderr, flush=True)

    sys.excepthook = on_error

    def to_log(message, category, filename, lineno, file=None, line=None) -> None:
        log(warnings.formatwarning(message, category, filename, lineno, line).rstrip())

    if not echo_logs():
        warnings.showwarning = to_log   # library warnings belong in the log, not the terminal

    def finish() -> None:
        wall = time.perf_counter() - start
        log(f"job {'failed' if failed else 'finished'} after {wall:.1f} s")
        outputs = [str(o) for o in smk.output]
        if failed:
            return
        if write_sidecars(outputs, dict(prov, wall_time_s=round(wall, 3)), started_at):
            print(done_line(rule, outputs, wall), file=sys.stderr, flush=True)

    import atexit

    atexit.register(finish)
    return log


def write_sidecars(outputs: list[str], prov: dict[str, Any], started_at: float) -> bool:
    """Write `<output>.prov.json` beside every output, only when all of them were written by
    this job (a failed or cancelled job leaves none); returns whether it did. Each records the
    output's sha256 (files, not folders), which the loaders check
    (:func:`curvrobust.utils.check_result_file`)."""
    from curvrobust.utils import sha256_file, sidecar_path, write_json_atomic

    paths = [Path(o) for o in outputs]
    if not paths or not all(p.exists() and p.stat().st_mtime >= started_at - 1 for p in paths):
        return False
    for p in paths:
        digest = sha256_file(p) if p.is_file() else None
        write_json_atomic(sidecar_path(p), dict(prov, output=str(p), sha256=digest))
    return True
