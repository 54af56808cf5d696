"""Where a workflow run's time goes: the scheduler's CPU, the jobs' start-up and their work.

    python benchmarks/workflow_overhead.py RUN_DIR [--cores 2] [--label before]
        [--out overhead.csv] [-- SNAKEMAKE_ARGS ...]

RUN_DIR is a checkout with its `.venv` set up (`make setup`) and no `results/` yet (a fresh
clone, as a new user has). The script runs `.venv/bin/snakemake --cores N [SNAKEMAKE_ARGS]`
there (e.g. `-- --configfile configs/smoke.yaml` for the smoke preset) and reports:

* `scheduler_cpu_s`: CPU seconds (user + system) of Snakemake's own process, read from
  /proc every half second (the jobs are its children and are not counted), and that as a
  share of one core over the wall time;
* `startup_s`: the sum over jobs of the seconds from the job's process start to its first line
  of work (the `start-up` line `curvrobust.jobs.start_job` logs: interpreter, imports,
  provenance), and its median;
* `work_s`: the sum of the jobs' `job finished after` seconds (their work after start-up);
* `wall_s`: the run's wall time, and the number of jobs.

The row is appended to `--out` (CSV) and printed. Linux only (/proc). Not a test: the figures
depend on the machine and its load; compare rows measured on one machine in one sitting.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

STARTUP = re.compile(r"\] start-up ([0-9.]+) s")
FINISHED = re.compile(r"\] job finished after ([0-9.]+) s")
FIELDS = ["label", "args", "cores", "jobs", "wall_s", "scheduler_cpu_s", "scheduler_core_share",
          "startup_s", "startup_median_s", "work_s", "uptime"]


def own_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` itself (not its children), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def job_times(logs: Path) -> tuple[list[float], list[float]]:
    """(start-up seconds, work seconds) of every job log under `logs` that has them."""
    startup, work = [], []
    for log in sorted(logs.rglob("*.log")):
        text = log.read_text(errors="replace")
        s, w = STARTUP.findall(text), FINISHED.findall(text)
        if s and w:
            startup.append(float(s[-1]))
            work.append(float(w[-1]))
    return startup, work


def measure(run_dir: Path, cores: int, args: list[str], label: str) -> dict:
    """Run the workflow in `run_dir` and return the report row (see the module docstring)."""
    if (run_dir / "results").exists():
        raise SystemExit(f"{run_dir}/results exists: measure a fresh checkout")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    cmd = [str(run_dir / ".venv" / "bin" / "snakemake"), "--cores", str(cores), *args]
    t0 = time.perf_counter()
    with open(run_dir / "overhead_run.log", "w") as out:
        proc = subprocess.Popen(cmd, cwd=run_dir, stdout=out, stderr=subprocess.STDOUT)
        cpu = 0.0
        while proc.poll() is None:
            cpu = own_cpu_seconds(proc.pid) or cpu
            time.sleep(0.5)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"snakemake exited {proc.returncode}; see {run_dir}/overhead_run.log")
    startup, work = job_times(run_dir / "results" / "logs")
    return dict(label=label, args=" ".join(args), cores=cores, jobs=len(work),
                wall_s=round(wall, 1), scheduler_cpu_s=round(cpu, 1),
                scheduler_core_share=round(cpu / wall, 3), startup_s=round(sum(startup), 1),
                startup_median_s=round(statistics.median(startup), 2) if startup else None,
                work_s=round(sum(work), 1), uptime=uptime)


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--label", default="")
    ap.add_argument("--out", type=Path, default=Path("overhead.csv"))
    a = ap.parse_args(argv)
    row = measure(a.run_dir.resolve(), a.cores, extra, a.label)
    out = a.out
    new = not out.exists()
    with open(out, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)
    for k in FIELDS:
        print(f"{k:22s} {row[k]}")


if __name__ == "__main__":
    main()
