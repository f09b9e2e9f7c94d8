"""``--weights`` and ``--images`` end to end through ``mobilebench export`` and ``run``.

Checkpoints are made here in the published layouts (tests/checkpoint_files.py) with
seeded random weights; every exported fp32 file must compute what the source
framework's own model computes on the folder's evaluation images. Each export runs
once per module (seeds 61-69 keep its cache entries apart from other tests').
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import html
import io
import json
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")
pytest.importorskip("keras")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from checkpoint_files import (  # noqa: E402
    KERAS_NAME,
    first_port_name,
    keras_mobilenet_v2,
    torchvision_model,
    write_keras_legacy_h5,
)
from PIL import Image  # noqa: E402

from harness.backends import get_backend  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.exporters.artifacts import artifact_in, read_manifest, read_weights  # noqa: E402
from harness.images import IMAGENET_MEAN, IMAGENET_STD, load_images, split  # noqa: E402
from harness.inputs import read_calibration, read_evaluation  # noqa: E402
from harness.parity import compare, run_artifact  # noqa: E402
from harness.spec import load_spec, models_dir  # noqa: E402

SMALL = ["--width", "0.35", "--resolution", "96"]
FAST = ["--min-time", "0.1", "--max-time", "1", "--min-iters", "5", "--warmup-time", "0.05"]
#: Readable photos in the --images folder (>= 16 + 8) and its two unusable files.
PHOTOS = 26
CORRUPT, TEXT = "broken/corrupt.jpg", "notes.txt"


@dataclass
class Outcome:
    """One ``main([...])`` call: exit code, what it printed, its --out folder."""

    code: int
    out: str
    err: str
    folder: Path


def _main(argv: list[str], out: Path | None = None) -> Outcome:
    """``main`` with stdout and stderr captured (module-scoped fixtures cannot use capsys)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    extra = ["--out", str(out)] if out is not None else []
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([*argv, *extra])
    return Outcome(code, stdout.getvalue(), stderr.getvalue(), out or Path())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _keras_logits(model, images: np.ndarray) -> np.ndarray:
    """keras.applications' own outputs on NCHW images."""
    return np.asarray(model.predict(images.transpose(0, 2, 3, 1), verbose=0))


def _assert_reproduces(folder: Path, key: str, expected: np.ndarray) -> None:
    """The folder's fp32 ``key`` file gives ``expected`` on its evaluation images."""
    if key == "coreml":
        ok, reason = get_backend("coreml").available()
        if not ok:
            pytest.skip(reason)
    got = run_artifact(artifact_in(folder, key), read_evaluation(folder))
    errors = compare(expected, got)
    assert errors["rel_l2_err"] < 1e-5, (key, errors)
    assert errors["top1_agree"] == 1.0, (key, errors)


def _assert_whole_pixels(pixels: np.ndarray) -> None:
    """Every value is an 8-bit pixel value: the inverse of the preprocessing used."""
    assert pixels.min() > -0.01
    assert pixels.max() < 255.01
    np.testing.assert_allclose(pixels, np.round(pixels), atol=2e-3)


def _flat(text: str) -> str:
    return " ".join(text.split())


# -- files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def keras_model():
    return keras_mobilenet_v2(0.35, 96, seed=61)


@pytest.fixture(scope="module")
def keras_file(files: Path, keras_model) -> Path:
    """The published file of alpha 0.35, 96 px, with the first Keras port's layer names."""
    path = files / KERAS_NAME.format(0.35, 96, "")
    return write_keras_legacy_h5(keras_model.layers, path, rename=first_port_name)


def _photo(path: Path, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = rng.integers(60, 140, 2)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    kind = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.fromarray(pixels).save(path, format=kind)


def _photo_folder(root: Path, count: int, seed: int) -> Path:
    """``count`` seeded photos, JPEG and PNG, in nested folders."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        suffix = (".jpg", ".png", ".JPEG")[i % 3]
        _photo(root / f"set{i % 2}" / ("deep" if i % 4 < 2 else "") / f"img{i:02d}{suffix}", rng)
    return root


@pytest.fixture(scope="module")
def photos(files: Path) -> Path:
    """Readable photos, one corrupt JPEG and one text file."""
    root = _photo_folder(files / "photos", PHOTOS, seed=68)
    encoded = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(encoded, "JPEG")
    (root / CORRUPT).parent.mkdir()
    (root / CORRUPT).write_bytes(encoded.getvalue()[:150])
    (root / TEXT).write_text("not a photo\n")
    return root


# -- a keras.applications file, every format ------------------------------------------

ALL_FORMATS = ("pytorch", "keras", "onnx", "tflite", "coreml")


@pytest.fixture(scope="module")
def keras_export(artifact_cache: Path, files: Path, keras_file: Path) -> Outcome:
    argv = ["export", "mobilenet_v2", *SMALL, "--weights", str(keras_file), "--seed", "61"]
    return _main(argv, files / "out_keras")


@pytest.fixture(scope="module")
def keras_expected(keras_export: Outcome, keras_model) -> np.ndarray:
    return _keras_logits(keras_model, read_evaluation(keras_export.folder))


def test_keras_file_exports_every_format(keras_export: Outcome):
    assert keras_export.code == 0, keras_export.out + keras_export.err
    manifest = read_manifest(keras_export.folder)
    assert set(manifest["artifacts"]) == set(ALL_FORMATS)
    parity = {k: e["parity"]["status"] for k, e in manifest["artifacts"].items()}
    assert set(parity.values()) <= {"ok", "skipped"}, parity


@pytest.mark.parametrize("key", ALL_FORMATS)
def test_keras_file_every_format_computes_keras_applications(
    keras_export: Outcome, keras_expected: np.ndarray, key: str
):
    _assert_reproduces(keras_export.folder, key, keras_expected)


def test_keras_file_manifest_and_caption(keras_export: Outcome, keras_file: Path):
    manifest = read_manifest(keras_export.folder)
    record = manifest["weights"]
    sha = _sha256(keras_file)
    assert record["source"] == "checkpoint"
    assert record["file"] == keras_file.name
    assert record["sha256"] == sha
    assert record["layout"] == "keras_applications"
    assert record["conventions"] == {"bn_eps": 1e-3, "stride2_padding": "same"}
    assert record["preprocessing"] == "keras"
    assert record["classifier"] == "from the file"
    assert (record["file_width"], record["file_resolution"]) == (0.35, 96)
    assert manifest["spec"]["conventions"] == record["conventions"]
    assert "pixel noise" in manifest["inputs"]["evaluation"]["source"]
    images = read_evaluation(keras_export.folder)
    assert images.min() >= -1.0  # keras preprocessing: [-1, 1]
    assert images.max() <= 1.0
    _assert_whole_pixels((images.astype(np.float64) + 1) * 127.5)
    assert f"weights: {keras_file.name} (sha256 {sha[:12]})" in _flat(keras_export.out)


# -- width 1.4 --------------------------------------------------------------------------

WIDE_FORMATS = ("pytorch", "onnx", "tflite", "keras")


@pytest.fixture(scope="module")
def wide(artifact_cache: Path, files: Path) -> tuple[Outcome, np.ndarray]:
    model = keras_mobilenet_v2(1.4, 96, seed=62)
    path = write_keras_legacy_h5(model.layers, files / KERAS_NAME.format(1.4, 96, ""))
    argv = ["export", "mobilenet_v2", "--width", "1.4", "--resolution", "96"]
    argv += ["--weights", str(path), "--formats", ",".join(WIDE_FORMATS), "--seed", "62"]
    outcome = _main(argv, files / "out_wide")
    assert outcome.code == 0, outcome.out + outcome.err
    return outcome, _keras_logits(model, read_evaluation(outcome.folder))


@pytest.mark.parametrize("key", WIDE_FORMATS)
def test_width_14_file_computes_keras_applications(wide, key: str):
    outcome, expected = wide
    assert read_manifest(outcome.folder)["weights"]["file_width"] == 1.4
    _assert_reproduces(outcome.folder, key, expected)


# -- a _no_top file: the generated classifier on the file's features -------------------


@pytest.fixture(scope="module")
def no_top(artifact_cache: Path, files: Path):
    import keras

    model = keras_mobilenet_v2(0.35, 96, seed=63)
    body = keras.Model(model.input, model.get_layer("out_relu").output)
    path = files / KERAS_NAME.format(0.35, 96, "_no_top")
    write_keras_legacy_h5(body.layers, path)
    argv = ["export", "mobilenet_v2", *SMALL, "--weights", str(path)]
    outcome = _main([*argv, "--formats", "pytorch,onnx", "--seed", "63"], files / "out_no_top")
    assert outcome.code == 0, outcome.out + outcome.err
    return outcome, model, path


def test_no_top_file_says_the_classifier_is_generated(no_top):
    outcome, _, path = no_top
    record = read_manifest(outcome.folder)["weights"]
    assert record["file"] == path.name
    assert record["classifier"] == "generated (seed 63), the file has none"
    assert f"classifier {record['classifier']}" in _flat(outcome.out)  # the weights label


@pytest.mark.parametrize("key", ["pytorch", "onnx"])
def test_no_top_features_compute_keras_applications(no_top, key: str):
    outcome, model, _ = no_top
    weights = read_weights(outcome.folder)
    assert weights is not None
    dense = model.get_layer("predictions")
    dense.set_weights([weights["classifier.weight"].T, weights["classifier.bias"]])
    _assert_reproduces(outcome.folder, key, _keras_logits(model, read_evaluation(outcome.folder)))


# -- a torchvision state dict ---------------------------------------------------------


@pytest.fixture(scope="module")
def torchvision_export(artifact_cache: Path, files: Path):
    model = torchvision_model(0.35, seed=64)
    path = files / "mobilenet_v2-b0353104.pth"
    torch.save(model.state_dict(), path)
    argv = ["export", "mobilenet_v2", *SMALL, "--weights", str(path)]
    outcome = _main([*argv, "--formats", "pytorch,onnx", "--seed", "64"], files / "out_tv")
    assert outcome.code == 0, outcome.out + outcome.err
    with torch.no_grad():
        expected = model(torch.from_numpy(read_evaluation(outcome.folder))).numpy()
    return outcome, expected, path


@pytest.mark.parametrize("key", ["pytorch", "onnx"])
def test_torchvision_file_computes_torchvision(torchvision_export, key: str):
    outcome, expected, _ = torchvision_export
    _assert_reproduces(outcome.folder, key, expected)


def test_torchvision_file_record_and_imagenet_normalisation(torchvision_export):
    outcome, _, path = torchvision_export
    record = read_manifest(outcome.folder)["weights"]
    assert (record["file"], record["sha256"]) == (path.name, _sha256(path))
    assert record["layout"] == "torchvision"
    assert record["conventions"] == {"bn_eps": 1e-5, "stride2_padding": "symmetric"}
    std = np.asarray(IMAGENET_STD)[:, None, None]
    mean = np.asarray(IMAGENET_MEAN)[:, None, None]
    for images in (read_evaluation(outcome.folder), read_calibration(outcome.folder)):
        _assert_whole_pixels((images.astype(np.float64) * std + mean) * 255)


# -- bad checkpoints: exit 2, one line, nothing exported ------------------------------


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _first_different_layer(ours, theirs) -> str:
    """The first weighted layer whose shapes differ between two keras.applications models."""
    pairs = zip(
        [la for la in ours.layers if la.weights],
        [la for la in theirs.layers if la.weights],
        strict=True,
    )
    for a, b in pairs:
        if [tuple(w.shape) for w in a.weights] != [tuple(w.shape) for w in b.weights]:
            return a.name
    raise AssertionError("the two models have the same shapes")


def _bad_file(kind: str, files: Path, keras_file: Path, keras_model) -> tuple[Path, str]:
    """A file that must be refused, and a fragment its error line must hold."""
    bad = files / "bad" / kind
    bad.mkdir(parents=True)
    if kind == "text":
        path = bad / "weights.h5"
        path.write_text("these are not weights\n")
        return path, "not a checkpoint"
    if kind == "random":
        path = bad / "weights.pth"
        path.write_bytes(np.random.default_rng(65).integers(0, 0x7F, 4096, np.uint8).tobytes())
        return path, "not a checkpoint"
    if kind == "empty":
        path = bad / "weights.h5"
        path.write_bytes(b"")
        return path, "empty file"
    if kind == "truncated":
        path = bad / keras_file.name
        data = keras_file.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path, "truncated or damaged"
    if kind == "other_width":
        half = keras_mobilenet_v2(0.5, 96, seed=65)
        path = bad / KERAS_NAME.format(0.5, 96, "")
        write_keras_legacy_h5(half.layers, path, rename=first_port_name)
        layer = first_port_name(_first_different_layer(half, keras_model))
        return path, f"layer {layer} has kernel"
    if kind == "missing":
        return bad / "nowhere" / keras_file.name, "no such checkpoint file"
    if kind == "pickle":
        path = bad / "evil.pth"
        torch.save({"features.0.0.weight": _RunsCode(bad / "pwned")}, path)
        return path, "refused"
    if kind == "raw_pickle":
        path = bad / "evil_raw.pth"
        path.write_bytes(pickle.dumps(_RunsCode(bad / "pwned"), protocol=2))
        return path, "refused"
    raise ValueError(kind)


def _new_exports(cache: Path, before: set[Path]) -> list[Path]:
    folders = set((cache / "artifacts").glob("*")) if (cache / "artifacts").is_dir() else set()
    return sorted(folders - before)


def _assert_refused(outcome: Outcome, path: Path, fragment: str) -> None:
    assert outcome.code == 2, outcome.out + outcome.err
    assert outcome.err.count("\n") == 1, outcome.err
    assert path.name in outcome.err
    assert fragment in outcome.err
    assert "Traceback" not in outcome.err + outcome.out


def _assert_nothing_exported(cache: Path, before: set[Path]) -> None:
    """A refused checkpoint leaves at most a staged folder: no artifact, no weights."""
    for folder in _new_exports(cache, before):
        assert read_manifest(folder).get("artifacts", {}) == {}, folder
        assert not (folder / "weights.npz").exists()
        assert not list(folder.glob("model*"))


BAD = ["text", "random", "empty", "truncated", "other_width", "missing", "pickle", "raw_pickle"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_checkpoint_exits_2_with_one_line(
    artifact_cache: Path, files: Path, keras_file: Path, keras_model, kind: str
):
    path, fragment = _bad_file(kind, files, keras_file, keras_model)
    before = _new_exports(artifact_cache, set())
    argv = ["export", "mobilenet_v2", *SMALL, "--weights", str(path), "--formats", "onnx"]
    outcome = _main([*argv, "--seed", "65"], files / "bad" / kind / "out")
    _assert_refused(outcome, path, fragment)
    _assert_nothing_exported(artifact_cache, set(before))
    assert not outcome.folder.exists()
    assert not (files / "bad" / kind / "pwned").exists()  # the pickle's payload never ran


def test_other_architecture_exits_2_naming_the_layer(
    artifact_cache: Path, files: Path, keras_file: Path
):
    before = set(_new_exports(artifact_cache, set()))
    argv = ["export", "standard_conv", *SMALL, "--weights", str(keras_file), "--formats", "onnx"]
    outcome = _main([*argv, "--seed", "65"])
    layer = first_port_name("expanded_conv_depthwise")
    _assert_refused(outcome, keras_file, f"layer {layer} has kernel (3, 3, 16, 1)")
    _assert_nothing_exported(artifact_cache, before)


# -- photos -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_export(artifact_cache: Path, files: Path, photos: Path) -> Outcome:
    argv = ["export", "mobilenet_v2", *SMALL, "--images", str(photos), "--formats", "onnx"]
    return _main([*argv, "--precision", "fp32,int8", "--seed", "66"], files / "out_photos")


def test_images_unusable_files_are_listed_one_line_each(photo_export: Outcome):
    assert photo_export.code == 0, photo_export.out + photo_export.err
    lines = (photo_export.out + photo_export.err).splitlines()
    for name in (CORRUPT, TEXT):
        assert len([line for line in lines if name in line]) == 1, (name, lines)


def test_images_split_is_recorded_and_disjoint(photo_export: Outcome, photos: Path):
    inputs = read_manifest(photo_export.folder)["inputs"]
    assert inputs["folder"] == str(photos)
    assert inputs["readable"] == PHOTOS
    assert inputs["preprocessing"] == "torchvision"
    evaluation = [f["path"] for f in inputs["evaluation"]["files"]]
    calibration = [f["path"] for f in inputs["calibration"]["files"]]
    assert not set(evaluation) & set(calibration)
    assert len(evaluation) == inputs["evaluation"]["images"] >= 16
    assert len(calibration) == inputs["calibration"]["images"] >= 8
    assert len(evaluation) + len(calibration) + inputs["unused"] == PHOTOS
    assert {p.split(": ")[0] for p in inputs["problems"]} == {CORRUPT, TEXT}


def test_images_sets_are_the_folder_with_torchvision_preprocessing(
    photo_export: Outcome, photos: Path
):
    evaluation, calibration, _ = split(load_images(photos, 96, "torchvision"), seed=66)
    np.testing.assert_array_equal(read_evaluation(photo_export.folder), evaluation)
    np.testing.assert_array_equal(read_calibration(photo_export.folder), calibration)


def test_images_int8_variant_is_calibrated_on_the_photos(photo_export: Outcome):
    artifacts = read_manifest(photo_export.folder)["artifacts"]
    assert set(artifacts) == {"onnx", "onnx.int8"}
    assert (photo_export.folder / artifacts["onnx.int8"]["path"]).is_file()
    assert artifacts["onnx.int8"]["parity"]["status"] == "ok"


def test_too_few_images_exit_2(files: Path):
    few = _photo_folder(files / "few", 10, seed=67)
    (few / TEXT).write_text("not a photo\n")
    argv = ["export", "mobilenet_v2", *SMALL, "--images", str(few), "--formats", "onnx"]
    outcome = _main([*argv, "--seed", "66"])
    assert outcome.code == 2
    assert outcome.err.count("\n") == 1, outcome.err
    assert str(few) in outcome.err
    assert "10 readable images" in outcome.err


# -- a spec's [weights] file -----------------------------------------------------------


def _small_spec(name: str, folder: Path, extra: str = "") -> Path:
    """A copy of a shipped spec at width 0.35, 96 px, in ``folder``."""
    text = (models_dir() / f"{name}.toml").read_text()
    for old, new in (("resolution = 224", "resolution = 96"), ("width = 1.0", "width = 0.35")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / f"{name}_small.toml"
    path.write_text(text + extra)
    return path


def test_spec_weights_file_is_used_without_the_flag(
    artifact_cache: Path, files: Path, keras_file: Path, keras_export: Outcome
):
    folder = files / "spec"
    (folder / "ckpt").mkdir(parents=True)
    shutil.copy(keras_file, folder / "ckpt" / keras_file.name)
    spec = _small_spec("mobilenet_v2", folder, f'\n[weights]\nfile = "ckpt/{keras_file.name}"\n')
    outcome = _main(["export", str(spec), "--formats", "onnx", "--seed", "61"], folder / "out")
    assert outcome.code == 0, outcome.out + outcome.err
    assert load_spec(str(spec)).weights == str((folder / "ckpt" / keras_file.name).resolve())
    record = read_manifest(outcome.folder)["weights"]
    assert record["sha256"] == read_manifest(keras_export.folder)["weights"]["sha256"]
    assert record["file"] == keras_file.name
    assert f"weights: {keras_file.name} (sha256 {record['sha256'][:12]})" in _flat(outcome.out)


# -- run --------------------------------------------------------------------------------


def test_run_with_weights_and_images(
    artifact_cache: Path, files: Path, keras_file: Path, photos: Path
):
    folder = files / "run"
    folder.mkdir()
    specs = [_small_spec(name, folder) for name in ("mobilenet_v2", "standard_conv")]
    argv = ["run", "--models", ",".join(map(str, specs)), "--backends", "onnxruntime"]
    argv += ["--weights", str(keras_file), "--images", str(photos), "--threads", "1", *FAST]
    outcome = _main([*argv, "--seed", "67"], folder / "out")
    assert outcome.code == 0, outcome.out + outcome.err
    (results,) = outcome.folder.glob("*/*/results.csv")
    with results.open(newline="") as fh:
        rows = {row["model"]: row for row in csv.DictReader(fh)}
    assert set(rows) == {"mobilenet_v2", "standard_conv"}
    assert all(row["status"] == "ok" for row in rows.values()), rows
    sha = _sha256(keras_file)
    assert rows["mobilenet_v2"]["weights"] == f"{keras_file.name} (sha256 {sha[:12]})"
    assert rows["standard_conv"]["weights"] == "generated (seed 67)"
    for row in rows.values():
        assert row["inputs"].startswith(f"photos: {photos} ("), row["inputs"]
    printed = _flat(outcome.out + outcome.err)
    assert "standard_conv keeps generated (seed 67) weights:" in printed
    assert f"images: {CORRUPT}" in printed
    assert printed.count(f"images: {TEXT}") == 1  # once, not once per model
    report = (results.parent / "report.html").read_text()
    for row in rows.values():  # the report says which weights and images made each row
        assert html.escape(row["weights"]) in report
        assert html.escape(row["inputs"]) in report
    env = json.loads((results.parent / "env.json").read_text())
    assert env["run"]["weights"] == str(keras_file)
    assert env["run"]["images"] == str(photos)
