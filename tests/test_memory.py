import math
import subprocess
import sys
from pathlib import Path

import pytest

from harness.measure import memory
from harness.measure.memory import maxrss_to_mb, parse_status_kb

FIXTURES = Path(__file__).parent / "fixtures" / "sysroot"

# /proc/self/status of a Python process on Linux 6.1, as recorded.
STATUS = """\
Name:\tpython3
Umask:\t0022
State:\tR (running)
Tgid:\t41872
Pid:\t41872
PPid:\t41850
VmPeak:\t  912384 kB
VmSize:\t  846336 kB
VmLck:\t       0 kB
VmPin:\t       0 kB
VmHWM:\t  301240 kB
VmRSS:\t  187392 kB
RssAnon:\t  150016 kB
RssFile:\t   37376 kB
RssShmem:\t       0 kB
VmData:\t  402944 kB
VmStk:\t     132 kB
VmSwap:\t       0 kB
Threads:\t4
voluntary_ctxt_switches:\t112
"""

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")


@pytest.mark.parametrize(
    ("key", "kb"),
    [("VmRSS", 187392.0), ("VmHWM", 301240.0), ("RssAnon", 150016.0), ("VmSwap", 0.0)],
)
def test_parse_status_kb(key, kb):
    assert parse_status_kb(STATUS, key) == kb


@pytest.mark.parametrize("key", ["Rss", "VmRS", "Threads", "Missing", "Vm.*"])
def test_parse_status_kb_needs_an_exact_kb_key(key):
    assert parse_status_kb(STATUS, key) is None


def test_parse_status_kb_reads_meminfo_too():
    meminfo = (FIXTURES / "pi4" / "proc" / "meminfo").read_text()

    assert parse_status_kb(meminfo, "MemTotal") == 3884396.0


@pytest.mark.parametrize(
    ("value", "platform", "mb"),
    [
        (1024, "linux", 1.0),  # KiB
        (2**20, "darwin", 1.0),  # bytes
        (301240, "linux", 301240 / 1024),
        (315_883_520, "darwin", 301.25),
    ],
)
def test_maxrss_to_mb(value, platform, mb):
    assert maxrss_to_mb(value, platform) == pytest.approx(mb)


def test_current_and_peak_rss_are_consistent():
    current = memory.rss_mb()
    peak = memory.peak_rss_mb()

    assert current > 0
    assert peak >= current * 0.99


def test_rss_falls_back_to_ps_without_proc(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "_STATUS", tmp_path / "missing")
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout=" 20480\n", stderr="")

    monkeypatch.setattr(memory.subprocess, "run", fake_run)

    assert memory.rss_mb() == 20.0
    assert calls[0][:3] == ["ps", "-o", "rss="]


def test_rss_is_nan_without_any_source(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "_STATUS", tmp_path / "missing")

    def failing_run(cmd, **kwargs):
        raise FileNotFoundError("ps")

    monkeypatch.setattr(memory.subprocess, "run", failing_run)

    assert math.isnan(memory.rss_mb())
