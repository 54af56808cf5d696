"""Small shared helpers that cannot change a result: devices, threads, atomic writes, logs.

Nearly every module imports it, so it is among nearly every rule's code inputs: keep it small
and stable; anything that changes numbers belongs in its own module (e.g. `seeds`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:   # torch loads lazily: jobs that only read CSVs start without it
    import torch


def select_device(requested: str = "auto") -> torch.device:
    """Resolve a config device string: 'auto' takes CUDA when present, else the CPU."""
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested in config but CUDA is not available")
    return torch.device(requested)


def set_threads(n: int | None) -> None:
    """Pin torch's intra-op threads to what the scheduler granted (the rule's `threads:`).

    A job that has not imported torch gets the count in OMP_NUM_THREADS, which torch reads
    when it loads, so a job that never needs torch does not pay for loading it."""
    if n is None or n <= 0:
        return
    os.environ["OMP_NUM_THREADS"] = str(int(n))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(n))


def use_deterministic(enabled: bool = True) -> None:
    """Ask torch for deterministic kernels (identical CPU reruns for the same seed)."""
    import torch

    torch.use_deterministic_algorithms(enabled, warn_only=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds.

    An interrupted or failing job never leaves a half-written file under the final name and
    never destroys a previous good result."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def torch_save_atomic(obj: Any, path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        # Through a file handle: torch.save(obj, path) names the archive after the (random)
        # temporary file, so the same object would not give the same bytes twice.
        with open(tmp, "wb") as f:
            torch.save(obj, f)


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (read in chunks, so large files are fine)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    return file_digest(path, "sha256")


# ---- result files: their provenance sidecar, its digest, and clear errors when loading ----

SIDECAR_SUFFIX = ".prov.json"


class ResultFileError(ValueError):
    """A result file is missing, unreadable, or not what its job wrote; the message names the
    file, the cause and the command that rebuilds it."""


def sidecar_path(path: str | os.PathLike) -> Path:
    """``<path>.prov.json``: the provenance a workflow job writes beside each output."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def rebuild_hint(path: str | os.PathLike) -> str:
    return f"rebuild it: snakemake --cores all --force {path}"


def check_result_file(path: str | os.PathLike, what: str = "result file") -> Path:
    """`path`, after checking it exists and, when its provenance sidecar records the output's
    sha256 (jobs record it when they write the output), that the bytes still match: a file
    corrupted, truncated or replaced since its job wrote it is reported as such, not loaded.

    Args:
        path: the result file.
        what: how the error names it ("trained model", "outcome file", …).

    Returns:
        ``Path(path)``.

    Raises:
        ResultFileError: the file is missing, or its digest differs from the recorded one
            (the message names the file, the job's rule and the rebuild command).
    """
    p = Path(path)
    if not p.is_file():
        raise ResultFileError(f"{p}: no such {what}; build it: snakemake --cores all {p}")
    side = sidecar_path(p)
    try:
        prov = json.loads(side.read_text()) if side.is_file() else {}
    except (OSError, ValueError):
        prov = {}  # an unreadable sidecar says nothing about the file: the loader decides
    recorded = prov.get("sha256") if isinstance(prov, dict) else None
    if recorded:
        got = sha256_file(p)
        if got != recorded:
            raise ResultFileError(
                f"{p}: this {what} is not the one its job wrote (sha256 {got[:12]}…, "
                f"recorded {recorded[:12]}… in {side} by rule {prov.get('rule')}): it was "
                f"corrupted, truncated or replaced since; {rebuild_hint(p)}")
    return p


def unreadable(path: str | os.PathLike, what: str, exc: BaseException) -> ResultFileError:
    """The error for a result file its loader cannot parse (truncated, or another format)."""
    return ResultFileError(f"{path}: cannot read this {what} ({type(exc).__name__}: {exc}); "
                           f"the file is truncated or not a {what}; {rebuild_hint(path)}")


def sha256_tensor(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


ECHO_ENV = "CURVROBUST_ECHO_LOGS"


def echo_logs() -> bool:
    """Whether jobs echo their log lines to the terminal: environment variable
    CURVROBUST_ECHO_LOGS=1 (for debugging; by default the lines go to the log file only)."""
    return os.environ.get(ECHO_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def job_logger(path: str | os.PathLike | None, echo: bool | None = None):
    """A `log(msg)` function that appends timestamped lines to `path` (a rule's `log:`),
    flushing each line so a long job's log shows its progress as it goes; the lines are echoed
    to stderr too when `echo` (default: :func:`echo_logs`), or when there is no log file.

    Meant to be called once at the start of a job script: it also records the host, PID and
    SLURM job id, and makes SIGTERM unwind the job cleanly (no temporary files left)."""
    import sys
    import time

    fh = None
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a", buffering=1)
    if echo is None:
        echo = echo_logs() or fh is None

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        if fh is not None:
            fh.write(line + "\n")
        if echo:
            print(line, file=sys.stderr, flush=True)

    import signal
    import socket

    def _terminate(signum, frame):
        # Turn SIGTERM (Snakemake or SLURM cancelling the job) into SystemExit, so that
        # `atomic_path` blocks unwind and delete their temporary files.
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    log(f"job on host {socket.gethostname()}, pid {os.getpid()}, "
        f"SLURM_JOB_ID={os.environ.get('SLURM_JOB_ID', 'none')}")
    return log


def write_csv(path: str | os.PathLike, rows: list[dict[str, Any]], fields: list[str]) -> None:
    """Write `rows` (dicts) as a CSV with header `fields`, atomically."""
    import csv

    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
