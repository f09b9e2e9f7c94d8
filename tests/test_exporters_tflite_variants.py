"""TFLite int8 / fp16 variants: made by the converter, read back op by op, run by the backend."""

from __future__ import annotations

import numpy as np
import pytest

from harness.architecture import resolve
from harness.cpu import native
from harness.exporters.base import Artifact
from harness.parity import compare
from harness.spec import load_spec
from harness.weights import make_weights, sample_input

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")
torch = pytest.importorskip("torch")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from harness.backends.tflite import (  # noqa: E402
    TFLiteBackend,
    allows_fp16_accumulation,
    reduced_precision,
)

SPEC = load_spec("mobilenet_v2", width=0.35, resolution=96)
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
#: rel_l2 vs the PyTorch fp32 model: loose (deep nets amplify rounding), yet a
#: wrong conversion (bad calibration, wrong layout, lost weights) lands far above.
REL_L2_BOUND = {"int8": 1.0, "fp16": 0.1}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Artifact]:
    """fp32, int8 and fp16 files of the small spec in one export folder (fp32 first)."""
    from harness.builders.keras import build
    from harness.exporters.tflite import export_tflite
    from harness.exporters.tflite_variants import export_fp16, export_int8

    out = tmp_path_factory.mktemp("tflite")
    model = build(SPEC, make_weights(SPEC, 0))
    calibration = sample_input(SPEC, 32, 99)
    return {
        "fp32": export_tflite(model, SPEC, out),
        "int8": export_int8(model, SPEC, out, calibration),
        "fp16": export_fp16(model, SPEC, out, calibration),
    }


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The PyTorch fp32 model's output on the 3 evaluation images."""
    from harness.builders.pytorch import build

    model = build(SPEC, make_weights(SPEC, 0))
    with torch.no_grad():
        return model(torch.from_numpy(sample_input(SPEC, 3, 0))).numpy()


def graph(artifact: Artifact) -> tuple[list[dict], dict[int, dict]]:
    """The file's ops and its tensors by index, as the interpreter lists them."""
    interpreter = Interpreter(model_path=str(artifact.path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return interpreter._get_ops_details(), tensors


def io_dtypes(artifact: Artifact) -> tuple[type, type]:
    interpreter = Interpreter(model_path=str(artifact.path))
    return interpreter.get_input_details()[0]["dtype"], interpreter.get_output_details()[0]["dtype"]


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_artifact_is_described_like_the_fp32_file(artifacts, precision):
    fp32, variant = artifacts["fp32"], artifacts[precision]
    assert variant.path == fp32.path.parent / f"model.{precision}.tflite"
    assert variant.precision == precision
    assert (variant.format, variant.layout) == ("tflite", "NHWC")
    assert variant.input_shape == fp32.input_shape == ("batch", 96, 96, 3)
    assert io_dtypes(variant) == (np.float32, np.float32)


def test_int8_is_full_integer(artifacts):
    ops, tensors = graph(artifacts["int8"])
    weighted = [op for op in ops if op["op_name"] in WEIGHTED_OPS]
    assert len(weighted) == len(resolve(SPEC).convs()) + 1  # + the classifier
    for op in weighted:
        x, weight, bias = (tensors[i]["dtype"] for i in op["inputs"])
        assert (x, weight, bias) == (np.int8, np.int8, np.int32), op["op_name"]
    edges = [op["op_name"] for op in ops if op["op_name"] in ("QUANTIZE", "DEQUANTIZE")]
    assert edges == ["QUANTIZE", "DEQUANTIZE"]
    assert artifacts["int8"].extra == {"calibration_images": 32}


def test_fp16_stores_conv_weights_as_float16(artifacts):
    ops, tensors = graph(artifacts["fp16"])
    dequantized = {
        op["outputs"][0]: tensors[op["inputs"][0]]["dtype"]
        for op in ops
        if op["op_name"] == "DEQUANTIZE"
    }
    convs = [op for op in ops if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == len(resolve(SPEC).convs())
    for op in convs:
        assert dequantized[op["inputs"][1]] == np.float16
        assert tensors[op["inputs"][0]]["dtype"] == np.float32  # activations stay fp32
    assert reduced_precision(artifacts["fp16"].path) == "fp16accfp32"


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_variant_runs_resized_and_tracks_the_reference(artifacts, reference, precision):
    backend = TFLiteBackend(threads=1)
    backend.load(artifacts[precision])
    x = sample_input(SPEC, 3, 0)
    single = backend.run(backend.prepare(x[:1]))
    batch = backend.run(backend.prepare(x))  # resizes the input to batch 3
    assert single.shape == (1, reference.shape[1])
    assert batch.shape == reference.shape
    assert np.isfinite(batch).all()
    np.testing.assert_allclose(batch[:1], single, rtol=1e-5, atol=1e-5)
    assert compare(reference, batch)["rel_l2_err"] < REL_L2_BOUND[precision]


@pytest.mark.parametrize("mode", TFLiteBackend.modes)
def test_compute_note_is_read_from_the_model(artifacts, mode):
    notes = {}
    for precision, artifact in artifacts.items():
        backend = TFLiteBackend(mode, threads=1)
        backend.load(artifact)
        notes[precision] = backend.compute_note()
    n = len(resolve(SPEC).convs())
    assert notes["fp32"] is None
    assert notes["int8"].startswith(f"{n} of {n} convolutions compute in int8 on ")
    assert ("XNNPACK's QS8" in notes["int8"]) == (mode == "xnnpack")
    assert notes["fp16"].startswith(f"{n} of {n} conv weights stored fp16")
    # The file allows fp16 inference with fp32 accumulation only: fp32 on any CPU.
    assert "compute in fp32" in notes["fp16"] or "computes in fp32" in notes["fp16"]
    if mode == "xnnpack":
        fp16 = native("fp16")
        assert ("fp16accfp32" if fp16.available else fp16.describe()) in notes["fp16"]


def test_reduced_precision_metadata_parsing():
    assert allows_fp16_accumulation("fp16accfp16")
    assert allows_fp16_accumulation("fp16bf16accfp16")
    assert not allows_fp16_accumulation("fp16accfp32")  # what supported_types=[float16] writes
    assert not allows_fp16_accumulation("bf16accfp16")
    assert not allows_fp16_accumulation("absent")
