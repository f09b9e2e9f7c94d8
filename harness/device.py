"""Device fingerprint (``mobilebench env``, every run's env.json) and a stable device id.

Linux facts are read through one root, ``HARNESS_SYSROOT`` (default ``/``), so
recorded ``/proc`` and ``/sys`` trees can stand in for a real device; macOS facts
come from ``sysctl``. Framework versions come from package metadata: no
framework is ever imported here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from harness.formats import distributions
from harness.measure.memory import parse_status_kb
from harness.measure.threads import parse_physical_cores, physical_cores, thread_env
from harness.versions import distribution_versions

log = logging.getLogger(__name__)

SYSROOT_ENV = "HARNESS_SYSROOT"
#: Distributions whose versions env.json records: every format's, and the report's pandas.
DISTRIBUTIONS = (*distributions(), "pandas")
MAC_SYSCTL_KEYS = (
    "machdep.cpu.brand_string",
    "hw.model",
    "hw.memsize",
    "hw.physicalcpu",
    "hw.logicalcpu",
    "hw.perflevel0.physicalcpu",
    "hw.perflevel1.physicalcpu",
)
HARDWARE_KEYS = (
    "cpu_model",
    "physical_cores",
    "logical_cores",
    "ram_total_mb",
    "board",
    "board_revision",
    "soc",
    "chip",
    "perf_cores",
    "efficiency_cores",
)
# Facts that identify the hardware; versions, sensors and hostnames stay out.
ID_KEYS = ("cpu_model", "physical_cores", "logical_cores", "ram_gib", "arch", "board", "chip")

# ARM Ltd (implementer 0x41) part numbers seen on boards we run on.
_ARM_PARTS = {
    "0xb76": "ARM1176",
    "0xc07": "Cortex-A7",
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2",
}
# Processor field (bits 12-15) of a new-style Raspberry Pi revision code.
_PI_SOCS = ("BCM2835", "BCM2836", "BCM2837", "BCM2711", "BCM2712")
_PI_NEW_STYLE_FLAG = 1 << 23
_MAC_MODEL_ID = re.compile(r"[A-Za-z]+\d+,\d+")


def sysroot() -> Path:
    """Root under which ``/proc``, ``/sys`` and ``/etc`` are read."""
    return Path(os.environ.get(SYSROOT_ENV, "/"))


def read_text(rel_path: str) -> str | None:
    """Text of ``rel_path`` under :func:`sysroot` (e.g. ``"proc/cpuinfo"``), or None."""
    try:
        return (sysroot() / rel_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _read_value(rel_path: str) -> str | None:
    """Stripped one-line value of a sysfs/procfs file, or None when unreadable or empty."""
    text = read_text(rel_path)
    if text is None:
        return None
    return text.strip() or None


def _fields(text: str) -> list[tuple[str, str]]:
    """``key : value`` lines of cpuinfo-like text, in order."""
    pairs = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            pairs.append((key.strip(), value.strip()))
    return pairs


def _first(pairs: list[tuple[str, str]], key: str) -> str | None:
    return next((value for k, value in pairs if k == key and value), None)


def cpu_model_from_cpuinfo(cpuinfo: str) -> str | None:
    """CPU model: ``model name``, else the ARM core names, else ``Hardware``/``Model``."""
    pairs = _fields(cpuinfo)
    name = _first(pairs, "model name")
    if name:
        return name
    if _first(pairs, "CPU implementer") == "0x41":
        parts = dict.fromkeys(_ARM_PARTS.get(v, v) for k, v in pairs if k == "CPU part")
        if parts:
            return "ARM " + " + ".join(parts)
    return _first(pairs, "Hardware") or _first(pairs, "Model")


def count_processors(cpuinfo: str) -> int:
    """Logical CPUs listed in ``/proc/cpuinfo`` text."""
    return sum(1 for key, _ in _fields(cpuinfo) if key == "processor")


def pi_soc(revision: str | None) -> str | None:
    """SoC encoded in a new-style Raspberry Pi revision code (e.g. c03114 -> BCM2711)."""
    try:
        code = int(revision or "", 16)
    except ValueError:
        return None
    if not code & _PI_NEW_STYLE_FLAG:
        return None
    index = (code >> 12) & 0xF
    return _PI_SOCS[index] if index < len(_PI_SOCS) else None


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` pairs of ``/etc/os-release``, quotes removed."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip().strip("\"'")
    return values


def parse_sysctl(text: str) -> dict[str, str]:
    """``name: value`` lines printed by ``sysctl NAME...``."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            values[key.strip()] = value.strip()
    return values


def apple_chip(brand: str | None) -> str | None:
    """Apple silicon chip name from ``machdep.cpu.brand_string`` (None on Intel Macs)."""
    return brand if brand and brand.startswith("Apple ") else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def perf_efficiency_cores(sysctl: dict[str, str]) -> tuple[int | None, int | None]:
    """(performance, efficiency) core counts from ``hw.perflevel{0,1}.physicalcpu``."""
    perf = _int(sysctl.get("hw.perflevel0.physicalcpu"))
    return perf, _int(sysctl.get("hw.perflevel1.physicalcpu"))


def linux_hardware(cpuinfo: str, meminfo: str | None, dt_model: str | None) -> dict:
    """Hardware facts from ``/proc/cpuinfo``, ``/proc/meminfo`` and the device-tree model."""
    pairs = _fields(cpuinfo)
    logical = count_processors(cpuinfo) or os.cpu_count() or 1
    mem_kb = parse_status_kb(meminfo, "MemTotal") if meminfo else None
    revision = _first(pairs, "Revision")
    board = (dt_model or "").rstrip("\x00").strip() or _first(pairs, "Model")
    return {
        "cpu_model": cpu_model_from_cpuinfo(cpuinfo),
        # ARM boards list no core topology and have no SMT: one core per CPU.
        "physical_cores": parse_physical_cores(cpuinfo) or logical,
        "logical_cores": logical,
        "ram_total_mb": round(mem_kb / 1024, 1) if mem_kb is not None else None,
        "board": board,
        "board_revision": revision,
        "soc": pi_soc(revision) or _first(pairs, "Hardware"),
        "chip": None,
        "perf_cores": None,
        "efficiency_cores": None,
    }


def mac_hardware(sysctl: dict[str, str]) -> dict:
    """Hardware facts from ``sysctl`` values (see :data:`MAC_SYSCTL_KEYS`)."""
    brand = sysctl.get("machdep.cpu.brand_string")
    mem_bytes = _int(sysctl.get("hw.memsize"))
    perf, efficiency = perf_efficiency_cores(sysctl)
    return {
        "cpu_model": brand,
        "physical_cores": _int(sysctl.get("hw.physicalcpu")),
        "logical_cores": _int(sysctl.get("hw.logicalcpu")),
        "ram_total_mb": round(mem_bytes / 2**20, 1) if mem_bytes is not None else None,
        "board": sysctl.get("hw.model"),
        "board_revision": None,
        "soc": None,
        "chip": apple_chip(brand),
        "perf_cores": perf,
        "efficiency_cores": efficiency,
    }


def _sysctl_values() -> dict[str, str]:
    try:
        # Unknown names (perflevels on Intel Macs) go to stderr; the rest still print.
        out = subprocess.run(
            ["sysctl", *MAC_SYSCTL_KEYS], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("sysctl failed: %s", exc)
        return {}
    return parse_sysctl(out)


def hardware() -> dict:
    """Hardware facts of this device, including ``arch``."""
    cpuinfo = read_text("proc/cpuinfo")
    if cpuinfo is not None:
        facts = linux_hardware(
            cpuinfo, read_text("proc/meminfo"), read_text("proc/device-tree/model")
        )
    elif sys.platform == "darwin":
        facts = mac_hardware(_sysctl_values())
    else:
        facts = dict.fromkeys(HARDWARE_KEYS) | {
            "cpu_model": platform.processor() or None,
            "physical_cores": physical_cores(),
            "logical_cores": os.cpu_count(),
        }
    return facts | {"arch": platform.machine()}


def _khz_to_mhz(rel_path: str) -> float | None:
    value = _int(_read_value(rel_path))
    return value / 1000 if value is not None else None


def temperature() -> tuple[float | None, str | None]:
    """Hottest thermal zone in °C and its type, or (None, None)."""
    best: tuple[float, str | None] | None = None
    for zone in sorted((sysroot() / "sys/class/thermal").glob("thermal_zone*")):
        rel = f"sys/class/thermal/{zone.name}"
        millideg = _int(_read_value(f"{rel}/temp"))
        if millideg is None:
            continue
        celsius = millideg / 1000
        if best is None or celsius > best[0]:
            best = (celsius, _read_value(f"{rel}/type") or zone.name)
    return best if best is not None else (None, None)


def sensors() -> dict:
    """CPU governor, frequencies (MHz) and temperature where readable."""
    cpufreq = "sys/devices/system/cpu/cpu0/cpufreq"
    celsius, zone = temperature()
    return {
        "governor": _read_value(f"{cpufreq}/scaling_governor"),
        "freq_cur_mhz": _khz_to_mhz(f"{cpufreq}/scaling_cur_freq"),
        "freq_max_mhz": _khz_to_mhz(f"{cpufreq}/cpuinfo_max_freq"),
        "temperature_c": celsius,
        "thermal_zone": zone,
    }


def operating_system() -> dict:
    """OS name, kernel release, distribution name and Python version."""
    os_release = parse_os_release(read_text("etc/os-release") or "")
    pretty = os_release.get("PRETTY_NAME")
    if pretty is None and platform.mac_ver()[0]:
        pretty = f"macOS {platform.mac_ver()[0]}"
    return {
        "os": platform.system(),
        "os_release": platform.release(),
        "os_pretty": pretty,
        "python": platform.python_version(),
    }


def framework_versions() -> dict[str, str | None]:
    """Installed version of each framework distribution, None when absent."""
    return distribution_versions(DISTRIBUTIONS)


def device_id(hw: dict) -> str:
    """First 12 hex digits of sha256 over the hardware facts in :data:`ID_KEYS`."""
    ram_mb = hw.get("ram_total_mb")
    facts = hw | {"ram_gib": round(ram_mb / 1024) if ram_mb is not None else None}
    payload = json.dumps({key: facts.get(key) for key in ID_KEYS}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def device_name(hw: dict) -> str:
    """Readable name: the Apple chip, the board, or ``<cpu model> (<n> cores)``.

    A bare Mac model identifier (``MacBookPro16,1``) says less than the CPU, so it
    is not used as a name.
    """
    if hw.get("chip"):
        return hw["chip"]
    board = hw.get("board")
    if board and not _MAC_MODEL_ID.fullmatch(board):
        return board
    cpu = hw.get("cpu_model") or platform.machine() or "unknown CPU"
    return f"{cpu} ({hw.get('physical_cores')} cores)"


def fingerprint() -> dict:
    """Everything ``env.json`` records about the device; JSON-serialisable."""
    hw = hardware()
    return {
        "device_id": device_id(hw),
        "device_name": device_name(hw),
        **hw,
        **operating_system(),
        **sensors(),
        "versions": framework_versions(),
        "thread_settings": thread_settings(),
    }


def thread_settings() -> dict[str, str | int | None]:
    """The default thread count and the thread variables as this process sees them."""
    return {
        "default_threads": physical_cores(),
        **{name: os.environ.get(name) for name in thread_env(1)},
    }
