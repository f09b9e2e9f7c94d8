import numpy as np
import pytest

from harness.macs import count
from harness.spec import load_spec
from harness.weights import make_weights, sample_input

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")
from harness.builders.keras import build, trainable_params  # noqa: E402

SPECS = ("mobilenet_v2", "standard_conv", "mobilenet_v2_article")


@pytest.mark.parametrize("name", SPECS)
def test_params_equal_analytic_count(name):
    spec = load_spec(name)
    assert trainable_params(build(spec)) == count(spec).params


@pytest.mark.parametrize("width", [1.0, 1.4])
def test_reference_equals_keras_applications(width):
    ours = build(load_spec("mobilenet_v2", width=width))
    theirs = keras.applications.MobileNetV2(weights=None, alpha=width, input_shape=(224, 224, 3))
    assert trainable_params(ours) == trainable_params(theirs)
    # Keras' "total" adds the BN moving statistics: compare those too.
    assert ours.count_params() == theirs.count_params()


def test_layer_names_come_from_the_spec():
    model = build(load_spec("mobilenet_v2", resolution=96))
    names = {layer.name for layer in model.layers}
    assert {"stem.conv", "stem.bn", "block3.expand.conv", "block3.dw.conv", "block4.add"} <= names


@pytest.mark.parametrize(("name", "resolution"), [(n, 96) for n in SPECS[:2]] + [(SPECS[2], 224)])
def test_same_function_as_pytorch(name, resolution):
    torch = pytest.importorskip("torch")
    from harness.builders.pytorch import build as build_torch
    from harness.parity import compare

    spec = load_spec(name, resolution=resolution)
    weights = make_weights(spec)
    x = sample_input(spec, 8)
    with torch.no_grad():
        reference = build_torch(spec, weights)(torch.from_numpy(x)).numpy()
    out = np.asarray(build(spec, weights)(x.transpose(0, 2, 3, 1), training=False))
    errors = compare(reference, out)
    assert errors["rel_l2_err"] < 1e-4
    assert errors["top1_agree"] == 1.0


def _keras_conventions(name, resolution):
    spec = load_spec(name, width=0.35, resolution=resolution)
    return spec.with_conventions(bn_eps=1e-5, stride2_padding="same")


@pytest.mark.parametrize(
    ("name", "resolution"), [("mobilenet_v2", 96), ("mobilenet_v2", 95), ("standard_conv", 96)]
)
def test_same_padding_agrees_with_pytorch(name, resolution):
    torch = pytest.importorskip("torch")
    from harness.builders.pytorch import build as build_torch
    from harness.parity import compare

    spec = _keras_conventions(name, resolution)
    weights = make_weights(spec)
    x = sample_input(spec, 8)
    with torch.no_grad():
        reference = build_torch(spec, weights)(torch.from_numpy(x)).numpy()
    model = build(spec, weights)
    strided = "block1.dw" if spec.conv == "depthwise" else "block1.conv"
    assert model.get_layer(f"{strided}.pad").padding == ((0, 1), (0, 1))
    assert model.get_layer(f"{strided}.bn").epsilon == 1e-5
    errors = compare(reference, np.asarray(model(x.transpose(0, 2, 3, 1), training=False)))
    assert errors["rel_l2_err"] < 1e-4
    assert errors["top1_agree"] == 1.0


@pytest.mark.parametrize(("padding", "identical"), [("same", True), ("symmetric", False)])
def test_same_padding_is_keras_applications(padding, identical):
    """With Keras' conventions our model computes keras.applications.MobileNetV2 exactly."""
    spec = load_spec("mobilenet_v2", width=0.35, resolution=96)
    spec = spec.with_conventions(bn_eps=1e-3, stride2_padding=padding)
    ours = build(spec)
    theirs = keras.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(96, 96, 3), classifier_activation=None
    )
    ours_w = [layer for layer in ours.layers if layer.weights]
    theirs_w = [layer for layer in theirs.layers if layer.weights]
    for a, b in zip(ours_w, theirs_w, strict=True):
        assert type(a) is type(b), (a.name, b.name)
        b.set_weights(a.get_weights())
    x = sample_input(spec, 4).transpose(0, 2, 3, 1)
    out = np.asarray(ours(x, training=False))
    expected = np.asarray(theirs(x, training=False))
    if identical:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    else:
        assert np.abs(out - expected).max() > 0.1
