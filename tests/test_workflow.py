"""Workflow tests: the smoke config runs end to end through snakemake on real MNIST (a few
hundred images), then nothing is stale, an ε change reruns attacks and tables only, and a
schema violation fails naming the key before any job runs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
COPY = ["Snakefile", "rules", "workflow_scripts", "schemas", "config.yaml", "configs", "report",
        "lib", "envs", "Makefile", "pyproject.toml"]
VENV = Path(sys.executable).parent.parent   # the environment the tests run in (make's VENV)


def run_make(workdir: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    """`make ARGS` in `workdir` with this environment as the Makefile's VENV (never rebuilt);
    stdout and stderr together, as a terminal shows them."""
    env = {k: v for k, v in os.environ.items() if k != "CURVROBUST_ECHO_LOGS"}
    return subprocess.run(["make", "-s", "-o", f"{VENV}/.installed", f"VENV={VENV}", *args],
                          cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, env=env)


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900):
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """Parse snakemake's 'Job stats' table into {rule: count}."""
    counts = {}
    m = re.search(r"Job stats:\n(.*?)\n\n", output + "\n\n", re.S)
    if not m:
        return counts
    for line in m.group(1).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def assert_tables_and_figures(out: Path, tables, figures) -> None:
    """Every table in .csv/.md/.tex (non-empty) and every figure in .pdf/.png (> 1 kB)."""
    for t in tables:
        for ext in ("csv", "md", "tex"):
            assert (out / f"{t}.{ext}").stat().st_size > 0, f"{t}.{ext}"
    for f in figures:
        for ext in ("pdf", "png"):
            assert (out / f"{f}.{ext}").stat().st_size > 1000, f"{f}.{ext}"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, real_mnist_dir):
    """A copy of the workflow with the smoke config (pointed at the cached real MNIST) run once."""
    work = tmp_path_factory.mktemp("wf")
    for name in COPY:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg["datasets"]["mnist"] = {"sources": ["local"], "local_dir": str(real_mnist_dir)}
    (work / "smoke.yaml").write_text(yaml.safe_dump(cfg))
    # through make, as a user runs it: the terminal's text is kept for the tests that read it
    proc = run_make(work, "smoke", "SMOKE_CONFIG=smoke.yaml", "CORES=2")
    (work / "terminal.txt").write_text(proc.stdout)
    if proc.returncode != 0:
        raise AssertionError(f"make smoke failed:\n{proc.stdout[-6000:]}")
    return work, cfg


def test_make_smoke_prints_a_few_lines_per_job_and_ends_with_the_answer(smoke_run):
    """The terminal of `make smoke`: Snakemake's progress and one line per finished job (no
    provenance, device or per-epoch lines), then the report and the summary with each study's
    headline verdict."""
    work, _ = smoke_run
    text = (work / "terminal.txt").read_text()
    counts = job_counts(text)
    n_jobs = sum(counts.values())
    assert n_jobs > 100
    body, _, summary = text.partition("=" * 72 + "\n")
    stats = re.search(r"Job stats:\n.*?\n\n", body, re.S).group(0)
    lines = body.replace(stats, "").splitlines()
    assert len(lines) <= 3 * n_jobs + 30, f"{len(lines)} lines for {n_jobs} jobs"
    assert len(re.findall(r"^\d+ of \d+ steps", body, re.M)) == n_jobs
    done = re.findall(r"^done (\w+): ", body, re.M)
    assert done.count("train_model") == counts["train_model"]
    assert " provenance " not in text and "device: " not in text
    assert not re.search(r"epoch \d+/\d+:", text)
    assert "reason: " not in text and "Select jobs to execute" not in text
    # the answer: report built, where things are, each study's headline verdict
    assert (work / "results" / "report.html").stat().st_size > 10_000
    assert re.search(r"Run finished in \d+ min \d+ s; \d+ jobs run\.", summary)
    assert "results/report.html" in summary and "results/claims.md" in summary
    for study in ("Study 000", "Study 001", "Study 002", "Study 003"):
        assert re.search(rf"^  {study} \(.*\): [A-Z ]+", summary, re.M), study


def test_a_failing_job_shows_its_log_path_and_last_lines(smoke_run):
    work, cfg = smoke_run
    bad = yaml.safe_load(yaml.safe_dump(cfg))
    bad["variants"]["huge"] = {"kind": "clean", "subset": {"train": 10_000_000}}
    (work / "huge.yaml").write_text(yaml.safe_dump(bad))
    cmd = (f"{sys.executable} -m snakemake --configfile huge.yaml --cores 1 "
           f"results/data/mnist/huge/train.pt 2>&1 | {sys.executable} -m curvrobust.workflow.run_summary "
           "--filter")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=work, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0
    out = proc.stdout
    assert "FAILED make_variant: ValueError: variant spec 'subset.train'" in out
    assert "log: results/logs/make_variant/mnist_huge.log (last" in out
    assert re.search(r"^  \| .*exceeds the 60000 train examples", out, re.M)
    assert "Error in rule make_variant:" in out   # Snakemake's own error block passes too


def test_smoke_produces_every_table_and_figure(smoke_run):
    work, _ = smoke_run
    out = work / "results" / "study000" / "mnist"
    assert_tables_and_figures(
        out, ["table1_fgsm_clean", "table2_fgsm_poisoned", "table1b_fgsm_matched_loss",
              "table1c_fgsm_matched_accuracy", "table3_sam_median", "training_summary"],
        ["fig2_input_grad_norm", "fig3_logit_margin", "fig_sam_per_example",
         "fig_training_curves"])
    manifest = yaml.safe_load((work / "results/data/mnist/raw/manifest.json").read_text())
    assert manifest["source"] == "local"
    # every attack row obeys the study's definitions
    import pandas as pd

    for csv in (work / "results" / "attacks").rglob("fgsm_paper.csv"):
        df = pd.read_csv(csv)
        assert list(df["eps"]) == [0.1, 0.05, 0.01]
        assert (df["successes"] <= df["correct"]).all()
        assert (abs(df["success_rate"] - df["successes"] / df["correct"]) < 1e-12).all()
    t1 = pd.read_csv(out / "table1_fgsm_clean.csv")
    assert list(t1["optimizer"]) == ["adam", "sgd", "gn", "kfac"]
    assert list(t1["paper_correct"][:3]) == [9778, 9611, 9585]
    assert pd.isna(t1["paper_correct"][3])  # K-FAC is not in the study
    # K-FAC trains on clean labels only and logs its cosine with the exact GN direction
    assert "kfac" not in set(pd.read_csv(out / "table2_fgsm_poisoned.csv")["optimizer"])
    for seed in (42, 43):
        model = work / f"results/models/mnist/clean/cnn_kfac/seed{seed}"
        diag = pd.read_csv(model / "diagnostics.csv")
        assert len(diag) >= 1 and diag["cos_gn"].between(-1, 1).all()
        assert pd.read_csv(model / "epochs.csv")["cos_gn"].notna().all()
    summary = (out / "training_summary.md").read_text()
    assert "cos(direction, exact GN)" in summary and "K-FAC" in summary


def test_readme_notebook_example_reproduces_table1(smoke_run):
    """The README's notebook block, run in the finished run's folder (before any test below
    changes its results), loads the Gauss-Newton models and the test set, attacks them with
    FGSM and recomputes study 000's Table 1 success rate exactly (its own assert and print)."""
    work, _ = smoke_run
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- notebook-example -->\s*```python\n(.*?)```", text, re.S).group(1)
    proc = subprocess.run([sys.executable, "-c", block], cwd=work, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    m = re.search(r"FGSM eps=([\d.]+): ([\d.]+) % fooled; table: ([\d.]+) %", proc.stdout)
    assert m and m.group(2) == m.group(3), proc.stdout
    t1 = pd.read_csv(work / "results/study000/mnist/table1_fgsm_clean.csv").set_index("optimizer")
    assert m.group(3) == f"{t1.loc['gn', f'rate_eps{m.group(1)}_mean']:.2f}"


STUDY002_TABLES = ["table1_mnist", "table_pgd_restarts", "table_step_sweep", "table_indicator",
                   "training_summary"]
STUDY002_FIGURES = ["fig2_param_surface_mnist", "fig3_input_loss_surface_mnist",
                    "fig4_loss_vs_decision_mnist", "fig6_decision_surface_mnist",
                    "fig8_jacobian_mnist", "fig_accuracy_vs_eps", "fig_step_sweep",
                    "fig_indicator_scatter"]


def test_smoke_produces_study002_outputs(smoke_run):
    import numpy as np

    from curvrobust.reference import load_reference

    work, cfg = smoke_run
    out = work / "results" / "study002"
    assert_tables_and_figures(out, STUDY002_TABLES, STUDY002_FIGURES)
    s2 = cfg["studies"]["study002"]
    regimes = s2["datasets"]["mnist"]["regimes"]
    t1 = pd.read_csv(out / "table1_mnist.csv").set_index("regime")
    assert set(t1.index) == set(regimes)
    ref = load_reference("study002")["tables"]["mnist"]["rows"]
    assert t1.loc["ours", "paper_natural"] == ref["ours"]["natural"]
    assert t1.loc["natural", "paper_bim_eps0.1"] == ref["natural"]["bim"][0]
    for label, recipe in regimes.items():
        adir = work / f"results/attacks/mnist/clean/{recipe}/seed42/final"
        nat = None
        for col, name in s2["datasets"]["mnist"]["attacks"].items():
            df = pd.read_csv(adir / f"{name}.csv")
            assert (df["n_test"] == cfg["robustness"]["n_examples"]).all()  # the shared subset
            acc = df["correct"] / df["n_test"]
            assert (df["adv_accuracy"] <= acc + 1e-12).all()
            nat = acc.iloc[0] if nat is None else nat
            assert acc.iloc[0] == nat  # every attack sees the same clean predictions
            assert t1.loc[label, f"{col}_eps0.1_mean"] == pytest.approx(100 * df["adv_accuracy"][0])
        sdir = work / f"results/stats/mnist/clean/{recipe}/seed42/final"
        ind = pd.read_csv(sdir / "indicator.csv")
        assert len(ind) == s2["indicator"]["n_examples"]
        assert (ind["hess_method"] == "exact").all() and (ind["hess_top_eig"] >= 0).all()
        assert (ind["hess_zero_frac"] >= (784 - 9) / 784 - 1e-12).all()
    surf = np.load(work / "results/surfaces/mnist/clean/m2_natural/seed42/final/input.npz")
    k = s2["surfaces"]
    assert surf["margin"].shape == (len(k["directions"]), k["images"], k["points"], k["points"])
    assert list(surf["directions"]) == k["directions"]
    param = np.load(work / "results/surfaces/mnist/clean/m2_natural/seed42/final/param.npz")
    assert param["loss"].shape == (k["param_points"], k["param_points"])
    ep = pd.read_csv(work / "results/models/mnist/clean/m2_ours/seed42/epochs.csv")
    assert ep["penalty"].notna().all() and ep["epoch_time_s"].gt(0).all()


def test_smoke_robust_evaluation(smoke_run):
    """Per-image outcomes on the shared subset, one summary and masking-report row per model in
    scope, the worst case beside the study's numbers in the tables."""
    from curvrobust import plans
    from curvrobust.data.subsets import eval_subset

    work, cfg = smoke_run
    checked = plans.check_config(yaml.safe_load(yaml.safe_dump(cfg)))
    R = plans.robust_plan(checked)
    n = cfg["robustness"]["n_examples"]
    subset = set(eval_subset(cfg["variants"]["clean"]["subset"]["test"], n,
                             cfg["robustness"]["subset_seed"]).tolist())
    img = pd.read_csv(work / "results/attacks/mnist/clean/m2_ours/seed42/final/fgsm_s2_images.csv")
    assert len(img) == n * len(cfg["attacks"]["fgsm_s2"]["eps"])
    assert set(img["index"]) == subset
    assert ((img["attacked"] <= img["correct"]) & (img["success"] <= img["attacked"])).all()
    summ = pd.read_csv(work / "results/attacks/mnist/clean/m2_ours/seed42/final/fgsm_s2.csv")
    for e, g in img.groupby("eps"):
        row = summ[summ["eps"] == e].iloc[0]
        assert row["successes"] == g["success"].sum() and row["correct"] == g["correct"].sum()
    masking = pd.read_csv(work / "results/masking.csv")
    assert len(masking) == len(R.models())
    for check in ("fgsm_only", "margin_only", "steps_restarts", "square_only", "transfer_only",
                  "large_eps", "zero_grad", "probabilities"):
        assert check in masking.columns and f"{check}_passed" in masking.columns
    import json
    for r in R.models():
        s = json.loads((work / R.summary_file(r)).read_text())
        heads = [w for w in s["worst_case"] if w["eps"] == r["eps"]]
        assert heads and heads[0]["complete"]
        # the images every attack covers: study 001's AutoAttack takes fewer
        aa = cfg["studies"]["study001"]["autoattack"]["n_examples"]
        assert heads[0]["n"] == (min(n, aa) if r["study"] == "study001" else n)
        assert 0 <= heads[0]["robust_accuracy"] <= heads[0]["natural_accuracy"]
    t1 = pd.read_csv(work / "results/study000/mnist/table1_fgsm_clean.csv")
    assert t1["worst_case_acc_mean"].notna().all()
    assert (work / "results/masking.md").read_text().count("\n| ") >= len(R.models())


def test_changed_study002_attack_reruns_only_its_jobs(smoke_run):
    work, cfg = smoke_run
    changed = yaml.safe_load(yaml.safe_dump(cfg))
    changed["attacks"]["bim_s2"]["step_size"] = 0.05
    (work / "changed.yaml").write_text(yaml.safe_dump(changed))
    proc = run_snakemake(work, "--configfile", "changed.yaml", "-n", "--cores", "1")
    jobs = _scheduled_jobs(proc.stdout)
    attacked = [w for r, w in jobs if r == "attack_model"]
    assert len(attacked) == 6 and all("attack=bim_s2" in w for w in attacked), attacked
    # BIM enters the worst case of every study-002 model, whose summary every study-002 table
    # reads (the validity gate): those reruns, and nothing of the other studies
    tables = sorted(w for r, w in jobs if r == "make_table_study002")
    assert len(tables) == 5, tables
    robust = [w for r, w in jobs if r == "evaluate_robustness"]
    assert len(robust) == 6 and all("recipe=m2_" in w for w in robust), robust
    figures = [w for r, w in jobs if r == "plot_figure_study002"]
    assert figures == ["wildcards: figure=fig_step_sweep"], figures
    assert {r for r, _ in jobs} == {"attack_model", "make_table_study002", "evaluate_robustness",
                                    "make_masking_report", "judge_claims", "make_claims_report",
                                    "plot_figure_study002", "all"}


STUDY001_TABLES = ["table_robust_accuracy", "table_hvp_error", "table_eigvec_alignment"]
STUDY001_FIGURES = ["fig1_haat_robust_accuracy", "fig2a_xi_sweep", "fig2b_k_sweep",
                    "fig3_haat_vs_pgd", "fig4_fd_convergence"]


def test_smoke_produces_study001_outputs(smoke_run):
    work, cfg = smoke_run
    s1 = cfg["studies"]["study001"]
    out = work / "results" / "study001" / "mnist"
    assert_tables_and_figures(out, STUDY001_TABLES, STUDY001_FIGURES)
    block = s1["datasets"]["mnist"]
    recipes = set(block["models"].values()) | set(block["xi_sweep"]) | set(block["k_sweep"])
    twins = set(block["twins"].values())
    table = pd.read_csv(out / "table_robust_accuracy.csv")
    assert set(table["recipe"]) == recipes | twins
    assert set(table["epoch"]) == {1, 2}                  # every epoch-end checkpoint
    cascade = ["clean_acc", "apgd-ce_acc", "apgd-t_acc", "fab-t_acc", "square_acc"]
    for recipe in recipes | twins:
        r = cfg["recipes"][recipe]
        every = r.get("checkpoints", {}).get("every_epochs", 1)
        epochs = [e for e in (1, 2) if e % every == 0 or e == r["epochs"]]
        assert sorted(table.loc[table["recipe"] == recipe, "epoch"]) == epochs, recipe
        for epoch in epochs:
            row = pd.read_csv(out / f"eval/{recipe}/seed42/epoch{epoch}.csv").iloc[0]
            assert row["n_examples"] == s1["autoattack"]["n_examples"]
            values = [row[c] for c in cascade]
            assert values == sorted(values, reverse=True), values    # each attack only removes
            assert row["aa_acc"] == row["square_acc"] and row["pgd_acc"] <= row["clean_acc"]
            ck = pd.read_csv(work / f"results/models/mnist/clean/{recipe}/seed42/checkpoints.csv")
            step = ck.loc[ck["epoch"] == epoch, "step"].iloc[-1]
            assert row["step"] == step and row["clean_acc"] >= 0
    assert "APGD-CE (3 it." in table["aa_attacks"].iloc[0]
    # HAAT and PGD-AT trained adversarially through train_model; the cyclic schedule ends at 0
    for recipe in ("s1_haat", "s1_pgd"):
        ep = pd.read_csv(work / f"results/models/mnist/clean/{recipe}/seed42/epochs.csv")
        assert ep["adv_ce"].notna().all() and ep["ce"].isna().all()
    ep = pd.read_csv(work / "results/models/mnist/clean/s1_pgd/seed42/epochs.csv")
    assert ep["lr"].iloc[-1] == 0.0 and ep["lr"].iloc[0] > 0.0
    trace = pd.read_csv(out / "convergence/seed42/trace.csv")
    conv = s1["convergence"]
    assert set(trace["method"]) == set(conv["methods"]) and set(trace["k"]) == set(conv["ks"])
    assert set(trace["batch"]) == set(range(conv["batches"]))
    for k, g in trace.groupby("k"):
        assert set(g["iteration"]) == set(range(1, k + 1))
    # Fig. 5: each k on the model trained with that k where the run has one
    own = {k: set(g["own"]) for k, g in trace.groupby("k")}
    assert own[1] == {True} and own[3] == {False}, own
    assert set(trace.loc[trace["k"] == 1, "recipe"]) == {"s1_haat_k1"}
    assert trace["diff_mean"].between(0.0, 2.0).all()
    # exact products: the first power step goes from a random vector to a nearly orthogonal one
    first = trace[(trace["method"] == "exact") & (trace["iteration"] == 1)]["diff_mean"]
    assert (abs(first - 2 ** 0.5) < 0.2).all(), first
    align = pd.read_csv(out / "table_eigvec_alignment.csv")
    assert len(align) == len(conv["ks"]) * len(conv["methods"])
    assert align["cos_median"].between(0.0, 1.0 + 1e-9).all()
    err = pd.read_csv(out / "table_hvp_error.csv")
    # both first-product starts (Algorithm 1's raw draw, the normalised one) for fd, fd_central
    assert len(err) == 2 * 2 * len(conv["xi_list"]) and err["median_rel_error"].notna().all()
    assert set(err["fd_start"]) == {"raw", "normalised"}


def _changed_config(work, cfg, edit, *extra):
    changed = yaml.safe_load(yaml.safe_dump(cfg))
    edit(changed)
    (work / "changed.yaml").write_text(yaml.safe_dump(changed))
    proc = run_snakemake(work, "--configfile", "changed.yaml", "-n", "--cores", "1", *extra)
    return _scheduled_jobs(proc.stdout)


def test_changed_autoattack_reruns_only_evaluations(smoke_run):
    work, cfg = smoke_run

    def edit(c):
        c["studies"]["study001"]["autoattack"]["square_queries"] = 30

    jobs = _changed_config(work, cfg, edit)
    assert sum(r == "evaluate_checkpoint" for r, _ in jobs) == 8, jobs
    assert [w for r, w in jobs if r == "make_table_study001"] == [
        "wildcards: dataset=mnist, table=table_robust_accuracy"], jobs
    figures = sorted(w.split("figure=")[1] for r, w in jobs if r == "plot_figure_study001")
    assert figures == ["fig1_haat_robust_accuracy", "fig2a_xi_sweep", "fig2b_k_sweep",
                       "fig3_haat_vs_pgd"], figures
    # the final epoch's outcomes enter the worst case of each study-001 model
    robust = [w for r, w in jobs if r == "evaluate_robustness"]
    block = cfg["studies"]["study001"]["datasets"]["mnist"]
    n_models = len(set(block["models"].values()) | set(block["xi_sweep"]) | set(block["k_sweep"])
                   | set(block["twins"].values()))
    assert len(robust) == n_models and all("recipe=s1_" in w for w in robust), robust
    assert {r for r, _ in jobs} == {"evaluate_checkpoint", "make_table_study001",
                                    "plot_figure_study001", "evaluate_robustness",
                                    "make_masking_report", "judge_claims",
                                    "make_claims_report", "all"}, jobs


def test_changed_haat_xi_retrains_only_that_sweep_model(smoke_run):
    work, cfg = smoke_run

    def edit(c):
        c["recipes"]["s1_haat_xi1em3"]["regime"]["adversary"]["xi"] = 1.0e-4

    jobs = _changed_config(work, cfg, edit)
    trained = [w for r, w in jobs if r == "train_model"]
    assert len(trained) == 1 and "recipe=s1_haat_xi1em3" in trained[0], trained
    assert sum(r == "evaluate_checkpoint" for r, _ in jobs) == 2, jobs
    figures = [w.split("figure=")[1] for r, w in jobs if r == "plot_figure_study001"]
    assert figures == ["fig2a_xi_sweep"], figures
    robust = [w for r, w in jobs if r == "evaluate_robustness"]
    assert len(robust) == 1 and "recipe=s1_haat_xi1em3" in robust[0], robust
    assert {r for r, _ in jobs} == {"train_model", "evaluate_checkpoint", "make_table_study001",
                                    "plot_figure_study001", "evaluate_robustness",
                                    "make_masking_report", "judge_claims",
                                    "make_claims_report", "all"}, jobs



STUDY003_TABLES = ["table_pga_by_scale", "table_adversarial_training"]
STUDY003_FIGURES = ["fig_pga_loss_curves", "fig_iters_to_tolerance", "fig_local_maxima",
                    "fig_adversarial_training"]


def test_smoke_produces_study003_outputs(smoke_run):
    work, cfg = smoke_run
    s3 = cfg["studies"]["study003"]
    out = work / "results" / "study003" / "mnist"
    assert_tables_and_figures(out, STUDY003_TABLES, STUDY003_FIGURES)
    pga, at = s3["pga"], s3["adversarial_training"]
    scalings = at["lr_scalings"]
    scales = []
    for v in s3["variants"]:
        spec = cfg["variants"][v]
        s = spec.get("scale", 1.0)
        scales.append(s)
        for seed in s3["seeds"]:
            run = out / v / f"seed{seed}"
            # PGA on the shared initialisation, then on each lr scaling's trained network; at
            # s = 1 every scaling gives the same learning rate and the first one's run serves all
            runs = [scalings[0]] if s == 1.0 else scalings
            stages = [(run, "init")] + [(run / f"lr_{sc}", "trained") for sc in runs]
            for folder, stage in stages:
                ex = pd.read_csv(folder / f"pga_{stage}_examples.csv")
                assert len(ex) == pga["n_examples"]
                # the threat scales with the variant: radius and data range times s
                assert (ex["eps"] == s3["threat"]["eps"] * s).all() and (ex["data_hi"] == s).all()
                assert ex["iters_to_loss_tol"].between(0, pga["steps"]).all()
                assert ex["iters_to_climb"].between(0, pga["steps"]).all()
                assert ex["converged_share"].between(0, 1).all()
                m = ex["maxima_converged"].dropna()
                assert m.between(1, pga["starts"]).all()
                tr = pd.read_csv(folder / f"pga_{stage}_trace.csv")
                assert tr["iteration"].tolist() == list(range(pga["steps"] + 1))
                assert (tr["loss_mean"] >= 0).all()
            assert sorted(p.name for p in run.glob("lr_*")) == sorted(f"lr_{sc}" for sc in runs)
            for sc in runs:
                ep = pd.read_csv(run / f"lr_{sc}" / "epochs.csv")
                assert ep["epoch"].tolist() == list(range(1, at["epochs"] + 1))
                assert ep["robust_test_acc"].between(0, 1).all()
                steps = pd.read_csv(run / f"lr_{sc}" / "steps.csv")
                assert steps["step"].tolist() == list(range(1, len(steps) + 1))
    # the initialisation is shared: one per seed, whatever the scale
    inits = sorted(p.parent.name for p in (out / "init").glob("seed*/model.pt"))
    assert inits == [f"seed{s}" for s in s3["seeds"]]
    table = pd.read_csv(out / "table_pga_by_scale.csv")
    assert sorted(set(table["scale"])) == sorted(scales)
    assert set(table["stage"]) == {"init"} | {f"trained_{sc}" for sc in scalings}
    assert (table["n_seeds"] == len(s3["seeds"])).all()
    train = pd.read_csv(out / "table_adversarial_training.csv")
    assert len(train) == len(scalings) * len(scales)


def _study003_change(smoke_run, section: str, key: str, value):
    """Dry-run jobs after setting studies.study003.<section>.<key>, the number of (scale, seed)
    runs and the number of training runs (one per run and learning-rate scaling, except at
    s = 1, where every scaling gives the same learning rate and one run serves them all)."""
    work, cfg = smoke_run

    def edit(c):
        c["studies"]["study003"][section][key] = value

    s3 = cfg["studies"]["study003"]
    n_sc = len(s3["adversarial_training"]["lr_scalings"])
    n_scales = sum(cfg["variants"][v].get("scale", 1.0) != 1.0 for v in s3["variants"])
    n_trained = (n_scales * n_sc + len(s3["variants"]) - n_scales) * len(s3["seeds"])
    return _changed_config(work, cfg, edit), len(s3["variants"]) * len(s3["seeds"]), n_trained


def test_changed_pga_setting_reruns_only_attacks_and_pga_outputs(smoke_run):
    jobs, n_runs, n_trained = _study003_change(smoke_run, "pga", "starts", 2)
    assert sum(r == "attack_pga" for r, _ in jobs) == n_runs, jobs
    assert sum(r == "attack_pga_trained" for r, _ in jobs) == n_trained, jobs
    outputs = sorted(w.split("=")[-1] for r, w in jobs if r.endswith("_study003"))
    assert outputs == sorted(["table_pga_by_scale", "fig_pga_loss_curves",
                              "fig_iters_to_tolerance", "fig_local_maxima"]), outputs
    assert {r for r, _ in jobs} == {"attack_pga", "attack_pga_trained", "make_table_study003",
                                    "plot_figure_study003", "judge_claims",
                                    "make_claims_report", "all"}, jobs


def test_changed_training_setting_keeps_init_and_its_attacks(smoke_run):
    jobs, n_runs, n_trained = _study003_change(smoke_run, "adversarial_training", "lr", 0.01)
    assert sum(r == "train_pga_model" for r, _ in jobs) == n_trained, jobs
    assert sum(r == "attack_pga_trained" for r, _ in jobs) == n_trained, jobs
    assert not {"init_pga_model", "attack_pga"} & {r for r, _ in jobs}, jobs


def test_study003_cross_reference_error_names_the_key(smoke_run):
    def edit(c):
        c["studies"]["study003"]["variants"] = ["scale0p25", "poison10", "missing"]

    text = _config_error(*smoke_run, edit)
    assert "studies.study003.variants[2]: 'missing' is not in `variants`" in text, text[-2000:]
    assert "'poison10' has kind 'label_poison'" in text, text[-2000:]


def _config_error(work, cfg, edit) -> str:
    """Dry-run with an edited copy of the config, which must fail; its output."""
    bad = yaml.safe_load(yaml.safe_dump(cfg))
    edit(bad)
    (work / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = run_snakemake(work, "--configfile", "bad.yaml", "-n", "--cores", "1", check=False)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_study001_cross_reference_error_names_the_key(smoke_run):
    def edit(c):
        block = c["studies"]["study001"]["datasets"]["mnist"]
        block["models"]["haat"] = "s1_pgd"
        block["pgd"] = "pgd_missing"
        del c["recipes"]["s1_haat_k1"]["regime"]["adversary"]["k"]

    text = _config_error(*smoke_run, edit)
    assert "studies.study001.datasets.mnist.models.haat" in text and "no haat adversary" in text
    assert "studies.study001.datasets.mnist.pgd" in text, text[-2000:]
    assert "studies.study001.datasets.mnist.k_sweep" in text and "'k'" in text, text[-2000:]


def test_study002_cross_reference_error_names_the_key(smoke_run):
    def edit(c):
        c["studies"]["study002"]["datasets"]["mnist"]["regimes"]["ours"] = "m2_missing"
        c["studies"]["study002"]["datasets"]["mnist"]["curve"] = "pgd_missing"

    text = _config_error(*smoke_run, edit)
    assert "studies.study002.datasets.mnist.regimes.ours" in text, text[-2000:]
    assert "studies.study002.datasets.mnist.curve" in text, text[-2000:]


def test_nothing_stale_after_a_complete_run(smoke_run):
    work, _ = smoke_run
    proc = run_snakemake(work, "--configfile", "smoke.yaml", "-n", "--cores", "1")
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_changed_eps_reruns_attacks_and_tables_only(smoke_run):
    work, cfg = smoke_run
    cfg = yaml.safe_load(yaml.safe_dump(cfg))
    cfg["attacks"]["fgsm_paper"]["eps"] = [0.1, 0.05, 0.02]
    (work / "changed.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(work, "--configfile", "changed.yaml", "-n", "--cores", "1")
    counts = job_counts(proc.stdout)
    assert counts.get("attack_model", 0) > 0 and counts.get("make_table_study000", 0) > 0, counts
    # FGSM enters the worst case of study 000's models (not of the others)
    assert set(counts) <= {"attack_model", "make_table_study000", "evaluate_robustness",
                           "make_masking_report", "judge_claims", "make_claims_report", "all"}, counts


@pytest.mark.parametrize("path,value,key", [
    (("attacks", "fgsm_paper", "eps"), [-0.1], "eps"),
    (("variants", "poison10", "fraction"), 1.0, "fraction"),
    (("recipes", "cnn_sgd", "epochs"), "three", "epochs"),
    (("recipes", "cnn_sgd", "learning_rate"), 0.1, "learning_rate"),
])
def test_schema_violation_names_the_key(smoke_run, path, value, key):
    work, cfg = smoke_run
    bad = yaml.safe_load(yaml.safe_dump(cfg))
    node = bad
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    (work / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = run_snakemake(work, "--configfile", "bad.yaml", "-n", "--cores", "1", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert key in text and "Building DAG" not in text, text[-2000:]


def test_cross_reference_error_names_the_key(smoke_run):
    work, cfg = smoke_run
    bad = yaml.safe_load(yaml.safe_dump(cfg))
    bad["studies"]["study000"]["recipes"]["gn"] = "cnn_missing"
    (work / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = run_snakemake(work, "--configfile", "bad.yaml", "-n", "--cores", "1", check=False)
    assert proc.returncode != 0
    assert "studies.study000.recipes.gn" in proc.stdout + proc.stderr


def test_report_builds_with_every_table_and_figure(smoke_run):
    work, _ = smoke_run
    run_snakemake(work, "--configfile", "smoke.yaml", "--report", "report.html")
    html = (work / "report.html").read_text()
    for name in ("table1_fgsm_clean.csv", "table2_fgsm_poisoned.csv", "table3_sam_median.csv",
                 "table1b_fgsm_matched_loss.csv", "table1c_fgsm_matched_accuracy.csv",
                 "training_summary.csv", "claims.csv", "claims.md",
                 "fig2_input_grad_norm.png", "fig3_logit_margin.png", "table1_mnist.csv",
                 "fig6_decision_surface_mnist.png", "fig_indicator_scatter.png",
                 "table_robust_accuracy.csv", "table_hvp_error.csv", "fig4_fd_convergence.png",
                 "fig2a_xi_sweep.png", "table_pga_by_scale.csv", "fig_local_maxima.png",
                 "fig_adversarial_training.png", "masking.csv", "masking.md"):
        assert name in html, name


def _scheduled_jobs(output: str) -> list[tuple[str, str]]:
    """(rule, wildcards line) of every job in a dry run's output."""
    jobs, rule = [], None
    for line in output.splitlines():
        m = re.match(r"rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
            jobs.append([rule, ""])
        elif line.strip().startswith("wildcards:") and jobs:
            jobs[-1][1] = line.strip()
    return [tuple(j) for j in jobs]


def test_changed_optimizer_hyperparameter_retrains_only_that_optimizer(smoke_run):
    work, cfg = smoke_run
    changed = yaml.safe_load(yaml.safe_dump(cfg))
    changed["recipes"]["cnn_adam"]["optimizer"]["lr"] = 0.002
    (work / "changed.yaml").write_text(yaml.safe_dump(changed))
    proc = run_snakemake(work, "--configfile", "changed.yaml", "-n", "--cores", "1")
    jobs = _scheduled_jobs(proc.stdout)
    trained = [w for r, w in jobs if r == "train_model"]
    assert len(trained) == 4 and all("recipe=cnn_adam" in w for w in trained), trained
    assert not any("cnn_sgd" in w or "cnn_gn," in w for r, w in jobs
                   if r in ("train_model", "compute_input_stats", "compute_sharpness")), jobs
    # study 002's indicator scatter holds every model, study 000's included; the clean Adam
    # model is MNIST's transfer source, so every MNIST model's robust evaluation reruns, and
    # with it every table that shows one (the validity gate)
    assert {r for r, _ in jobs} <= {"train_model", "match_checkpoint", "attack_model",
                                    "compute_input_stats", "compute_sharpness", "make_table_study000",
                                    "plot_figure_study000", "compute_indicator", "plot_figure_study002",
                                    "craft_transfer", "evaluate_robustness", "make_masking_report",
                                    "judge_claims", "make_claims_report",
                                    "make_table_study001", "make_table_study002", "all"}
    assert not any("m2_" in w for r, w in jobs if r != "evaluate_robustness"), jobs


def test_edited_plotting_code_reruns_only_figures(smoke_run):
    work, _ = smoke_run
    plots = work / "lib" / "curvrobust" / "reports" / "plots.py"
    st, text = plots.stat(), plots.read_text()
    try:
        # a real edit: Snakemake checksums small inputs, so touching alone reruns nothing
        plots.write_text(text + "\n# edited\n")
        proc = run_snakemake(work, "--configfile", "smoke.yaml", "-n", "--cores", "1")
        counts = job_counts(proc.stdout)
        assert counts.get("plot_figure_study000") == 4, counts
        assert counts.get("plot_figure_study002") == len(STUDY002_FIGURES), counts
        assert counts.get("plot_figure_study001") == len(STUDY001_FIGURES), counts
        assert counts.get("plot_figure_study003") == len(STUDY003_FIGURES), counts
        assert set(counts) == {"plot_figure_study000", "plot_figure_study001", "plot_figure_study002",
                               "plot_figure_study003", "all"}, counts
    finally:
        plots.write_text(text)
        os.utime(plots, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_sigterm_during_training_leaves_no_partial_output(smoke_run):
    work, cfg = smoke_run
    slow = yaml.safe_load(yaml.safe_dump(cfg))
    slow["recipes"]["cnn_gn"]["epochs"] = 80
    (work / "slow.yaml").write_text(yaml.safe_dump(slow))
    mdir = work / "results/models/mnist/clean/cnn_gn/seed42"
    log = work / "results/logs/train_model/mnist_clean_cnn_gn_seed42.log"
    target = str(mdir.relative_to(work) / "model.pt")
    cmd = [*SNAKEMAKE, "--configfile", "slow.yaml", "--cores", "1", target]
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if log.exists() and "epoch 2/80" in log.read_text():
                break
            time.sleep(0.2)
        else:
            raise AssertionError("training did not start")
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for name in ("model.pt", "epochs.csv", "checkpoints.csv", "checkpoints"):
        assert not (mdir / name).exists(), name
    assert not list(mdir.glob("*.tmp")) and not list(mdir.glob(".*.tmp"))
    run_snakemake(work, "--configfile", "slow.yaml", "--cores", "1", target)
    assert (mdir / "model.pt").is_file()
    assert len(pd.read_csv(mdir / "epochs.csv")) == 80


def test_job_logs_record_provenance(smoke_run):
    import json

    work, _ = smoke_run
    log = work / "results/logs/train_model/mnist_clean_cnn_gn_seed42.log"
    line = next(l for l in log.read_text().splitlines() if " provenance " in l)
    prov = json.loads(line.split(" provenance ", 1)[1])
    assert prov["rule"] == "train_model"
    assert prov["wildcards"]["recipe"] == "cnn_gn"
    assert prov["params"]["recipe"]["optimizer"]["name"] == "gauss_newton"
    assert prov["packages"]["torch"].startswith("2.14.1")
    assert set(prov["git"]) == {"commit", "dirty"}
    text = log.read_text()
    assert "device: cpu" in text and "job finished after" in text
    assert re.search(r"epoch \d+/\d+: train loss", text)   # per-epoch progress stays in the log
    mdir = work / "results/models/mnist/clean/cnn_gn/seed42"
    side = json.loads((mdir / "model.pt.prov.json").read_text())
    assert side["params_sha256"] == prov["params_sha256"] and side["wall_time_s"] > 0
    from curvrobust.utils import sha256_file
    assert side["sha256"] == sha256_file(mdir / "model.pt")   # what the loaders check
    assert (mdir / "checkpoints.prov.json").is_file()
    assert (work / "results/study000/mnist/table1_fgsm_clean.csv.prov.json").is_file()


def test_config_without_study003_schedules_none_of_it(smoke_run):
    """An older configuration with no studies.study003 block still parses (the block is
    optional in the schema) and schedules nothing of the study."""
    work, cfg = smoke_run

    def study003_rules(jobs):
        return {r for r, _ in jobs if "pga" in r or r.endswith("_study003")}

    # --forceall lists the whole DAG, not only what is out of date after the smoke run
    assert study003_rules(_changed_config(work, cfg, lambda c: None, "--forceall")) == {
        "init_pga_model", "train_pga_model", "attack_pga", "attack_pga_trained",
        "make_table_study003", "plot_figure_study003"}
    jobs = _changed_config(work, cfg, lambda c: c["studies"].pop("study003"), "--forceall")
    assert jobs and not study003_rules(jobs), jobs


def test_edited_study_report_reruns_only_that_studys_jobs(smoke_run):
    """Judging one study's claims imports only that study's report: an edit to study 003's
    reruns its tables, figures and claims, and the page of every study's claims, nothing
    else. (Compared with a dry run before the edit: an earlier test may leave jobs to do.)"""
    work, _ = smoke_run
    report = work / "lib" / "curvrobust" / "reports" / "study003.py"
    st, text = report.stat(), report.read_text()
    dry = ("--configfile", "smoke.yaml", "-n", "--cores", "1")
    before = set(_scheduled_jobs(run_snakemake(work, *dry).stdout))
    try:
        report.write_text(text + "\n# edited\n")
        added = set(_scheduled_jobs(run_snakemake(work, *dry).stdout)) - before
        rules = {r for r, _ in added}
        assert rules <= {"make_table_study003", "plot_figure_study003", "judge_claims",
                         "make_claims_report", "all"}, added
        assert {"make_table_study003", "plot_figure_study003", "judge_claims"} <= rules, added
        assert [w for r, w in added if r == "judge_claims"] == ["wildcards: study=study003"]
    finally:
        report.write_text(text)
        os.utime(report, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_truncated_model_fails_its_job_naming_the_file(smoke_run):
    """A model truncated after its job wrote it: the job that loads it stops with the file,
    the cause and the rebuild command, not a bare OSError from deep in torch. (Last in this
    file: the failed job's outputs are restored afterwards.)"""
    work, _ = smoke_run
    model = work / "results/models/mnist/clean/cnn_adam/seed42/model.pt"
    target = "results/attacks/mnist/clean/cnn_adam/seed42/final/fgsm_paper.csv"
    keep = [model, *(work / target).parent.glob("fgsm_paper*")]
    saved = {f: (f.read_bytes(), f.stat()) for f in keep}
    try:
        model.write_bytes(saved[model][0][: len(saved[model][0]) // 2])
        proc = run_snakemake(work, "--configfile", "smoke.yaml", "--cores", "1", "--force",
                             target, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert (f"{model.relative_to(work)}: this trained model is not the one its job wrote"
                in out), out[-3000:]
        assert f"rebuild it: snakemake --cores all --force {model.relative_to(work)}" in out
    finally:
        for f, (data, st) in saved.items():
            f.write_bytes(data)
            os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
