"""Exports in fresh processes, one per source framework, so one framework never meets another.

TensorFlow and PyTorch each ship their own native runtime; loaded into one
process they can crash each other (seen on Linux aarch64). Each source
framework's formats are therefore exported in their own spawned child, and a
crash costs only that framework's formats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.exporters.artifacts import cache_dir, export_plan, export_source
from harness.isolation import in_child
from harness.spec import ModelSpec, spec_from_dict

#: Seconds one framework's exports of one model may take.
EXPORT_TIMEOUT_S = 1800.0


def export_isolated(
    spec: ModelSpec,
    formats: Iterable[str],
    seed: int,
    log_path: Path,
    on_step: Callable[[str], None] | None = None,
    timeout_s: float = EXPORT_TIMEOUT_S,
) -> dict[str, Path | str]:
    """Export ``formats`` of ``spec``; ``{format: export folder, or why its export failed}``.

    Cached formats start no process; ``on_step`` gets a description of each child's
    work (``"pytorch: onnx, coreml"``) before it starts.
    """
    formats = list(formats)
    folder = cache_dir(spec, seed)
    results: dict[str, Path | str] = dict.fromkeys(formats, folder)
    for source, group in export_plan(spec, seed, formats).items():
        if on_step:
            on_step(f"{source}: {', '.join(group) or 'the fp32 reference'}")
        outcome = in_child(
            _export_job,
            (spec.to_dict(), source, group, seed),
            timeout_s=timeout_s,
            env={},
            log_path=log_path,
        )
        for fmt in group:
            if outcome["status"] != "ok":
                results[fmt] = f"export failed ({source} process): {outcome['reason']}"
            elif fmt in outcome["result"]:
                results[fmt] = f"export failed: {outcome['result'][fmt]}"
    return results


def _export_job(spec_dict: dict[str, Any], source: str, formats: list[str], seed: int) -> dict:
    """Child side: build one source model, export its formats; ``{format: error}``."""
    return export_source(spec_from_dict(spec_dict), source, formats, seed)
