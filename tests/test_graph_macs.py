"""MACs counted from each framework's graph equal the analytic count."""

import graph_macs
import pytest

from harness.macs import count
from harness.spec import load_spec

SPECS = ("mobilenet_v2", "standard_conv", "mobilenet_v2_article")


@pytest.mark.parametrize("name", SPECS)
def test_exported_graphs(exported, name):
    folder = exported(name)
    analytic = count(load_spec(name)).macs
    assert graph_macs.onnx_macs(folder / "model.onnx") == analytic
    assert graph_macs.tflite_macs(folder / "model.tflite") == analytic
    assert graph_macs.coreml_macs(folder / "model.mlpackage") == analytic


@pytest.mark.parametrize("name", SPECS)
def test_pytorch_flop_counter(name):
    pytest.importorskip("torch")
    from harness.builders.pytorch import build

    spec = load_spec(name)
    assert graph_macs.torch_macs(build(spec), spec) == count(spec).macs


@pytest.mark.parametrize(("name", "width"), [("mobilenet_v2", 1.4), ("mobilenet_v2_article", 0.5)])
def test_keras_layers(name, width):
    pytest.importorskip("tensorflow")
    from harness.builders.keras import build

    spec = load_spec(name, width=width)
    assert graph_macs.keras_macs(build(spec)) == count(spec).macs


def test_expected_weight_shapes():
    from harness.architecture import resolve

    shapes = resolve(load_spec("mobilenet_v2")).weight_shapes()
    assert shapes[0] == (32, 3, 3, 3)
    assert shapes[1] == (32, 1, 3, 3)  # block0.dw
    assert shapes[-1] == (1000, 1280)
