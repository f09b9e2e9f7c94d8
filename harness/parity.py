"""Parity: does an artifact compute what the PyTorch fp32 reference computes?

Errors are measured on the fixed seeded parity input. The comparison is pure;
:func:`check_export` runs each artifact through its backend's default mode and
records the result in the export folder's manifest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from harness.exporters.artifacts import REFERENCE, artifact_in, read_manifest, write_manifest
from harness.exporters.base import Artifact
from harness.spec import spec_from_dict
from harness.weights import sample_input

log = logging.getLogger(__name__)

#: An artifact is in tolerance when rel_l2_err is below this and every top-1 agrees.
REL_L2_TOLERANCE = 1e-4
NO_REFERENCE = "no PyTorch fp32 reference to compare with (its export failed)"


def compare(reference: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """max_abs_err, rel_l2_err and top1_agree (fraction of inputs whose argmax matches)."""
    reference = np.asarray(reference, dtype=np.float64).reshape(reference.shape[0], -1)
    output = np.asarray(output, dtype=np.float64).reshape(reference.shape)
    diff = output - reference
    norm = float(np.linalg.norm(reference))
    return {
        "max_abs_err": float(np.abs(diff).max()),
        "rel_l2_err": float(np.linalg.norm(diff) / norm) if norm else float("inf"),
        "top1_agree": float(np.mean(output.argmax(axis=1) == reference.argmax(axis=1))),
    }


def within_tolerance(errors: dict[str, float]) -> bool:
    return errors["rel_l2_err"] < REL_L2_TOLERANCE and errors["top1_agree"] == 1.0


def backend_for(fmt: str):
    """The registered backend that consumes ``fmt`` (its default mode checks parity)."""
    from harness.backends import REGISTRY

    for cls in REGISTRY.values():
        if cls.artifact_format == fmt:
            return cls
    raise KeyError(f"no backend consumes format {fmt!r}")


def run_artifact(artifact: Artifact, batch: np.ndarray, threads: int = 1) -> np.ndarray:
    """Load one artifact with its backend's default mode and run ``batch`` (NCHW)."""
    backend = backend_for(artifact.format)(threads=threads)
    backend.load(artifact)
    return backend.run(backend.prepare(batch))


def parity_input(manifest: dict[str, Any]) -> np.ndarray:
    spec = spec_from_dict(manifest["spec"])
    return sample_input(spec, manifest["parity_input"]["batch"], manifest["parity_input"]["seed"])


def check_export(
    folder: Path, formats: Iterable[str] | None = None, threads: int = 1
) -> dict[str, dict[str, Any]]:
    """Run each artifact of ``formats`` (default: all in the folder) on the parity input.

    Each one's parity goes into the manifest and is returned; without the
    reference (its PyTorch export failed) parity is ``skipped`` with that reason.
    """
    manifest = read_manifest(folder)
    names = list(manifest["artifacts"] if formats is None else formats)
    reference = np.load(folder / REFERENCE) if (folder / REFERENCE).is_file() else None
    batch = parity_input(manifest)
    results: dict[str, dict[str, Any]] = {}
    for fmt in names:
        artifact = artifact_in(folder, fmt, manifest=manifest)
        results[fmt] = _check_one(artifact, batch, reference, threads)
        manifest["artifacts"][fmt]["parity"] = results[fmt]
    if "coreml" in names:
        manifest["artifacts"]["coreml"]["mil"] = _coreml_mil(folder, manifest)
    write_manifest(folder, manifest)
    return results


def _check_one(
    artifact: Artifact, batch: np.ndarray, reference: np.ndarray | None, threads: int
) -> dict[str, Any]:
    cls = backend_for(artifact.format)
    ok, reason = cls.available()
    if reference is None:
        ok, reason = False, NO_REFERENCE
    if not ok:
        return {"status": "skipped", "reason": reason, "backend": cls.name}
    try:
        output = run_artifact(artifact, batch, threads)
    except Exception as exc:  # a broken artifact is a result, not a crash
        log.exception("parity run of %s failed", artifact.format)
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}", "backend": cls.name}
    errors = compare(reference, output)
    status = "ok" if within_tolerance(errors) else "out_of_tolerance"
    return {"status": status, "backend": cls.name, **errors}


def _coreml_mil(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Check the Core ML program's structure against the spec (possible on any OS)."""
    from harness.architecture import resolve
    from harness.exporters.coreml import mil_summary

    summary = mil_summary(folder / manifest["artifacts"]["coreml"]["path"])
    found = [tuple(w["weight_shape"]) for w in summary["weights"]]
    expected = resolve(spec_from_dict(manifest["spec"])).weight_shapes()
    summary["matches_spec"] = found == expected
    summary["expected_weights"] = len(expected)
    return summary
