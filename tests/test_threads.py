import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.measure import threads
from harness.measure.threads import (
    apply_env,
    configure_tensorflow,
    configure_torch,
    parse_physical_cores,
    physical_cores,
    thread_env,
)

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


class FakeTorch(SimpleNamespace):
    def __init__(self):
        super().__init__(intra=None)

    def set_num_threads(self, n):
        self.intra = n

    def set_num_interop_threads(self, n):
        raise RuntimeError("cannot set number of interop threads after parallel work")


def test_configure_torch_tolerates_a_fixed_interop_pool(monkeypatch):
    fake = FakeTorch()
    monkeypatch.setitem(sys.modules, "torch", fake)

    assert configure_torch(3) is True
    assert fake.intra == 3


def test_configure_tensorflow_sets_both_pools(monkeypatch):
    calls = {}
    threading = SimpleNamespace(
        set_intra_op_parallelism_threads=lambda n: calls.setdefault("intra", n),
        set_inter_op_parallelism_threads=lambda n: calls.setdefault("inter", n),
    )
    monkeypatch.setitem(
        sys.modules, "tensorflow", SimpleNamespace(config=SimpleNamespace(threading=threading))
    )

    assert configure_tensorflow(2) is True
    assert calls == {"intra": 2, "inter": 1}


def test_configure_tensorflow_tolerates_an_initialised_runtime(monkeypatch):
    def already(n):
        raise RuntimeError("Intra op parallelism cannot be modified after initialization.")

    threading = SimpleNamespace(
        set_intra_op_parallelism_threads=already, set_inter_op_parallelism_threads=already
    )
    monkeypatch.setitem(
        sys.modules, "tensorflow", SimpleNamespace(config=SimpleNamespace(threading=threading))
    )

    assert configure_tensorflow(2) is True


@pytest.mark.parametrize(
    ("module", "configure"), [("torch", configure_torch), ("tensorflow", configure_tensorflow)]
)
def test_configure_without_the_framework_returns_false(monkeypatch, module, configure):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError

    assert configure(1) is False


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
