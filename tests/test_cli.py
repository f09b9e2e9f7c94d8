import json
import subprocess
import sys

import pytest

from harness.cli import main


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_macs_json(capsys):
    data = run_json(capsys, "macs", "mobilenet_v2", "--json")
    assert (data["model"], data["width"], data["resolution"]) == ("mobilenet_v2", 1.0, 224)
    assert (data["macs"], data["params"]) == (300_774_272, 3_504_872)
    assert isinstance(data["macs"], int)
    assert isinstance(data["params"], int)
    assert data["layers"][0]["name"] == "stem"
    wide = run_json(capsys, "macs", "mobilenet_v2", "--width", "1.4", "--json")
    assert (wide["macs"], wide["params"]) == (582_195_824, 6_108_776)


def test_macs_table(capsys):
    assert main(["macs", "standard_conv"]) == 0
    out = capsys.readouterr().out
    assert "block0.conv" in out
    assert "5,549,139,968" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["macs", "resnet50"], "unknown model 'resnet50'"),
        (["macs", "mobilenet_v2", "--width", "0"], "--width"),
        (["macs", "mobilenet_v2", "--width", "wide"], "--width"),
        (["macs", "mobilenet_v2_article", "--resolution", "128"], "7x7"),
        (["macs", "mobilenet_v2", "--resolution", "8"], "resolution"),
        (["macs", "no/such/file.toml"], "no such spec file"),
        (["export", "mobilenet_v2", "--formats", "onnx,caffe"], "unknown format 'caffe'"),
        (
            ["export", "mobilenet_v2", "--precision", "int4"],
            "unknown precision 'int4': choose from fp32, fp16, bf16, int8 or all",
        ),
        (
            ["run", "--precision", "fp32,fp8"],
            "unknown precision 'fp8': choose from fp32, fp16, bf16, int8 or all",
        ),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_module_entry_point_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nname = 'x'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "macs", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "missing field model.description" in proc.stderr


def test_export_to_out(exported, tmp_path, capsys):
    exported("mobilenet_v2")  # warm the test cache so the CLI reuses it
    assert main(["export", "mobilenet_v2", "--out", str(tmp_path / "x")]) == 0
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert {e["parity"]["status"] for e in manifest["artifacts"].values()} <= {"ok", "skipped"}
    assert "model.onnx" in capsys.readouterr().out


def test_backends_json(capsys):
    rows = {row["name"]: row for row in run_json(capsys, "backends", "--json")}
    assert set(rows) == {"pytorch", "keras", "onnxruntime", "tflite", "coreml"}
    if sys.platform != "darwin":
        assert not rows["coreml"]["available"]
        assert "macOS" in rows["coreml"]["reason"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--backends", "onnxruntime,caffe2"], "unknown backend 'caffe2'"),
        (["run", "--models", "mobilenet_v3"], "unknown model 'mobilenet_v3'"),
        (["run", "--threads", "0"], "--threads must be >= 1"),
        (["run", "--batch", "x"], "--batch"),
        (["run", "--min-time", "-1"], "--min-time must be >= 0"),
        (["run", "--cooldown", "-5"], "--cooldown must be >= 0"),
        (["run", "--backends", "onnxruntime", "--modes", "cpux"], "no selected backend has mode"),
        (["run", "--models", "mobilenet_v2,mobilenet_v2"], "two specs are named"),
    ],
)
def test_run_rejects_bad_input_before_running(capsys, argv, needle, tmp_path):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing ran, nothing written


def test_env_json(capsys):
    info = run_json(capsys, "env", "--json")
    assert len(info["device_id"]) == 12
    assert info["device_name"]
    assert "versions" in info


def _slowed_copy(run, dst, backend, factor):
    """A copy of ``run`` whose raw samples for one backend are ``factor`` times slower."""
    import csv
    import shutil

    shutil.copytree(run, dst)
    with (run / "samples.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if f"/{backend}/" in row["cell_id"]:
            row["ms"] = str(float(row["ms"]) * factor)
    with (dst / "samples.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return dst


def test_compare_gate(tmp_path, capsys):
    from runfolders import make_run

    base = make_run(tmp_path / "base", noise=0.10, n=60)
    assert main(["compare", str(base), str(base)]) == 0
    slow = _slowed_copy(base, tmp_path / "slow", "tflite", 1.5)
    capsys.readouterr()
    assert main(["compare", str(base), str(slow)]) == 1
    out = capsys.readouterr().out
    regressed = [line for line in out.splitlines() if "│ regressed" in line]
    assert len(regressed) == 2
    assert all("/tflite/" in line for line in regressed)
    assert "2 regressed" in out
    assert main(["compare", str(tmp_path / "nope"), str(base)]) == 2


def test_report_writes_one_page_and_the_merged_tables(tmp_path, capsys):
    from runfolders import make_run

    make_run(tmp_path / "results" / "a", run_id="20260301T101500", threads=1)
    make_run(tmp_path / "results" / "b", run_id="20260301T111500", threads=2)
    out = tmp_path / "page" / "report.html"
    assert main(["report", str(tmp_path / "results"), "--out", str(out)]) == 0
    assert "from 2 runs" in capsys.readouterr().out
    assert out.is_file()
    assert (out.parent / "results.csv").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_export_writes_the_chosen_precisions_beside_fp32(artifact_cache, tmp_path, capsys):
    argv = ["export", "mobilenet_v2", "--width", "0.35", "--resolution", "96", "--seed", "29"]
    out = tmp_path / "x"
    assert main([*argv, "--formats", "onnx", "--precision", "int8", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"onnx", "onnx.int8"}
    assert (out / "model.int8.onnx").is_file()
    assert manifest["artifacts"]["onnx.int8"]["parity"]["tolerance"].startswith("rel_l2_err < 0.8")
    assert "onnx.int8" in capsys.readouterr().out
