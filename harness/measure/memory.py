"""Resident memory of this process: current RSS and peak RSS.

Every value is in MB meaning MiB (2**20 bytes).
"""

from __future__ import annotations

import logging
import math
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")
_KIB_PER_MB = 1024
_BYTES_PER_MB = 2**20


def parse_status_kb(text: str, key: str) -> float | None:
    """Value in kB of ``key`` (e.g. ``VmRSS``) in ``/proc/<pid>/status`` text, or None."""
    match = re.search(rf"^{re.escape(key)}:\s*(\d+)\s*kB\s*$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def _status_mb(key: str) -> float | None:
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    kb = parse_status_kb(text, key)
    return kb / _KIB_PER_MB if kb is not None else None


def _ps_rss_mb() -> float:
    # macOS has no /proc and getrusage only reports the peak; ps reports RSS in KiB.
    try:
        out = subprocess.run(
            ["ps", "-o", "rss=", "-p", str(os.getpid())],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        return float(out.strip()) / _KIB_PER_MB
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.warning("cannot read the current RSS: %s", exc)
        return math.nan


def rss_mb() -> float:
    """Current resident set size in MB (MiB); NaN when no source is readable."""
    value = _status_mb("VmRSS")
    return value if value is not None else _ps_rss_mb()


def maxrss_to_mb(value: float, platform: str) -> float:
    """Convert ``ru_maxrss`` to MB (MiB): it is bytes on macOS, KiB on Linux."""
    return value / _BYTES_PER_MB if platform == "darwin" else value / _KIB_PER_MB


def peak_rss_mb() -> float:
    """Peak resident set size of this process since it started, in MB (MiB)."""
    return maxrss_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, sys.platform)
