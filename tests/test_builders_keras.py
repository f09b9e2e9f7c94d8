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
