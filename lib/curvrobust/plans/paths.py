"""Every result path of the workflow, as a pattern with {wildcards} or filled in for one record.

A record is a dict with at least dataset, variant, recipe, seed (and ckpt for per-checkpoint
results): one trained model, or one checkpoint of it.
"""

from __future__ import annotations

from typing import Mapping

RESULTS = "results"

DATA = f"{RESULTS}/data/{{dataset}}/{{variant}}"
RAW_MANIFEST = f"{RESULTS}/data/{{dataset}}/raw/manifest.json"
MODEL_DIR = f"{RESULTS}/models/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}"
RUN_DIR = f"{RESULTS}/{{kind}}/{{dataset}}/{{variant}}/{{recipe}}/seed{{seed}}/{{ckpt}}"
ATTACKS_DIR = RUN_DIR.replace("{kind}", "attacks")
STATS_DIR = RUN_DIR.replace("{kind}", "stats")
SURFACES_DIR = RUN_DIR.replace("{kind}", "surfaces")
ROBUST_DIR = RUN_DIR.replace("{kind}", "robust")
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"


def report_root(cfg: dict) -> str:
    """The folder of a configuration's report (config key `report_dir`, `results` by default):
    the studies' folders, the claims, power and masking reports and their jobs' logs and
    benchmarks. Per-model results (data, models, attacks, statistics) stay under RESULTS,
    shared by every preset by recipe name."""
    return cfg.get("report_dir") or RESULTS


def report_logs(root: str) -> str:
    """Logs of the jobs whose outputs live under the report folder `root`."""
    return f"{root}/logs"


def report_benchmarks(root: str) -> str:
    """Benchmarks of the jobs whose outputs live under the report folder `root`."""
    return f"{root}/benchmarks"


def study_dir(study: str, root: str = RESULTS) -> str:
    """<root>/studyNNN: the tables and figures of one study (root: `report_root`)."""
    return f"{root}/{study}"


def data_file(dataset: str, variant: str, split: str) -> str:
    """The tensor file of one split ('train' | 'test') of a dataset variant."""
    return f"{DATA.format(dataset=dataset, variant=variant)}/{split}.pt"


def model_dir(rec: Mapping | None = None, **kw) -> str:
    """Folder of one trained model (record fields, overridden by keywords)."""
    d = dict(rec or {})
    d.update(kw)
    return MODEL_DIR.format(**{k: d[k] for k in ("dataset", "variant", "recipe", "seed")})


def checkpoint_file(rec: Mapping) -> str:
    """The model a `ckpt` names: model.pt for 'final', else the matched checkpoint <ckpt>.pt
    (`match-<ref>` at equal training loss, `matchacc-<ref>` at equal training accuracy)."""
    name = "model.pt" if rec["ckpt"] == "final" else f"{rec['ckpt']}.pt"
    return f"{model_dir(rec)}/{name}"


def run_dir(kind: str, rec: Mapping) -> str:
    """results/{attacks|stats|surfaces|robust}/… folder of one model checkpoint."""
    return RUN_DIR.format(kind=kind, **{k: rec[k] for k in ("dataset", "variant", "recipe", "seed", "ckpt")})


def table_files(stem: str) -> list[str]:
    return [f"{stem}.{ext}" for ext in ("csv", "md", "tex")]


def figure_files(stem: str) -> list[str]:
    return [f"{stem}.{ext}" for ext in ("pdf", "png")]
