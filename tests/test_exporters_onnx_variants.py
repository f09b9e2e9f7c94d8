"""ONNX int8 (static QDQ) and fp16 files: their graphs, and what ONNX Runtime runs them as."""

from __future__ import annotations

import re

import numpy as np
import pytest

from harness.architecture import resolve
from harness.backends.onnxruntime import OnnxRuntimeBackend, describe
from harness.exporters.base import Artifact
from harness.formats import FORMATS, get_format
from harness.parity import compare
from harness.spec import load_spec
from harness.weights import sample_input

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("torch")

from onnx import TensorProto, numpy_helper  # noqa: E402

VARIANTS = ("int8", "fp16")
#: rel_l2_err against the fp32 file above which a conversion is broken (measured on
#: this spec, 3 images: int8 0.47, fp16 0.014 with ORT computing it in fp32 on x86).
REL_L2_BOUND = {"int8": 1.0, "fp16": 0.1}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """The small spec's fp32 ONNX file and both variants, made once."""
    from harness.builders.pytorch import build
    from harness.exporters.onnx import export_onnx
    from harness.exporters.onnx_variants import export_fp16, export_int8

    spec = load_spec("mobilenet_v2", width=0.35, resolution=96)
    model = build(spec).eval()
    out = tmp_path_factory.mktemp("onnx_variants")
    calibration = sample_input(spec, 32, 99)
    artifacts = {"fp32": export_onnx(model, spec, out)}
    artifacts["int8"] = export_int8(model, spec, out, calibration)
    artifacts["fp16"] = export_fp16(model, spec, out, calibration)
    return spec, out, artifacts


def _run(artifact: Artifact, images: np.ndarray) -> np.ndarray:
    backend = OnnxRuntimeBackend(threads=1)
    backend.load(artifact)
    return backend.run(backend.prepare(images))


def _graph(artifact: Artifact):
    return onnx.load(artifact.path).graph


def _convs(graph) -> list:
    return [node for node in graph.node if node.op_type == "Conv"]


def test_files_and_artifacts(exported):
    spec, out, artifacts = exported
    assert sorted(p.name for p in out.iterdir()) == sorted(
        FORMATS["onnx"].file(p) for p in ("fp32", *VARIANTS)
    ), "temp files of the int8 pre-processing must be gone"
    for precision in VARIANTS:
        artifact = artifacts[precision]
        assert artifact.precision == precision
        assert artifact.path == out / FORMATS["onnx"].file(precision)
        assert artifact.input_shape == ("batch", 3, spec.resolution, spec.resolution)
        graph = _graph(artifact)
        assert [i.name for i in graph.input] == [artifact.input_name]
        assert [o.name for o in graph.output] == [artifact.output_name]
        for value in (*graph.input, *graph.output):
            assert value.type.tensor_type.elem_type == TensorProto.FLOAT
            assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
        assert not any(t.data_location == TensorProto.EXTERNAL for t in graph.initializer)
    assert artifacts["int8"].extra == {"calibration_images": 32}


def test_int8_is_qdq_with_per_channel_int8_conv_weights(exported):
    spec, _, artifacts = exported
    graph = _graph(artifacts["int8"])
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    initializers = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    convs = _convs(graph)
    assert len(convs) == len(resolve(spec).convs())
    for conv in convs:
        dequantize = producers[conv.input[1]]
        assert dequantize.op_type == "DequantizeLinear"
        weight = initializers[dequantize.input[0]]
        scale = numpy_helper.to_array(initializers[dequantize.input[1]])
        assert weight.data_type == TensorProto.INT8
        assert scale.shape == (weight.dims[0],), f"{conv.name}: one scale per output channel"
        activation = producers[conv.input[0]]
        assert activation.op_type == "DequantizeLinear"
        assert producers[activation.input[0]].op_type == "QuantizeLinear"
    quantized_inputs = [
        initializers[n.input[2]].data_type
        for n in graph.node
        if n.op_type == "QuantizeLinear" and n.input[2] in initializers
    ]
    assert quantized_inputs
    expected = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}[
        get_format("onnx").variant("int8").settings["activation_type"]
    ]
    assert set(quantized_inputs) == {expected}, "activations as ONNX Runtime recommends here"


def test_fp16_has_fp16_weights_and_float32_io(exported):
    spec, _, artifacts = exported
    graph = _graph(artifacts["fp16"])
    initializers = {t.name: t for t in graph.initializer}
    convs = _convs(graph)
    assert len(convs) == len(resolve(spec).convs())
    assert {initializers[c.input[1]].data_type for c in convs} == {TensorProto.FLOAT16}
    assert not [t.name for t in graph.initializer if t.data_type == TensorProto.FLOAT]


@pytest.mark.parametrize("precision", VARIANTS)
def test_variant_runs_close_to_fp32(exported, precision):
    spec, _, artifacts = exported
    images = sample_input(spec, 3, 0)
    reference = _run(artifacts["fp32"], images)
    for batch in (1, 3):
        output = _run(artifacts[precision], images[:batch])
        assert output.shape == reference[:batch].shape
        assert np.isfinite(output).all()
    errors = compare(reference, output)
    print(f"{precision} vs fp32: {errors}")
    assert errors["rel_l2_err"] < REL_L2_BOUND[precision]


def test_compute_note_counts_what_runs(exported):
    spec, _, artifacts = exported
    total = len(resolve(spec).convs())
    notes = {}
    for precision, artifact in artifacts.items():
        backend = OnnxRuntimeBackend(threads=1)
        backend.load(artifact)
        notes[precision] = backend.compute_note()
        assert backend.compute_note() == notes[precision], "the note is read once and kept"
    assert notes["fp32"] is None
    for precision in VARIANTS:
        note = notes[precision]
        print(note)
        counted = re.search(r"(\d+) of (\d+) convs", note)
        assert counted, note
        assert int(counted[2]) == total
        other = re.search(r"the other (\d+)", note)
        assert int(counted[1]) + (int(other[1]) if other else 0) == total, note
    assert re.match(r"int8: [1-9]\d* of ", notes["int8"]), "ORT fuses some convs into int8"


def test_describe_sentences():
    int8 = [("int8", "QLinearConv")] * 3
    assert describe("int8", int8, 0) == "int8: 3 of 3 convs run as integer kernels (QLinearConv)"
    assert describe("int8", [*int8, ("fp32", "Conv")], 0) == (
        "int8: 3 of 4 convs run as integer kernels (QLinearConv); "
        "the other 1 run in fp32 on dequantized inputs"
    )
    assert describe("fp16", [("fp16", "Conv")] * 2, 0) == "fp16: 2 of 2 convs run in fp16"
    assert describe("fp16", [("fp16", "Conv"), ("fp32", "Conv")], 4) == (
        "fp16 file: ORT's CPU provider runs 1 of 2 convs in fp32 (it inserted Casts and "
        "upcast the fp16 weights at load; 4 Casts remain); the other 1 run in fp16"
    )
