"""nox sessions: bench (the main job), tests, lint, profile, report."""

from __future__ import annotations

import platform

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "lint"]

CONSTRAINTS = ("-c", "constraints.txt")

# PyTorch's index of CPU-only wheels (versions labelled `+cpu`, e.g. 2.13.0+cpu).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def install_steps(extras: str, system: str) -> list[list[str]]:
    """The pip arguments of each install step, in order, for the project with ``extras``.

    ``system`` is ``platform.system()``. On Linux PyPI's torch is a CUDA build, on x86_64
    and aarch64 alike (gigabytes of nvidia-* wheels), so there torch is installed first,
    alone, from PyTorch's CPU index or from a local copy of the CPU wheel that pip finds
    through its find-links; constraints.txt pins the `+cpu` build on Linux, so an install
    that can reach neither fails instead of taking the CUDA build. That step installs torch
    without its dependencies so that pip asks the CPU index about torch only: where the
    index is unreachable, pip spends ~8 s of retries on each project it asks about there
    (~9 minutes for the whole project). The project's own step then finds torch
    installed and takes torch's dependencies from PyPI.
    """
    project = [*CONSTRAINTS, "-e", f".[{extras}]" if extras else "."]
    if system == "Linux" and extras:  # every backend extra brings torch (the reference)
        torch = [*CONSTRAINTS, "--no-deps", "--extra-index-url", TORCH_CPU_INDEX, "torch"]
        return [torch, project]
    return [project]


def install(session: nox.Session, extras: str) -> None:
    """Install the project with ``extras`` at the pinned framework versions."""
    for args in install_steps(extras, platform.system()):
        session.install(*args)


#: What `nox -s bench` measures unless its arguments name precisions: the fp32 files and the
#: int8 variants a runtime runs without a JIT compile step (`-- --precision all` adds the rest).
BENCH_DEFAULTS = ("--precision", "fp32,int8", "--no-compile")


def bench_args(posargs: list[str]) -> list[str]:
    """`mobilebench run` arguments: the user's, after the defaults unless they pick precisions."""
    if any(arg == "--precision" or arg.startswith("--precision=") for arg in posargs):
        return list(posargs)
    return [*BENCH_DEFAULTS, *posargs]


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark mobilenet_v2 and standard_conv on every available backend (batch 1, fp32
    and int8)."""
    install(session, "all")
    session.run("mobilebench", "env")
    session.run("mobilebench", "run", *bench_args(session.posargs))


@nox.session
def profile(session: nox.Session) -> None:
    """Per-layer profiles: where each runtime spends its time, layer by spec layer."""
    install(session, "all")
    session.run("mobilebench", "profile", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    install(session, "all,test")
    session.run("pytest", *session.posargs)


@nox.session
def pytest_bench(session: nox.Session) -> None:
    """pytest-benchmark suite over the same backends (saves JSON under .benchmarks/)."""
    install(session, "all,test")
    session.run("pytest", "benchmarks", "--benchmark-autosave", *session.posargs)


@nox.session
def report(session: nox.Session) -> None:
    """One self-contained HTML report of every run under results/."""
    install(session, "")
    session.run("mobilebench", "report", *session.posargs)


@nox.session(reuse_venv=True)
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
