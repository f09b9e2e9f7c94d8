from harness.measure.conditions import (
    available_memory_mb,
    condition_flags,
    parse_pmset_therm,
    parse_throttled,
    throttle_reasons,
    wait_until_cool,
)

PMSET_LIMITED = """Note: No thermal warning level has been recorded
Note: No performance warning level has been recorded
2026-11-20 10:01:02 +0100 CPU Power notify
\tCPU_Scheduler_Limit \t= 100
\tCPU_Available_CPUs \t= 10
\tCPU_Speed_Limit \t= 71
"""
PMSET_IDLE = """Note: No thermal warning level has been recorded
Note: No performance warning level has been recorded
Note: No CPU power status has been recorded
"""


def snap(**kw):
    base = {
        "temperature_c": 50.0,
        "governor": "performance",
        "throttled": None,
        "cpu_speed_limit_pct": None,
        "freq_cur_mhz": None,
    }
    return {**base, **kw}


def test_parse_throttled():
    assert parse_throttled("throttled=0x50005\n") == 0x50005
    assert parse_throttled("throttled=0x0") == 0
    assert parse_throttled("VCHI initialization failed") is None
    assert throttle_reasons(0x50005) == ["under-voltage", "throttled"]


def test_parse_pmset():
    assert parse_pmset_therm(PMSET_LIMITED) == 71
    assert parse_pmset_therm(PMSET_IDLE) == 100
    assert parse_pmset_therm("") is None


def test_clean_conditions_raise_nothing():
    assert condition_flags(snap(), snap()) == []
    assert condition_flags(snap(governor="schedutil"), snap(governor="schedutil")) == []
    assert condition_flags(snap(governor=None), snap(governor=None)) == []


def test_governor_and_throttling_are_flagged():
    assert "ondemand" in condition_flags(snap(governor="ondemand"), snap(governor="ondemand"))[0]
    # Throttling that began during the cell shows in the sticky bits only.
    (reason,) = condition_flags(snap(throttled=0x0), snap(throttled=0x40000))
    assert "throttled" in reason
    # A throttle that happened before the cell and is over does not taint it.
    assert condition_flags(snap(throttled=0x40000), snap(throttled=0x40000)) == []
    assert "71%" in condition_flags(snap(), snap(cpu_speed_limit_pct=71))[0]


def test_wait_until_cool_polls_until_below():
    temps = iter([80.0, 75.0, 69.0, 60.0])
    slept = []
    final = wait_until_cool(70.0, read=lambda: next(temps), sleep=slept.append, poll_s=1)
    assert final == 69.0
    assert slept == [1, 1]
    assert wait_until_cool(70.0, read=lambda: None, sleep=slept.append) is None
    hot = wait_until_cool(70.0, timeout_s=3, poll_s=1, read=lambda: 90.0, sleep=lambda s: None)
    assert hot == 90.0


def test_available_memory_from_the_sysroot(monkeypatch, tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text(
        "MemTotal:        3884096 kB\nMemFree:          120000 kB\nMemAvailable:    1048576 kB\n"
    )
    monkeypatch.setenv("HARNESS_SYSROOT", str(tmp_path))
    assert available_memory_mb() == 1024.0
