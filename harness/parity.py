"""Parity and accuracy cost: how far is an artifact from the PyTorch fp32 reference?

:func:`compare` is pure: max_abs_err, rel_l2_err, top1/top5 agreement and PSNR
of outputs against reference outputs. Each precision has its own tolerance
(:data:`TOLERANCES`, measured and explained in docs/precision.md): fp32 files
must match the reference, reduced-precision ones may only drift so far.
:func:`check_export` runs each new artifact through its backend's default mode
on the parity images (the first evaluation images) and records the result in
the export folder's manifest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.exporters.artifacts import REFERENCE, artifact_in, read_manifest, write_manifest
from harness.exporters.base import Artifact
from harness.formats import FP32, parse_key
from harness.inputs import PARITY_IMAGES, read_parity
from harness.spec import spec_from_dict

log = logging.getLogger(__name__)

NO_REFERENCE = "no PyTorch fp32 reference to compare with (its export failed)"
#: PSNR of identical outputs (and the ceiling of any other): far above fp32 round-off.
PSNR_CAP_DB = 200.0


@dataclass(frozen=True)
class Tolerance:
    """An artifact is in tolerance when rel_l2_err < ``rel_l2`` and top1_agree >= ``top1``."""

    rel_l2: float
    top1: float

    def holds(self, errors: dict[str, Any]) -> bool:
        return errors["rel_l2_err"] < self.rel_l2 and errors["top1_agree"] >= self.top1

    def describe(self) -> str:
        return f"rel_l2_err < {self.rel_l2:g} and top1_agree >= {self.top1:g}"


#: Per precision; docs/precision.md says how each was chosen from measured errors.
TOLERANCES = {
    "fp32": Tolerance(rel_l2=1e-4, top1=1.0),
    "fp16": Tolerance(rel_l2=0.1, top1=0.8),
    "bf16": Tolerance(rel_l2=0.5, top1=0.4),
    "int8": Tolerance(rel_l2=0.8, top1=0.15),
}


def compare(reference: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Accuracy cost of ``output`` against ``reference`` (rows are images).

    ``top1_agree``: share of images whose argmax matches; ``top5_agree``: share
    whose reference argmax is among the output's five largest; ``psnr_db``:
    20·log10(max|reference| / RMSE), capped at :data:`PSNR_CAP_DB`.
    """
    reference = np.asarray(reference, dtype=np.float64).reshape(reference.shape[0], -1)
    output = np.asarray(output, dtype=np.float64).reshape(reference.shape)
    diff = output - reference
    norm = float(np.linalg.norm(reference))
    labels = reference.argmax(axis=1)
    k = min(5, reference.shape[1])
    top5 = np.argpartition(-output, k - 1, axis=1)[:, :k]
    return {
        "max_abs_err": float(np.abs(diff).max()),
        "rel_l2_err": float(np.linalg.norm(diff) / norm) if norm else float("inf"),
        "top1_agree": float(np.mean(output.argmax(axis=1) == labels)),
        "top5_agree": float(np.mean((top5 == labels[:, None]).any(axis=1))),
        "psnr_db": psnr_db(reference, output),
    }


def psnr_db(reference: np.ndarray, output: np.ndarray) -> float:
    """20·log10(max|reference| / RMSE(output - reference)), at most :data:`PSNR_CAP_DB`."""
    rmse = float(np.sqrt(np.mean((np.asarray(output) - np.asarray(reference)) ** 2)))
    peak = float(np.abs(reference).max())
    if rmse == 0.0 or peak / rmse > 10 ** (PSNR_CAP_DB / 20):
        return PSNR_CAP_DB
    return 20 * math.log10(peak / rmse) if peak else float("-inf")


def tolerance(precision: str) -> Tolerance:
    return TOLERANCES[precision]


def within_tolerance(errors: dict[str, Any], precision: str = FP32) -> bool:
    return TOLERANCES[precision].holds(errors)


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


def check_export(
    folder: Path, formats: Iterable[str] | None = None, threads: int = 1
) -> dict[str, dict[str, Any]]:
    """Run each artifact key of ``formats`` (default: all) on the parity images.

    Each one's parity, held to its precision's tolerance, goes into the manifest
    and is returned; without the reference (its PyTorch export failed) parity is
    ``skipped`` with that reason.
    """
    manifest = read_manifest(folder)
    keys = list(manifest["artifacts"] if formats is None else formats)
    reference = (
        np.load(folder / REFERENCE)[:PARITY_IMAGES] if (folder / REFERENCE).is_file() else None
    )
    batch = read_parity(folder)
    results: dict[str, dict[str, Any]] = {}
    for key in keys:
        fmt, precision = parse_key(key)
        artifact = artifact_in(folder, fmt.name, precision, manifest)
        results[key] = _check_one(artifact, batch, reference, threads)
        manifest["artifacts"][key]["parity"] = results[key]
        if fmt.name == "coreml":
            manifest["artifacts"][key]["mil"] = _coreml_mil(folder, manifest, key)
    write_manifest(folder, manifest)
    return results


def _check_one(
    artifact: Artifact, batch: np.ndarray, reference: np.ndarray | None, threads: int
) -> dict[str, Any]:
    cls = backend_for(artifact.format)
    ok, reason = cls.available()
    if ok:
        ok, reason = cls.precision_available(artifact.precision)
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
    status = "ok" if within_tolerance(errors, artifact.precision) else "out_of_tolerance"
    return {
        "status": status,
        "backend": cls.name,
        "tolerance": tolerance(artifact.precision).describe(),
        **errors,
    }


def _coreml_mil(folder: Path, manifest: dict[str, Any], key: str) -> dict[str, Any]:
    """Check the Core ML program's structure against the spec (possible on any OS)."""
    from harness.architecture import resolve
    from harness.exporters.coreml import mil_summary

    summary = mil_summary(folder / manifest["artifacts"][key]["path"])
    found = [tuple(w["weight_shape"]) for w in summary["weights"]]
    expected = resolve(spec_from_dict(manifest["spec"])).weight_shapes()
    summary["matches_spec"] = found == expected
    summary["expected_weights"] = len(expected)
    return summary
