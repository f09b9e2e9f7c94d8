"""The format table: names, variants, grouping, requirements, and what is derived from it."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

from harness import formats
from harness.backends import REGISTRY
from harness.formats import FORMATS, by_source, distributions, get_format

PYPROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def _extra_distributions(extra: str) -> set[str]:
    """Distribution names an extra installs, following ``mobilebench[...]`` references."""
    names: set[str] = set()
    for requirement in EXTRAS[extra]:
        name = requirement.split(";")[0].strip()
        if name.startswith("mobilebench["):
            for inner in name[len("mobilebench[") : -1].split(","):
                names |= _extra_distributions(inner.strip())
        else:
            names.add(name.split(">")[0].split("=")[0].split("<")[0].strip().lower())
    return names


def test_every_backend_consumes_a_format_and_every_format_has_a_backend():
    assert {cls.artifact_format for cls in REGISTRY.values()} == set(FORMATS)


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_extra_brings_what_it_needs(name):
    fmt = FORMATS[name]
    installed = _extra_distributions(fmt.extra)
    needed = {m.replace("_", "-") for m in (*fmt.modules, fmt.runtime_module)}
    needed |= {*fmt.distributions, fmt.runtime_distribution}
    if name == "coreml":  # coremltools is left out where it has no wheel; the marker says so
        needed.discard("coremltools")
        assert any(r.startswith("coremltools") for r in EXTRAS["coreml"])
    assert needed <= installed, needed - installed
    assert {"pytorch": "torch", "keras": "keras"}[fmt.source] in fmt.modules


def test_all_extra_covers_every_format():
    assert {f.extra for f in FORMATS.values()} <= {
        e.strip() for r in EXTRAS["all"] for e in r[len("mobilebench[") : -1].split(",")
    }


@pytest.mark.parametrize("name", list(FORMATS))
def test_exporters_resolve_without_importing_a_framework(name):
    assert callable(FORMATS[name].export_function())


def test_variant_keys_and_files():
    onnx = get_format("onnx")
    assert (onnx.key(), onnx.file()) == ("onnx", "model.onnx")
    assert get_format("coreml").file() == "model.mlpackage"
    variant = formats.Format(**{**onnx.__dict__, "precisions": ("fp32", "int8")})
    assert (variant.key("int8"), variant.file("int8")) == ("onnx.int8", "model.int8.onnx")
    with pytest.raises(ValueError, match="no fp16 variant"):
        onnx.file("fp16")


def test_unknown_format_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown format 'caffe': choose from pytorch, keras"):
        get_format("caffe")


def test_formats_are_grouped_by_source_pytorch_first():
    assert by_source(["tflite", "onnx", "keras", "coreml", "onnx"]) == {
        "pytorch": ["onnx", "coreml"],
        "keras": ["tflite", "keras"],
    }
    assert by_source(["keras"]) == {"keras": ["keras"]}


def test_distributions_are_every_formats_and_numpy():
    names = distributions()
    assert len(names) == len(set(names))
    for fmt in FORMATS.values():
        assert set(fmt.distributions) <= set(names)
    assert "numpy" in names


def test_missing_frameworks_are_named_with_their_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        formats.importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("torch", "onnxscript") else real(name, *a),
    )
    reason = get_format("onnx").missing()
    assert reason == "exporting onnx needs torch, onnxscript (pip install 'mobilebench[onnx]')"
    assert "needs torch" in get_format("keras").missing()  # the reference is PyTorch's
