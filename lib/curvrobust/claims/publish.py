"""Publishing a run's answer (rule publish_evidence; configs/evidence.yaml's `publish`): the page
(docs/evidence.md) and its folder, holding the judged claims (claims.csv), the evidence the
claims engine judged, per study (<study>.json: each claim's spec and evidence, with the
per-seed, per-image arrays in <study>.npz) and the provenance (provenance.json: commit,
configuration fingerprint, machine, wall time, job-minutes, forecast).

Nothing on the page is written by hand, and it cannot go stale silently: `rejudge` judges the
published evidence again with the current claims engine (tests/test_evidence_published.py
compares it with the published verdicts), and the recorded fingerprint is compared with the
configuration's (`curvrobust.plans.publish.fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from curvrobust.claims.evidence import Evidence
from curvrobust.claims.judge import judge_all
from curvrobust.claims.render import claims_frame, claims_markdown
from curvrobust.workflow import forecast

ARRAY_TAG = "__array__"
ROW_FIELDS = ("effect", "lo", "hi", "mde", "power", "p", "q", "se", "df")


# ---- evidence <-> files ----

def pack_evidence(evidence: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON-able copy, arrays): every ndarray replaced by {"__array__": <digest>}; equal
    arrays (claims sharing arms) are stored once, under their content digest."""
    arrays: dict[str, np.ndarray] = {}

    def walk(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            digest = hashlib.sha256(x.dtype.str.encode() + str(x.shape).encode()
                                    + np.ascontiguousarray(x).tobytes()).hexdigest()[:20]
            arrays[digest] = x
            return {ARRAY_TAG: digest}
        if isinstance(x, Mapping):
            return {str(k): walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        if isinstance(x, np.generic):
            return x.item()
        return x

    return walk(evidence), arrays


def unpack_evidence(obj: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """The inverse of `pack_evidence` (raises KeyError naming a missing array)."""
    if isinstance(obj, Mapping):
        if set(obj) == {ARRAY_TAG}:
            return np.asarray(arrays[obj[ARRAY_TAG]])
        return {k: unpack_evidence(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack_evidence(v, arrays) for v in obj]
    return obj


def write_study_evidence(json_path: str | Path, npz_path: str | Path, study: str,
                         claims: Sequence[Mapping[str, Any]], evidence: Mapping[str, Any],
                         statistics: Mapping[str, Any],
                         deviations: Sequence[str] = ()) -> None:
    """One study's claims, the evidence judged and the run's deviations from the study,
    atomically (arrays compressed)."""
    from curvrobust.utils import atomic_path

    packed, arrays = pack_evidence({cid: e.as_mapping() if isinstance(e, Evidence) else e
                                    for cid, e in evidence.items()})
    with atomic_path(npz_path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    doc = dict(study=study, statistics=dict(statistics), claims=list(claims),
               deviations=list(deviations), evidence=packed)
    with atomic_path(json_path) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1, sort_keys=True, default=str))


def read_study_evidence(json_path: str | Path, npz_path: str | Path) -> dict[str, Any]:
    """{study, statistics, claims, deviations, evidence} as `write_study_evidence` wrote them."""
    doc = json.loads(Path(json_path).read_text())
    with np.load(npz_path) as z:
        arrays = {k: z[k] for k in z.files}
    doc["evidence"] = unpack_evidence(doc["evidence"], arrays)
    return doc


def rejudge(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows the current claims engine gives for a published study's evidence."""
    st = doc["statistics"]
    return judge_all(doc["claims"], doc["evidence"], seed=st["seed"], level=st["level"])


def row_differences(published: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                    rtol: float = 1e-6) -> list[str]:
    """'claim: field published X, now Y' for each verdict, reason or number (ROW_FIELDS) that
    differs between published rows and re-judged ones (numbers to `rtol`; NaN equals NaN)."""
    out = []
    now = {r["id"]: r for r in rows}
    for p in published:
        r = now.get(p["id"])
        if r is None:
            out.append(f"{p['id']}: not judged now")
            continue
        for f in ("verdict", "reason"):
            if str(p.get(f, "")) != str(r.get(f, "")):
                out.append(f"{p['id']}: {f} published {p.get(f)!r}, now {r.get(f)!r}")
        for f in ROW_FIELDS:
            a, b = _num(p.get(f)), _num(r.get(f))
            if not (a == b or (np.isnan(a) and np.isnan(b))
                    or np.isclose(a, b, rtol=rtol, atol=1e-12)):
                out.append(f"{p['id']}: {f} published {a!r}, now {b!r}")
    return out


def _num(v: Any) -> float:
    try:
        return float(v) if v not in (None, "") else float("nan")
    except (TypeError, ValueError):
        return float("nan")


# ---- provenance ----

def ledger_wall_seconds(ledger: str | Path, now: float | None = None) -> float | None:
    """Wall seconds of the runs a ledger (`make evidence` appends {start, end} per invocation)
    records; an invocation without an end (the one running this job) counts until `now`."""
    p = Path(ledger)
    if not p.is_file():
        return None
    now = time.time() if now is None else now
    total = 0.0
    for entry in json.loads(p.read_text()):
        total += float(entry.get("end") or now) - float(entry["start"])
    return total


def job_seconds(benchmarks: Sequence[str]) -> tuple[float, int]:
    """Sum of the benchmark files' wall seconds, and how many exist."""
    vals = [forecast.read_benchmark(b) for b in benchmarks]
    got = [v for v in vals if v is not None]
    return float(sum(got)), len(got)


def sidecar_commit(path: str | Path) -> str | None:
    """The commit a result file's provenance sidecar (<file>.prov.json) records, if any."""
    side = Path(f"{path}.prov.json")
    try:
        return json.loads(side.read_text())["git"]["commit"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def machine(threads: int, device: str) -> dict[str, Any]:
    """Cores, CPU model, threads per job and the device jobs ran on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    used = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    gpu = torch.cuda.get_device_name(0) if used.startswith("cuda") else ""
    return dict(cores=os.cpu_count(), cpu=cpu or platform.processor(), threads_per_job=threads,
                device=used, gpu=gpu, system=f"{platform.system()} {platform.release()}",
                python=platform.python_version(), torch=torch.__version__)


def price_not_run(items: Sequence[Mapping[str, Any]], cfg: Mapping[str, Any],
                  reference: forecast.CostTable) -> list[dict[str, Any]]:
    """Each left-out part with its forecast job-minutes: `models` x (training by the cost
    model, FLOP-scaled where the net differs, + a robust evaluation on the dataset)."""
    out = []
    evals = [v for (rule, key), vals in reference.per_key.items() if rule == "evaluate_robustness"
             for v in vals]
    per_eval = float(np.median(evals)) if evals else 0.0
    for it in items:
        recipe = cfg["recipes"][it["recipe"]]
        train = forecast.train_seconds(recipe, cfg["variants"][it["variant"]], it["dataset"],
                                       reference)
        minutes = None if train is None else it["models"] * (train + per_eval) / 60
        out.append(dict(it, recipe_spec=recipe, job_minutes=minutes,
                        train_minutes_per_model=None if train is None else train / 60))
    return out


# ---- the page ----

def _fmt(v: Any, digits: int = 3) -> str:
    x = _num(v)
    return "–" if np.isnan(x) else f"{x:.{digits}g}"


def headline_table(rows: Sequence[Mapping[str, Any]], power: Sequence[Mapping[str, Any]],
                   default_power: Sequence[Mapping[str, Any]]) -> str:
    """Per headline claim: the verdict, effect and interval, SESOI, MDE, power; the seeds and
    images this run used; what this run's spread asks for (80 % power at the SESOI) and what a
    default run's asked for."""
    pw = {r["id"]: r for r in power}
    dp = {r["id"]: r for r in default_power}
    lines = ["| study | claim | verdict | effect [95 % interval] | SESOI | MDE | power | seeds × "
             "images (this run) | seeds needed (this run's spread) | images needed (this run's "
             "spread) | cheapest design S × n, job-minutes (this run's spread) | seeds needed "
             "(default run) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if str(r.get("headline")) not in ("headline", "True"):
            continue
        p, d = pw.get(r["id"], {}), dp.get(r["id"], {})
        interval = (f"{_fmt(r['effect'])} [{_fmt(r['lo'])}, {_fmt(r['hi'])}]"
                    if not np.isnan(_num(r.get("effect"))) else "–")
        unit = " pp" if r.get("unit") == "%" else ""
        power_cell = "–" if np.isnan(_num(r.get("power"))) else f"{100 * _num(r['power']):.0f} %"
        lines.append(
            f"| {r['study']} | `{r['id']}` | **{r['verdict']}** | {interval}{unit} | "
            f"{_fmt(r['sesoi'])} | {_fmt(r.get('mde'))} | {power_cell} | "
            f"{r.get('seeds', '–')} × {r.get('images', '–')} | "
            f"{p.get('seeds_needed') or '–'} | {p.get('images_needed') or '–'} | "
            f"{_cheapest(p)} | {d.get('seeds_needed') or '–'} |")
    return "\n".join(lines)


def _cheapest(p: Mapping[str, Any]) -> str:
    """'S × n, m' of a power row's cheapest design, or '–'."""
    if not p.get("cheapest_seeds"):
        return "–"
    return (f"{p['cheapest_seeds']} × {p['cheapest_images']}, "
            f"{_fmt(p.get('cheapest_job_minutes'))}")


def not_run_table(items: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| study | left out | models | forecast job-minutes (2-core machine) |",
             "|---|---|---|---|"]
    for it in items:
        jm = it.get("job_minutes")
        lines.append(f"| {it['study']} | {it['what']} | {it['models']} | "
                     f"{'unknown (no cost for this kind of net)' if jm is None else f'{jm:,.0f}'} |")
    return "\n".join(lines)


def provenance_lines(prov: Mapping[str, Any]) -> list[str]:
    git, m, run = prov["git"], prov["machine"], prov["run"]
    dirty = " (with uncommitted changes)" if git.get("dirty") else ""
    fc = prov.get("forecast") or {}
    wall = run.get("wall_minutes")
    lines = [
        f"- **Commit**: `{git.get('commit')}`{dirty}; configuration "
        f"`{' '.join(prov['configfiles'])}`, fingerprint `{prov['fingerprint'][:16]}…` "
        "(SHA-256 of the checked, merged configuration).",
        f"- **Machine**: {m['cores']} cores ({m['cpu']}), {m['threads_per_job']} torch thread(s) "
        f"per job, device {m['device']}{(' ' + m['gpu']) if m.get('gpu') else ''}; "
        f"{m['system']}, Python {m['python']}, torch {m['torch']}.",
        f"- **Cost**: {run['job_minutes']:,.0f} job-minutes (sum of the benchmarks of "
        f"{run['benchmarked_jobs']} benchmarked jobs of {run['jobs']}); wall time "
        + (f"{wall:,.0f} min over {run['invocations']} invocation(s) of `make evidence`."
           if wall is not None else "not recorded (run outside `make evidence`)."),
    ]
    rj = prov.get("rejudged")
    if rj:
        lines.append(f"- **Re-judged** from the published evidence by commit "
                     f"`{rj['git'].get('commit')}` ({rj['at']}): the claims engine changed, no "
                     "result was recomputed (`make evidence-rejudge`).")
    dp = prov.get("default_power")
    if dp:
        lines.append(f"- **Default run's power table**: `{dp['path']}` of commit "
                     f"`{(dp.get('commit') or 'unknown')[:12]}` (its \"seeds needed\" column "
                     "below).")
    if fc:
        lines.append(f"- **Forecast before the run** (`make evidence-plan`, cost model in "
                     f"curvrobust.workflow.forecast): {fc['job_minutes']:,.0f} job-minutes, "
                     f"{fc['wall_minutes']:,.0f} min wall on {fc['cores']} cores.")
    return lines


def evidence_page(rows: Sequence[Mapping[str, Any]], power: Sequence[Mapping[str, Any]],
                  default_power: Sequence[Mapping[str, Any]], not_run: Sequence[Mapping[str, Any]],
                  prov: Mapping[str, Any], deviations: Mapping[str, Sequence[str]],
                  files: Mapping[str, str]) -> str:
    """The whole page: provenance, headlines, what was left out, then every claim with the
    deviations from each study (the claims table's own rendering)."""
    claims_md = claims_markdown(rows, deviations, title="All claims")
    parts = [
        "# Evidence: the studies' headlines at their own scale where two cores can run them",
        "",
        "Generated by `make evidence` (rule `publish_evidence`, curvrobust.claims.publish) from the "
        "run's results; do not edit: tests/test_evidence_published.py re-judges every claim "
        "below from the published evidence and fails when the configuration changed since "
        "(regenerate with `make evidence`; only the jobs the change touches rerun).",
        "",
        "## Provenance", "", *provenance_lines(prov), "",
        f"Files: [claims.csv]({files['claims']}) (every claim, as judged), "
        + ", ".join(f"[{Path(f).name}]({f})" for f in files["studies"])
        + " (each study's claims with the per-seed, per-image evidence judged; arrays in the "
        f".npz beside), [provenance.json]({files['provenance']}).",
        "",
        "## Headlines", "",
        "One row per headline claim. Effect: A − B, mean over seeds, with its 95 % interval over "
        "seeds and the shared test images; SESOI: the smallest effect that matters; MDE: the "
        "effect this design detects with 80 % probability; power: at the SESOI. \"Needed\": "
        "what 80 % power at the SESOI takes (power.md, curvrobust.claims.power): seeds at this "
        "run's images, images at its seeds, and the cheapest combination with its job-minutes, "
        "projected from this run's spread (the pilot at the study's scale) and, for seeds, from "
        "a default run's (– where not available, or already enough).",
        "", headline_table(rows, power, default_power), "",
        "## Left out", "",
        "Parts of the studies' designs this preset does not run, with the forecast cost on the "
        "development machine (curvrobust.workflow.forecast's cost model, FLOP-scaled where the net "
        "differs from every benchmarked one).",
        "", not_run_table(not_run), "",
    ]
    body = claims_md.split("\n", 1)[1] if claims_md.startswith("# ") else claims_md
    return "\n".join(parts) + "\n## All claims\n" + body


def read_csv_rows(path: str | Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def render_published(page: str | Path, folder: str | Path) -> tuple[str, list[str]]:
    """The page as the published files give it, and the differences between the published
    claims (claims.csv) and the evidence re-judged now: the job writes this text, and
    tests/test_evidence_published.py checks the committed page against it."""
    page, folder = Path(page), Path(folder)
    prov = json.loads((folder / "provenance.json").read_text())
    rows, deviations, diffs = [], {}, []
    published = read_csv_rows(folder / "claims.csv")
    for study in prov["studies"]:
        doc = read_study_evidence(folder / f"{study}.json", folder / f"{study}.npz")
        again = rejudge(doc)
        diffs += row_differences([r for r in published if r["study"] == study], again)
        rows += again
        deviations[study] = doc.get("deviations", [])
    default = folder / "power_default.csv"
    rel = lambda name: str((folder / name).relative_to(page.parent))  # noqa: E731
    files = dict(claims=rel("claims.csv"), provenance=rel("provenance.json"),
                 studies=[rel(f"{s}.json") for s in prov["studies"]])
    text = evidence_page(rows, read_csv_rows(folder / "power.csv"),
                         read_csv_rows(default) if default.is_file() else [],
                         prov["not_run"], prov, deviations, files)
    return text, diffs


# ---- the run ledger (`make evidence`) ----

def ledger_mark(path: str | Path, what: str, now: float | None = None) -> None:
    """Append an invocation's start (`what` 'start') or close the open one ('end'), atomically:
    the wall time a published page reports sums these intervals."""
    from curvrobust.utils import write_json_atomic

    p = Path(path)
    entries = json.loads(p.read_text()) if p.is_file() else []
    now = time.time() if now is None else now
    if what == "start":
        entries.append({"start": now})
    elif what == "end":
        open_ = [e for e in entries if "end" not in e]
        if not open_:
            raise ValueError(f"{p}: no open invocation to end")
        open_[-1]["end"] = now
    else:
        raise ValueError(f"ledger mark must be 'start' or 'end', not {what!r}")
    p.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(p, entries)


def rejudge_published(page: str | Path, folder: str | Path) -> list[str]:
    """Re-judge the published evidence with the current claims engine and rewrite claims.csv
    and the page from it (`make evidence-rejudge`): what a change to the engine needs, without
    the run's results. The provenance records the commit that re-judged. Returns the ids whose
    verdict changed."""
    from curvrobust.workflow.jobs import REPO, git_state
    from curvrobust.utils import atomic_path, write_json_atomic, write_text_atomic

    page, folder = Path(page), Path(folder)
    prov = json.loads((folder / "provenance.json").read_text())
    before = {r["id"]: r["verdict"] for r in read_csv_rows(folder / "claims.csv")}
    rows = []
    for study in prov["studies"]:
        rows += rejudge(read_study_evidence(folder / f"{study}.json", folder / f"{study}.npz"))
    with atomic_path(folder / "claims.csv") as tmp:
        claims_frame(rows).to_csv(tmp, index=False)
    prov["rejudged"] = dict(git=git_state(REPO),
                            at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    write_json_atomic(folder / "provenance.json", prov)
    text, diffs = render_published(page, folder)
    if diffs:
        raise RuntimeError("re-judged rows do not round-trip: " + "; ".join(diffs[:10]))
    write_text_atomic(page, text)
    return sorted(r["id"] for r in rows if before.get(r["id"]) != r["verdict"])


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="`make evidence`'s run ledger, and re-judging a "
                                 "published page with the current claims engine")
    ap.add_argument("--ledger", type=Path, help="the run ledger to mark")
    ap.add_argument("mark", nargs="?", choices=["start", "end"])
    ap.add_argument("--at", type=float, help="the time to record (epoch seconds; default now), "
                    "for an invocation run outside `make evidence`")
    ap.add_argument("--rejudge", nargs=2, metavar=("PAGE", "DIR"),
                    help="re-judge a published page's evidence and rewrite it")
    args = ap.parse_args(argv)
    if args.rejudge:
        changed = rejudge_published(*args.rejudge)
        print(f"re-judged {args.rejudge[0]}; verdicts changed: {', '.join(changed) or 'none'}")
        return
    if not (args.ledger and args.mark):
        ap.error("give --ledger PATH start|end, or --rejudge PAGE DIR")
    ledger_mark(args.ledger, args.mark, args.at)


if __name__ == "__main__":
    main()
