"""Exports of every shipped spec: files, manifest, cache and parity (slow: ~2 minutes)."""

import json
import sys

import numpy as np
import pytest

from harness.exporters.artifacts import (
    cache_dir,
    cache_key,
    copy_export,
    export,
    export_plan,
    sha256_of,
)
from harness.formats import FORMATS
from harness.inputs import EVALUATION_IMAGES, calibration_set, digest, evaluation_set
from harness.spec import load_spec

SPECS = ("mobilenet_v2", "standard_conv", "mobilenet_v2_article")
MANIFEST_KEYS = {
    "format",
    "path",
    "sha256",
    "bytes",
    "input_name",
    "input_shape",
    "layout",
    "output_name",
    "precision",
    "parity",
}


@pytest.mark.parametrize("name", SPECS)
def test_manifest_describes_every_artifact(exported, name):
    folder = exported(name)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"] == name
    assert set(manifest["artifacts"]) == set(FORMATS)
    for fmt, entry in manifest["artifacts"].items():
        assert set(entry) >= MANIFEST_KEYS, fmt
        path = folder / entry["path"]
        assert path.exists()
        assert entry["sha256"] == sha256_of(path)
        assert entry["bytes"] > 0
        assert entry["layout"] in ("NCHW", "NHWC")


@pytest.mark.parametrize("name", SPECS)
def test_every_runnable_artifact_matches_the_reference(exported, name):
    manifest = json.loads((exported(name) / "manifest.json").read_text())
    for fmt, entry in manifest["artifacts"].items():
        parity = entry["parity"]
        if fmt == "coreml" and sys.platform != "darwin":
            assert parity["status"] == "skipped"
            assert "macOS" in parity["reason"]
            continue
        assert parity["status"] == "ok", (fmt, parity)
        assert parity["rel_l2_err"] < 1e-4, fmt
        assert parity["top1_agree"] == 1.0, fmt


@pytest.mark.parametrize("name", SPECS)
def test_coreml_program_matches_the_spec(exported, name):
    from harness.architecture import resolve

    mil = json.loads((exported(name) / "manifest.json").read_text())["artifacts"]["coreml"]["mil"]
    assert mil["matches_spec"]
    net = resolve(load_spec(name))
    convs = len(net.convs()) + (net.classifier.kind == "conv1x1")
    assert mil["op_counts"]["conv"] == convs
    assert mil["op_counts"]["add"] == sum(b.residual for b in net.blocks)


def test_reexport_reuses_the_cache(exported):
    folder = exported("mobilenet_v2")
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    touched = []
    again = export(load_spec("mobilenet_v2"), on_progress=touched.append)
    assert again == folder
    assert touched == []
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_cache_key_tracks_what_changes_the_files():
    """Precision variants are keyed inside the folder (see the settings test below)."""
    spec = load_spec("mobilenet_v2")
    assert cache_key(spec, 0) == cache_key(load_spec("mobilenet_v2"), 0)
    assert cache_key(spec, 0) != cache_key(spec, 1)
    assert cache_key(spec, 0) != cache_key(spec.with_overrides(width=0.5), 0)
    assert cache_key(spec, 0) != cache_key(spec.with_overrides(resolution=192), 0)


def test_copy_export(exported, tmp_path):
    out = copy_export(exported("mobilenet_v2"), tmp_path / "x", ["onnx", "coreml"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"onnx", "coreml"}
    assert (out / "model.onnx").is_file()
    assert (out / "model.mlpackage").is_dir()
    assert np.load(out / "reference.npy").shape == (EVALUATION_IMAGES, 1000)


def test_manifest_records_the_image_sets_by_hash(exported):
    manifest = json.loads((exported("mobilenet_v2") / "manifest.json").read_text())
    spec = load_spec("mobilenet_v2")
    inputs = manifest["inputs"]
    assert inputs["evaluation"]["sha256"] == digest(evaluation_set(spec, 0))
    assert inputs["calibration"]["sha256"] == digest(calibration_set(spec, 0))
    assert manifest["parity_input"]["images"] == EVALUATION_IMAGES


def test_a_variant_is_cached_by_precision_and_remade_when_its_settings_change(
    artifact_cache, monkeypatch
):
    """The int8 ONNX file sits beside the fp32 one; new quantization settings remake it alone."""
    import dataclasses

    from harness import formats

    pytest.importorskip("onnxruntime")
    spec = load_spec("mobilenet_v2", width=0.35, resolution=96)
    seed = 17  # a folder of its own in the session's cache
    folder = export(spec, ["onnx", "onnx.int8"], seed)
    entry = json.loads((folder / "manifest.json").read_text())["artifacts"]["onnx.int8"]
    assert (entry["path"], entry["precision"]) == ("model.int8.onnx", "int8")
    assert entry["settings"] == formats.get_format("onnx").variant("int8").settings
    assert entry["parity"]["status"] == "ok", entry["parity"]
    assert export_plan(folder, ["onnx", "onnx.int8"]) == {}

    onnx = formats.FORMATS["onnx"]
    int8 = dataclasses.replace(
        onnx.variant("int8"),
        settings={**onnx.variant("int8").settings, "calibration": "Entropy"},
    )
    changed = dataclasses.replace(
        onnx, variants=tuple(int8 if v.precision == "int8" else v for v in onnx.variants)
    )
    monkeypatch.setitem(formats.FORMATS, "onnx", changed)
    assert export_plan(folder, ["onnx", "onnx.int8"]) == {"pytorch": ["onnx.int8"]}


def test_a_missing_framework_stops_an_export_before_it_starts(monkeypatch):
    from harness import formats
    from harness.exporters import artifacts

    monkeypatch.setattr(formats.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(artifacts.MissingFramework, match="needs torch"):
        export(load_spec("mobilenet_v2"), ["pytorch"])


def test_a_failed_variant_costs_only_itself(artifact_cache, monkeypatch):
    """A conversion that raises is reported for its own key; fp32 and the others are written."""
    import dataclasses

    from harness import formats
    from harness.exporters.artifacts import export_source, read_manifest

    onnx = formats.FORMATS["onnx"]
    broken = dataclasses.replace(onnx.variant("int8"), exporter="fake_backends:failing_exporter")
    variants = tuple(broken if v.precision == "int8" else v for v in onnx.variants)
    monkeypatch.setitem(formats.FORMATS, "onnx", dataclasses.replace(onnx, variants=variants))
    spec = load_spec("mobilenet_v2", width=0.35, resolution=96)
    folder = cache_dir(spec, 23)
    errors = export_source(spec, "pytorch", ["onnx", "onnx.int8", "onnx.fp16"], folder, seed=23)
    assert errors == {
        "onnx.int8": "RuntimeError: calibration diverged: every activation range is NaN"
    }
    manifest = read_manifest(folder)
    assert set(manifest["artifacts"]) == {"onnx", "onnx.fp16"}
    assert manifest["artifacts"]["onnx.fp16"]["parity"]["status"] == "ok"
