"""Loaders of result files fail clearly: a missing, truncated, corrupted or swapped file is
reported with its path, the cause and the command that rebuilds it, before anything uses it.
Jobs record each output's sha256 in its provenance sidecar; the loaders check it."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from curvrobust.data.variants import load_variant, make_variant
from curvrobust.evaluation.outcomes import OUTCOME_COLUMNS, read_outcomes
from curvrobust.models import build_model, load_model, save_checkpoint
from curvrobust.utils import ResultFileError, check_result_file, sha256_file, sidecar_path
from curvrobust.workflow.jobs import write_sidecars

REBUILD = re.escape("rebuild it: snakemake --cores all --force ")


def _model_file(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    kwargs = {"in_features": 4, "width": 3}
    save_checkpoint(path, build_model("twolayer", **kwargs), "twolayer", kwargs)
    return path


def _as_job_output(path: Path, rule: str = "train_model") -> None:
    """Write the sidecar the workflow's job would (curvrobust.workflow.jobs)."""
    assert write_sidecars([str(path)], {"rule": rule}, started_at=time.time() - 5)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_job_records_each_outputs_digest(tmp_path):
    f = _model_file(tmp_path / "model.pt", 0)
    _as_job_output(f)
    prov = json.loads(sidecar_path(f).read_text())
    assert prov["sha256"] == sha256_file(f) and prov["rule"] == "train_model"
    assert check_result_file(f) == f


def test_a_truncated_model_without_provenance_names_the_file_and_the_cause(tmp_path):
    f = _model_file(tmp_path / "model.pt", 0)
    _truncate(f)
    with pytest.raises(ResultFileError, match=re.escape(f"{f}: cannot read this trained model")
                       + ".*truncated.*" + REBUILD + re.escape(str(f))):
        load_model(f)


def test_a_truncated_model_is_reported_against_its_recorded_digest(tmp_path):
    f = _model_file(tmp_path / "model.pt", 0)
    _as_job_output(f)
    _truncate(f)
    with pytest.raises(ResultFileError, match=re.escape(f"{f}: this trained model is not the "
                                                        "one its job wrote")
                       + ".*rule train_model.*" + REBUILD):
        load_model(f)


def test_a_swapped_model_is_reported_although_it_loads(tmp_path):
    a = _model_file(tmp_path / "a.pt", 0)
    b = _model_file(tmp_path / "b.pt", 1)
    _as_job_output(a)
    _as_job_output(b)
    shutil.copyfile(b, a)               # a valid checkpoint, but not the one a's job wrote
    load_model(b)
    with pytest.raises(ResultFileError, match="corrupted, truncated or replaced"):
        load_model(a)


def test_a_missing_model_says_how_to_build_it(tmp_path):
    with pytest.raises(ResultFileError, match=re.escape(f"{tmp_path / 'x.pt'}: no such trained "
                                                        "model; build it: snakemake")):
        load_model(tmp_path / "x.pt")


def _outcomes(path: Path) -> Path:
    pd.DataFrame([dict(attack="fgsm", eps=0.1, index=i, label=0, correct=1, attacked=1,
                       success=i % 2, margin=0.5) for i in range(50)],
                 columns=list(OUTCOME_COLUMNS)).to_csv(path, index=False)
    return path


def test_outcome_files_truncated_or_empty(tmp_path):
    f = _outcomes(tmp_path / "images.csv")
    _as_job_output(f, "attack_model")
    assert len(read_outcomes(f)) == 50
    _truncate(f)                        # still parses (fewer rows): only the digest tells
    with pytest.raises(ResultFileError, match="rule attack_model"):
        read_outcomes(f)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ResultFileError, match=re.escape(f"{empty}: cannot read this outcome "
                                                        "file")):
        read_outcomes([empty])


def test_variant_split_truncated(fake_mnist_root, tmp_path):
    out = tmp_path / "v"
    make_variant(fake_mnist_root, "mnist", {"kind": "clean"}, out, seed=0)
    _truncate(out / "test.pt")
    with pytest.raises(ResultFileError, match="does not match manifest.*" + REBUILD):
        load_variant(out, "test")
    with pytest.raises(ResultFileError, match=re.escape(f"{out / 'test.pt'}: cannot read this "
                                                        "variant split")):
        load_variant(out, "test", verify=False)
    (out / "test.pt").unlink()
    with pytest.raises(ResultFileError, match="no such variant split"):
        load_variant(out, "test")


def test_an_unreadable_sidecar_leaves_the_decision_to_the_loader(tmp_path):
    f = _model_file(tmp_path / "model.pt", 0)
    sidecar_path(f).write_text("{not json")
    assert isinstance(load_model(f), torch.nn.Module)
