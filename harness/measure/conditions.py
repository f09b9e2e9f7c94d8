"""Whether a device was in a state to give trustworthy numbers around a cell.

A snapshot records temperature, the frequency governor, the Raspberry Pi's
throttle flags (``vcgencmd get_throttled``) and macOS thermal pressure
(``pmset -g therm``) where readable; :func:`condition_flags` turns a
before/after pair into reasons. Parsers are pure and tested with recorded output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from harness.device import read_text, sensors

#: Governors that let the CPU run at full speed under load.
TRUSTED_GOVERNORS = ("performance", "schedutil")
#: vcgencmd get_throttled bits: 0-3 happening now, 16-19 happened since boot.
THROTTLE_NOW = {
    0x1: "under-voltage",
    0x2: "frequency capped",
    0x4: "throttled",
    0x8: "soft temperature limit",
}
THROTTLE_STICKY_SHIFT = 16


def parse_throttled(text: str) -> int | None:
    """``throttled=0x50005`` -> 0x50005."""
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", text)
    return int(match.group(1), 16) if match else None


def throttle_reasons(flags: int) -> list[str]:
    """Names of the throttle conditions active now in a get_throttled value."""
    return [name for bit, name in THROTTLE_NOW.items() if flags & bit]


def parse_pmset_therm(text: str) -> int | None:
    """CPU speed limit in percent from ``pmset -g therm`` (100 = not limited)."""
    match = re.search(r"CPU_Speed_Limit\s*=\s*(\d+)", text)
    if match:
        return int(match.group(1))
    if "No CPU power status has been recorded" in text:
        return 100
    return None


def _command(args: list[str]) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def snapshot() -> dict[str, Any]:
    """Temperature, governor, throttle flags and CPU speed limit, where readable."""
    found = sensors()
    vcgencmd = _command(["vcgencmd", "get_throttled"])
    speed_limit = _command(["pmset", "-g", "therm"]) if sys.platform == "darwin" else None
    return {
        "temperature_c": found["temperature_c"],
        "governor": found["governor"],
        "freq_cur_mhz": found["freq_cur_mhz"],
        "throttled": parse_throttled(vcgencmd) if vcgencmd else None,
        "cpu_speed_limit_pct": parse_pmset_therm(speed_limit) if speed_limit else None,
    }


def condition_flags(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Reasons the numbers measured between two snapshots may not be trusted."""
    found = []
    governor = after.get("governor") or before.get("governor")
    if governor and governor not in TRUSTED_GOVERNORS:
        found.append(f"CPU governor '{governor}' (not performance/schedutil)")
    now = (after.get("throttled") or 0) | (before.get("throttled") or 0)
    new_sticky = ((after.get("throttled") or 0) & ~(before.get("throttled") or 0)) >> (
        THROTTLE_STICKY_SHIFT
    )
    reasons = throttle_reasons(now) or throttle_reasons(new_sticky)
    if reasons:
        found.append(f"device throttled during the cell ({', '.join(reasons)})")
    limits = [s.get("cpu_speed_limit_pct") for s in (before, after)]
    if any(limit is not None and limit < 100 for limit in limits):
        found.append(f"macOS thermal pressure: CPU speed limited to {min(filter(None, limits))}%")
    return found


def wait_until_cool(
    max_temp_c: float,
    timeout_s: float = 600.0,
    poll_s: float = 2.0,
    read: Callable[[], float | None] = lambda: sensors()["temperature_c"],
    sleep: Callable[[float], None] = time.sleep,
) -> float | None:
    """Wait until the temperature is below ``max_temp_c`` (or unreadable, or timed out)."""
    waited = 0.0
    temp = read()
    while temp is not None and temp >= max_temp_c and waited < timeout_s:
        sleep(poll_s)
        waited += poll_s
        temp = read()
    return temp


def available_memory_mb() -> float | None:
    """MemAvailable from /proc/meminfo (through the sysroot), in MiB."""
    text = read_text("proc/meminfo") or ""
    match = re.search(r"^MemAvailable:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None
