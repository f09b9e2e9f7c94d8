"""Per-layer profile of the PyTorch backend's eager program, with ``torch.profiler``.

The backend loads the ``.pt2`` file as it does for a measurement (a flat
``torch.fx.GraphModule``). Every graph node keeps the module path it was
exported from (``nn_module_stack``: ``block3.dw.conv``, or ``model.block3.dw.conv``
in the bf16 wrapper), so each run of consecutive nodes of one spec layer is
wrapped in a ``record_function`` span named by that layer, inside the graph
itself. Each iteration is a ``record_function("iteration <i>")`` span.

Events counted: the *outermost* op events, the calls the graph makes itself
(``aten::conv2d``, ``aten::batch_norm``, ``aten::hardtanh``, ``aten::add``, ...),
each with its total CPU time, which holds the ops it dispatches to
(``aten::mkldnn_convolution``, ``aten::native_batch_norm``, ...). Counting those
nested ops too would count their time twice, and self times would split one
graph call into allocator and dispatch fragments. An op outside every layer
span (residual adds, flatten, the bf16 casts, the output copy) is unattributed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

import numpy as np

from harness.backends.pytorch import PyTorchBackend
from harness.exporters.base import Artifact
from harness.profiling.layers import UNATTRIBUTED, LayerTimes, ProfileError, spec_layers
from harness.profiling.support import profile_skip_reason
from harness.spec import ModelSpec

#: Untimed calls before the profiler starts (oneDNN builds its primitives on the first).
WARMUP = 3
#: Name prefix of the span around one profiled iteration.
ITERATION = "iteration "
SOURCE = (
    "torch.profiler CPU: total time of each outermost aten op, "
    "in the record_function span of its spec layer"
)
#: Graph nodes that run ops; the others (inputs, weights, output) run none.
_CALLS = ("call_function", "call_method", "call_module")


def profile(
    artifact: Artifact,
    spec: ModelSpec,
    threads: int,
    mode: str,
    batch: np.ndarray,
    iterations: int,
) -> LayerTimes:
    """Profile ``iterations`` calls of the backend on ``batch``; times per spec layer."""
    reason = profile_skip_reason("pytorch", mode, artifact.precision)
    if reason is not None:
        raise ProfileError(reason)
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    import torch
    from torch.profiler import ProfilerActivity, record_function

    names = [layer.name for layer in spec_layers(spec)]
    backend = PyTorchBackend(mode, threads)  # pins torch's thread pools
    backend.load(artifact)
    add_layer_spans(backend.program, names)
    prepared = backend.prepare(batch)
    for _ in range(WARMUP):
        backend.run(prepared)
    with torch.profiler.profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(iterations):
            with record_function(f"{ITERATION}{i}"):
                backend.run(prepared)
    return attribute(prof.events(), names, iterations)


def add_layer_spans(module: Any, names: Sequence[str]) -> None:
    """Wrap each run of ``module``'s graph nodes of one spec layer in a span named by it.

    Raises :class:`ProfileError` when the module has no graph or a spec layer no node.
    """
    import torch

    if not isinstance(module, torch.fx.GraphModule):
        raise ProfileError(
            f"the loaded program is a {type(module).__name__}, not a torch.fx.GraphModule: "
            "no graph nodes to place spec-layer spans around"
        )
    graph = module.graph
    runs = layer_runs(graph, names)
    missing = [name for name in names if name not in {layer for layer, _, _ in runs}]
    if missing:
        raise ProfileError(f"no graph node comes from spec layers {', '.join(missing)}")
    for layer, first, last in runs:
        with graph.inserting_before(first):
            span = graph.call_function(_open_span, (layer,))
        with graph.inserting_after(last):
            graph.call_function(_close_span, (span,))
    module.recompile()


def layer_runs(graph: Any, names: Sequence[str]) -> list[tuple[str, Any, Any]]:
    """Maximal runs of consecutive calling nodes of one spec layer: (layer, first, last)."""
    runs: list[tuple[str, Any, Any]] = []
    current: str | None = None
    for node in graph.nodes:
        if node.op not in _CALLS:
            continue
        layer = node_layer(node, names) if node.op != "call_module" else None
        if layer is not None and layer == current:
            runs[-1] = (layer, runs[-1][1], node)
        elif layer is not None:
            runs.append((layer, node, node))
        current = layer
    return runs


def node_layer(node: Any, names: Collection[str]) -> str | None:
    """The innermost spec layer of the module path a graph node was exported from."""
    stack = node.meta.get("nn_module_stack") or {}
    for path, _ in reversed(list(stack.values())):
        layer = path_layer(path, names)
        if layer is not None:
            return layer
    return None


def path_layer(path: str, names: Collection[str]) -> str | None:
    """The spec layer a module path is (``block3.dw``, ``model.block3.dw``), or None.

    The path must end in the layer's name at a ``.`` boundary, so ``block3.dw.conv``
    (a module inside the layer) and ``block13.dw`` are not ``block3.dw``.
    """
    parts = path.split(".")
    for start in range(len(parts)):
        suffix = ".".join(parts[start:])
        if suffix in names:
            return suffix
    return None


def attribute(events: Sequence[Any], names: Sequence[str], iterations: int) -> LayerTimes:
    """Milliseconds per spec layer and iteration, from ``torch.profiler`` events."""
    spans = {e.name: e for e in events if e.is_user_annotation and e.name.startswith(ITERATION)}
    known = set(names)
    times = LayerTimes(source=SOURCE)
    for i in range(iterations):
        span = spans.get(f"{ITERATION}{i}")
        if span is None:
            raise ProfileError(f"torch.profiler recorded no span for iteration {i}")
        times.iterations.append(_iteration_ms(span, known, times))
    _check_all_counted(events, spans.values(), times.events)
    return times


def _iteration_ms(span: Any, names: Collection[str], times: LayerTimes) -> dict[str, float]:
    """One iteration's ms per layer; counts its events into ``times``."""
    ms: dict[str, float] = {}
    for layer, op in outermost_ops(span, None, names):
        key = layer or UNATTRIBUTED
        ms[key] = ms.get(key, 0.0) + op.cpu_time_total / 1000.0
        times.events += 1
        if layer is None:
            times.unattributed_events += 1
            if op.name not in times.unattributed_names:
                times.unattributed_names.append(op.name)
        else:
            times.mapped_events += 1
    return ms


def outermost_ops(span: Any, layer: str | None, names: Collection[str]) -> Iterator[tuple]:
    """(layer, op event) for each op event under ``span`` with no op above it.

    ``layer`` is the innermost spec-layer span seen on the way down (None: none).
    """
    for child in span.cpu_children:
        if child.is_user_annotation:
            yield from outermost_ops(child, child.name if child.name in names else layer, names)
        else:
            yield layer, child


def _check_all_counted(events: Sequence[Any], spans: Collection[Any], counted: int) -> None:
    """Every op event of the profile lies in an iteration span, so none goes uncounted."""
    inside = {id(e) for span in spans for e in _descendants(span)}
    stray = sorted({e.name for e in events if not e.is_user_annotation and id(e) not in inside})
    if stray:
        raise ProfileError(
            f"torch.profiler recorded ops outside every iteration span: {', '.join(stray)}"
        )
    if counted == 0:
        raise ProfileError("torch.profiler recorded no op event in the profiled iterations")


def _descendants(event: Any) -> Iterator[Any]:
    for child in event.cpu_children:
        yield child
        yield from _descendants(child)


def _open_span(name: str) -> Any:
    """Enter a ``record_function`` span (a graph node; :func:`_close_span` leaves it)."""
    from torch.profiler import record_function

    span = record_function(name)
    span.__enter__()
    return span


def _close_span(span: Any) -> None:
    span.__exit__(None, None, None)
