"""Shared fixtures: an isolated artifact cache and one export per shipped spec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.isolation import quiet_frameworks

quiet_frameworks()


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test exports into one throw-away cache, never the user's."""
    root = tmp_path_factory.mktemp("cache")
    old = os.environ.get("MOBILEBENCH_CACHE")
    os.environ["MOBILEBENCH_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("MOBILEBENCH_CACHE", None)
    else:
        os.environ["MOBILEBENCH_CACHE"] = old


@pytest.fixture(scope="session")
def exported(artifact_cache: Path):
    """``exported(name)`` -> the export folder of a shipped spec, all formats, parity checked."""
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("coremltools")
    from harness.exporters.artifacts import export
    from harness.parity import check_export
    from harness.spec import load_spec

    folders: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in folders:
            folder = export(load_spec(name))
            check_export(folder)
            folders[name] = folder
        return folders[name]

    return get
