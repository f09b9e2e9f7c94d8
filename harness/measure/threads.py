"""One thread setting for every framework, and the number of physical cores.

Thread pools are sized when a library loads, so :func:`apply_env` must run in a
fresh child process before numpy or any framework is imported; the
``configure_*`` calls then pin the framework's own pools. Frameworks are
imported lazily and may be absent.
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


def _check(threads: int) -> None:
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that size every BLAS/OpenMP/TF pool to ``threads``.

    Inter-op parallelism is fixed at 1 so ``threads`` is the whole budget.
    """
    _check(threads)
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


def configure_torch(threads: int) -> bool:
    """Pin torch's intra-op pool to ``threads`` and inter-op to 1; False if torch is absent."""
    _check(threads)
    try:
        import torch
    except ImportError:
        return False
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError as exc:  # only settable before the first parallel work
        log.debug("torch inter-op threads already fixed: %s", exc)
    return True


def configure_tensorflow(threads: int) -> bool:
    """Pin TensorFlow's intra-op pool to ``threads`` and inter-op to 1; False if absent."""
    _check(threads)
    try:
        import tensorflow as tf
    except ImportError:
        return False
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as exc:  # the runtime is already initialised
        log.warning("TensorFlow threads already fixed, env settings apply: %s", exc)
    return True


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
