import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.measure import threads
from harness.measure.threads import apply_env, parse_physical_cores, physical_cores, thread_env

FIXTURES = Path(__file__).parent / "fixtures" / "sysroot"

INTRAOP = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)

# Two sockets x two cores x two hyper-threads, trimmed to the topology lines.
TWO_SOCKETS = "\n\n".join(
    f"processor\t: {cpu}\nmodel name\t: Intel(R) Xeon(R) CPU E5-2620 v4 @ 2.10GHz\n"
    f"physical id\t: {cpu // 4}\nsiblings\t: 4\ncore id\t\t: {cpu % 2}\ncpu cores\t: 2"
    for cpu in range(8)
)


def test_thread_env_sizes_every_pool():
    env = thread_env(4)

    assert all(env[name] == "4" for name in INTRAOP)
    assert env["TF_NUM_INTEROP_THREADS"] == "1"
    assert all(isinstance(value, str) for value in env.values())


@pytest.mark.parametrize("bad", [0, -2])
def test_thread_env_rejects_non_positive_counts(bad):
    with pytest.raises(ValueError, match="threads"):
        thread_env(bad)


def test_apply_env_sets_os_environ(monkeypatch):
    for name in thread_env(1):
        monkeypatch.delenv(name, raising=False)

    env = apply_env(2)

    assert {name: os.environ[name] for name in env} == env == thread_env(2)


@pytest.mark.parametrize(("fixture", "cores"), [("x86_laptop", 4), ("pi4", None), ("pi5", None)])
def test_parse_physical_cores_on_recorded_cpuinfo(fixture, cores):
    text = (FIXTURES / fixture / "proc" / "cpuinfo").read_text()

    assert parse_physical_cores(text) == cores


def test_parse_physical_cores_counts_each_socket():
    assert parse_physical_cores(TWO_SOCKETS) == 4


def test_physical_cores_is_plausible():
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)


def test_physical_cores_falls_back_to_cpu_count(monkeypatch):
    monkeypatch.setattr(threads, "parse_physical_cores", lambda text: None)
    monkeypatch.setattr(threads, "_sysctl_int", lambda name: None)

    assert physical_cores() == (os.cpu_count() or 1)


def test_measure_modules_import_no_framework():
    modules = ["stats", "timing", "memory", "threads", "peak"]
    frameworks = ("torch", "tensorflow", "onnxruntime", "keras")
    code = (
        "import sys\n"
        + "".join(f"import harness.measure.{m}\n" for m in modules)
        + f"loaded = [m for m in {frameworks!r} if m in sys.modules]\n"
        + "assert not loaded, loaded\n"
    )

    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
