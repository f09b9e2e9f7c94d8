"""ONNX Runtime per-layer profile: real profiled sessions on small specs, fp32 and int8."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from harness.exporters.artifacts import artifact_in, export
from harness.macs import count
from harness.profiling.layers import UNATTRIBUTED, ProfileError, role_of
from harness.profiling.onnxruntime import (
    attribute,
    kernel_events,
    node_layers,
    record,
    run_windows,
)
from harness.spec import load_spec
from harness.weights import sample_input

SEED = 53
ITERATIONS = 3
MODELS = ("mobilenet_v2", "standard_conv")
PRECISIONS = ("fp32", "int8")
#: The spec role each model's block 3x3 convs must be attributed to.
BLOCK_3X3 = {"mobilenet_v2": "depthwise 3x3", "standard_conv": "standard 3x3"}


def small(model: str):
    return load_spec(model, width=0.35, resolution=96)


@pytest.fixture(scope="module")
def recordings(artifact_cache):
    """(model, precision) -> a Recording of ITERATIONS profiled calls at 1 thread."""
    found = {}
    for model in MODELS:
        spec = small(model)
        folder = export(spec, ["onnx", "onnx.int8"], SEED)
        batch = sample_input(spec, 1, SEED)
        for precision in PRECISIONS:
            artifact = artifact_in(folder, "onnx", precision)
            found[model, precision] = record(artifact, 1, batch, ITERATIONS)
    return found


CELLS = [(m, p) for m in MODELS for p in PRECISIONS]


@pytest.mark.parametrize(("model", "precision"), CELLS)
def test_every_layer_with_macs_has_time_in_every_iteration(recordings, model, precision):
    spec = small(model)
    times = attribute(recordings[model, precision], spec)
    layers = count(spec).layers
    assert len(times.iterations) == ITERATIONS
    for row in times.iterations:
        assert {layer.name for layer in layers if layer.macs} <= set(row)
        assert sum(layer.macs for layer in layers if layer.name in row) == count(spec).macs
        assert sum(row.values()) > 0


@pytest.mark.parametrize(("model", "precision"), CELLS)
def test_each_layer_is_one_node_of_the_optimized_graph(recordings, model, precision):
    recording = recordings[model, precision]
    mapping = node_layers(recording, small(model))
    owners = [layer for layer in mapping.values() if layer != UNATTRIBUTED]
    assert len(owners) == len(set(owners))
    assert set(mapping) == {node.name for node in recording.optimized.node}


@pytest.mark.parametrize(("model", "precision"), CELLS)
def test_no_event_is_dropped(recordings, model, precision):
    recording = recordings[model, precision]
    times = attribute(recording, small(model))
    windows = run_windows(recording.trace)
    assert len(windows) == recording.warmup + ITERATIONS
    first_profiled = windows[recording.warmup][0]
    profiled = [e for e in kernel_events(recording.trace) if e["ts"] >= first_profiled]
    assert times.events == len(profiled) == times.mapped_events + times.unattributed_events
    assert times.events % ITERATIONS == 0
    assert times.unattributed_events == 0 or times.unattributed_names
    total_ms = sum(e["dur"] for e in profiled) / 1000
    assert sum(sum(row.values()) for row in times.iterations) == pytest.approx(total_ms)


@pytest.mark.parametrize(("model", "precision"), CELLS)
def test_block_3x3_convs_have_the_models_role_and_kernel(recordings, model, precision):
    recording = recordings[model, precision]
    spec = small(model)
    mapping = node_layers(recording, spec)
    attributed = {mapping[node.name]: node for node in recording.optimized.node}
    blocks = [layer for layer in count(spec).layers if layer.name.startswith("block")]
    threes = [layer for layer in blocks if layer.kernel == 3]
    assert {role_of(layer.name) for layer in threes} == {BLOCK_3X3[model]}
    for layer in threes:
        node = attributed[layer.name]
        attrs = {a.name: a for a in node.attribute}
        assert list(attrs["kernel_shape"].ints) == [3, 3]
        assert attrs["group"].i == layer.groups
        assert (layer.groups == layer.in_shape[0] > 1) == (model == "mobilenet_v2")


@pytest.mark.parametrize(("model", "precision"), CELLS)
def test_mapping_survives_the_fusions(recordings, model, precision):
    recording = recordings[model, precision]
    mapping = node_layers(recording, small(model))
    fused = [node for node in recording.optimized.node if _is_fused(node)]
    assert fused, "the optimized graph has no fused node"
    assert all(mapping[node.name] != UNATTRIBUTED for node in fused)
    # A residual Add fused into a conv (its fourth input, the sum) stays the project conv's.
    summed = [
        n for n in recording.optimized.node if n.op_type.endswith("Conv") and len(n.input) == 4
    ]
    assert all(role_of(mapping[node.name]) == "project 1x1" for node in summed)


def _is_fused(node) -> bool:
    """An integer conv (a fused QDQ group) or a conv with a fused activation (Clip)."""
    attrs = {a.name for a in node.attribute}
    return node.op_type in ("QLinearConv", "FusedConv") or "activation" in attrs


def test_the_other_models_spec_names_its_missing_layer(recordings):
    twin = small("standard_conv")
    with pytest.raises(ProfileError, match=r"block0\.conv"):
        attribute(recordings["mobilenet_v2", "fp32"], twin)


def test_a_node_whose_name_and_weights_disagree_is_refused(recordings):
    recording = recordings["mobilenet_v2", "fp32"]
    graph = type(recording.optimized)()
    graph.CopyFrom(recording.optimized)
    stem = next(n for n in graph.node if "stem.conv.weight_bias" in n.input)
    stem.input[2] = "head.conv.weight_bias"
    tampered = dataclasses.replace(recording, optimized=graph)
    with pytest.raises(ProfileError, match=r"head, stem"):
        attribute(tampered, small("mobilenet_v2"))
