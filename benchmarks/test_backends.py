"""Latency of every available backend's default mode, model x backend, batch 1."""

from __future__ import annotations

import pytest
from conftest import MODELS, THREADS

from harness.backends import REGISTRY
from harness.exporters.artifacts import artifact_in, read_manifest
from harness.inputs import read_parity
from harness.macs import count
from harness.parity import compare, within_tolerance
from harness.spec import load_spec


def _params():
    for model in MODELS:
        for name, cls in REGISTRY.items():
            ok, reason = cls.available()
            marks = () if ok else pytest.mark.skip(reason=reason)
            yield pytest.param(model, name, id=f"{model}-{name}", marks=marks)


@pytest.mark.parametrize(("model", "backend_name"), list(_params()))
def test_latency(benchmark, device, export_folder, model, backend_name):
    cls = REGISTRY[backend_name]
    folder = export_folder(model, cls.artifact_format)
    manifest = read_manifest(folder)
    backend = cls(threads=THREADS)
    backend.load(artifact_in(folder, cls.artifact_format, manifest=manifest))
    batch = read_parity(folder)[:1]
    prepared = backend.prepare(batch)

    import numpy as np

    errors = compare(np.load(folder / "reference.npy")[:1], backend.run(prepared))
    assert within_tolerance(errors), errors
    benchmark.extra_info.update(
        {
            "model": model,
            "backend": backend_name,
            "backend_version": cls.version(),
            "mode": backend.mode,
            "batch": 1,
            "threads": THREADS,
            "macs": count(load_spec(model)).macs,
            "device_id": device["device_id"],
            "device_name": device["device_name"],
            **errors,
        }
    )
    benchmark.group = model
    benchmark(backend.run, prepared)
