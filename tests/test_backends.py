"""Backends: registry, platform probes and skip reasons, and every runnable one end to end."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from harness.backends import REGISTRY, get_backend
from harness.backends.base import module_available, to_layout
from harness.backends.coreml import COMPUTE_UNITS, NOT_MACOS, platform_available
from harness.backends.onnxruntime import _PROVIDERS
from harness.exporters.artifacts import artifact_in, read_manifest
from harness.inputs import read_parity
from harness.parity import compare, within_tolerance


def test_registry_and_interface():
    assert list(REGISTRY) == ["pytorch", "keras", "onnxruntime", "tflite", "coreml"]
    for name, cls in REGISTRY.items():
        assert cls.name == name
        assert cls.layout in ("NCHW", "NHWC")
        assert cls.modes
        ok, reason = cls.available()
        assert isinstance(ok, bool)
        assert ok or reason


def test_unknown_backend_and_plugins():
    with pytest.raises(KeyError, match="unknown backend 'tvm'"):
        get_backend("tvm")
    assert get_backend("fake_backends:ZerosBackend").name == "zeros"
    with pytest.raises(KeyError):
        get_backend("fake_backends:not_a_backend")


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="no mode 'turbo'"):
        REGISTRY["onnxruntime"]("turbo")


def test_layouts():
    batch = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    assert to_layout(batch, "NHWC").shape == (2, 4, 5, 3)
    assert to_layout(batch, "NHWC")[1, 2, 3, 0] == batch[1, 0, 2, 3]
    nchw = to_layout(batch, "NCHW")
    assert np.array_equal(nchw, batch)
    assert nchw.flags.c_contiguous


def test_module_probe_never_imports_or_raises():
    assert module_available("json") == (True, "")
    ok, reason = module_available("surely_not_a_module_xyz")
    assert not ok
    assert "not installed" in reason


def test_coreml_runs_only_on_macos():
    assert platform_available("linux") == (False, NOT_MACOS)
    assert platform_available("win32") == (False, NOT_MACOS)
    assert platform_available("darwin")[0] == module_available("coremltools")[0]
    if sys.platform != "darwin":
        assert REGISTRY["coreml"].available() == (False, NOT_MACOS)


def test_coreml_modes_are_coremltools_compute_units():
    ct = pytest.importorskip("coremltools")
    assert set(COMPUTE_UNITS) == {"cpu_only", "cpu_and_gpu", "cpu_and_ne", "all"}
    for member in COMPUTE_UNITS.values():
        assert hasattr(ct.ComputeUnit, member)


def test_platform_modes_report_why_not():
    if sys.platform == "darwin":
        pytest.skip("macOS has these modes")
    ok, reason = REGISTRY["pytorch"].mode_available("mps")
    assert (ok, "macOS" in reason) == (False, True)
    ok, reason = REGISTRY["onnxruntime"].mode_available("coreml")
    assert (ok, "macOS" in reason) == (False, True)
    assert _PROVIDERS["coreml"][-1] == "CPUExecutionProvider"  # CPU fallback for unsupported ops


RUNNABLE = [
    (name, mode)
    for name, cls in REGISTRY.items()
    for mode in cls.modes
    if name != "coreml" and mode not in ("mps", "coreml", "compile", "xla")
]


@pytest.mark.parametrize(("name", "mode"), RUNNABLE)
def test_backend_reproduces_the_reference(exported, name, mode):
    cls = REGISTRY[name]
    if not cls.mode_available(mode)[0]:
        pytest.skip(cls.mode_available(mode)[1])
    folder = exported("mobilenet_v2")
    manifest = read_manifest(folder)
    backend = cls(mode, threads=1)
    backend.load(artifact_in(folder, cls.artifact_format, manifest=manifest))
    images = read_parity(folder)
    reference = np.load(folder / "reference.npy")
    for rows in (slice(0, 1), slice(0, 8)):  # batch 1, then a resize to 8
        out = backend.run(backend.prepare(images[rows]))
        assert out.shape == (rows.stop, 1000)
        assert within_tolerance(compare(reference[rows], out)), (name, mode)


def test_macos_modes_ask_the_runtime_on_macos(monkeypatch):
    """On macOS the mode is as available as the runtime says (no Mac needed to test this)."""
    cls = REGISTRY["onnxruntime"]
    if not cls.available()[0]:
        pytest.skip(cls.available()[1])
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(cls, "runtime_has", classmethod(lambda c, mode: (False, "no provider")))
    assert cls.mode_available("coreml") == (False, "no provider")
    assert cls.mode_available("cpu") == (True, "")


class _FakeTorch(SimpleNamespace):
    def __init__(self):
        super().__init__(intra=None)

    def set_num_threads(self, n):
        self.intra = n

    def set_num_interop_threads(self, n):
        raise RuntimeError("cannot set number of interop threads after parallel work")


def test_pytorch_pins_threads_on_construction_despite_a_fixed_interop_pool(monkeypatch):
    fake = _FakeTorch()
    monkeypatch.setitem(sys.modules, "torch", fake)

    backend = REGISTRY["pytorch"](threads=3)

    assert (backend.threads, fake.intra) == (3, 3)


def _fake_tensorflow(monkeypatch, intra, inter):
    threading = SimpleNamespace(
        set_intra_op_parallelism_threads=intra, set_inter_op_parallelism_threads=inter
    )
    tf = SimpleNamespace(config=SimpleNamespace(threading=threading))
    monkeypatch.setitem(sys.modules, "tensorflow", tf)


def test_keras_pins_both_tensorflow_pools(monkeypatch):
    calls = {}
    _fake_tensorflow(
        monkeypatch,
        lambda n: calls.setdefault("intra", n),
        lambda n: calls.setdefault("inter", n),
    )

    REGISTRY["keras"](threads=2)

    assert calls == {"intra": 2, "inter": 1}


def test_keras_tolerates_an_initialised_tensorflow(monkeypatch):
    def already(n):
        raise RuntimeError("Intra op parallelism cannot be modified after initialization.")

    _fake_tensorflow(monkeypatch, already, already)

    assert REGISTRY["keras"](threads=2).threads == 2


def test_session_runtimes_take_threads_from_the_backend():
    ort = pytest.importorskip("onnxruntime")
    from harness.backends.onnxruntime import session_options

    options = session_options(3)
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 1)
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert REGISTRY["tflite"](threads=2).threads == 2


def test_threads_must_be_positive():
    with pytest.raises(ValueError, match="threads"):
        REGISTRY["onnxruntime"](threads=0)


def test_runtime_module_and_version_come_from_the_format_table():
    from harness.formats import FORMATS

    for cls in REGISTRY.values():
        fmt = FORMATS[cls.artifact_format]
        assert (cls.module, cls.distribution) == (fmt.runtime_module, fmt.runtime_distribution)
