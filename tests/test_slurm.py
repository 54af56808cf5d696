"""Run a small target of the smoke configuration through a real single-node SLURM (Debian's
slurmctld/slurmd/munge on localhost) with `--profile profiles/slurm`, and compare it with a
local run. Skipped, with the reason, where the SLURM daemons or root are not available
(`.ci/run` installs them with apt-get)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_workflow import COPY, REPO

pytestmark = pytest.mark.workflow
SLURM_DIR = REPO / "tests" / "slurm"
TARGET = "results/study000/mnist/table1_fgsm_clean.csv"

missing = [b for b in ("slurmctld", "slurmd", "munged", "sbatch", "squeue") if not shutil.which(b)]
if missing:
    pytest.skip(f"SLURM not installed ({', '.join(missing)} missing; `.ci/run` installs "
                "munge slurmctld slurmd slurm-client with apt-get)", allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("starting slurmctld/slurmd here needs root", allow_module_level=True)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running single-node SLURM; daemons stopped by PID whatever happens."""
    d = tmp_path_factory.mktemp("slurm")
    try:
        subprocess.run(["bash", str(SLURM_DIR / "start_slurm.sh"), str(d)], check=True,
                       timeout=120, capture_output=True, text=True)
        yield {"SLURM_CONF": str(d / "slurm.conf")}
    except subprocess.CalledProcessError as e:
        pytest.fail(f"could not start SLURM: {e.stderr}")
    finally:
        subprocess.run(["bash", str(SLURM_DIR / "stop_slurm.sh"), str(d)], timeout=60)


def _workdir(tmp_path: Path, real_mnist_dir: Path, **study_overrides) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in [*COPY, "profiles"]:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg["datasets"]["mnist"] = {"sources": ["local"], "local_dir": str(real_mnist_dir)}
    s = cfg["studies"]["study000"]
    s.update(recipes={"gn": "cnn_gn"}, seeds=[42])
    s.pop("seeds_per_recipe", None)
    s.pop("match", None)
    s.pop("headline", None)
    for k, v in study_overrides.items():
        cfg["variants"]["clean"][k] = v
    (tmp_path / "slurm_test.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


SLURM_ARGS = [
    "--profile", "profiles/slurm",
    # the test overlay: this cluster's partition, no account, fast polling
    "--default-resources", "slurm_partition=debug", "runtime=10", "mem_mb=1000",
    "cpus_per_task=1",
    "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "1",
    "--seconds-between-status-checks", "2", "--retries", "0", "--latency-wait", "5",
]


def _snakemake(workdir: Path, env_extra: dict[str, str], *args: str):
    env = dict(os.environ, **env_extra)
    cmd = ["timeout", "-k", "10", "500", sys.executable, "-m", "snakemake",
           "--configfile", "slurm_test.yaml", *args]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)


def test_slurm_run_matches_local_run(slurm, tmp_path, real_mnist_dir):
    remote = _workdir(tmp_path / "slurm", real_mnist_dir)
    local = _workdir(tmp_path / "local", real_mnist_dir)
    p = _snakemake(remote, slurm, *SLURM_ARGS, TARGET)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    q = _snakemake(local, {}, "--cores", "2", TARGET)
    assert q.returncode == 0, q.stdout[-3000:] + q.stderr[-3000:]

    logs = {f.relative_to(remote / "results/logs"): f.read_text()
            for f in (remote / "results/logs").rglob("*.log")}
    # fetch (a local rule) + 6 cluster jobs: make_variant, train_model, attack_model twice
    # (the study's FGSM, and study 002's PGD curve, which enters the model's worst case),
    # evaluate_robustness and the table
    assert len(logs) == 7, sorted(map(str, logs))
    assert sorted(n.parts[0] for n in logs) == [
        "attack_model", "attack_model", "evaluate_robustness", "fetch_dataset",
        "make_table_study000", "make_variant", "train_model"], sorted(map(str, logs))
    for name, text in logs.items():
        if name.parts[0] == "fetch_dataset":
            assert "SLURM_JOB_ID=none" in text  # a localrule: cluster nodes may lack internet
        else:
            assert "SLURM_JOB_ID=none" not in text and "SLURM_JOB_ID=" in text, name
    # the CPU profile asks for no GPU
    assert not any(_gres_of(j, slurm) for j in _job_ids(remote, "train_model"))
    for rel in [TARGET, "results/attacks/mnist/clean/cnn_gn/seed42/final/fgsm_paper.csv",
                "results/models/mnist/clean/cnn_gn/seed42/checkpoints.csv"]:
        assert (remote / rel).read_bytes() == (local / rel).read_bytes(), rel


def test_failing_slurm_job_fails_the_run_and_names_its_log(slurm, tmp_path, real_mnist_dir):
    work = _workdir(tmp_path, real_mnist_dir, subset={"train": 10**7, "test": 300})
    p = _snakemake(work, slurm, *SLURM_ARGS, TARGET)
    out = p.stdout + p.stderr
    assert p.returncode not in (0, 124, 137), out[-3000:]
    assert "results/logs/make_variant/mnist_clean.log" in out, out[-3000:]


def _job_ids(workdir: Path, rule: str) -> list[str]:
    ids = []
    for f in (workdir / "results/logs" / rule).glob("*.log"):
        for line in f.read_text().splitlines():
            if "SLURM_JOB_ID=" in line:
                ids.append(line.split("SLURM_JOB_ID=")[1].split()[0])
    return ids


def _gres_of(job_id: str, env: dict[str, str]) -> str:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True,
                         env=dict(os.environ, **env), timeout=30).stdout
    return " ".join(t for t in out.split()
                    if t.startswith(("Tres", "TRES=", "Gres=")) and "gpu" in t.lower())


def test_gpu_profile_asks_gpus_for_training_only(slurm, tmp_path, real_mnist_dir):
    work = _workdir(tmp_path, real_mnist_dir)
    args = [a if a != "profiles/slurm" else "profiles/slurm-gpu" for a in SLURM_ARGS]
    p = _snakemake(work, slurm, *args, TARGET)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    train, variant = _job_ids(work, "train_model"), _job_ids(work, "make_variant")
    assert train and variant
    assert all("gpu" in _gres_of(j, slurm) for j in train), [_gres_of(j, slurm) for j in train]
    assert not any(_gres_of(j, slurm) for j in variant), [_gres_of(j, slurm) for j in variant]
