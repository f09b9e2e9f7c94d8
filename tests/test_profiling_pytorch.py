"""torch.profiler per-layer profiles of the eager .pt2 programs, on the small specs."""

from __future__ import annotations

import dataclasses

import pytest

from harness.cpu import native
from harness.macs import count
from harness.profiling.layers import UNATTRIBUTED, ProfileError, spec_layers
from harness.profiling.table import profile_rows
from harness.spec import load_spec
from harness.weights import sample_input

torch = pytest.importorskip("torch")

from harness.exporters.artifacts import artifact_in, export  # noqa: E402
from harness.profiling.pytorch import node_layer, path_layer, profile  # noqa: E402

#: Small specs, with seeds no other test exports.
SPECS = {"mobilenet_v2": 51, "standard_conv": 53}
BATCH = 2
ITERATIONS = 3
BF16 = native("bf16")


@pytest.fixture(scope="module")
def folders(artifact_cache):
    return {
        name: export(load_spec(name, width=0.35, resolution=96), ["pytorch", "pytorch.bf16"], seed)
        for name, seed in SPECS.items()
    }


@pytest.fixture(scope="module")
def profiles(folders):
    """``profiles(model, precision)`` -> (spec, artifact, LayerTimes), each profiled once."""
    done = {}

    def get(name: str, precision: str):
        if precision == "bf16" and not BF16.available:
            pytest.skip(BF16.describe())
        if (name, precision) not in done:
            spec = load_spec(name, width=0.35, resolution=96)
            artifact = artifact_in(folders[name], "pytorch", precision)
            batch = sample_input(spec, BATCH, seed=7)
            done[name, precision] = (
                spec,
                artifact,
                profile(artifact, spec, 1, "eager", batch, ITERATIONS),
            )
        return done[name, precision]

    return get


CELLS = [(name, precision) for name in SPECS for precision in ("fp32", "bf16")]


@pytest.mark.parametrize(("name", "precision"), CELLS)
def test_every_spec_layer_once_in_model_order(profiles, name, precision):
    spec, _, times = profiles(name, precision)
    rows = profile_rows(times, spec_layers(spec), 1.0, None, BATCH)
    expected = [layer.name for layer in count(spec).layers]
    assert [row["layer"] for row in rows] == [*expected, UNATTRIBUTED]
    assert len(times.iterations) == ITERATIONS
    layer_rows = rows[:-1]
    assert all(row["ms_p50"] > 0 and row["note"] is None for row in layer_rows)


@pytest.mark.parametrize(("name", "precision"), CELLS)
def test_every_graph_op_counted_once(profiles, name, precision):
    """Each graph call is one outermost op event per iteration, mapped iff its module is a layer."""
    spec, artifact, times = profiles(name, precision)
    names = {layer.name for layer in spec_layers(spec)}
    graph = torch.export.load(str(artifact.path)).module().graph
    in_layer = [
        any(
            path.removeprefix("model.") in names
            for path, _ in node.meta["nn_module_stack"].values()
        )
        for node in graph.nodes
        if node.op == "call_function"
    ]
    assert times.mapped_events == ITERATIONS * sum(in_layer)
    assert times.mapped_events + times.unattributed_events == times.events
    assert times.unattributed_events >= ITERATIONS * in_layer.count(False)


@pytest.mark.parametrize(("name", "precision"), CELLS)
def test_row_macs_add_up_to_the_model(profiles, name, precision):
    spec, _, times = profiles(name, precision)
    rows = profile_rows(times, spec_layers(spec), 1.0, None, BATCH)
    assert sum(row["macs"] for row in rows) == count(spec).macs * BATCH
    assert rows[-1]["macs"] == 0


@pytest.mark.parametrize(
    ("name", "role"), [("standard_conv", "standard 3x3"), ("mobilenet_v2", "depthwise 3x3")]
)
def test_block_3x3_convs_have_their_role_and_time(profiles, name, role):
    spec, _, times = profiles(name, "fp32")
    rows = profile_rows(times, spec_layers(spec), 1.0, None, BATCH)
    block_3x3 = [
        row
        for row in rows
        if row["layer"].startswith("block") and row["layer"].endswith(("dw", "conv"))
    ]
    assert block_3x3
    assert {row["role"] for row in block_3x3} == {role}
    assert all(row["ms_p50"] > 0 for row in block_3x3)


def test_bf16_casts_are_unattributed(profiles):
    _, _, times = profiles("mobilenet_v2", "bf16")
    assert "aten::to" in times.unattributed_names
    assert all(times.iterations[i][UNATTRIBUTED] > 0 for i in range(ITERATIONS))


@pytest.mark.parametrize(
    ("mode", "precision", "api"), [("compile", "fp32", "torch.compile"), ("eager", "int8", "int8")]
)
def test_compiled_programs_are_refused_with_the_reason(folders, mode, precision, api):
    spec = load_spec("mobilenet_v2", width=0.35, resolution=96)
    artifact = artifact_in(folders["mobilenet_v2"], "pytorch", "fp32")
    artifact = dataclasses.replace(artifact, precision=precision)
    with pytest.raises(ProfileError, match=api):
        profile(artifact, spec, 1, mode, sample_input(spec, 1), 1)


def test_module_paths_name_spec_layers_at_dot_boundaries():
    names = {"block3.dw", "block3.conv", "head"}
    assert path_layer("block3.dw", names) == "block3.dw"
    assert path_layer("model.block3.dw", names) == "block3.dw"
    assert path_layer("block13.dw", names) is None
    assert path_layer("block3.conv.conv", names) is None
    assert path_layer("model", names) is None


def test_a_node_belongs_to_its_innermost_spec_layer(folders):
    """The conv inside the twin's ``block3.conv`` (path ``block3.conv.conv``) is that layer's."""
    artifact = artifact_in(folders["standard_conv"], "pytorch", "fp32")
    graph = torch.export.load(str(artifact.path)).module().graph
    names = {layer.name for layer in spec_layers(load_spec("standard_conv", 0.35, 96))}
    convs = [
        node
        for node in graph.nodes
        if node.target == torch.ops.aten.conv2d.default
        and "block3.conv.conv" in [path for path, _ in node.meta["nn_module_stack"].values()]
    ]
    assert len(convs) == 1
    assert node_layer(convs[0], names) == "block3.conv"
    assert node_layer(convs[0], names - {"block3.conv"}) is None
