"""The timing loop's own cost against the fastest backend's latency, and a bare loop.

Two checks that the runner's numbers are the runtime's numbers: the steady
loop adds well under 1% of the fastest backend's latency, and the runner's p50
agrees with a bare ``perf_counter`` loop around the same call.
"""

from __future__ import annotations

import statistics
import time

import pytest
from conftest import THREADS

from harness.measure.timing import TimingConfig, loop_overhead_ns, time_call


def _fastest_backend(export_folder):
    from harness.backends import REGISTRY
    from harness.exporters.artifacts import artifact_in, read_manifest
    from harness.inputs import read_parity

    for name in ("tflite", "onnxruntime"):
        cls = REGISTRY[name]
        if cls.available()[0]:
            folder = export_folder("mobilenet_v2", cls.artifact_format)
            manifest = read_manifest(folder)
            backend = cls(threads=THREADS)
            backend.load(artifact_in(folder, cls.artifact_format, manifest=manifest))
            return name, backend, backend.prepare(read_parity(folder)[:1])
    pytest.skip("neither tflite nor onnxruntime is installed")


def test_loop_overhead(benchmark):
    benchmark.extra_info["overhead_ns"] = loop_overhead_ns()
    benchmark(loop_overhead_ns, 1000)


def test_overhead_below_one_percent_and_agreement_with_a_bare_loop(export_folder):
    """Alternate blocks of the harness loop and a bare loop, so drift hits both alike."""
    name, backend, prepared = _fastest_backend(export_folder)
    call = lambda: backend.run(prepared)  # noqa: E731
    config = TimingConfig(warmup_time_s=0, warmup_iters=1, min_iters=25, min_time_s=0)
    harness, bare = [], []
    for _ in range(40):
        harness += time_call(call, config).samples_ms
        for _ in range(25):
            start = time.perf_counter()
            call()
            bare.append((time.perf_counter() - start) * 1000)
    harness_p50, bare_p50 = statistics.median(harness), statistics.median(bare)

    overhead_pct = 100 * loop_overhead_ns() / 1e6 / harness_p50
    print(
        f"\n{name}: harness p50 {harness_p50:.3f} ms, bare loop p50 {bare_p50:.3f} ms "
        f"({100 * (harness_p50 / bare_p50 - 1):+.1f}%), loop overhead {overhead_pct:.4f}%"
    )
    assert overhead_pct < 1.0
