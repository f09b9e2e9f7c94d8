"""How the project installs: noxfile.py's pip arguments, constraints.txt, pyproject.toml's
metadata, and the README's two commands that .ci/run runs."""

from __future__ import annotations

import importlib.util
import itertools
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# (platform.system(), marker environment) of the machines the project runs on.
PLATFORMS = {
    "linux-x86_64": ("Linux", {"sys_platform": "linux", "platform_machine": "x86_64"}),
    "linux-aarch64": ("Linux", {"sys_platform": "linux", "platform_machine": "aarch64"}),
    "macos-arm64": ("Darwin", {"sys_platform": "darwin", "platform_machine": "arm64"}),
}
LINUX = ["linux-x86_64", "linux-aarch64"]


@pytest.fixture(scope="module")
def noxfile():
    spec = importlib.util.spec_from_file_location("noxfile_under_test", ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeSession:
    """Records what a nox session function asks of its session."""

    def __init__(self):
        self.posargs: list[str] = []
        self.installs: list[tuple[str, ...]] = []
        self.runs: list[tuple[str, ...]] = []

    def install(self, *args: str) -> None:
        self.installs.append(args)

    def run(self, *args: str) -> None:
        self.runs.append(args)


def uses_cpu_index(args, noxfile) -> bool:
    return any(
        a == "--extra-index-url" and b == noxfile.TORCH_CPU_INDEX
        for a, b in itertools.pairwise(args)
    )


def torch_pins(environment: dict[str, str]) -> list[Requirement]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return [
        r
        for r in reqs
        if r.name == "torch" and (r.marker is None or r.marker.evaluate(environment))
    ]


@pytest.mark.parametrize("name", LINUX)
def test_linux_takes_torch_alone_from_the_cpu_index(noxfile, name):
    system, _ = PLATFORMS[name]
    torch_step, project_step = noxfile.install_steps("all,test", system)
    assert uses_cpu_index(torch_step, noxfile)
    assert torch_step[-1] == "torch"
    # only torch is asked of the CPU index: an unreachable index costs seconds per project
    assert "--no-deps" in torch_step
    assert not uses_cpu_index(project_step, noxfile)
    assert project_step[-2:] == ["-e", ".[all,test]"]
    for step in (torch_step, project_step):
        assert step[:2] == ["-c", "constraints.txt"]


def test_macos_takes_torch_from_pypi(noxfile):
    system, _ = PLATFORMS["macos-arm64"]
    assert noxfile.install_steps("all", system) == [["-c", "constraints.txt", "-e", ".[all]"]]


def test_no_torch_step_without_extras(noxfile):
    assert noxfile.install_steps("", "Linux") == [["-c", "constraints.txt", "-e", "."]]


@pytest.mark.parametrize("name", PLATFORMS)
@pytest.mark.parametrize("session_name", ["bench", "tests", "pytest_bench"])
def test_sessions_install_through_install_steps(noxfile, monkeypatch, name, session_name):
    system, _ = PLATFORMS[name]
    monkeypatch.setattr(noxfile.platform, "system", lambda: system)
    session = FakeSession()
    getattr(noxfile, session_name)(session)
    assert [uses_cpu_index(args, noxfile) for args in session.installs] == (
        [True, False] if system == "Linux" else [False]
    )
    assert all(args[:2] == ("-c", "constraints.txt") for args in session.installs)


@pytest.mark.parametrize("name", LINUX)
def test_constraints_pin_the_cpu_build_of_torch_on_linux(name):
    _, environment = PLATFORMS[name]
    [pin] = torch_pins(environment)
    assert pin.specifier.contains("2.13.0+cpu")
    assert not pin.specifier.contains("2.13.0")  # PyPI's CUDA build


def test_constraints_pin_pypi_torch_on_macos():
    [linux] = torch_pins(PLATFORMS["linux-x86_64"][1])
    [mac] = torch_pins(PLATFORMS["macos-arm64"][1])
    [spec] = mac.specifier
    assert spec.operator == "=="
    assert Version(spec.version).local is None
    # the same torch release everywhere: numbers are only comparable at the same versions
    [linux_spec] = linux.specifier
    assert Version(spec.version) == Version(Version(linux_spec.version).public)


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.mark.parametrize(
    ("name", "expected"), [("linux-x86_64", True), ("linux-aarch64", False), ("macos-arm64", True)]
)
def test_coremltools_only_where_it_has_wheels(pyproject, name, expected):
    _, environment = PLATFORMS[name]
    extras = pyproject["project"]["optional-dependencies"]
    [coremltools] = [
        r for reqs in extras.values() for r in map(Requirement, reqs) if r.name == "coremltools"
    ]
    assert coremltools.marker.evaluate({**environment, "extra": ""}) is expected


def test_requires_python_and_ruff_target_agree(pyproject):
    # the code uses tomllib and datetime.UTC (3.11)
    requires = SpecifierSet(pyproject["project"]["requires-python"])
    assert "3.10" not in requires
    assert "3.11" in requires
    assert pyproject["tool"]["ruff"]["target-version"] == "py311"


def readme_setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Setup and the two commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_has_two_commands_in_a_virtual_environment():
    bench, tests = readme_setup_commands()
    assert bench.endswith("nox -s bench")
    assert tests.endswith("nox -s tests")
    for command in (bench, tests):
        # PEP 668: Debian 12, Raspberry Pi OS and Ubuntu 24.04 refuse `pip install` into
        # the system's Python, so nox goes into a virtual environment first
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install nox && ")


def test_ci_runs_the_readme_test_command():
    _, tests = readme_setup_commands()
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in lines
    assert "set -euo pipefail" in lines  # a failing test fails CI


def test_readme_never_installs_into_the_system_python():
    readme = (ROOT / "README.md").read_text()
    shell = "\n".join(re.findall(r"```sh\n(.*?)```", readme, re.DOTALL))
    assert "--break-system-packages" not in shell
    for match in re.finditer(r"(\S*)pip install", shell):
        assert match.group(1) == ".venv/bin/", match.group(0)


def test_virtual_environments_are_not_committed():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {".venv/", ".nox/"} <= set(ignored)


def test_bench_measures_fp32_and_int8_without_compile_steps_unless_told(noxfile):
    assert noxfile.bench_args([]) == ["--precision", "fp32,int8", "--no-compile"]
    assert noxfile.bench_args(["--threads", "1,2"]) == [
        "--precision",
        "fp32,int8",
        "--no-compile",
        "--threads",
        "1,2",
    ]
    assert noxfile.bench_args(["--precision", "all"]) == ["--precision", "all"]
    assert noxfile.bench_args(["--precision=fp16"]) == ["--precision=fp16"]
    session = FakeSession()
    session.posargs = ["--threads", "1"]
    noxfile.bench(session)
    assert session.runs[-1] == ("mobilebench", "run", *noxfile.bench_args(["--threads", "1"]))
