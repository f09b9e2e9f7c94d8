"""Which reduced-precision arithmetic this CPU has in hardware.

A precision only speeds a model up when the CPU computes in it natively:
int8 dot products (x86 VNNI, ARM ``asimddp``/SDOT), fp16 arithmetic (ARMv8.2
``asimdhp``, x86 AVX512-FP16) and bf16 (x86 AVX512-BF16/AMX, ARM ``bf16``).
Features are read from ``/proc/cpuinfo`` flags on Linux and from ``sysctl
hw.optional.arm.FEAT_*`` on macOS; parsing is pure and tested on recorded text.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass

from harness.device import read_text

#: Feature name (as Linux lists it) -> what it is, per precision.
NATIVE = {
    "fp16": {
        "avx512_fp16": "x86 AVX512-FP16",
        "amx_fp16": "x86 AMX-FP16",
        "asimdhp": "ARMv8.2 fp16 arithmetic (asimdhp)",
    },
    "bf16": {
        "avx512_bf16": "x86 AVX512-BF16",
        "amx_bf16": "x86 AMX-BF16",
        "bf16": "ARMv8.6 BF16 (bfdot/bfmmla)",
    },
    "int8": {
        "avx512_vnni": "x86 AVX512-VNNI",
        "avx_vnni": "x86 AVX-VNNI",
        "amx_int8": "x86 AMX-INT8",
        "asimddp": "ARMv8.2 dot product (sdot)",
        "i8mm": "ARMv8.6 int8 matrix multiply (smmla)",
    },
}
#: macOS sysctl names of the ARM features above.
_MAC_FEATURES = {
    "hw.optional.arm.FEAT_FP16": "asimdhp",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
}


@dataclass(frozen=True)
class Native:
    """Whether one precision has native arithmetic here, and which instructions."""

    precision: str
    instructions: tuple[str, ...]

    @property
    def available(self) -> bool:
        return bool(self.instructions)

    def describe(self) -> str:
        if self.available:
            return f"native {self.precision}: {', '.join(self.instructions)}"
        wanted = ", ".join(dict.fromkeys(NATIVE[self.precision].values()))
        return f"this CPU has no native {self.precision} arithmetic (none of: {wanted})"


def flags_from_cpuinfo(cpuinfo: str) -> frozenset[str]:
    """The ``flags`` (x86) or ``Features`` (ARM) of the first CPU in /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def flags_from_sysctl(values: dict[str, str]) -> frozenset[str]:
    """Linux-style feature names from macOS ``hw.optional.arm.FEAT_*`` values."""
    return frozenset(name for key, name in _MAC_FEATURES.items() if values.get(key) == "1")


@functools.cache
def flags() -> frozenset[str]:
    """This CPU's feature flags (Linux names), empty when unreadable."""
    cpuinfo = read_text("proc/cpuinfo")
    if cpuinfo is not None:
        return flags_from_cpuinfo(cpuinfo)
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["sysctl", *_MAC_FEATURES], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return frozenset()
        pairs = (line.partition(":") for line in out.splitlines())
        values = {key.strip(): value.strip() for key, _, value in pairs}
        return flags_from_sysctl(values)
    return frozenset()


def native(precision: str, found: frozenset[str] | None = None) -> Native:
    """Native arithmetic for ``precision`` (fp32 always) given feature ``found`` (default: here)."""
    if precision == "fp32":
        return Native("fp32", ("fp32",))
    have = flags() if found is None else found
    return Native(precision, tuple(v for k, v in NATIVE[precision].items() if k in have))
