"""Exports in fresh processes, one per source framework, so one framework never meets another.

TensorFlow and PyTorch each ship their own native runtime; loaded into one
process they can crash each other (seen on Linux aarch64). Each source
framework's formats are therefore exported in their own spawned child, and a
crash costs only that framework's formats. A checkpoint is read in a child of
its own too (a torchvision file needs torch), into the folder's ``weights.npz``
that both source frameworks build from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checkpoints import CheckpointError
from harness.exporters.artifacts import (
    cache_dir,
    convert_checkpoint,
    export_plan,
    export_source,
    read_manifest,
    stage,
    weights_pending,
)
from harness.isolation import in_child
from harness.origin import Origin, OriginError, from_files, generated, inputs_label, weights_label
from harness.spec import ModelSpec, spec_from_dict

#: Seconds one framework's exports of one model may take.
EXPORT_TIMEOUT_S = 1800.0
#: Seconds reading a checkpoint may take.
CHECKPOINT_TIMEOUT_S = 300.0
#: What the export processes printed, beside the artifacts in the cache folder.
EXPORT_LOG = "export.log"


@dataclass(frozen=True, eq=False)
class Prepared:
    """One model ready to export: its spec (with the checkpoint's conventions), origin
    and staged folder, and the labels its rows carry."""

    spec: ModelSpec
    origin: Origin
    folder: Path
    weights: str  # the rows' "weights" column
    inputs: str  # the rows' "inputs" column


def prepare_model(
    spec: ModelSpec,
    seed: int,
    weights: Path | None = None,
    images: Path | None = None,
    log_path: Path | None = None,
) -> Prepared:
    """Decide where ``spec``'s weights and images come from and stage its export folder.

    Raises :class:`~harness.origin.OriginError` (one line) for a weights file or an
    image folder that cannot be used.
    """
    spec, origin = from_files(spec, seed, weights, images)
    folder = prepare_folder(spec, seed, origin, log_path)
    manifest = read_manifest(folder)
    return Prepared(
        spec=spec,
        origin=origin,
        folder=folder,
        weights=weights_label(manifest["weights"]),
        inputs=inputs_label(manifest["inputs"]),
    )


def prepare_folder(
    spec: ModelSpec, seed: int, origin: Origin, log_path: Path | None = None
) -> Path:
    """Stage the export folder of (spec, seed, origin) and read its checkpoint (in a child).

    Raises :class:`~harness.origin.OriginError` with one line when the checkpoint
    does not fit ``spec`` or cannot be read. ``log_path`` defaults to the folder's
    :data:`EXPORT_LOG`.
    """
    folder = cache_dir(spec, seed, origin)
    stage(folder, spec, seed, origin)
    if not weights_pending(folder, origin):
        return folder
    outcome = in_child(
        _convert_job,
        (spec.to_dict(), seed, str(origin.checkpoint), str(folder)),
        timeout_s=CHECKPOINT_TIMEOUT_S,
        env={},
        log_path=log_path or folder / EXPORT_LOG,
    )
    if outcome["status"] != "ok":
        raise OriginError(f"{origin.checkpoint.name}: reading it failed: {outcome['reason']}")
    if outcome["result"]:
        raise OriginError(outcome["result"])
    return folder


def export_isolated(
    spec: ModelSpec,
    formats: Iterable[str],
    seed: int,
    log_path: Path,
    on_step: Callable[[str], None] | None = None,
    timeout_s: float = EXPORT_TIMEOUT_S,
    origin: Origin | None = None,
) -> dict[str, Path | str]:
    """Export ``formats`` of ``spec``; ``{format: export folder, or why its export failed}``.

    ``origin`` None: generated weights and images. Cached formats start no process;
    ``on_step`` gets a description of each child's work (``"pytorch: onnx, coreml"``)
    before it starts. Raises :class:`~harness.origin.OriginError` for a checkpoint
    that does not fit.
    """
    formats = list(formats)
    folder = prepare_folder(spec, seed, origin or generated(spec, seed), log_path)
    results: dict[str, Path | str] = dict.fromkeys(formats, folder)
    for source, group in export_plan(folder, formats).items():
        if on_step:
            on_step(f"{source}: {', '.join(group) or 'the fp32 reference'}")
        outcome = in_child(
            _export_job,
            (spec.to_dict(), source, group, str(folder), seed),
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


def _convert_job(spec_dict: dict[str, Any], seed: int, path: str, folder: str) -> str | None:
    """Child side: the checkpoint into the folder's weights; its one-line error, or None."""
    try:
        convert_checkpoint(Path(folder), spec_from_dict(spec_dict), seed, Path(path))
    except CheckpointError as exc:
        return str(exc)
    return None


def _export_job(
    spec_dict: dict[str, Any], source: str, formats: list[str], folder: str, seed: int
) -> dict:
    """Child side: build one source model, export its formats; ``{format: error}``."""
    return export_source(spec_from_dict(spec_dict), source, formats, Path(folder), seed)
