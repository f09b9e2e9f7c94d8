"""nox sessions: bench (the main job), tests, lint, report."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "lint"]

CONSTRAINTS = ("-c", "constraints.txt")


def install(session: nox.Session, extras: str) -> None:
    """Install the project with ``extras`` at the pinned framework versions."""
    session.install(*CONSTRAINTS, "-e", f".[{extras}]" if extras else ".")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark mobilenet_v2 and standard_conv on every available backend (batch 1)."""
    install(session, "all")
    session.run("mobilebench", "env")
    session.run("mobilebench", "run", *session.posargs)


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
