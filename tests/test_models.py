import math

import torch

from curvrobust.models import (build_model, count_parameters, lecun_normal_, load_model,
                               save_checkpoint)


def test_study_cnn_has_6794_parameters_and_shapes():
    m = build_model("cnn000")
    assert count_parameters(m) == 6794
    shapes = [tuple(p.shape) for p in m.parameters()]
    assert shapes == [(4, 1, 3, 3), (4,), (8, 4, 3, 3), (8,), (16, 392), (16,), (10, 16), (10,)]
    assert m(torch.rand(5, 1, 28, 28)).shape == (5, 10)


def test_biases_zero_and_weights_lecun_normal():
    torch.manual_seed(0)
    m = build_model("cnn000")
    fc1 = m.classifier[1]
    assert torch.count_nonzero(fc1.bias) == 0
    # variance 1/fan_in (truncated normal rescaled), bounded by 2 untruncated std
    w = fc1.weight.detach()
    assert abs(w.var().item() * 392 - 1.0) < 0.05
    std = math.sqrt(1 / 392) / 0.87962566103423978
    assert w.abs().max().item() <= 2 * std + 1e-7
    big = lecun_normal_(torch.empty(400, 1000))
    assert abs(big.var().item() * 1000 - 1.0) < 0.02


def test_unknown_architecture_lists_known():
    try:
        build_model("nope")
    except KeyError as e:
        assert "cnn000" in str(e)
    else:
        raise AssertionError("expected KeyError")


def test_checkpoint_roundtrip(tmp_path):
    m = build_model("cnn000")
    save_checkpoint(tmp_path / "m.pt", m, "cnn000", {}, step=3)
    m2 = load_model(tmp_path / "m.pt")
    assert not m2.training
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(m.eval()(x), m2(x))


def test_checkpoint_of_another_architecture_is_named(tmp_path):
    import pytest

    wide = build_model("cnn000", hidden=32)
    save_checkpoint(tmp_path / "wrong.pt", wide, "cnn000", {})  # claims the default widths
    with pytest.raises(ValueError, match=r"wrong\.pt.*do not fit architecture 'cnn000'"):
        load_model(tmp_path / "wrong.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt: not a curvrobust checkpoint"):
        load_model(tmp_path / "other.pt")
