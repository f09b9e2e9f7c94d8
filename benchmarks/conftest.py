"""pytest-benchmark suite over the same backend classes the runner uses.

Unlike ``mobilebench run`` (one fresh process per cell), every backend here
shares the pytest process; use it for pytest-benchmark's calibrated rounds,
``--benchmark-autosave``, ``--benchmark-compare`` and
``--benchmark-compare-fail``. Threads: ``MOBILEBENCH_THREADS`` (default: all
physical cores), applied before any framework loads.
"""

from __future__ import annotations

import os

from harness.isolation import quiet_frameworks
from harness.measure.threads import apply_env, physical_cores

THREADS = int(os.environ.get("MOBILEBENCH_THREADS", physical_cores()))
apply_env(THREADS)
quiet_frameworks()

import pytest  # noqa: E402

from harness.device import fingerprint  # noqa: E402

MODELS = ("mobilenet_v2", "standard_conv")


@pytest.fixture(scope="session")
def device() -> dict:
    return fingerprint()


@pytest.fixture(scope="session")
def export_folder():
    """``export_folder(model, fmt)`` -> the cached export folder holding that format."""
    from harness.exporters.artifacts import export
    from harness.spec import load_spec

    def get(model: str, fmt: str):
        return export(load_spec(model), [fmt])

    return get


def pytest_benchmark_update_machine_info(config, machine_info):
    """Put the harness's device fingerprint beside pytest-benchmark's machine info."""
    info = fingerprint()
    machine_info["mobilebench"] = {
        k: info.get(k) for k in ("device_id", "device_name", "cpu_model", "versions")
    }
    machine_info["mobilebench"]["threads"] = THREADS
