"""What `make run` shows: Snakemake's progress without its per-job blocks (`filter_progress`),
and the few lines it ends with: wall time, jobs run, where the report, tables and claims are,
and each study's headline verdict as the claims table states it (`summary`).

    snakemake ... 2>&1 | python -m curvrobust.workflow.run_summary --filter
    python -m curvrobust.workflow.run_summary --start EPOCH_SECONDS [--results results]

Nothing here judges a claim: the verdicts are read from ``results/claims.csv``
(curvrobust.claims wrote it), so the summary can only repeat them.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import time
from pathlib import Path
from typing import Iterable, Iterator

STEPS_RX = re.compile(r"^(\d+) of (\d+) steps \(\S+\) done")
STUDIES = {"study000": "Study 000 (Gauss-Newton under adversarial attacks)",
           "study001": "Study 001 (HAAT, second-order PGD)",
           "study002": "Study 002 (decision surfaces in input space)",
           "study003": "Study 003 (input scale and first-order adversaries)"}


# Snakemake's scheduler chatter and per-job blocks, dropped by `filter_progress`: each finished
# job already has its progress line ('k of N steps (x%) done') and the job's own 'done' line
DROP_RX = re.compile(r"^(Select jobs to execute\.\.\.|Execute \d+ jobs\.\.\.|"
                     r"\[\w{3} \w{3} +\d+ [\d:]+ \d{4}\]|Finished jobid: \d+ .*)$")
BLOCK_RX = re.compile(r"^(local)?(rule|checkpoint) \S+:$")


def filter_progress(lines: Iterable[str]) -> Iterator[str]:
    """Snakemake's terminal output without the scheduler's chatter and the per-job rule blocks
    (rule name, input, output, log, reason, wildcards, resources); everything else passes, error
    blocks ('Error in rule …' with the job's log path) and the progress lines included (the blank
    line Snakemake prints after each of those goes)."""
    in_block, after_progress = False, False
    for line in lines:
        bare = line.rstrip("\n")
        if in_block:
            if bare.startswith("    "):
                continue
            in_block = False
        if BLOCK_RX.match(bare):
            in_block = True
            continue
        if DROP_RX.match(bare) or (after_progress and not bare.strip()):
            continue
        after_progress = bool(STEPS_RX.match(bare))
        yield line


def jobs_run(log_dir: str | Path, since: float) -> int:
    """Jobs Snakemake finished in the runs whose logs (``.snakemake/log/*.snakemake.log``)
    were written at or after `since` (epoch seconds): the last 'N of M steps done' of each."""
    total = 0
    for f in sorted(Path(log_dir).glob("*.snakemake.log")):
        if f.stat().st_mtime < since:
            continue
        last = 0
        for line in f.read_text(errors="replace").splitlines():
            m = STEPS_RX.match(line.strip())
            if m:
                last = int(m.group(1))
        total += last
    return total


def _num(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def headline_lines(claims_csv: str | Path) -> list[str]:
    """A few lines per headline claim of the claims table: study, verdict, effect with its 95 %
    interval and basis, the SESOI beside the MDE and power at the SESOI, the claim, the
    verdict's reason, and our measured values (what the effect is the difference
    or slope of), exactly as the table has them."""
    with open(claims_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        if r.get("headline") != "headline":
            continue
        effect, lo, hi = (_num(r.get(k)) for k in ("effect", "lo", "hi"))
        unit = " points" if r.get("unit") == "%" else ""
        if math.isnan(effect):
            number = ""
        elif math.isnan(lo) or math.isnan(hi):
            number = f", effect {effect:+.3g}{unit}"
        else:
            number = f", effect {effect:+.3g}{unit} [{lo:+.3g}, {hi:+.3g}]"
        basis = f", {r['basis']}" if r.get("basis") else ""
        sesoi, mde, power = (_num(r.get(k)) for k in ("sesoi", "mde", "power"))
        if not math.isnan(sesoi):
            basis += (f"; SESOI {sesoi:.3g}{unit}, MDE "
                      + ("–" if math.isnan(mde) else f"{mde:.3g}{unit}")
                      + ("" if math.isnan(power) else f", power {100 * power:.0f} %"))
        study = STUDIES.get(r.get("study", ""), r.get("study", ""))
        ours = f"\n    ours: {r['ours_value']}" if r.get("ours_value") else ""
        why = f"\n    why: {r['reason']}" if r.get("reason") else ""
        out.append(f"  {study}: {r['verdict'].upper()}{number}{basis}\n"
                   f"    {r['id']}: {r['claim']}{ours}{why}")
    return out


def summary(results: str | Path = "results", start: float | None = None,
            log_dir: str | Path = ".snakemake/log", now: float | None = None) -> str:
    """The summary text (see the module docstring); `start` is when the run began."""
    results = Path(results)
    now = time.time() if now is None else now
    lines = ["", "=" * 72]
    if start is not None:
        wall = now - start
        lines.append(f"Run finished in {int(wall // 60)} min {wall % 60:.0f} s; "
                     f"{jobs_run(log_dir, start)} jobs run.")
    where = [("report (open in a browser)", results / "report.html"),
             ("claims and verdicts", results / "claims.md"),
             ("gradient-masking checks", results / "masking.md")]
    where += [(f"{name.split(' (')[0]} tables and figures", results / s)
              for s, name in STUDIES.items() if (results / s).is_dir()]
    for what, path in where:
        if path.exists():
            lines.append(f"  {what + ':':32s} {path}")
    claims = results / "claims.csv"
    if claims.is_file():
        lines.append("Headline verdicts (from results/claims.csv; how to read them: "
                     "docs/claims.md):")
        lines += headline_lines(claims) or ["  (no headline claims in this run)"]
    else:
        lines.append("No claims table in this run (results/claims.csv).")
    lines.append("=" * 72)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", type=float, help="when the run began (epoch seconds)")
    ap.add_argument("--results", default="results")
    ap.add_argument("--log-dir", default=".snakemake/log")
    ap.add_argument("--filter", action="store_true",
                    help="copy stdin to stdout through filter_progress")
    a = ap.parse_args(argv)
    if a.filter:
        import sys

        try:
            for line in filter_progress(sys.stdin):
                sys.stdout.write(line)
                sys.stdout.flush()
        except BrokenPipeError:  # the reader went away (e.g. `| head`)
            pass
        return
    print(summary(a.results, a.start, a.log_dir))


if __name__ == "__main__":
    main()
