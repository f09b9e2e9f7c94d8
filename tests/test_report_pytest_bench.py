"""The pytest-benchmark suite end to end: its JSON is read by the report beside runner rows."""

import os
import subprocess
import sys
from pathlib import Path

from harness.report.load import load_runs

ROOT = Path(__file__).resolve().parents[1]


def test_suite_json_reads_into_the_report(exported, tmp_path):
    exported("mobilenet_v2")  # the suite finds the artifacts in the session's cache
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_backends.py", "-q",
         "-k", "mobilenet_v2 and onnxruntime", "-p", "no:cacheprovider",
         "--benchmark-max-time", "0.2", "--benchmark-json", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "MOBILEBENCH_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:]
    results, samples, _envs, problems = load_runs([out])
    assert problems == []
    (row,) = results.to_dict("records")
    assert (row["model"], row["backend"], row["threads"]) == ("mobilenet_v2", "onnxruntime", 1)
    assert row["source"] == "pytest-benchmark"
    assert row["macs"] == 300_774_272
    assert row["latency_ms_p50"] > 0
    assert len(samples) == row["n_iter"]
