"""The format table: names, variants, grouping, requirements, and what is derived from it."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

from harness import formats
from harness.backends import REGISTRY
from harness.formats import (
    FORMATS,
    PRECISIONS,
    artifact_keys,
    by_source,
    distributions,
    get_format,
    parse_key,
    parse_precisions,
)

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
    variant_modules = [m for v in fmt.variants for m in v.modules]
    needed = {m.replace("_", "-") for m in (*fmt.modules, *variant_modules, fmt.runtime_module)}
    needed |= {*fmt.distributions, fmt.runtime_distribution}
    needed |= {d for v in fmt.variants for d in v.distributions}
    if name == "coreml":  # coremltools is left out where it has no wheel; the marker says so
        needed.discard("coremltools")
        assert any(r.startswith("coremltools") for r in EXTRAS["coreml"])
    assert needed <= installed, needed - installed
    assert {"pytorch": "torch", "keras": "keras"}[fmt.source] in fmt.modules


def test_all_extra_covers_every_format():
    assert {f.extra for f in FORMATS.values()} <= {
        e.strip() for r in EXTRAS["all"] for e in r[len("mobilebench[") : -1].split(",")
    }


@pytest.mark.parametrize(
    ("name", "precision"), [(f.name, p) for f in FORMATS.values() for p in f.precisions]
)
def test_exporters_resolve_without_importing_a_framework(name, precision):
    """Every exporter, variants included, resolves to a function."""
    assert callable(FORMATS[name].export_function(precision))


def test_variant_keys_and_files():
    onnx = get_format("onnx")
    assert (onnx.key(), onnx.file()) == ("onnx", "model.onnx")
    assert (onnx.key("int8"), onnx.file("int8")) == ("onnx.int8", "model.int8.onnx")
    assert get_format("coreml").file("fp16") == "model.fp16.mlpackage"
    with pytest.raises(ValueError, match="no bf16 variant"):
        onnx.file("bf16")


def test_every_precision_a_format_lacks_has_a_reason():
    for fmt in FORMATS.values():
        for precision in PRECISIONS:
            reason = fmt.absent_reason(precision)
            assert (reason is None) == (precision in fmt.precisions)
    assert "deploys through TFLite" in get_format("keras").absent_reason("int8")


def test_precisions_parse_with_all_and_name_the_valid_ones():
    assert parse_precisions("fp32, int8,int8") == ["fp32", "int8"]
    assert parse_precisions("all") == list(PRECISIONS)
    with pytest.raises(ValueError, match="unknown precision 'int4': choose from fp32, fp16"):
        parse_precisions("fp32,int4")
    with pytest.raises(ValueError, match="unknown precision"):
        parse_precisions(",")


def test_artifact_keys_hold_every_fp32_base_and_the_variants_each_format_has():
    assert artifact_keys(["onnx", "keras"], ["int8"]) == ["onnx", "onnx.int8", "keras"]
    assert artifact_keys(["pytorch"], ["fp16", "bf16"]) == ["pytorch", "pytorch.bf16"]
    assert parse_key("tflite.fp16") == (get_format("tflite"), "fp16")
    assert parse_key("tflite") == (get_format("tflite"), "fp32")
    with pytest.raises(ValueError, match="no bf16 variant"):
        parse_key("tflite.bf16")


def test_variant_settings_are_what_the_cache_compares():
    """Settings are plain JSON data: the manifest stores them and the cache compares them."""
    import json

    for fmt in FORMATS.values():
        for variant in fmt.variants:
            assert json.loads(json.dumps(variant.settings)) == variant.settings
            assert variant.settings


def test_unknown_format_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown format 'caffe': choose from pytorch, keras"):
        get_format("caffe")


def test_formats_are_grouped_by_source_pytorch_first():
    assert by_source(["tflite", "onnx", "keras", "coreml", "onnx"]) == {
        "pytorch": ["onnx", "coreml"],
        "keras": ["tflite", "keras"],
    }
    assert by_source(["keras"]) == {"keras": ["keras"]}


def test_variants_are_exported_after_every_fp32_file_of_their_source():
    assert by_source(["onnx.int8", "tflite.int8", "onnx", "coreml", "tflite"]) == {
        "pytorch": ["onnx", "coreml", "onnx.int8"],
        "keras": ["tflite", "tflite.int8"],
    }


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
