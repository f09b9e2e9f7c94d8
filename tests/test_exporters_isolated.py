"""Exports in one fresh process per source framework; a crash costs only its own formats."""

import json
from pathlib import Path

import pytest

from harness.exporters import artifacts, isolated
from harness.spec import load_spec

SMALL = {"width": 0.35, "resolution": 96}


def test_one_child_per_source_pytorch_first_and_a_crash_costs_its_own_formats(
    monkeypatch, tmp_path, artifact_cache
):
    calls = []

    def fake_in_child(fn, args, timeout_s, env, log_path):
        _, source, formats, _, _ = args
        calls.append((source, formats))
        if source == "keras":
            return {"status": "failed", "reason": "child crashed with SIGSEGV"}
        return {"status": "ok", "result": {"coreml": "ValueError: no"}}

    monkeypatch.setattr(isolated, "in_child", fake_in_child)
    spec = load_spec("mobilenet_v2", **SMALL)
    seed = 41  # nothing of this seed is in the session's cache
    results = isolated.export_isolated(
        spec, ["tflite", "onnx", "keras", "coreml"], seed, tmp_path / "log"
    )

    assert calls == [("pytorch", ["onnx", "coreml"]), ("keras", ["tflite", "keras"])]
    assert results["onnx"] == artifacts.cache_dir(spec, seed)
    assert results["coreml"] == "export failed: ValueError: no"
    for fmt in ("tflite", "keras"):
        assert results[fmt] == "export failed (keras process): child crashed with SIGSEGV"
    assert list(results) == ["tflite", "onnx", "keras", "coreml"]


def test_keras_only_still_writes_the_reference_first(monkeypatch, tmp_path, artifact_cache):
    calls = []
    monkeypatch.setattr(
        isolated,
        "in_child",
        lambda fn, args, **kw: calls.append(args[1:3]) or {"status": "ok", "result": {}},
    )
    isolated.export_isolated(load_spec("standard_conv", **SMALL), ["keras"], 7, tmp_path / "log")
    assert calls == [("pytorch", []), ("keras", ["keras"])]


def test_each_source_model_is_built_once(monkeypatch, artifact_cache):
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from harness.builders import pytorch

    built = []
    real = pytorch.build
    monkeypatch.setattr(pytorch, "build", lambda *a: built.append(1) or real(*a))
    folder = artifacts.export(load_spec("mobilenet_v2", **SMALL), ["pytorch", "onnx"], seed=3)

    assert len(built) == 1
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {manifest["artifacts"][f]["parity"]["status"] for f in ("pytorch", "onnx")} == {"ok"}


def test_real_children_export_and_check_their_own_formats(artifact_cache, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("ai_edge_litert")
    spec = load_spec("standard_conv", **SMALL)
    results = isolated.export_isolated(spec, ["onnx", "tflite"], 5, tmp_path / "export.log")

    assert results == dict.fromkeys(["onnx", "tflite"], artifacts.cache_dir(spec, 5))
    folder: Path = results["onnx"]
    manifest = json.loads((folder / "manifest.json").read_text())
    for fmt in ("onnx", "tflite"):
        assert manifest["artifacts"][fmt]["parity"]["status"] == "ok", fmt
    assert (folder / artifacts.REFERENCE).is_file()


def test_a_keras_only_export_writes_the_reference_then_checks_against_it(artifact_cache):
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    folder = artifacts.export(load_spec("mobilenet_v2", **SMALL), ["keras"], seed=11)

    manifest = json.loads((folder / "manifest.json").read_text())
    assert list(manifest["artifacts"]) == ["keras"]
    assert manifest["artifacts"]["keras"]["parity"]["status"] == "ok"
    assert (folder / artifacts.REFERENCE).is_file()


def test_each_child_is_announced_with_its_work(monkeypatch, tmp_path, artifact_cache):
    monkeypatch.setattr(isolated, "in_child", lambda fn, args, **kw: {"status": "ok", "result": {}})
    steps = []
    spec = load_spec("standard_conv", **SMALL)
    isolated.export_isolated(spec, ["tflite", "onnx"], 13, tmp_path / "log", on_step=steps.append)
    assert steps == ["pytorch: onnx", "keras: tflite"]
    isolated.export_isolated(spec, ["keras"], 14, tmp_path / "log", on_step=steps.append)
    assert steps[2:] == ["pytorch: the fp32 reference", "keras: keras"]
