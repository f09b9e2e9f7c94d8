"""The fleet workflow: valid YAML, three platforms, the README's commands, results uploaded."""

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "bench.yml"


def test_three_platform_matrix_runs_tests_and_bench_and_uploads():
    flow = yaml.safe_load(WORKFLOW.read_text())
    job = flow["jobs"]["bench"]
    runners = {entry["name"]: entry["runs-on"] for entry in job["strategy"]["matrix"]["include"]}
    assert set(runners) == {"linux-x86_64", "linux-arm64", "macos-arm64"}
    assert runners["linux-arm64"].endswith("-arm")
    assert runners["macos-arm64"].startswith("macos-")
    commands = [step.get("run", "") for step in job["steps"]]
    readme = (WORKFLOW.parents[2] / "README.md").read_text()
    for session in ("tests", "bench"):
        command = next(c for c in commands if c.endswith(f"nox -s {session}"))
        assert f"{command}    #" in readme  # the README's own command, unchanged
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads[0]["with"]["path"] == "results/"


def test_pi_runner_and_merged_report():
    flow = yaml.safe_load(WORKFLOW.read_text())
    assert "self-hosted" in flow["jobs"]["raspberry-pi"]["runs-on"]
    report = flow["jobs"]["report"]
    assert set(report["needs"]) == {"bench", "raspberry-pi"}
    assert any("nox -s report" in step.get("run", "") for step in report["steps"])
    every_run = [s.get("run", "") for job in flow["jobs"].values() for s in job["steps"]]
    assert not [r for r in every_run if "pip install" in r and ".venv/bin/pip" not in r]
