"""Core ML fp16 and int8 variants: their programs are read back on any OS; predicted on macOS."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np
import pytest

from harness.architecture import resolve
from harness.cpu import Native
from harness.formats import get_format
from harness.spec import load_spec
from harness.weights import sample_input

ct = pytest.importorskip("coremltools")
pytest.importorskip("torch")

SPEC = load_spec("mobilenet_v2", width=0.35, resolution=96)
#: Every conv weight and the classifier's.
WEIGHTED = len(resolve(SPEC).weight_shapes())
#: precision -> (dtype every conv/linear computes in, dtype its weight is stored in,
#: its weights' dequantize op, casts by target dtype)
EXPECTED = {
    "fp32": ("fp32", "fp32", None, {}),
    "fp16": ("fp16", "fp16", None, {"fp16": 1, "fp32": 1}),
    "int8": ("fp16", "int8", "constexpr_affine_dequantize", {"fp16": 1, "fp32": 1}),
}


@pytest.fixture(scope="module")
def model():
    from harness.builders.pytorch import build

    return build(SPEC)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """precision -> Artifact, all three written into one folder like the export step does."""
    from harness.exporters.coreml import export_coreml
    from harness.exporters.coreml_variants import export_fp16, export_int8

    folder = tmp_path_factory.mktemp("coreml")
    calibration = sample_input(SPEC, 32, 99)
    return {
        "fp32": export_coreml(model, SPEC, folder),
        "fp16": export_fp16(model, SPEC, folder, calibration),
        "int8": export_int8(model, SPEC, folder, calibration),
    }


def _total(per_op: dict[str, dict[str, int]]) -> dict[str, int]:
    return dict(sum((Counter(counts) for counts in per_op.values()), Counter()))


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_variant_artifact(exported, precision):
    from harness.exporters.coreml_variants import mil_precision

    artifact = exported[precision]
    assert artifact.path.name == get_format("coreml").file(precision)
    assert artifact.precision == precision
    assert (artifact.input_shape, artifact.layout) == (("batch", 3, 96, 96), "NCHW")
    assert artifact.extra == {
        "deployment_target": "macOS13",
        "mil_precision": mil_precision(artifact.path),
    }


@pytest.mark.parametrize("precision", EXPECTED)
def test_program_dtypes(exported, precision):
    from harness.exporters.coreml_variants import mil_precision

    compute, stored, dequantize, casts = EXPECTED[precision]
    program = mil_precision(exported[precision].path)
    assert program["io"] == {"input": "fp32", "output": "fp32"}
    assert _total(program["compute"]) == {compute: WEIGHTED}
    assert _total(program["weights"]) == {stored: WEIGHTED}
    assert program["dequantize_ops"] == ({dequantize: WEIGHTED} if dequantize else {})
    assert program["casts"] == casts


def test_int8_weights_are_symmetric_per_channel(exported):
    """Zero points 0, one scale per output channel, each channel's largest weight at ±127."""
    from coremltools.converters.mil.frontend.milproto.load import load

    package = ct.models.MLModel(str(exported["int8"].path), skip_model_load=True)
    spec = package.get_spec()
    program = load(spec, spec.specificationVersion, package.weights_dir)
    ops = [op for op in program.functions["main"].operations if op.op_type.startswith("constexpr")]
    assert len(ops) == WEIGHTED
    for op in ops:
        data = op.quantized_data.val
        assert data.dtype == np.int8
        assert op.axis.val == 0
        assert op.scale.val.shape == op.zero_point.val.shape == (data.shape[0],)
        assert not op.zero_point.val.any()
        assert (np.abs(data.reshape(data.shape[0], -1)).max(axis=1) == 127).all()


def test_package_sizes(exported):
    from harness.exporters.artifacts import size_of

    fp32, fp16, int8 = (size_of(exported[p].path) for p in ("fp32", "fp16", "int8"))
    assert 0.45 < fp16 / fp32 < 0.55
    assert 0.45 < int8 / fp16 < 0.6


def test_int8_from_a_folder_without_the_fp16_package(model, exported, tmp_path):
    """Alone, the int8 exporter converts at fp16 itself and makes the same program."""
    from harness.exporters.coreml_variants import export_int8, mil_precision

    alone = export_int8(model, SPEC, tmp_path, sample_input(SPEC, 32, 99))
    assert not (tmp_path / get_format("coreml").file("fp16")).exists()
    assert mil_precision(alone.path) == mil_precision(exported["int8"].path)


def test_compute_notes_come_from_the_program(exported):
    from harness.backends.coreml import precision_note
    from harness.exporters.coreml_variants import mil_precision

    apple = Native("fp16", ("ARMv8.2 fp16 arithmetic (asimdhp)",))
    intel = Native("fp16", ())
    int8 = mil_precision(exported["int8"].path)
    fp16 = mil_precision(exported["fp16"].path)
    note = precision_note(int8, "all", apple)
    assert note.startswith(f"{WEIGHTED} int8 weight tensors (constexpr_affine_dequantize)")
    assert "run in fp16, not int8" in note
    assert precision_note(fp16, "all", apple) is None
    assert "fp16 kernels for selected ops" in precision_note(fp16, "cpu_only", apple)
    assert "may run the fp16 ops in fp32" in precision_note(fp16, "cpu_only", intel)
    assert precision_note(int8, "cpu_only", apple).startswith(note + "; on this CPU")


#: Loose bounds: emulating each variant in PyTorch on these 64 images gives rel_l2 0.026
#: (fp16) and 0.23 (int8 per-channel weights, fp16 compute); generated weights amplify.
@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML predicts only on macOS")
@pytest.mark.parametrize(("precision", "max_rel_l2"), [("fp16", 0.1), ("int8", 0.5)])
def test_prediction_is_near_pytorch_fp32(model, exported, precision, max_rel_l2):
    import torch

    from harness.backends.coreml import CoreMLBackend
    from harness.parity import compare

    images = sample_input(SPEC, 64, 0)
    with torch.no_grad():
        reference = model(torch.from_numpy(images)).numpy()
    backend = CoreMLBackend("cpu_only")
    backend.load(exported[precision])
    output = backend.run(backend.prepare(images))
    assert output.dtype == np.float32
    assert compare(reference, output)["rel_l2_err"] < max_rel_l2
