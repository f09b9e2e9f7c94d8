"""``mobilebench run`` end to end: exit codes, the summary, the report in the run folder."""

import re

import pytest

from harness.cli import main

FAST = ["--min-time", "0.1", "--max-time", "1", "--min-iters", "5", "--warmup-time", "0.05"]


def _run(capsys, tmp_path, backends):
    code = main(["run", "--backends", backends, "--threads", "1", *FAST, "--out", str(tmp_path)])
    return code, capsys.readouterr().out


def _folder(tmp_path):
    (folder,) = tmp_path.glob("*/*/")
    return folder


def test_a_failed_cell_makes_the_run_exit_1_after_writing_everything(exported, tmp_path, capsys):
    exported("mobilenet_v2")
    exported("standard_conv")
    code, out = _run(capsys, tmp_path, "fake_backends:RaisingBackend,onnxruntime")
    assert code == 1
    folder = _folder(tmp_path)
    assert (folder / "report.html").is_file()
    assert out.rstrip().splitlines()[-1] == f"report: {folder / 'report.html'}"
    assert "2 of 4 cells failed or timed out" in out
    assert len((folder / "results.csv").read_text().splitlines()) == 1 + 4
    assert "mobilenet_v2" in (folder / "report.html").read_text()


def test_skipped_cells_are_not_failures(tmp_path, capsys):
    import sys

    if sys.platform == "darwin":
        pytest.skip("Core ML runs on macOS")
    code, out = _run(capsys, tmp_path, "coreml")
    assert code == 0
    assert "skipped" in out
    assert (_folder(tmp_path) / "report.html").is_file()


def test_the_summary_prints_reasons_with_brackets_intact(exported, tmp_path, capsys):
    exported("mobilenet_v2")
    code, out = _run(capsys, tmp_path, "fake_backends:RaisingBackend")
    assert code == 1
    assert "boom: this backend always fails to load" in out
    assert not re.search(r"\x1b\[|\[/?(yellow|red|green|dim|bold)\]", out)


def test_a_spec_path_on_the_command_line_runs_under_the_spec_name(exported, tmp_path, capsys):
    from harness.spec import models_dir

    exported("mobilenet_v2")
    spec = tmp_path / "copy.toml"
    spec.write_text((models_dir() / "mobilenet_v2.toml").read_text())
    out_dir = tmp_path / "out"
    argv = ["run", "--models", str(spec), "--backends", "onnxruntime", "--threads", "1", *FAST]
    assert main([*argv, "--out", str(out_dir)]) == 0
    (results,) = out_dir.glob("*/*/results.csv")
    assert "mobilenet_v2/w1/r224/onnxruntime/cpu/fp32/b1/t1" in results.read_text()
    assert "copy.toml" not in results.read_text()
