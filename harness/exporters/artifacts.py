"""Export a spec to every format, cached by what determines the files; write manifest.json.

An export folder holds the artifacts, ``reference.npy`` (the PyTorch fp32 output
on the fixed parity input) and ``manifest.json``. Folders live in the cache
(``$MOBILEBENCH_CACHE``, default ``~/.cache/mobilebench``) under a key hashed from
(spec, width, resolution, seed, framework versions and the exporting code);
re-runs reuse them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from harness.exporters.base import Artifact
from harness.spec import ModelSpec
from harness.versions import distribution_versions
from harness.weights import make_weights, sample_input

log = logging.getLogger(__name__)

#: Sources whose code decides what the exported files hold: a change rebuilds the cache.
_SOURCES = ("architecture.py", "weights.py", "builders", "exporters")
MANIFEST = "manifest.json"
REFERENCE = "reference.npy"
#: The parity input: this many seeded images.
PARITY_BATCH = 8
#: Distributions whose versions change the exported files.
VERSIONED = (
    "torch",
    "tensorflow",
    "keras",
    "onnx",
    "onnxscript",
    "coremltools",
    "ai-edge-litert",
    "numpy",
)


def _exporters() -> dict[str, tuple[str, Callable[..., Artifact]]]:
    """format -> (source framework, export function); imports stay lazy."""
    from harness.exporters.coreml import export_coreml
    from harness.exporters.native import export_keras, export_pytorch
    from harness.exporters.onnx import export_onnx
    from harness.exporters.tflite import export_tflite

    return {
        "pytorch": ("pytorch", export_pytorch),
        "keras": ("keras", export_keras),
        "onnx": ("pytorch", export_onnx),
        "tflite": ("keras", export_tflite),
        "coreml": ("pytorch", export_coreml),
    }


FORMATS = ("pytorch", "keras", "onnx", "tflite", "coreml")
#: Python modules each format's exporter needs (and the pip extra that brings them).
REQUIRES = {
    "pytorch": (("torch",), "pytorch"),
    "keras": (("tensorflow", "keras"), "keras"),
    "onnx": (("torch", "onnx", "onnxscript"), "onnx,pytorch"),
    "tflite": (("tensorflow", "ai_edge_litert"), "tflite"),
    "coreml": (("torch", "coremltools"), "coreml,pytorch"),
}


def missing_requirements(fmt: str) -> str | None:
    """Why ``fmt`` cannot be exported here (a one-line reason), or None when it can."""
    modules, extra = REQUIRES[fmt]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return f"exporting {fmt} needs {', '.join(missing)} (pip install 'mobilebench[{extra}]')"


class MissingFramework(RuntimeError):
    """An export needs a framework that is not installed here."""


def versions() -> dict[str, str | None]:
    return distribution_versions(VERSIONED)


def cache_root() -> Path:
    return Path(os.environ.get("MOBILEBENCH_CACHE", Path.home() / ".cache" / "mobilebench"))


def cache_key(spec: ModelSpec, seed: int) -> str:
    payload = {
        "spec": spec.to_dict(),
        "seed": seed,
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


def cache_dir(spec: ModelSpec, seed: int) -> Path:
    name = f"{spec.name}_w{spec.width:g}_r{spec.resolution}_s{seed}_{cache_key(spec, seed)}"
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


def artifact_in(folder: Path, fmt: str, manifest: dict[str, Any] | None = None) -> Artifact:
    """The :class:`Artifact` of ``fmt`` in an export folder (paths are relative to it)."""
    entry = (manifest or read_manifest(folder))["artifacts"][fmt]
    return Artifact(
        format=entry["format"],
        path=folder / entry["path"],
        input_name=entry["input_name"],
        input_shape=tuple(entry["input_shape"]),
        layout=entry["layout"],
        output_name=entry["output_name"],
        sha256=entry["sha256"],
        bytes=entry["bytes"],
        extra={k: v for k, v in entry.items() if k in ("parity", "mil")},
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
        **artifact.extra,
    }


class _Models:
    """Builds the native models once, on first need."""

    def __init__(self, spec: ModelSpec, seed: int) -> None:
        self.spec, self.seed = spec, seed
        self._weights: dict | None = None
        self._built: dict[str, Any] = {}

    @property
    def weights(self) -> dict:
        if self._weights is None:
            self._weights = make_weights(self.spec, self.seed)
        return self._weights

    def get(self, framework: str) -> Any:
        if framework not in self._built:
            if framework == "pytorch":
                from harness.builders.pytorch import build
            else:
                from harness.builders.keras import build
            self._built[framework] = build(self.spec, self.weights)
        return self._built[framework]


def export(
    spec: ModelSpec,
    formats: Iterable[str] = FORMATS,
    seed: int = 0,
    on_progress: Callable[[str], None] | None = None,
) -> Path:
    """Export ``formats`` into the cache folder of (spec, seed); return the folder.

    Formats already in the folder's manifest (with their file present) are reused.
    """
    formats = list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}: choose from {', '.join(FORMATS)}")
    for fmt in formats:
        reason = missing_requirements(fmt)
        if reason:
            raise MissingFramework(reason)
    folder = cache_dir(spec, seed)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder) or _new_manifest(spec, seed)
    models = _Models(spec, seed)
    if not (folder / REFERENCE).is_file():
        _write_reference(folder, spec, seed, models)
    exporters = _exporters()
    for fmt in formats:
        entry = manifest["artifacts"].get(fmt)
        if entry and (folder / entry["path"]).exists():
            log.info("%s: reusing cached %s", spec.name, entry["path"])
            continue
        if on_progress:
            on_progress(fmt)
        source, fn = exporters[fmt]
        artifact = fn(models.get(source), spec, folder)
        artifact = dataclasses.replace(
            artifact, sha256=sha256_of(artifact.path), bytes=size_of(artifact.path)
        )
        manifest["artifacts"][fmt] = _entry(artifact, folder)
        write_manifest(folder, manifest)
    return folder


def _new_manifest(spec: ModelSpec, seed: int) -> dict[str, Any]:
    from harness.macs import count

    counted = count(spec)
    return {
        "model": spec.name,
        "width": spec.width,
        "resolution": spec.resolution,
        "conv": spec.conv,
        "seed": seed,
        "cache_key": cache_key(spec, seed),
        "macs": counted.macs,
        "params": counted.params,
        "versions": versions(),
        "spec": spec.to_dict(),
        "parity_input": {
            "batch": PARITY_BATCH,
            "seed": seed,
            "reference": REFERENCE,
            "reference_backend": "pytorch eager, fp32",
        },
        "artifacts": {},
    }


def _write_reference(folder: Path, spec: ModelSpec, seed: int, models: _Models) -> None:
    """The PyTorch fp32 output on the parity input: what every artifact is held to."""
    import torch

    x = torch.from_numpy(sample_input(spec, PARITY_BATCH, seed))
    # no_grad, not inference_mode: the same module is traced by torch.export afterwards.
    with torch.no_grad():
        reference = models.get("pytorch")(x).numpy()
    np.save(folder / REFERENCE, reference)


def copy_export(folder: Path, out: Path, formats: Iterable[str]) -> Path:
    """Copy the chosen artifacts, the reference and the manifest from ``folder`` to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    keep = {f: manifest["artifacts"][f] for f in formats}
    for entry in keep.values():
        src, dst = folder / entry["path"], out / entry["path"]
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    shutil.copy2(folder / REFERENCE, out / REFERENCE)
    write_manifest(out, {**manifest, "artifacts": keep})
    return out
