import math

import torch

from curvrobust.models import build_model, count_parameters, load_model, save_checkpoint
from curvrobust.models.networks import lecun_normal_


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


# --- study 002 architectures -------------------------------------------------------------

def _conv(cin, cout, k):
    return cin * cout * k * k + cout


def _lin(fin, fout):
    return fin * fout + fout


def test_study002_parameter_counts_by_formula():
    import pytest

    mnist = build_model("mnist002")
    expected = _conv(1, 32, 5) + _conv(32, 64, 5) + _lin(64 * 7 * 7, 1024) + _lin(1024, 10)
    assert count_parameters(mnist) == expected == 3_274_634  # Madry et al.'s MNIST net
    cifar = build_model("cifar002")
    assert count_parameters(cifar) == (_conv(3, 64, 3) + _conv(64, 128, 3) + _conv(128, 128, 3)
                                       + _conv(128, 256, 3) + _conv(256, 10, 1))
    narrow = build_model("mnist002", widths=[4, 6], hidden=20, kernel=3)
    assert count_parameters(narrow) == (_conv(1, 4, 3) + _conv(4, 6, 3) + _lin(6 * 49, 20)
                                        + _lin(20, 10))
    with pytest.raises(ValueError, match="widths"):
        build_model("cifar002", widths=[8, 8])


def test_study002_output_shapes_and_activations():
    import pytest
    from torch import nn

    for act, kind in (("relu", nn.ReLU), ("softplus", nn.Softplus)):
        m = build_model("mnist002", widths=(4, 6), hidden=16, activation=act)
        assert m(torch.rand(3, 1, 28, 28)).shape == (3, 10)
        assert sum(isinstance(l, kind) for l in m.modules()) == 3
        c = build_model("cifar002", widths=(4, 6, 6, 8), activation=act, softplus_beta=5.0)
        assert c(torch.rand(2, 3, 32, 32)).shape == (2, 10)
        assert sum(isinstance(l, kind) for l in c.modules()) == 4
        if act == "softplus":
            assert all(l.beta == 5.0 for l in c.modules() if isinstance(l, nn.Softplus))
    # any spatial size works with global average pooling; odd sizes for the MNIST net floor
    assert build_model("cifar002", widths=(4, 4, 4, 4))(torch.rand(1, 3, 20, 20)).shape == (1, 10)
    assert build_model("mnist002", widths=(2, 2), hidden=4, image_size=30)(
        torch.rand(1, 1, 30, 30)).shape == (1, 10)
    with pytest.raises(ValueError, match="'gelu'"):
        build_model("mnist002", activation="gelu")


def test_softplus_has_input_curvature_relu_does_not():
    """ReLU nets are piecewise linear in x (Hessian 0 a.e.); softplus nets are not."""
    from torch.autograd.functional import hvp

    torch.manual_seed(0)
    x = torch.rand(1, 1, 28, 28, dtype=torch.float64)
    v = torch.randn(1, 1, 28, 28, dtype=torch.float64)
    for act in ("relu", "softplus"):
        m = build_model("mnist002", widths=(3, 4), hidden=8, activation=act).double()
        _, hv = hvp(lambda xx: m(xx)[0, 3], x, v)
        assert (hv.abs().max() > 1e-8) == (act == "softplus")


def test_study002_checkpoint_roundtrip_with_list_widths(tmp_path):
    kw = {"widths": [4, 6, 6, 8], "activation": "softplus", "softplus_beta": 3.0}  # as from YAML
    c = build_model("cifar002", **kw)
    save_checkpoint(tmp_path / "c.pt", c, "cifar002", kw)
    c2 = load_model(tmp_path / "c.pt")
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(c.eval()(x), c2(x))
    m = build_model("mnist002", widths=(4, 6), hidden=16)
    save_checkpoint(tmp_path / "m.pt", m, "mnist002", {"widths": (4, 6), "hidden": 16})
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(m.eval()(x), load_model(tmp_path / "m.pt")(x))


# --- ResNet18 for CIFAR ------------------------------------------------------------------

def test_resnet18_cifar_shape_parameters_and_stem():
    from torch import nn

    torch.manual_seed(0)
    m = build_model("resnet18_cifar").eval()
    assert count_parameters(m) == 11_173_962
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert not any(isinstance(l, nn.MaxPool2d) for l in m.modules())
    c1 = m.conv1
    assert (c1.in_channels, c1.out_channels, c1.kernel_size, c1.stride, c1.padding) == (
        3, 64, (3, 3), (1, 1), (1, 1)) and c1.bias is None
    # the stride-1 stem keeps 32×32 for the first stage (torchvision's ImageNet stem: 8×8)
    assert m.layer1(m.relu(m.bn1(m.conv1(torch.rand(1, 3, 32, 32))))).shape == (1, 64, 32, 32)
    gray = build_model("resnet18_cifar", in_channels=1, num_classes=5)
    assert gray(torch.rand(2, 1, 28, 28)).shape == (2, 5)


def test_resnet18_cifar_checkpoint_roundtrip_with_batchnorm_buffers(tmp_path):
    torch.manual_seed(0)
    m = build_model("resnet18_cifar")
    m.train()
    with torch.no_grad():
        m(torch.rand(4, 3, 32, 32))  # moves the BatchNorm running statistics off their init
    save_checkpoint(tmp_path / "r.pt", m, "resnet18_cifar", {})
    m2 = load_model(tmp_path / "r.pt")
    assert not m2.training
    assert torch.equal(m.bn1.running_mean, m2.bn1.running_mean)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(m.eval()(x), m2(x))


# --- study 003: two-layer net with a scalar output --------------------------------------------

import pytest  # noqa: E402

from curvrobust.models.networks import TwoLayerNet, make_activation


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("bias,train_a,expected", [
    (False, False, 784 * 256), (True, False, 784 * 256 + 256),
    (False, True, 784 * 256 + 256), (True, True, 784 * 256 + 2 * 256)])
def test_twolayer_parameter_count_and_scalar_output(bias, train_a, expected):
    torch.manual_seed(0)
    m = build_model("twolayer", bias=bias, train_second_layer=train_a)
    assert isinstance(m, TwoLayerNet)
    assert count_parameters(m) == expected
    names = dict(m.named_parameters())
    assert ("a" in names) == train_a
    assert "a" in m.state_dict()  # a buffer when fixed: still saved with the weights
    out = m(torch.rand(5, 1, 28, 28))
    assert out.shape == (5,)


@pytest.mark.usefixtures("one_thread")
def test_twolayer_init_and_formula():
    torch.manual_seed(1)
    d, width = 400, 2000
    m = TwoLayerNet(in_features=d, width=width, bias=True)
    w = m.hidden.weight.detach()
    assert abs(w.var().item() * d - 1.0) < 0.02  # rows ~ N(0, 1/d): Wx is O(1)
    assert abs(w.mean().item()) < 0.01
    assert torch.count_nonzero(m.hidden.bias) == 0
    assert torch.allclose(m.a.abs(), torch.full((width,), 1 / math.sqrt(width)))
    assert 0.45 < (m.a > 0).float().mean().item() < 0.55  # random signs
    x = torch.rand(3, 1, 20, 20)
    ref = torch.relu(x.reshape(3, d) @ w.T + m.hidden.bias) @ m.a
    assert torch.allclose(m(x), ref, atol=1e-6)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name,fn", [("tanh", torch.tanh), ("quadratic", torch.square),
                                     ("relu", torch.relu)])
def test_twolayer_activations(name, fn):
    torch.manual_seed(2)
    m = TwoLayerNet(in_features=6, width=5, activation=name).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    ref = fn(x @ m.hidden.weight.T) @ m.a
    assert torch.allclose(m(x), ref, rtol=1e-12, atol=1e-12)
    z = torch.linspace(-2, 2, 9)
    assert torch.allclose(make_activation(name)(z), fn(z))
    assert isinstance(make_activation("softplus"), torch.nn.Softplus)  # unchanged
    with pytest.raises(ValueError, match="activation must be one of"):
        make_activation("gelu")


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("train_a", [False, True])
def test_twolayer_checkpoint_roundtrip(tmp_path, train_a):
    torch.manual_seed(3)
    kw = {"in_features": 16, "width": 8, "activation": "tanh", "bias": True,
          "train_second_layer": train_a}
    m = build_model("twolayer", **kw)
    save_checkpoint(tmp_path / "t.pt", m, "twolayer", kw)
    torch.manual_seed(99)  # a fresh init would differ: the weights must come from the file
    m2 = load_model(tmp_path / "t.pt")
    assert torch.equal(m2.a, m.a)
    x = torch.rand(7, 1, 4, 4)
    assert torch.equal(m.eval()(x), m2(x))


def test_input_shape_kwargs_fit_the_study_cnn_to_cifar():
    from curvrobust.models import input_shape_kwargs

    assert input_shape_kwargs("cnn000", (1, 28, 28), {}) == {}   # MNIST: the defaults fit
    fit = input_shape_kwargs("cnn000", (3, 32, 32), {})
    assert fit == {"in_channels": 3, "image_size": 32}
    assert build_model("cnn000", **fit)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert input_shape_kwargs("cnn000", (3, 32, 32), {"in_channels": 3}) == {"image_size": 32}
    assert input_shape_kwargs("resnet18_cifar", (3, 32, 32), {}) == {}  # no image_size argument
