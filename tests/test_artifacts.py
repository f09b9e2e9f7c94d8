"""Exports of every shipped spec: files, manifest, cache and parity (slow: ~2 minutes)."""

import json
import sys

import numpy as np
import pytest

from harness.exporters.artifacts import cache_key, copy_export, export, sha256_of
from harness.formats import FORMATS
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
    assert np.load(out / "reference.npy").shape == (8, 1000)


def test_a_missing_framework_stops_an_export_before_it_starts(monkeypatch):
    from harness import formats
    from harness.exporters import artifacts

    monkeypatch.setattr(formats.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(artifacts.MissingFramework, match="needs torch"):
        export(load_spec("mobilenet_v2"), ["pytorch"])
