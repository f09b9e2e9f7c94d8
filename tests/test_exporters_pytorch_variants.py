"""PyTorch int8 (PT2E, torchao) and bf16 variants: what the files hold, how they run, where."""

import logging

import numpy as np
import pytest

from harness.backends.pytorch import (
    X86_QUANTIZER,
    PyTorchBackend,
    inductor_compiler,
    int8_note,
    mode_support,
    precision_support,
)
from harness.cpu import Native
from harness.parity import compare
from harness.spec import load_spec
from harness.weights import sample_input

torch = pytest.importorskip("torch")

from harness.builders.pytorch import build  # noqa: E402
from harness.exporters.pytorch_variants import (  # noqa: E402
    conv_weights,
    export_bf16,
    export_int8,
    import_torchao,
)

SPEC = load_spec("mobilenet_v2", width=0.35, resolution=96)
Q = torch.ops.quantized_decomposed
VNNI = Native("int8", ("x86 AVX512-VNNI",))
NO_BF16 = Native("bf16", ())


@pytest.fixture(scope="module")
def model():
    return build(SPEC)


@pytest.fixture(scope="module")
def images():
    return sample_input(SPEC, batch=3, seed=5)


@pytest.fixture(scope="module")
def reference(model, images):
    with torch.inference_mode():
        return model(torch.from_numpy(images)).numpy()


@pytest.fixture(scope="module")
def calibration():
    return sample_input(SPEC, batch=32, seed=99)


@pytest.fixture(scope="module")
def int8(model, calibration, tmp_path_factory):
    pytest.importorskip("torchao")
    return export_int8(model, SPEC, tmp_path_factory.mktemp("int8"), calibration)


@pytest.fixture(scope="module")
def bf16(model, calibration, tmp_path_factory):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    artifact = export_bf16(model, SPEC, tmp_path_factory.mktemp("bf16"), calibration)
    return artifact, before


@pytest.fixture
def inductor_freezing():
    """Loading int8 switches inductor freezing on process-wide: give it back after the test."""
    import torch._inductor.config

    saved = torch._inductor.config.freezing
    yield
    torch._inductor.config.freezing = saved


def assert_refused(result, *words):
    ok, reason = result
    assert not ok
    for word in words:
        assert word in reason


def load_program(path):
    import_torchao(X86_QUANTIZER)  # registers the quantized_decomposed ops
    return torch.export.load(str(path))


def test_int8_program_quantizes_every_conv(model, int8):
    assert (int8.path.name, int8.precision) == ("model.int8.pt2", "int8")
    program = load_program(int8.path)
    convs = [n for n in program.graph.nodes if n.target == torch.ops.aten.conv2d.default]
    assert len(convs) == sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert int8.extra["convs"] == len(convs)
    for conv in convs:
        activation, weight = conv.args[:2]
        assert activation.target == Q.dequantize_per_tensor.default
        assert activation.args[0].target == Q.quantize_per_tensor.default
        assert activation.args[-1] == torch.uint8
        assert weight.target == Q.dequantize_per_channel.default
        assert weight.args[-1] == torch.int8
    assert conv_weights(program) == [torch.int8] * len(convs)
    assert int8.extra["int8_weight_convs"] == len(convs)
    stored = {t.dtype for t in program.state_dict.values()}
    assert torch.int8 in stored
    assert sum(t.numel() for t in program.state_dict.values() if t.dtype == torch.float32) < (
        sum(p.numel() for p in model.parameters()) / 10
    ), "the float32 weights quantized away must not be saved too"


def test_bf16_program_is_bf16_inside_float32_outside(bf16, model):
    artifact, before = bf16
    assert (artifact.path.name, artifact.precision) == ("model.bf16.pt2", "bf16")
    program = torch.export.load(str(artifact.path))
    weights = conv_weights(program)
    assert set(weights) == {torch.bfloat16}
    convs = [n for n in program.graph.nodes if n.target == torch.ops.aten.conv2d.default]
    assert {n.meta["val"].dtype for n in convs} == {torch.bfloat16}
    (x,) = [n for n in program.graph.nodes if n.op == "placeholder" and n.name == "x"]
    (out,) = program.graph.find_nodes(op="output")[0].args[0]
    assert x.meta["val"].dtype == out.meta["val"].dtype == torch.float32
    after = model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    assert {p.dtype for p in model.parameters()} == {torch.float32}


@pytest.mark.filterwarnings("ignore:To copy construct from a tensor:UserWarning")  # inductor's
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_variant_runs_through_the_backend(request, precision, images, reference, inductor_freezing):
    ok, reason = PyTorchBackend.precision_available(precision)
    if not ok:
        pytest.skip(reason)
    artifact = request.getfixturevalue(precision)
    artifact = artifact[0] if precision == "bf16" else artifact
    backend = PyTorchBackend("eager", threads=1)
    backend.load(artifact)
    one = backend.run(backend.prepare(images[:1]))
    three = backend.run(backend.prepare(images))
    assert (one.shape, three.shape) == ((1, reference.shape[1]), reference.shape)
    assert np.isfinite(three).all()
    # Batch size changes neither the file's nor the compiled program's arithmetic much.
    assert compare(three[:1], one)["rel_l2_err"] < 0.01
    # Generated weights amplify rounding (bf16 ~0.15, int8 ~0.4 measured); a broken
    # export (wrong weights, unscaled int8) is near 1 or above.
    errors = compare(reference, three)
    assert errors["rel_l2_err"] < {"bf16": 0.4, "int8": 0.75}[precision], errors
    expected = {"bf16": None, "int8": int8_note(1, 1)}[precision]
    assert backend.compute_note() == expected


def test_int8_support_needs_x86_torchao_and_a_compiler():
    gxx = "/usr/bin/g++"
    assert precision_support("int8", "x86_64", True, gxx, VNNI) == (True, "")
    assert precision_support("int8", "AMD64", True, "cl", VNNI) == (True, "")
    assert_refused(precision_support("int8", "aarch64", True, gxx, VNNI), "oneDNN x86", "aarch64")
    assert_refused(precision_support("int8", "arm64", True, gxx, VNNI), "arm64")
    assert_refused(precision_support("int8", "x86_64", False, gxx, VNNI), "torchao")
    assert_refused(precision_support("int8", "x86_64", True, None, VNNI), "C++ compiler")


def test_bf16_support_needs_native_bf16():
    native = Native("bf16", ("x86 AVX512-BF16",))
    assert precision_support("bf16", "x86_64", False, None, native) == (True, "")
    assert precision_support("bf16", "x86_64", True, "g++", NO_BF16) == (
        False,
        NO_BF16.describe(),
    )
    assert precision_support("fp32", "riscv64", False, None, Native("fp32", ("fp32",)))[0]


def test_precision_available_here_and_for_absent_files():
    assert_refused(PyTorchBackend.precision_available("fp16"), "bf16, not fp16")
    assert PyTorchBackend.precision_available("fp32") == (True, "")


def test_mps_runs_neither_int8_nor_bf16_before_macos_14():
    assert_refused(mode_support("mps", "int8", "15.1"), "mps")
    assert_refused(mode_support("mps", "bf16", "13.6.1"), "macOS 14", "13.6.1")
    assert mode_support("mps", "bf16", "14.2") == (True, "")
    assert not mode_support("mps", "bf16", "")[0]  # not macOS
    assert mode_support("eager", "int8", "") == mode_support("compile", "bf16", "") == (True, "")
    assert_refused(mode_support("compile", "int8", ""), "eager row measures it")


def test_compiler_lookup_follows_cxx(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-c++"))
    assert inductor_compiler() is None
    fake = tmp_path / "my-c++"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    assert inductor_compiler() == str(fake)


def test_int8_note_says_how_many_convs_are_int8():
    assert int8_note(52, 52).startswith("int8 convs lowered by inductor to oneDNN (qconv)")
    assert int8_note(50, 52).startswith("50 of 52 convs")
    assert "fp32" in int8_note(0, 52)


def test_torchao_import_warnings_are_demoted_not_errors(caplog):
    from harness.exporters import pytorch_variants

    caplog.set_level(logging.DEBUG)
    with pytorch_variants._demoted_warnings(("torchao",)):
        logging.getLogger("torchao").warning("Failed to load _C_mxfp8.so")
        logging.getLogger("torchao").error("a real error")
    logging.getLogger("torchao").warning("after the import")
    seen = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert ("torchao", "WARNING", "Failed to load _C_mxfp8.so") not in seen
    assert ("torchao", "ERROR", "a real error") in seen
    assert ("torchao", "WARNING", "after the import") in seen
    assert any(r.levelname == "DEBUG" and "_C_mxfp8" in r.getMessage() for r in caplog.records)
