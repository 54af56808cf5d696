"""What the terminal shows of a run: the progress filter, each job's one line (or its failure
with the log's path and last lines), and the summary `make run` ends with."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from curvrobust.workflow import run_summary as rs
from curvrobust.workflow.jobs import done_line, failure_report

TRANSCRIPT = """\
Building DAG of jobs...
Job stats:
job            count
-----------  -------
train_model        1
total              2

Select jobs to execute...
Execute 1 jobs...
[Sun Nov 29 07:43:50 2026]
localrule train_model:
    input: lib/curvrobust/train.py
    output: results/models/m/model.pt
    log: results/logs/train_model/m.log
    jobid: 5
    reason: Missing output files: results/models/m/model.pt
    wildcards: dataset=mnist
    resources: tmpdir=/tmp
done train_model: results/models/m/model.pt (+1 more) in 12 s
[Sun Nov 29 07:43:53 2026]
Finished jobid: 5 (Rule: train_model)
1 of 2 steps (50%) done

Select jobs to execute...
Execute 1 jobs...
[Sun Nov 29 07:43:54 2026]
rule attack_model:
    output: results/attacks/m/fgsm.csv
    jobid: 3
[Sun Nov 29 07:43:55 2026]
Error in rule attack_model:
    message: None
    jobid: 3
    log: results/logs/attack_model/m.log (check log file(s) for error details)
Exiting because a job execution failed. Look above for error messages
"""


def test_filter_drops_rule_blocks_and_chatter_but_keeps_progress_and_errors():
    out = list(rs.filter_progress(TRANSCRIPT.splitlines(keepends=True)))
    text = "".join(out)
    assert "reason:" not in text and "wildcards:" not in text and "Select jobs" not in text
    assert "Finished jobid" not in text and "[Sun Nov" not in text
    assert "localrule train_model:\n" not in out and "rule attack_model:\n" not in out
    assert "1 of 2 steps (50%) done\n" in out
    assert out[out.index("1 of 2 steps (50%) done\n") + 1].strip()   # its blank line dropped
    assert "\n\n" in text   # other blank lines (after the job table) stay
    assert "done train_model: results/models/m/model.pt (+1 more) in 12 s\n" in out
    # the error block passes whole: the failing job's log path stays visible
    assert "Error in rule attack_model:\n" in out
    assert "    log: results/logs/attack_model/m.log (check log file(s) for error details)\n" in out
    assert text.startswith("Building DAG of jobs...\nJob stats:\n")


def _claims_csv(path: Path, rows: list[dict]) -> Path:
    cols = ["study", "id", "headline", "claim", "effect", "lo", "hi", "basis", "verdict", "unit",
            "ours_value", "sesoi", "mde", "power", "reason"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    return path


def test_summary_repeats_the_claims_tables_headline_verdicts(tmp_path):
    res = tmp_path / "results"
    (res / "study000").mkdir(parents=True)
    (res / "report.html").write_text("<html/>")
    _claims_csv(res / "claims.csv", [
        dict(study="study000", id="000-h", headline="headline", claim="GN is attacked less",
             effect="-15.18", lo="-42.13", hi="11.77", basis="3 seeds", verdict="inconclusive",
             unit="%", ours_value="GN 47.7 %, Adam 62.9 % (3 seeds, mean)", sesoi="5",
             mde="35.46", power="0.081", reason="underpowered: detects ≥ 35.5, SESOI 5"),
        dict(study="study000", id="000-x", headline="exploratory", claim="not a headline",
             effect="1", lo="0.5", hi="2", verdict="holds", unit="%"),
        dict(study="study003", id="003-h", headline="headline", claim="faster", effect="1.41",
             lo="1.02", hi="1.81", basis="3 seeds", verdict="holds", unit=""),
        dict(study="study001", id="001-h", headline="headline", claim="HAAT better",
             verdict="not run")])
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "a.snakemake.log").write_text("1 of 9 steps (11%) done\n9 of 9 steps (100%) done\n")
    old = logs / "b.snakemake.log"
    old.write_text("5 of 5 steps (100%) done\n")
    start = time.time() - 125
    os.utime(old, (start - 100, start - 100))    # an earlier run: not counted
    text = rs.summary(res, start=start, log_dir=logs, now=start + 125)
    assert "Run finished in 2 min 5 s; 9 jobs run." in text
    assert f"{res / 'report.html'}" in text and f"{res / 'study000'}" in text
    assert str(res / "claims.md") not in text   # absent files are not announced
    assert ("Study 000 (Gauss-Newton under adversarial attacks): INCONCLUSIVE, effect -15.2 "
            "points [-42.1, +11.8], 3 seeds; SESOI 5 points, MDE 35.5 points, power 8 %") in text
    assert ("000-h: GN is attacked less\n    ours: GN 47.7 %, Adam 62.9 % (3 seeds, mean)\n"
            "    why: underpowered: detects ≥ 35.5, SESOI 5\n") in text
    assert "000-x" not in text and "003-h: faster\n  " in text   # no empty 'ours:' line
    assert "Study 003 (input scale and first-order adversaries): HOLDS, effect +1.41 [+1.02, "\
           "+1.81], 3 seeds" in text
    assert "Study 001 (HAAT, second-order PGD): NOT RUN\n" in text
    # no claims table: said so, nothing invented
    (res / "claims.csv").unlink()
    assert "No claims table in this run" in rs.summary(res)


def test_done_line_and_failure_report(tmp_path):
    assert done_line("train_model", ["a/model.pt", "a/epochs.csv"], 12.4) == \
        "done train_model: a/model.pt (+1 more) in 12 s"
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)))
    text = failure_report("attack_model", str(log), ValueError("eps must be >= 0"), n=3)
    assert text.splitlines() == [
        "FAILED attack_model: ValueError: eps must be >= 0",
        f"  log: {log} (last 3 lines below)", "  | line 27", "  | line 28", "  | line 29"]


JOB = textwrap.dedent("""
    import sys
    from types import SimpleNamespace
    from curvrobust.workflow.jobs import start_job

    out, log = sys.argv[1], sys.argv[2]
    smk = SimpleNamespace(log=[log], output=[out], params={"eps": 0.1}, threads=1,
                          rule="attack_model", wildcards={"seed": "42"})
    emit = start_job(smk)
    emit("device cpu")
    emit("epoch 1/1: loss 0.1")
    if sys.argv[3] == "fail":
        raise ValueError("something broke in the job")
    open(out, "w").write("ok")
""")


def _job(tmp_path, mode, env=None):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    out, log = tmp_path / f"{mode}.csv", tmp_path / f"{mode}.log"
    proc = subprocess.run([sys.executable, str(script), str(out), str(log), mode],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    return proc, out, log


def test_a_job_prints_one_line_and_keeps_the_rest_in_its_log(tmp_path):
    proc, out, log = _job(tmp_path, "ok", env={"CURVROBUST_ECHO_LOGS": ""})
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"done attack_model: {out} in ")
    assert proc.stdout == ""
    text = log.read_text()
    assert " provenance {" in text and "device cpu" in text and "epoch 1/1" in text
    assert "job finished after" in text and Path(f"{out}.prov.json").is_file()
    # CURVROBUST_ECHO_LOGS=1 echoes the log lines for debugging
    proc, _, _ = _job(tmp_path, "ok", env={"CURVROBUST_ECHO_LOGS": "1"})
    assert " provenance {" in proc.stderr and "epoch 1/1" in proc.stderr


def test_a_failing_job_shows_its_log_path_and_last_lines(tmp_path):
    proc, out, log = _job(tmp_path, "fail", env={"CURVROBUST_ECHO_LOGS": ""})
    assert proc.returncode != 0 and not out.exists()
    err = proc.stderr
    assert "FAILED attack_model: ValueError: something broke in the job" in err
    assert f"log: {log}" in err
    assert "  | " in err and "epoch 1/1" in err          # the log's last lines
    assert max(len(line) for line in err.splitlines()) < 300  # provenance cut short
    assert "done attack_model" not in err
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "job failed after" in text
    assert not Path(f"{out}.prov.json").exists()


def _load_benchmark(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_workflow_overhead_reads_start_up_and_work_per_rule(tmp_path):
    """The overhead benchmark's per-rule table and summary from job logs with known times."""
    wo = _load_benchmark("workflow_overhead")
    logs = tmp_path / "results" / "logs"
    lines = {"attack_model/a.log": (1.5, 2.5), "attack_model/b.log": (2.5, 1.5),
             "train_model/t.log": (2.0, 98.0)}
    for rel, (s, w) in lines.items():
        p = logs / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"[12:00:00] provenance {{}}\n[12:00:00] start-up {s:.2f} s (process start)\n"
                     f"[12:00:09] job finished after {w:.1f} s\n")
    (logs / "train_model" / "failed.log").write_text("[12:00:00] start-up 9.00 s\n")  # no end
    rows = {r["rule"]: r for r in wo.rule_rows(logs, "x")}
    assert rows["attack_model"]["jobs"] == 2
    assert rows["attack_model"]["startup_median_s"] == 2.0
    assert rows["attack_model"]["startup_share"] == 0.5
    assert rows["train_model"]["startup_share"] == 0.02
    row = wo.summary(logs, "x", [], 2)
    assert (row["jobs"], row["startup_s"], row["work_s"]) == (3, 6.0, 102.0)


def test_workflow_overhead_reads_the_lines_a_real_job_logs(tmp_path):
    """The benchmark's patterns match what `start_job` writes, not just a copy of its format."""
    wo = _load_benchmark("workflow_overhead")
    proc, _, log = _job(tmp_path, "ok", env={"CURVROBUST_ECHO_LOGS": ""})
    assert proc.returncode == 0, proc.stderr
    logs = tmp_path / "results" / "logs"
    (logs / "attack_model").mkdir(parents=True)
    log.rename(logs / "attack_model" / "job.log")
    [(startup, work)] = wo.rule_job_times(logs)["attack_model"]
    assert 0 < startup < 120 and 0 <= work < 120
