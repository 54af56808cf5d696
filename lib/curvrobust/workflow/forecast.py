"""What a run will cost before it runs: the jobs a configuration still has to run, each job's
forecast seconds, the job-minutes and the wall time on N cores (`make evidence-plan`).

    python -m curvrobust.workflow.forecast --configfile config.yaml configs/evidence.yaml [--cores 2]
        [--out results/evidence/forecast.json]

Cost model, per job, first that applies (the `basis` column says which):

1. ``measured``: the job's own benchmark file from an earlier run (results/**/benchmarks).
2. ``same rule``: training jobs (train_model) scale the measured seconds per (training image x
   epoch) of benchmarked jobs with the same architecture, optimizer and regime kind to the job's
   images x epochs; any other job takes the median of its rule's benchmarks for the same recipe,
   else for the rule.
3. ``reference``: the same two steps on the committed reference benchmarks
   (``benchmarks/reference_costs.csv``: the default run on the 2-core development machine).
4. ``start-up``: jobs without a benchmark (tables, figures, claims): START_UP_S seconds, the
   median job start-up measured by benchmarks/workflow_overhead.py.

The wall time is a greedy list schedule of the jobs on `cores` slots (each job takes its rule's
`threads`), longest job first among those whose inputs are done: Snakemake schedules alike. Its
error is the cost model's: on a shared machine a job runs up to ~2x slower.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

START_UP_S = 2.0
DATASET_TRAIN_IMAGES = {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000}
REFERENCE = Path(__file__).resolve().parents[3] / "benchmarks" / "reference_costs.csv"


@dataclass
class Job:
    """One job of the DAG as the forecast sees it."""

    jobid: int
    rule: str
    output: str
    benchmark: str | None
    threads: int
    key: str                     # dataset|variant|recipe|attack|stage: the finest grouping
    coarse: str                  # dataset|attack|stage: the same job for another model
    units: float                 # training images x epochs (train_model), AutoAttack images
                                 # (evaluate_checkpoint), else 1
    signature: str               # what a unit's cost depends on (those two rules), else ""
    deps: list[int] = field(default_factory=list)
    seconds: float = 0.0
    basis: str = ""


def coarse_key(key: str) -> str:
    """dataset|attack|stage of a dataset|variant|recipe|attack|stage key."""
    parts = key.split("|")
    return "|".join([parts[0], *parts[3:]]) if len(parts) == 5 else key


def train_units(recipe: dict, variant: dict, dataset: str) -> float:
    """Training images x epochs of a train_model job (a variant's `subset.train` or the
    dataset's whole training set)."""
    n = (variant.get("subset") or {}).get("train") or DATASET_TRAIN_IMAGES.get(dataset, 60000)
    return float(n) * float(recipe["epochs"])


def train_signature(recipe: dict) -> str:
    """What makes a training epoch's cost per image: architecture (and its widths), optimizer,
    and the regime's adversary and penalty kinds."""
    reg = recipe.get("regime") or {}
    adv = (reg.get("adversary") or {})
    parts = [recipe["arch"], json.dumps(recipe.get("arch_kwargs") or {}, sort_keys=True),
             recipe["optimizer"]["name"], adv.get("kind", ""), str(adv.get("steps", "")),
             (reg.get("penalty") or {}).get("kind", "")]
    return "|".join(parts)


INPUT_SHAPES = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def forward_flops(arch: str, arch_kwargs: dict, dataset: str) -> float:
    """FLOPs of one image's forward pass (torch's FlopCounterMode): how a net's width scales
    a training epoch's cost."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from curvrobust.models.networks import build_model, input_shape_kwargs

    shape = INPUT_SHAPES.get(dataset, (1, 28, 28))
    model = build_model(arch, **arch_kwargs, **input_shape_kwargs(arch, shape, arch_kwargs))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *shape))
    return float(counter.get_total_flops())


def train_seconds(recipe: dict, variant: dict, dataset: str, table: "CostTable") -> float | None:
    """Forecast seconds of training `recipe`: the table's seconds per (image x epoch) of the
    same signature, else of the same architecture, optimizer and regime at another width,
    scaled by the forward FLOPs; None if neither was benchmarked."""
    units, sig = train_units(recipe, variant, dataset), train_signature(recipe)
    if sig in table.per_unit:
        return statistics.median(table.per_unit[sig]) * units
    parts = sig.split("|")
    for other, vals in sorted(table.per_unit.items()):
        o = other.split("|")
        if len(o) == len(parts) and o[0] == parts[0] and o[2:] == parts[2:]:
            ratio = (forward_flops(recipe["arch"], recipe.get("arch_kwargs") or {}, dataset)
                     / forward_flops(o[0], json.loads(o[1]), dataset))
            return statistics.median(vals) * units * ratio
    return None


def read_benchmark(path: str | Path) -> float | None:
    """Wall seconds (column `s`) of a Snakemake benchmark file, or None if absent or empty."""
    p = Path(path)
    if not p.is_file():
        return None
    rows = list(csv.DictReader(p.read_text().splitlines(), delimiter="\t"))
    return float(rows[-1]["s"]) if rows and rows[-1].get("s") not in (None, "") else None


@dataclass
class CostTable:
    """Benchmarked seconds by rule, for the `same rule` and `reference` steps."""

    per_key: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    per_coarse: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    per_rule: dict[str, list[float]] = field(default_factory=dict)
    per_unit: dict[str, list[float]] = field(default_factory=dict)   # train signature -> s/unit

    def add(self, rule: str, key: str, seconds: float, units: float = 1.0,
            signature: str = "", coarse: str = "") -> None:
        self.per_key.setdefault((rule, key), []).append(seconds)
        self.per_coarse.setdefault((rule, coarse), []).append(seconds)
        self.per_rule.setdefault(rule, []).append(seconds)
        if signature:
            self.per_unit.setdefault(signature, []).append(seconds / units)

    def add_many(self, rule: str, key: str, values: list[float]) -> None:
        """Stored medians (the reference file keeps the full key; coarse follows from it)."""
        for v in values:
            self.add(rule, key, v, coarse=coarse_key(key))

    def estimate(self, job: Job) -> float | None:
        if job.signature and job.signature in self.per_unit:
            return statistics.median(self.per_unit[job.signature]) * job.units
        if job.rule == "train_model":
            return None
        for vals in (self.per_key.get((job.rule, job.key)),
                     self.per_coarse.get((job.rule, job.coarse)), self.per_rule.get(job.rule)):
            if vals:
                return statistics.median(vals)
        return None

    def rows(self) -> list[dict[str, Any]]:
        out = [dict(rule=sig.split("|")[0] if sig.startswith("evaluate_") else "train_model",
                    key=sig, seconds_per_unit=statistics.median(v), n=len(v))
               for sig, v in sorted(self.per_unit.items())]
        out += [dict(rule=r, key=k, seconds=statistics.median(v), n=len(v))
                for (r, k), v in sorted(self.per_key.items())]
        return out


def load_reference(path: str | Path = REFERENCE) -> CostTable:
    """The committed reference costs (`write_reference` wrote them)."""
    table = CostTable()
    p = Path(path)
    if not p.is_file():
        return table
    for row in csv.DictReader(p.read_text().splitlines()):
        n = int(row["n"])
        if row["seconds_per_unit"]:
            table.per_unit[row["key"]] = [float(row["seconds_per_unit"])] * n
        else:
            table.add_many(row["rule"], row["key"], [float(row["seconds"])] * n)
    return table


def write_reference(table: CostTable, path: str | Path = REFERENCE) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["rule", "key", "seconds", "seconds_per_unit", "n"])
        w.writeheader()
        for row in table.rows():
            w.writerow({"seconds": "", "seconds_per_unit": "", **row})


def price(jobs: list[Job], measured: CostTable, reference: CostTable) -> None:
    """Fill each job's `seconds` and `basis` (the cost model of the module docstring)."""
    for job in jobs:
        own = read_benchmark(job.benchmark) if job.benchmark else None
        if own is not None:
            job.seconds, job.basis = own, "measured"
            continue
        if job.benchmark is None:
            job.seconds, job.basis = START_UP_S, "start-up"
            continue
        for table, basis in ((measured, "same rule"), (reference, "reference")):
            est = table.estimate(job)
            if est is not None:
                job.seconds, job.basis = est, basis
                break
        else:
            job.seconds, job.basis = START_UP_S, "unknown (start-up only)"


def schedule(jobs: list[Job], cores: int) -> float:
    """Wall seconds of a greedy list schedule: `cores` slots, each job holding min(threads,
    cores) of them; among the jobs whose dependencies finished, the longest starts first."""
    by_id = {j.jobid: j for j in jobs}
    waiting = {j.jobid: {d for d in j.deps if d in by_id} for j in jobs}
    children: dict[int, list[int]] = {}
    for j in jobs:
        for d in waiting[j.jobid]:
            children.setdefault(d, []).append(j.jobid)
    ready = [(-j.seconds, j.jobid) for j in jobs if not waiting[j.jobid]]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []
    now, free = 0.0, cores
    while ready or running:
        started = True
        while ready and started:
            started = False
            neg, jid = ready[0]
            need = min(max(by_id[jid].threads, 1), cores)
            if need <= free:
                heapq.heappop(ready)
                free -= need
                heapq.heappush(running, (now - neg, jid))
                started = True
        if not running:
            break
        now, jid = heapq.heappop(running)
        free += min(max(by_id[jid].threads, 1), cores)
        for c in children.get(jid, []):
            waiting[c].discard(jid)
            if not waiting[c]:
                heapq.heappush(ready, (-by_id[c].seconds, c))
    return now


def collect(bench_roots: Iterable[str | Path], jobs_by_bench: dict[str, Job]) -> CostTable:
    """Every benchmark file under `bench_roots` whose job the DAG knows (so that its recipe and
    training size are known), as a cost table."""
    table = CostTable()
    for root in bench_roots:
        for f in sorted(Path(root).glob("*/*.tsv")):
            job = jobs_by_bench.get(str(f))
            s = read_benchmark(f)
            if job is None or s is None:
                continue
            table.add(job.rule, job.key, s, job.units, job.signature, job.coarse)
    return table


def summary(jobs: list[Job], cores: int) -> dict[str, Any]:
    """Per rule and in total: jobs, forecast job-minutes, and the wall time on `cores`."""
    per_rule: dict[str, dict[str, Any]] = {}
    for j in jobs:
        r = per_rule.setdefault(j.rule, dict(jobs=0, job_minutes=0.0, basis={}))
        r["jobs"] += 1
        r["job_minutes"] += j.seconds / 60
        r["basis"][j.basis] = r["basis"].get(j.basis, 0) + 1
    return dict(cores=cores, jobs=len(jobs), job_minutes=sum(j.seconds for j in jobs) / 60,
                wall_minutes=schedule(jobs, cores) / 60, per_rule=per_rule)


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"{'rule':<24} {'jobs':>5} {'job-min':>9}  basis"]
    for rule, r in sorted(s["per_rule"].items(), key=lambda kv: -kv[1]["job_minutes"]):
        basis = ", ".join(f"{n} {b}" for b, n in sorted(r["basis"].items()))
        lines.append(f"{rule:<24} {r['jobs']:>5} {r['job_minutes']:>9.1f}  {basis}")
    lines.append(f"{'total':<24} {s['jobs']:>5} {s['job_minutes']:>9.1f}")
    lines.append(f"forecast wall time on {s['cores']} cores: {s['wall_minutes']:.0f} min "
                 f"({s['wall_minutes'] / 60:.1f} h); a shared or slower machine takes up to ~2x")
    return "\n".join(lines)


# ---- the DAG (Snakemake's API; imported only here) ----

def dag_jobs(configfiles: list[str], repo: Path, forceall: bool = False) -> list[Job]:
    """The jobs `snakemake -n --configfile <configfiles>` would run (every job with
    `forceall`), with what the cost model needs."""
    import contextlib
    import io
    import os

    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings,
                                          ResourceSettings, StorageSettings, WorkflowSettings)

    cwd = os.getcwd()
    os.chdir(repo)
    try:
        with contextlib.redirect_stderr(io.StringIO()), SnakemakeApi(
                OutputSettings(quiet={"all"})) as api:
            wf_api = api.workflow(
                resource_settings=ResourceSettings(cores=1),
                config_settings=ConfigSettings(configfiles=[Path(f).resolve() for f in configfiles]),
                storage_settings=StorageSettings(), workflow_settings=WorkflowSettings(),
                snakefile=repo / "Snakefile", workdir=repo)
            wf_api.dag(dag_settings=DAGSettings(forceall=forceall))
            wf = wf_api._workflow
            wf._prepare_dag(forceall=forceall, ignore_incomplete=True, lock_warn_only=True,
                            nolock=True)
            wf._build_dag()
            dag = wf.dag
            if not forceall:
                dag.update_needrun()
            cfg = wf.config
            jobs = []
            for job in dag.needrun_jobs() if not forceall else dag.jobs:
                if job.rule.name == "all" or job.rule.norun:
                    continue
                jobs.append(_job(job, cfg, dag))
            return jobs
    finally:
        os.chdir(cwd)


def _job(job: Any, cfg: dict, dag: Any) -> Job:
    w = dict(job.wildcards.items())
    recipe_name = w.get("recipe", "")
    units, signature = 1.0, ""
    if job.rule.name == "train_model":
        recipe = cfg["recipes"][recipe_name]
        units = train_units(recipe, cfg["variants"][w["variant"]], w["dataset"])
        signature = train_signature(recipe)
    elif job.rule.name == "evaluate_checkpoint":
        units = float((job.params.get("autoattack") or {}).get("n_examples", 1000))
        signature = f"evaluate_checkpoint|{w['dataset']}"
    key = "|".join(w.get(k, "") for k in ("dataset", "variant", "recipe", "attack", "stage"))
    bench = str(job.benchmark) if job.benchmark else None
    return Job(jobid=job.jobid, rule=job.rule.name, output=str(next(iter(job.output), "")),
               benchmark=bench, threads=int(job.threads), key=key, coarse=coarse_key(key),
               units=units,
               signature=signature, deps=[d.jobid for d in dag.dependencies[job]])


def forecast(configfiles: list[str], cores: int, repo: Path, forceall: bool = False,
             ) -> tuple[list[Job], dict[str, Any]]:
    """Jobs still to run (all with `forceall`), priced, and their summary on `cores` cores."""
    jobs = dag_jobs(configfiles, repo, forceall)
    known = {j.benchmark: j for j in dag_jobs(configfiles, repo, forceall=True) if j.benchmark}
    roots = sorted({str(Path(b).parent.parent) for b in known})
    price(jobs, collect(roots, known), load_reference())
    return jobs, summary(jobs, cores)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", nargs="+", required=True)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--forceall", action="store_true", help="price every job, done or not")
    ap.add_argument("--out", type=Path, help="write the jobs and the summary as JSON")
    ap.add_argument("--write-reference", action="store_true",
                    help=f"store the measured costs of this configuration's jobs in {REFERENCE}")
    args = ap.parse_args(argv)
    repo = Path.cwd()
    if args.write_reference:
        known = {j.benchmark: j for j in dag_jobs(args.configfile, repo, forceall=True)
                 if j.benchmark}
        roots = sorted({str(Path(b).parent.parent) for b in known})
        write_reference(collect(roots, known))
        print(f"wrote {REFERENCE}")
        return
    jobs, s = forecast(args.configfile, args.cores, repo, args.forceall)
    print(format_summary(s))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(summary=s, configfiles=args.configfile,
                                       jobs=[asdict(j) for j in jobs]), indent=1))
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
