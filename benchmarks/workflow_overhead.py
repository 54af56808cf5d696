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
  of work (the `start-up` line `curvrobust.workflow.jobs.start_job` logs: interpreter, imports,
  provenance), and its median;
* `work_s`: the sum of the jobs' `job finished after` seconds (their work after start-up);
* `wall_s`: the run's wall time, and the number of jobs.

The row is appended to `--out` (CSV) and printed, and one row per rule (jobs, median start-up,
median work, start-up as a share of the rule's job time) to `--rules-out`, so the rules whose
jobs are mostly start-up stand out. `--logs-only` skips the run and reads the job logs of a run
that has finished (the scheduler's CPU and the wall are then unknown).

Linux only (/proc). Not a test: the figures depend on the machine and its load; compare rows
measured on one machine in one sitting.
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
RULE_FIELDS = ["label", "rule", "jobs", "startup_median_s", "work_median_s", "startup_share"]


def own_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` itself (not its children), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rule_job_times(logs: Path) -> dict[str, list[tuple[float, float]]]:
    """Rule -> (start-up seconds, work seconds) of each of its job logs that has them
    (logs are at `results/logs/<rule>/...`)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for log in sorted(logs.rglob("*.log")):
        text = log.read_text(errors="replace")
        s, w = STARTUP.findall(text), FINISHED.findall(text)
        if s and w:
            rule = log.relative_to(logs).parts[0]
            out.setdefault(rule, []).append((float(s[-1]), float(w[-1])))
    return out


def job_times(logs: Path) -> tuple[list[float], list[float]]:
    """(start-up seconds, work seconds) of every job log under `logs` that has them."""
    pairs = [p for jobs in rule_job_times(logs).values() for p in jobs]
    return [s for s, _ in pairs], [w for _, w in pairs]


def rule_rows(logs: Path, label: str) -> list[dict]:
    """One row per rule: jobs, median start-up and work, start-up's share of its job time."""
    rows = []
    for rule, jobs in sorted(rule_job_times(logs).items()):
        s, w = [j[0] for j in jobs], [j[1] for j in jobs]
        rows.append(dict(label=label, rule=rule, jobs=len(jobs),
                         startup_median_s=round(statistics.median(s), 2),
                         work_median_s=round(statistics.median(w), 2),
                         startup_share=round(sum(s) / (sum(s) + sum(w)), 3)))
    return rows


def summary(logs: Path, label: str, args: list[str], cores: int) -> dict:
    """The report row of a finished run's job logs, without the scheduler and wall figures."""
    startup, work = job_times(logs)
    return dict(label=label, args=" ".join(args), cores=cores, jobs=len(work),
                wall_s=None, scheduler_cpu_s=None, scheduler_core_share=None,
                startup_s=round(sum(startup), 1),
                startup_median_s=round(statistics.median(startup), 2) if startup else None,
                work_s=round(sum(work), 1), uptime=None)


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
    return dict(summary(run_dir / "results" / "logs", label, args, cores),
                wall_s=round(wall, 1), scheduler_cpu_s=round(cpu, 1),
                scheduler_core_share=round(cpu / wall, 3), uptime=uptime)


def append_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerows(rows)


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--label", default="")
    ap.add_argument("--out", type=Path, default=Path("overhead.csv"))
    ap.add_argument("--rules-out", type=Path, default=Path("overhead_rules.csv"))
    ap.add_argument("--logs-only", action="store_true",
                    help="read the job logs of a finished run instead of running the workflow")
    a = ap.parse_args(argv)
    run_dir = a.run_dir.resolve()
    logs = run_dir / "results" / "logs"
    if a.logs_only:
        row = summary(logs, a.label, extra, a.cores)
    else:
        row = measure(run_dir, a.cores, extra, a.label)
    rules = rule_rows(logs, a.label)
    append_csv(a.out, [row], FIELDS)
    append_csv(a.rules_out, rules, RULE_FIELDS)
    for k in FIELDS:
        print(f"{k:22s} {row[k]}")
    print()
    for r in sorted(rules, key=lambda r: -r["startup_share"]):
        print(f"{r['rule']:24s} {r['jobs']:4d} jobs  start-up {r['startup_median_s']:5.2f} s"
              f"  work {r['work_median_s']:7.2f} s  start-up share {r['startup_share']:.0%}")


if __name__ == "__main__":
    main()
