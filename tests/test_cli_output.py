"""Every command reads cleanly in a pipe: no rich markup, no ANSI codes, data text intact."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from runfolders import LAPTOP, edit_rows, make_run

from harness.cli.progress import RunProgress

MARKUP = re.compile(r"\[/?(yellow|red|green|dim|bold)[^\]]*\]")
#: Variables that make rich colour a pipe anyway; the test wants the plain default.
_FORCING = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
#: Text with brackets rich would read as tags (``[b]``, ``[y]``) when not escaped.
REASON = "needs [pip install 'x[y]'] [b]now"


def mobilebench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m harness ARGS`` through pipes; both streams must be free of styling."""
    env = {k: v for k, v in os.environ.items() if k not in _FORCING}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )
    for stream in (proc.stdout, proc.stderr):
        assert not MARKUP.search(stream), stream
        assert "\x1b[" not in stream, stream
    return proc


def test_report_prints_skipped_inputs_intact(tmp_path: Path) -> None:
    root = tmp_path / "results"
    make_run(root, LAPTOP, n=10)
    junk = root / "junk [b]"
    junk.mkdir()
    out = tmp_path / "page [b]" / "report.html"
    proc = mobilebench("report", str(root), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"skipped: {junk}: not a run folder (no results.csv)\n" in proc.stdout
    assert f"10 cells from 1 runs -> {out} (merged: results.csv, results.json)" in proc.stdout
    assert out.is_file()


def test_compare_prints_flags_and_reasons_intact(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", n=30)
    new = tmp_path / "new"
    shutil.copytree(base, new)
    cell = "mobilenet_v2/w1/r224/tflite/xnnpack/fp32/b1/t1"
    edit_rows(new, lambda row: row["cell_id"] == cell, status="failed", reason="[pip] x[y]")
    proc = mobilebench("compare", str(base), str(new), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if cell in line]
    assert "│ broken" in line
    assert "status ok → failed: [pip] x[y]" in line


def test_backends_prints_every_reason_intact(tmp_path: Path) -> None:
    rows = json.loads(mobilebench("backends", "--json", cwd=tmp_path).stdout)
    proc = mobilebench("backends", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for row in rows:
        (line,) = [line for line in proc.stdout.splitlines() if f"│ {row['name']} " in line]
        assert ", ".join(row["modes"]) in line
        assert ("available" if row["available"] else row["reason"]) in line
    if sys.platform != "darwin":  # Core ML predicts only on macOS: the reason is printed
        coreml = next(row for row in rows if row["name"] == "coreml")
        assert not coreml["available"]
        assert coreml["reason"] in proc.stdout


def test_env_prints_the_fingerprint_plainly(tmp_path: Path) -> None:
    info = json.loads(mobilebench("env", "--json", cwd=tmp_path).stdout)
    proc = mobilebench("env", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"({info['device_id']})" in proc.stdout
    assert re.search(rf"│ arch +│ {re.escape(info['arch'])} +│", proc.stdout)
    missing = [key for key, value in info.items() if value is None]
    for key in missing:
        assert re.search(rf"│ {key} +│ - +│", proc.stdout), key


def test_macs_prints_plainly(tmp_path: Path) -> None:
    proc = mobilebench("macs", "mobilenet_v2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"│ total .*│ 300,774,272 │ 3,504,872 │", proc.stdout)


def test_run_progress_prints_problem_rows_intact() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=160)
    row = {"cell_id": "mobilenet_v2/[b]/t1", "status": "skipped", "reason": REASON}
    with RunProgress(console) as progress:
        progress.report("phase", {"text": "measuring the [b]GEMM[/b] peak"})
        progress.report("start", {"total": 2, "folder": Path("results [b]/x86/run")})
        progress.report("row", {"row": row})
        progress.report("row", {"row": {**row, "status": "ok"}})
    text = buffer.getvalue()
    assert "writing results [b]/x86/run\n" in text
    assert f"mobilenet_v2/[b]/t1: skipped: {REASON}\n" in text
    assert text.count(REASON) == 1  # ok rows print nothing
    assert "measuring the [b]GEMM[/b] peak" in text
    assert "\x1b[" not in text
