"""ONNX Runtime per-layer profile: the profiler's node kernel times, mapped to spec layers.

One CPU session with the measuring backend's options
(:func:`harness.backends.onnxruntime.session_options`: ORT_ENABLE_ALL, the same
threads) plus ``enable_profiling`` records a Chrome-trace JSON file and, through
``optimized_model_filepath``, the optimised graph it really runs. Each
``<node>_kernel_time`` event is one optimised node's kernel in one ``model_run``.

An optimised node is traced back to the exported file by name, as ONNX Runtime
names what it makes: a fused node keeps its first node's name (FusedConv,
QLinearConv), plus ``_token_<n>`` when made unique; an NCHWc node is named after
its output tensor plus ``_nchwc``. The file's node is a spec layer by the module
path the torch.onnx exporter records (``pkg.torch.onnx.name_scopes``: ``block3.dw``,
the PyTorch builder's module names are the spec's layer names). The node's weights
(``block3.dw.conv.weight_bias``, ``classifier.weight_quantized``) are a second,
independent witness; the two must agree.
"""

from __future__ import annotations

import ast
import bisect
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.base import Artifact, to_layout
from harness.backends.onnxruntime import OnnxRuntimeBackend, session_with_graph
from harness.profiling.layers import UNATTRIBUTED, LayerTimes, ProfileError, spec_layers
from harness.spec import ModelSpec

#: Calls before the profiled ones (arena growth, first-run caches); left out of the result.
WARMUP = 3
#: Ops that move, reorder or convert data and compute no layer: always unattributed.
DATA_MOVEMENT = frozenset(
    {
        "ReorderInput",
        "ReorderOutput",
        "Transpose",
        "Cast",
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "MemcpyFromHost",
        "MemcpyToHost",
    }
)
_KERNEL = "_kernel_time"
#: Suffixes ONNX Runtime appends to the names of nodes it makes.
_ORT_SUFFIX = re.compile(r"(_token_\d+|_nchwc)$")
_SCOPES = "pkg.torch.onnx.name_scopes"


@dataclass(frozen=True)
class Recording:
    """One profiled session: the file's graph, the graph it ran, and its trace."""

    original: Any  # onnx.GraphProto of the artifact
    optimized: Any  # onnx.GraphProto the session ran (ORT_ENABLE_ALL)
    trace: list[dict]  # every event of the profiler's JSON file
    warmup: int  # the first ``warmup`` model_run events are warm-up calls
    version: str  # onnxruntime version


def profile(
    artifact: Artifact,
    spec: ModelSpec,
    threads: int,
    mode: str,
    batch: np.ndarray,
    iterations: int,
) -> LayerTimes:
    """Per-iteration ms per spec layer of ``iterations`` profiled calls on ``batch`` (NCHW),
    in the CPU execution provider (``mode`` "cpu")."""
    if mode != "cpu":
        raise ProfileError(f"onnxruntime mode {mode!r} is not profiled per layer")
    return attribute(record(artifact, threads, batch, iterations), spec)


def record(
    artifact: Artifact, threads: int, batch: np.ndarray, iterations: int, warmup: int = WARMUP
) -> Recording:
    """Run ``warmup`` then ``iterations`` calls in a profiling CPU session; keep its trace."""
    import onnx
    import onnxruntime as ort

    prepared = to_layout(batch, OnnxRuntimeBackend.layout)
    with tempfile.TemporaryDirectory(prefix="mobilebench-ort-profile-") as folder:
        session, optimized = session_with_graph(
            str(artifact.path),
            threads,
            enable_profiling=True,
            profile_file_prefix=str(Path(folder) / "ort-profile"),
        )
        for _ in range(warmup + iterations):
            session.run(None, {artifact.input_name: prepared})
        trace = json.loads(Path(session.end_profiling()).read_text())
        del session
    return Recording(onnx.load(artifact.path).graph, optimized, trace, warmup, ort.__version__)


def kernel_events(trace: list[dict]) -> list[dict]:
    """The node kernel events (not fences, not session events), in trace order."""
    return [e for e in trace if e.get("cat") == "Node" and e["name"].endswith(_KERNEL)]


def run_windows(trace: list[dict]) -> list[tuple[int, int]]:
    """(start, end) in µs of each ``model_run`` event (one call each), in time order."""
    runs = [e for e in trace if e.get("cat") == "Session" and e["name"] == "model_run"]
    return sorted((e["ts"], e["ts"] + e["dur"]) for e in runs)


def attribute(recording: Recording, spec: ModelSpec) -> LayerTimes:
    """The profiled runs' node kernel times summed per spec layer, per iteration.

    Raises :class:`ProfileError` if a node maps to more than one layer, a kernel
    event lies outside every run, or a layer with MACs has no event in a run.
    """
    layers = node_layers(recording, spec)
    windows = run_windows(recording.trace)
    if len(windows) <= recording.warmup:
        raise ProfileError("the ONNX Runtime trace has no model_run after the warm-up calls")
    times = LayerTimes(
        iterations=[{} for _ in windows[recording.warmup :]],
        source=(
            f"onnxruntime {recording.version} profiler (enable_profiling), node kernel "
            "times, optimized graph ORT_ENABLE_ALL"
        ),
    )
    unattributed: dict[str, None] = {}
    for event in kernel_events(recording.trace):
        run = _run_of(event, windows) - recording.warmup
        if run < 0:
            continue
        node = _node_name(event)
        layer = layers[node]
        times.events += 1
        if layer == UNATTRIBUTED:
            times.unattributed_events += 1
            unattributed[f"{node} ({event['args'].get('op_name', '?')})"] = None
        else:
            times.mapped_events += 1
        row = times.iterations[run]
        row[layer] = row.get(layer, 0.0) + event["dur"] / 1000.0
    times.unattributed_names = list(unattributed)
    _check_coverage(times, spec)
    return times


def node_layers(recording: Recording, spec: ModelSpec) -> dict[str, str]:
    """Spec layer (or :data:`UNATTRIBUTED`) of every node a kernel event names.

    Raises :class:`ProfileError` for a node whose name and weights point at more
    than one spec layer.
    """
    names = {layer.name for layer in spec_layers(spec)}
    origin = _origin_layers(recording.original, names)
    nodes = {node.name: node for node in recording.optimized.node}
    initializers = {t.name for t in recording.optimized.initializer}
    result: dict[str, str] = {}
    for event in kernel_events(recording.trace):
        name = _node_name(event)
        if name in result:
            continue
        node = nodes.get(name)
        op = node.op_type if node is not None else event["args"].get("op_name", "")
        if op in DATA_MOVEMENT:
            result[name] = UNATTRIBUTED
            continue
        weights = [i for i in node.input if i in initializers] if node is not None else []
        found = _layers_of(name, weights, origin, names)
        if len(found) > 1:
            raise ProfileError(
                f"ONNX Runtime node {name!r} ({op}) maps to more than one spec layer: "
                + ", ".join(sorted(found))
            )
        result[name] = found.pop() if found else UNATTRIBUTED
    return result


def _origin_layers(graph, names: set[str]) -> dict[str, str | None]:
    """Spec layer of each node and tensor of the exported file (a tensor: its producer's)."""
    nodes = {node.name: _layer_of_file_node(node, names) for node in graph.node}
    tensors = {out: nodes[node.name] for node in graph.node for out in node.output}
    return {**tensors, **nodes}


def _layer_of_file_node(node, names: set[str]) -> str | None:
    """The innermost spec layer in the exporter's module scopes, else the name's module path."""
    for prop in node.metadata_props:
        if prop.key == _SCOPES:
            scopes = [s for s in ast.literal_eval(prop.value) if s in names]
            if scopes:
                return scopes[-1]
    return _module_layer(node.name.strip("/").replace("/", "."), names)


def _module_layer(path: str, names: set[str]) -> str | None:
    """The spec layer a dotted module path (``block3.dw.conv.weight``) lies in."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in names:
            return ".".join(parts[:end])
    return None


def _layers_of(
    name: str, weights: list[str], origin: dict[str, str | None], names: set[str]
) -> set[str]:
    """Layers an optimised node points at: by its traced-back name and by its weights."""
    found = {_module_layer(w, names) for w in weights}
    source = _file_name(name, origin)
    if source is not None:
        found.add(origin[source])
    found.discard(None)
    return found


def _file_name(name: str, origin: dict[str, str | None]) -> str | None:
    """The file's node or tensor an optimised node name derives from, suffixes stripped."""
    while name not in origin:
        stripped = _ORT_SUFFIX.sub("", name)
        if stripped == name:
            return None
        name = stripped
    return name


def _node_name(event: dict) -> str:
    return event["name"][: -len(_KERNEL)]


def _run_of(event: dict, windows: list[tuple[int, int]]) -> int:
    """Index of the ``model_run`` window holding ``event``."""
    ts = event["ts"]
    index = bisect.bisect_right(windows, (ts, float("inf"))) - 1
    if index < 0 or ts > windows[index][1]:
        raise ProfileError(
            f"ONNX Runtime kernel event {event['name']!r} lies outside every model_run"
        )
    return index


def _check_coverage(times: LayerTimes, spec: ModelSpec) -> None:
    """Every layer with MACs must have time in every profiled run."""
    for index, row in enumerate(times.iterations):
        missing = [s.name for s in spec_layers(spec) if s.macs and s.name not in row]
        if missing:
            raise ProfileError(
                f"no ONNX Runtime node event maps to spec layer(s) {', '.join(missing)} "
                f"(iteration {index})"
            )
