"""Study 000 beyond MNIST: the whole study-000 chain (variants, the four optimizers, FGSM with
its own radii, statistics, the robust evaluation, tables, figures and claims) through snakemake
on generated CIFAR-10-format files (3×32×32), the study's CNN fitted to them from the data.

The generated files are fetched with their own MD5s, as `fetch_dataset` would fetch the real
archive with the real ones (the workflow's rule checks the real MD5s, which these files fail, as
they should)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
import yaml

from curvrobust.data.sources import DATASETS, fetch_dataset, with_md5
from test_workflow import COPY, REPO, assert_tables_and_figures, run_snakemake

pytestmark = pytest.mark.workflow

TABLES = ["table1_fgsm_clean", "table2_fgsm_poisoned", "table1b_fgsm_matched_loss",
          "table1c_fgsm_matched_accuracy", "table3_sam_median", "training_summary"]
FIGURES = ["fig2_input_grad_norm", "fig3_logit_margin", "fig_sam_per_example",
           "fig_training_curves"]


def cifar_config(smoke: dict, local_dir: str) -> dict:
    """The smoke preset's study 000 on CIFAR-10 only (studies 001-003 off), 8-bit radii."""
    cfg = dict(smoke)
    cfg["datasets"] = {"cifar10": {"sources": ["local"], "local_dir": local_dir}}
    cfg["variants"] = {"clean": {"kind": "clean"},
                       "poison10": {"kind": "label_poison", "fraction": 0.1, "seed": 0}}
    cfg["recipes"] = {k: v for k, v in smoke["recipes"].items() if k.startswith("cnn_")}
    for r in cfg["recipes"].values():
        r["batch_size"] = 50
    cfg["attacks"] = {"fgsm_paper": smoke["attacks"]["fgsm_paper"],
                      "fgsm_cifar": {"kind": "fgsm", "eps": [8 / 255, 2 / 255], "n_examples": "all"}}
    s0 = dict(smoke["studies"]["study000"], datasets=["cifar10"],
              attack_by_dataset={"cifar10": "fgsm_cifar"})
    cfg["studies"] = {"study000": s0}
    for name in ("study001", "study002", "study003"):
        cfg["studies"][name] = dict(smoke["studies"][name], enabled=False)
    rob = dict(smoke["robustness"])
    rob["n_examples"] = 40
    rob["transfer"] = {"cifar10": {"variant": "clean", "recipe": "cnn_adam", "seed": 42}}
    rob["validity"] = dict(rob["validity"], min_accuracy={"cifar10": 0.0})
    cfg["robustness"] = rob
    return cfg


@pytest.fixture
def cifar_run(tmp_path, write_fake_cifar10):
    work = tmp_path / "wf_cifar"
    work.mkdir()
    for name in COPY:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    fake = write_fake_cifar10(work / "fake", n_per_batch=40, n_test=60, seed=1)
    raw = work / "results" / "data" / "cifar10" / "raw"
    fetch_dataset("cifar10", raw, ["local"], local_dir=fake.root,
                  spec=with_md5(DATASETS["cifar10"], fake.md5), log=lambda *_: None)
    smoke = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg = cifar_config(smoke, str(fake.root))
    (work / "cifar.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(work, "--configfile", "cifar.yaml", "--cores", "2")
    return work, cfg, proc


def test_study000_chain_runs_on_cifar_format_data(cifar_run):
    work, cfg, proc = cifar_run
    assert "fetch_dataset" not in proc.stdout + proc.stderr  # the fetched files were used
    out = work / "results" / "study000" / "cifar10"
    assert_tables_and_figures(out, TABLES, FIGURES)
    # the study's CNN was fitted to 3×32×32 inputs from the data, the recipe unchanged
    ckpt = torch.load(work / "results/models/cifar10/clean/cnn_gn/seed42/model.pt",
                      map_location="cpu", weights_only=False)
    assert ckpt["arch"] == "cnn000"
    assert ckpt["arch_kwargs"] == {"in_channels": 3, "image_size": 32}
    assert "in_channels" not in cfg["recipes"]["cnn_gn"].get("arch_kwargs", {})
    # FGSM ran with the data set's own radii, on every test image
    t1 = pd.read_csv(out / "table1_fgsm_clean.csv")
    assert list(t1["optimizer"]) == ["adam", "sgd", "gn", "kfac"]
    assert not any(c.startswith("paper") for c in t1.columns)  # the study has no CIFAR numbers
    fgsm = pd.read_csv(work / "results/attacks/cifar10/clean/cnn_adam/seed42/final/fgsm_cifar.csv")
    assert sorted(fgsm["eps"]) == pytest.approx([2 / 255, 8 / 255])
    md = (out / "table1_fgsm_clean.md").read_text()
    assert "CIFAR-10" in md and "the study ran MNIST only" in md
    # claims: MNIST's read "not run", CIFAR-10's are judged at its own largest radius
    claims = pd.read_csv(work / "results" / "claims.csv").set_index("id")
    assert claims.loc["000-gn-adam-fgsm-clean-0.1", "verdict"] == "not run"
    cid = f"000-cifar10-gn-adam-fgsm-clean-{8 / 255:g}"
    assert claims.loc[cid, "verdict"] not in ("not run", "not evaluable")
    assert claims.loc[f"000-cifar10-kfac-gn-worst-clean-{8 / 255:g}", "verdict"] != "not run"
    assert claims.loc["000-fashion_mnist-gn-adam-fgsm-clean-0.1", "verdict"] == "not run"
    # the variant was built from the fetched files, checked against the MD5s fetch recorded
    manifest = json.loads((work / "results/data/cifar10/clean/manifest.json").read_text())
    raw = json.loads((work / "results/data/cifar10/raw/manifest.json").read_text())
    assert manifest["dataset"] == "cifar10"
    assert manifest["raw_source"]["md5"] == {f: r["md5"] for f, r in raw["files"].items()}
    assert manifest["raw_source"]["md5"] != dict(DATASETS["cifar10"].md5)
    assert (manifest["splits"]["train"]["n"], manifest["splits"]["test"]["n"]) == (200, 60)
