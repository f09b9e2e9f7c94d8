import numpy as np
import pytest

from harness.architecture import resolve
from harness.spec import load_spec
from harness.weights import activate, conv2d_nhwc, make_weights, sample_input


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


def test_activations():
    x = np.array([-1.0, 3.0, 9.0])
    assert activate(x, "relu").tolist() == [0, 3, 9]
    assert activate(x, "relu6").tolist() == [0, 3, 6]
    assert activate(x, None).tolist() == [-1, 3, 9]
