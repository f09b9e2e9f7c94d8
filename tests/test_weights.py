import numpy as np
import pytest

from harness.architecture import resolve
from harness.spec import load_spec
from harness.weights import (
    CALIBRATION_BATCH,
    activate,
    conv2d_nhwc,
    make_weights,
    sample_input,
)


def test_deterministic_and_seeded():
    spec = load_spec("mobilenet_v2", resolution=96)
    a, b, c = make_weights(spec, 0), make_weights(spec, 0), make_weights(spec, 1)
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["stem.weight"], c["stem.weight"])


def test_shapes_follow_the_plan():
    spec = load_spec("mobilenet_v2", resolution=96)
    weights = make_weights(spec)
    net = resolve(spec)
    for conv in net.convs():
        assert weights[f"{conv.name}.weight"].shape == conv.weight_shape
        assert weights[f"{conv.name}.bn.var"].min() > 0
    assert weights["classifier.weight"].shape == (1000, 1280)
    assert all(w.dtype == np.float32 for w in weights.values())


def test_activations_stay_healthy_through_the_network():
    """Every layer's output has unit-scale spread: no collapse, nothing near fp16's range."""
    torch = pytest.importorskip("torch")
    from harness.builders.pytorch import build

    spec = load_spec("mobilenet_v2")
    model = build(spec)
    stats = {}

    def record(name):
        def hook(_module, _inp, out):
            stats[name] = (float(out.std()), float(out.abs().max()))

        return hook

    for name, module in model.named_modules():
        if name.endswith((".bn", ".act")) or name == "classifier":
            module.register_forward_hook(record(name))
    with torch.no_grad():
        logits = model(torch.from_numpy(sample_input(spec, 4)))
    convs = resolve(spec).convs()
    assert len(stats) == len(convs) + sum(c.activation is not None for c in convs) + 1
    for name, (std, peak) in stats.items():
        assert 0.05 < std < 20, name
        assert peak < 1000, name  # fp16 tops out at 65504
    top1 = logits.argmax(1)
    assert len(set(top1.tolist())) > 1  # the logits follow the input


def test_conv2d_nhwc_matches_a_direct_sum():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    out = conv2d_nhwc(x, w, stride=2, padding=1, groups=1)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = sum(
        xp[0, 2 + i, 2 + j, c] * w[1, c, i, j] for i in range(3) for j in range(3) for c in range(2)
    )
    assert out.shape == (1, 3, 3, 3)
    assert out[0, 1, 1, 1] == pytest.approx(expected, rel=1e-5)
    dw = conv2d_nhwc(x, w[:2, :1], stride=1, padding=1, groups=2)
    assert dw[0, 2, 2, 1] == pytest.approx(float((xp[0, 2:5, 2:5, 1] * w[1, 0]).sum()), rel=1e-5)


@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("pads", [(0, 1, 0, 1), (1, 1, 1, 1), (2, 0, 1, 3)])
def test_conv2d_nhwc_matches_torch_with_per_side_padding(groups, pads):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 8, 4)).astype(np.float32)
    w = rng.standard_normal((4, 4 // groups, 3, 3)).astype(np.float32)
    top, bottom, left, right = pads
    xt = torch.nn.functional.pad(
        torch.from_numpy(x).permute(0, 3, 1, 2), (left, right, top, bottom)
    )
    expected = torch.nn.functional.conv2d(xt, torch.from_numpy(w), stride=2, groups=groups)
    out = conv2d_nhwc(x, w, stride=2, padding=pads, groups=groups)
    np.testing.assert_allclose(out, expected.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("bn_eps", "padding"), [(1e-3, "symmetric"), (1e-5, "same")])
def test_bn_statistics_are_what_the_model_computes(bn_eps, padding):
    """Calibration pads and normalises like the built model: each BN's moving mean is
    the mean of its real input on the calibration batch."""
    torch = pytest.importorskip("torch")
    from harness.builders.pytorch import build

    spec = load_spec("mobilenet_v2", width=0.35, resolution=96)
    spec = spec.with_conventions(bn_eps=bn_eps, stride2_padding=padding)
    model = build(spec, seed=0)
    seen = {}

    def record(name):
        def hook(module, inputs, _out):
            seen[name] = (inputs[0].mean(dim=(0, 2, 3)), module.running_mean, module.eps)

        return hook

    for name, module in model.named_modules():
        if name.endswith(".bn"):
            module.register_forward_hook(record(name))
    with torch.no_grad():
        model(torch.from_numpy(sample_input(spec, CALIBRATION_BATCH, 1)))
    assert len(seen) == len(resolve(spec).convs())
    for name, (mean, running_mean, eps) in seen.items():
        assert eps == bn_eps
        np.testing.assert_allclose(mean, running_mean, rtol=1e-3, atol=1e-3, err_msg=name)


def test_activations():
    x = np.array([-1.0, 3.0, 9.0])
    assert activate(x, "relu").tolist() == [0, 3, 9]
    assert activate(x, "relu6").tolist() == [0, 3, 6]
    assert activate(x, None).tolist() == [-1, 3, 9]
