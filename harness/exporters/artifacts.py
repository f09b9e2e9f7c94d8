"""Export a spec to every format and precision, cached by what determines the files.

An export folder holds the artifacts (each format's fp32 file and its precision
variants beside it: ``model.onnx``, ``model.int8.onnx``), the two image sets
(``evaluation.npy``, ``calibration.npy``), ``weights.npz`` when the weights come
from a checkpoint, ``reference.npy`` (the PyTorch fp32 output on the evaluation
images) and ``manifest.json``. Artifacts are named by key: ``onnx`` for fp32,
``onnx.int8`` for a variant. Folders live in the cache (``$MOBILEBENCH_CACHE``,
default ``~/.cache/mobilebench``) under a key hashed from (spec, width,
resolution, seed, the weights file's and the images' sha256, framework versions
and the exporting code); a variant made with other quantization settings than
the table's is made again. Re-runs reuse the rest.

A folder is first *staged* (:func:`stage`: its images and manifest, no framework
needed; then :func:`convert_checkpoint` for a checkpoint), then filled, one
source framework per call of :func:`export_source`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.exporters.base import Artifact
from harness.formats import (
    FORMATS,
    FP32,
    by_source,
    distributions,
    get_format,
    missing_for,
    parse_key,
)
from harness.inputs import (
    CALIBRATION_FILE,
    EVALUATION_FILE,
    EVALUATION_IMAGES,
    PARITY_IMAGES,
    read_calibration,
    read_evaluation,
    write_sets,
)
from harness.origin import GENERATED_KEY, Origin, generated
from harness.spec import ModelSpec
from harness.versions import distribution_versions
from harness.weights import make_weights

log = logging.getLogger(__name__)

#: Sources whose code decides what an export folder holds (files, reference, parity):
#: a change rebuilds the cache.
_SOURCES = (
    "architecture.py",
    "weights.py",
    "inputs.py",
    "formats.py",
    "parity.py",
    "builders",
    "exporters",
    "backends",
)
MANIFEST = "manifest.json"
#: Manifest entry fields beyond the Artifact's own that an :class:`Artifact` carries along.
_EXTRA_KEYS = ("parity", "mil", "mil_precision", "settings")
REFERENCE = "reference.npy"
#: A checkpoint's weights in the harness's layout (what every source framework builds from).
WEIGHTS = "weights.npz"


class MissingFramework(RuntimeError):
    """An export needs a framework that is not installed here."""


def versions() -> dict[str, str | None]:
    """Versions of every distribution that changes the exported files or their parity."""
    return distribution_versions(distributions())


def cache_root() -> Path:
    return Path(os.environ.get("MOBILEBENCH_CACHE", Path.home() / ".cache" / "mobilebench"))


def cache_key(spec: ModelSpec, seed: int, origin: Origin | None = None) -> str:
    """Hash of what determines an export folder's files (``origin`` None: generated)."""
    payload = {
        "spec": spec.to_dict(),
        "seed": seed,
        "origin": origin.key() if origin is not None else GENERATED_KEY,
        "evaluation_images": EVALUATION_IMAGES,
        "versions": versions(),
        "sources": _source_digest(),
    }
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _source_digest() -> str:
    """sha256 over the harness code that builds and exports the models."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in _SOURCES:
        path = root / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(root).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def cache_dir(spec: ModelSpec, seed: int, origin: Origin | None = None) -> Path:
    key = cache_key(spec, seed, origin)
    name = f"{spec.name}_w{spec.width:g}_r{spec.resolution}_s{seed}_{key}"
    return cache_root() / "artifacts" / name


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a directory's files in sorted order (an .mlpackage)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    tmp.replace(folder / MANIFEST)


def artifact_in(
    folder: Path, fmt: str, precision: str = FP32, manifest: dict[str, Any] | None = None
) -> Artifact:
    """The :class:`Artifact` of ``fmt`` at ``precision`` in an export folder."""
    entry = (manifest or read_manifest(folder))["artifacts"][get_format(fmt).key(precision)]
    return Artifact(
        format=entry["format"],
        path=folder / entry["path"],
        input_name=entry["input_name"],
        input_shape=tuple(entry["input_shape"]),
        layout=entry["layout"],
        output_name=entry["output_name"],
        sha256=entry["sha256"],
        bytes=entry["bytes"],
        precision=entry.get("precision", FP32),
        extra={k: v for k, v in entry.items() if k in _EXTRA_KEYS},
    )


def _entry(artifact: Artifact, folder: Path) -> dict[str, Any]:
    return {
        "format": artifact.format,
        "path": str(artifact.path.relative_to(folder)),
        "sha256": artifact.sha256,
        "bytes": artifact.bytes,
        "input_name": artifact.input_name,
        "input_shape": list(artifact.input_shape),
        "layout": artifact.layout,
        "output_name": artifact.output_name,
        "precision": artifact.precision,
        **artifact.extra,
    }


def export(
    spec: ModelSpec,
    formats: Iterable[str] | None = None,
    seed: int = 0,
    on_progress: Callable[[str], None] | None = None,
    origin: Origin | None = None,
) -> Path:
    """Export artifact keys ``formats`` (default: every fp32 file) into the folder of
    (spec, seed, origin), in this process; ``origin`` None: generated weights and images.

    Keys are format names (fp32) or ``format.precision``; see
    :func:`harness.formats.artifact_keys`. Artifacts already in the folder's
    manifest are reused. Raises on the first failure; :func:`export_source` is
    the per-process step that keeps going.
    """
    names = list(FORMATS if formats is None else formats)
    reason = missing_for(names)
    if reason:
        raise MissingFramework(reason)
    origin = origin or generated(spec, seed)
    folder = cache_dir(spec, seed, origin)
    stage(folder, spec, seed, origin)
    if weights_pending(folder, origin):
        convert_checkpoint(folder, spec, seed, origin.checkpoint)
    for source, group in export_plan(folder, names).items():
        errors = export_source(spec, source, group, folder, seed, on_progress)
        if errors:
            fmt, error = next(iter(errors.items()))
            raise RuntimeError(f"export of {spec.name} to {fmt} failed: {error}")
    return folder


def stage(folder: Path, spec: ModelSpec, seed: int, origin: Origin) -> dict[str, Any]:
    """Start an export folder: its two image sets and its manifest (imports no framework).

    A folder already staged is left as it is (its key covers everything written here).
    """
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    staged = all((folder / name).is_file() for name in (EVALUATION_FILE, CALIBRATION_FILE))
    if manifest and staged:
        return manifest
    write_sets(folder, origin.evaluation, origin.calibration)
    manifest = _new_manifest(spec, seed, origin)
    write_manifest(folder, manifest)
    return manifest


def weights_pending(folder: Path, origin: Origin) -> bool:
    """Whether the staged folder still lacks its checkpoint's :data:`WEIGHTS`."""
    return origin.checkpoint is not None and not (folder / WEIGHTS).is_file()


def convert_checkpoint(folder: Path, spec: ModelSpec, seed: int, path: Path) -> dict[str, Any]:
    """Read a checkpoint for ``spec`` into the staged folder's :data:`WEIGHTS`.

    A file without a classifier gets the generated one (seed ``seed``); the
    manifest's ``weights`` record says so. Returns that record. Raises
    :class:`harness.checkpoints.CheckpointError` when the file does not fit.
    """
    from harness.architecture import resolve
    from harness.checkpoints import read_checkpoint

    checkpoint = read_checkpoint(path, spec)
    weights = dict(checkpoint.weights)
    facts: dict[str, Any] = {
        "tensors_read": len(checkpoint.sources),
        "file_width": checkpoint.width,
        "file_resolution": checkpoint.resolution,
        "classifier": "from the file",
    }
    if not checkpoint.has_classifier:
        prefix = f"{resolve(spec).classifier.name}."
        weights.update({k: v for k, v in make_weights(spec, seed).items() if k.startswith(prefix)})
        facts["classifier"] = f"generated (seed {seed}), the file has none"
    tmp = folder / f".{WEIGHTS}.tmp"
    with tmp.open("wb") as f:
        np.savez(f, **weights)
    tmp.replace(folder / WEIGHTS)
    manifest = read_manifest(folder)
    manifest["weights"] = {**manifest["weights"], **facts}
    write_manifest(folder, manifest)
    return manifest["weights"]


def read_weights(folder: Path) -> dict[str, np.ndarray] | None:
    """The folder's checkpoint weights (our layout), or None when they are generated."""
    path = folder / WEIGHTS
    if not path.is_file():
        return None
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def export_plan(folder: Path, formats: Iterable[str]) -> dict[str, list[str]]:
    """``{source: artifact keys}`` still to export into a staged folder, PyTorch first;
    cached ones are left out.

    The PyTorch step also runs, with no format, when only the fp32 reference is missing.
    """
    manifest = read_manifest(folder) or {"artifacts": {}}
    plan = by_source(f for f in formats if not _cached(folder, manifest, f))
    if "pytorch" not in plan and not (folder / REFERENCE).is_file():
        plan = {"pytorch": [], **plan}
    return plan


def export_source(
    spec: ModelSpec,
    source: str,
    formats: Sequence[str],
    folder: Path,
    seed: int = 0,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Build ``spec``'s ``source`` model once and export each artifact key from it into
    the staged ``folder``.

    The PyTorch step also writes the fp32 reference. Variants get the folder's
    calibration images. An artifact that fails is logged and reported in the
    returned ``{key: error}`` (a variant whose fp32 file failed fails too); the
    others go on. Every newly written artifact is checked against the reference
    here, in the same process, so parity never loads a second framework.
    """
    from harness.parity import check_export

    manifest = read_manifest(folder) or stage(folder, spec, seed, generated(spec, seed))
    todo = [f for f in formats if not _cached(folder, manifest, f)]
    needs_reference = source == "pytorch" and not (folder / REFERENCE).is_file()
    if not todo and not needs_reference:
        log.info("%s: reusing cached %s", spec.name, ", ".join(formats))
        return {}
    model = _build(spec, source, folder, seed)
    if needs_reference:
        _write_reference(folder, model)
        write_manifest(folder, manifest)
    errors: dict[str, str] = {}
    calibration = None
    for name in todo:
        if on_progress:
            on_progress(name)
        fmt, precision = parse_key(name)
        if precision != FP32 and fmt.name in errors:
            errors[name] = f"its fp32 {fmt.name} file failed: {errors[fmt.name]}"
            continue
        try:
            if precision == FP32:
                artifact = fmt.export_function()(model, spec, folder)
            else:
                if calibration is None:
                    calibration = read_calibration(folder)
                artifact = fmt.export_function(precision)(model, spec, folder, calibration)
        except Exception as exc:
            log.exception("export of %s to %s failed", spec.name, name)
            errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        artifact = dataclasses.replace(
            artifact, sha256=sha256_of(artifact.path), bytes=size_of(artifact.path)
        )
        entry = _entry(artifact, folder)
        if precision != FP32:
            entry["settings"] = fmt.variant(precision).settings
        manifest["artifacts"][name] = entry
        write_manifest(folder, manifest)
    written = [f for f in todo if f not in errors]
    if written:
        check_export(folder, written)
    return errors


def _cached(folder: Path, manifest: dict[str, Any], key: str) -> bool:
    """Whether ``key``'s file is in the folder, made with the table's current settings."""
    fmt, precision = parse_key(key)
    entry = manifest["artifacts"].get(key)
    if not entry or not (folder / entry["path"]).exists():
        return False
    return precision == FP32 or entry.get("settings") == fmt.variant(precision).settings


def _build(spec: ModelSpec, source: str, folder: Path, seed: int) -> Any:
    """The native ``source`` model of ``spec`` with the folder's checkpoint weights, or
    the shared generated ones."""
    if source == "pytorch":
        from harness.builders.pytorch import build
    else:
        from harness.builders.keras import build
    weights = read_weights(folder)
    return build(spec, make_weights(spec, seed) if weights is None else weights)


def _new_manifest(spec: ModelSpec, seed: int, origin: Origin) -> dict[str, Any]:
    from harness.macs import count

    counted = count(spec)
    return {
        "model": spec.name,
        "width": spec.width,
        "resolution": spec.resolution,
        "conv": spec.conv,
        "seed": seed,
        "cache_key": cache_key(spec, seed, origin),
        "macs": counted.macs,
        "params": counted.params,
        "versions": versions(),
        "spec": spec.to_dict(),
        "parity_input": {
            "images": EVALUATION_IMAGES,
            "parity_images": PARITY_IMAGES,
            "seed": seed,
            "reference": REFERENCE,
            "reference_backend": "pytorch eager, fp32",
        },
        "weights": origin.weights,
        "inputs": {**origin.inputs, "files": [EVALUATION_FILE, CALIBRATION_FILE]},
        "artifacts": {},
    }


def _write_reference(folder: Path, model: Any) -> None:
    """The PyTorch fp32 output on the evaluation images: what every artifact is held to."""
    import torch

    x = torch.from_numpy(read_evaluation(folder))
    # no_grad, not inference_mode: the same module is traced by torch.export afterwards.
    with torch.no_grad():
        reference = model(x).numpy()
    np.save(folder / REFERENCE, reference)


def copy_export(folder: Path, out: Path, formats: Iterable[str]) -> Path:
    """Copy the chosen artifact keys, the reference and the manifest from ``folder`` to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    keys = [fmt.key(precision) for fmt, precision in map(parse_key, formats)]
    keep = {k: manifest["artifacts"][k] for k in keys if k in manifest["artifacts"]}
    for entry in keep.values():
        src, dst = folder / entry["path"], out / entry["path"]
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    for name in (REFERENCE, EVALUATION_FILE, CALIBRATION_FILE, WEIGHTS):
        if (folder / name).is_file():
            shutil.copy2(folder / name, out / name)
    write_manifest(out, {**manifest, "artifacts": keep})
    return out
