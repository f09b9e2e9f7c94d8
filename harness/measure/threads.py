"""One thread setting for every framework, and the number of physical cores.

Thread pools are sized when a library loads, so :func:`apply_env` must run in a
fresh child process before numpy or any framework is imported; each backend
then pins its own runtime's pools (``Backend.pin_threads``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# Libraries whose thread pools read the environment when they load.
_ENV_READERS = ("numpy", "torch", "tensorflow", "onnxruntime")
_INTRAOP_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)


def check_threads(threads: int) -> None:
    """ValueError unless ``threads`` is a usable thread count (>= 1)."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that size every BLAS/OpenMP/TF pool to ``threads``.

    Inter-op parallelism is fixed at 1 so ``threads`` is the whole budget.
    """
    check_threads(threads)
    env = dict.fromkeys(_INTRAOP_VARS, str(threads))
    env["TF_NUM_INTEROP_THREADS"] = "1"
    return env


def apply_env(threads: int) -> dict[str, str]:
    """Set :func:`thread_env` in ``os.environ`` and return it."""
    env = thread_env(threads)
    loaded = [name for name in _ENV_READERS if name in sys.modules]
    if loaded:
        log.warning("thread env set after importing %s; their pools may ignore it", loaded)
    os.environ.update(env)
    return env


def parse_physical_cores(cpuinfo: str) -> int | None:
    """Unique (physical id, core id) pairs in ``/proc/cpuinfo`` text; None without topology."""
    cores: set[tuple[str, str]] = set()
    for block in cpuinfo.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None


def _sysctl_int(name: str) -> int | None:
    try:
        out = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, check=True, timeout=10
        ).stdout
        return int(out.strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def physical_cores() -> int:
    """Physical cores of this machine (SMT siblings counted once)."""
    count = None
    if sys.platform.startswith("linux"):
        try:
            count = parse_physical_cores(Path("/proc/cpuinfo").read_text())
        except OSError:
            count = None
    elif sys.platform == "darwin":
        count = _sysctl_int("hw.physicalcpu")
    return count or os.cpu_count() or 1
