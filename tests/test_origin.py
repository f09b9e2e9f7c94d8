"""Where a model's weights and images come from (:mod:`harness.origin`): no export here.

The checkpoint files are only detected and hashed by :func:`from_files` (reading them
is the export's job), so a minimal legacy-Keras HDF5 file and a real torchvision-layout
state dict suffice.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.images import IMAGENET_MEAN, IMAGENET_STD, load_images, split
from harness.inputs import EVALUATION_IMAGES, calibration_set, digest, evaluation_set
from harness.origin import (
    GENERATED_KEY,
    OriginError,
    from_files,
    generated,
    inputs_label,
    weights_label,
)
from harness.spec import load_spec

h5py = pytest.importorskip("h5py")

SPEC = load_spec("mobilenet_v2", width=0.35, resolution=96)
SEED = 71
KERAS_NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5"
PHOTOS = 20  # readable photos in the folder (>= 16, the minimum of a split)


def _keras_h5(path: Path) -> Path:
    """A legacy Keras HDF5 weights file (root ``layer_names``); one layer is enough here."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"Conv1"])
        f.attrs["keras_version"] = b"2.2.4"
        group = f.create_group("Conv1")
        group.attrs["weight_names"] = np.array([b"Conv1/kernel:0"])
        group.create_dataset("Conv1/kernel:0", data=np.ones((3, 3, 3, 16), np.float32))
    return path


def _photo_folder(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` seeded noise photos, JPEG and PNG, in two sub-folders."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        kind = "png" if i % 2 else "jpg"
        path = root / f"sub{i % 2}" / f"photo{i:02d}.{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, format="PNG" if kind == "png" else "JPEG")
    return root


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("origin")


@pytest.fixture(scope="module")
def keras_file(files: Path) -> Path:
    return _keras_h5(files / KERAS_NAME)


@pytest.fixture(scope="module")
def torch_file(files: Path) -> Path:
    torch = pytest.importorskip("torch")
    from checkpoint_files import torchvision_model

    path = files / "mobilenet_v2-0123abcd.pth"
    torch.save(torchvision_model(0.35, seed=SEED).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def photos(files: Path) -> Path:
    return _photo_folder(files / "photos", PHOTOS)


def _rows(images: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in images}


def _assert_disjoint_and_seeded(origin, again, other_seed) -> None:
    assert not _rows(origin.evaluation) & _rows(origin.calibration)
    np.testing.assert_array_equal(origin.evaluation, again.evaluation)
    np.testing.assert_array_equal(origin.calibration, again.calibration)
    assert not np.array_equal(origin.evaluation, other_seed.evaluation)


def _keras_pixels(images: np.ndarray) -> np.ndarray:
    """Undo keras preprocessing (x / 127.5 - 1): the pixel values."""
    return (images.astype(np.float64) + 1) * 127.5


def _torchvision_pixels(images: np.ndarray) -> np.ndarray:
    """Undo torchvision preprocessing ((x / 255 - mean) / std): the pixel values."""
    std = np.asarray(IMAGENET_STD)[:, None, None]
    mean = np.asarray(IMAGENET_MEAN)[:, None, None]
    return (images.astype(np.float64) * std + mean) * 255


def _assert_whole_pixels(pixels: np.ndarray) -> None:
    """Every value is a whole 8-bit pixel value (so the inverse preprocessing was the one used)."""
    assert pixels.min() > -0.01
    assert pixels.max() < 255.01
    np.testing.assert_allclose(pixels, np.round(pixels), atol=2e-3)


# -- generated ------------------------------------------------------------------------


def test_generated_is_the_seeded_standard_normal_sets():
    origin = generated(SPEC, SEED)
    assert origin.key() == GENERATED_KEY
    assert origin.is_generated
    assert origin.checkpoint is None
    assert origin.weights == {"source": "generated", "seed": SEED}
    np.testing.assert_array_equal(origin.evaluation, evaluation_set(SPEC, SEED))
    np.testing.assert_array_equal(origin.calibration, calibration_set(SPEC, SEED))
    assert origin.inputs["evaluation"]["sha256"] == digest(origin.evaluation)
    assert origin.inputs["calibration"]["sha256"] == digest(origin.calibration)


def test_from_files_without_files_is_generated():
    spec, origin = from_files(SPEC, SEED)
    assert spec == SPEC
    assert origin.is_generated
    assert origin.key() == GENERATED_KEY


# -- a checkpoint, no photos: its conventions, pixel noise in its preprocessing --------


def test_keras_file_conventions_record_and_pixel_noise(keras_file: Path):
    spec, origin = from_files(SPEC, SEED, keras_file)
    assert (spec.conventions.bn_eps, spec.conventions.stride2_padding) == (1e-3, "same")
    assert origin.checkpoint == keras_file.resolve()
    record = origin.weights
    assert record["source"] == "checkpoint"
    assert record["file"] == keras_file.name
    assert record["sha256"] == hashlib.sha256(keras_file.read_bytes()).hexdigest()
    assert record["layout"] == "keras_applications"
    assert record["preprocessing"] == "keras"
    assert record["conventions"] == {"bn_eps": 1e-3, "stride2_padding": "same"}
    assert origin.evaluation.shape == (EVALUATION_IMAGES, 3, 96, 96)
    assert origin.evaluation.dtype == np.float32
    for images in (origin.evaluation, origin.calibration):
        assert images.min() >= -1.0
        assert images.max() <= 1.0
        _assert_whole_pixels(_keras_pixels(images))
        assert images.std() > 0.5  # uniform pixels over [-1, 1]: std ~0.58
    assert "pixel noise" in origin.inputs["evaluation"]["source"]
    assert origin.inputs["evaluation"]["sha256"] == digest(origin.evaluation)
    assert origin.inputs["calibration"]["sha256"] == digest(origin.calibration)
    assert origin.problems == ()
    _assert_disjoint_and_seeded(
        origin, from_files(SPEC, SEED, keras_file)[1], from_files(SPEC, SEED + 1, keras_file)[1]
    )


def test_torchvision_file_conventions_and_imagenet_normalisation(torch_file: Path):
    spec, origin = from_files(SPEC, SEED, torch_file)
    assert (spec.conventions.bn_eps, spec.conventions.stride2_padding) == (1e-5, "symmetric")
    assert origin.weights["layout"] == "torchvision"
    assert origin.weights["preprocessing"] == "torchvision"
    assert origin.weights["conventions"] == {"bn_eps": 1e-5, "stride2_padding": "symmetric"}
    for images in (origin.evaluation, origin.calibration):
        _assert_whole_pixels(_torchvision_pixels(images))
    assert origin.evaluation.min() < -1.5  # not in keras' [-1, 1]: ImageNet mean/std
    _assert_disjoint_and_seeded(
        origin, from_files(SPEC, SEED, torch_file)[1], from_files(SPEC, SEED + 1, torch_file)[1]
    )


# -- the cache key ---------------------------------------------------------------------


def test_key_follows_the_file_bytes(keras_file: Path, files: Path):
    flipped = files / "flipped" / keras_file.name
    flipped.parent.mkdir(exist_ok=True)
    data = bytearray(keras_file.read_bytes())
    data[-1] ^= 0xFF
    flipped.write_bytes(bytes(data))
    key = from_files(SPEC, SEED, keras_file)[1].key()
    other = from_files(SPEC, SEED, flipped)[1].key()
    assert key["weights"] == hashlib.sha256(keras_file.read_bytes()).hexdigest()
    assert other["weights"] == hashlib.sha256(bytes(data)).hexdigest()
    assert other["weights"] != key["weights"]
    assert key != GENERATED_KEY
    same = files / "same" / keras_file.name
    same.parent.mkdir(exist_ok=True)
    shutil.copy(keras_file, same)
    assert from_files(SPEC, SEED, same)[1].key() == key  # a copy elsewhere: the same key


def test_key_follows_the_photos(keras_file: Path, photos: Path, files: Path):
    changed = files / "changed"
    shutil.copytree(photos, changed)
    first = sorted(changed.rglob("*.png"))[0]
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(first)
    keys = [
        from_files(SPEC, SEED, keras_file, folder)[1].key() for folder in (photos, changed, None)
    ]
    assert keys[0]["weights"] == keys[1]["weights"] == keys[2]["weights"]
    assert keys[0] != keys[1]
    assert keys[0] != keys[2]
    # generated weights with photos are keyed by the photos too
    assert from_files(SPEC, SEED, None, photos)[1].key() != GENERATED_KEY


# -- photos ----------------------------------------------------------------------------


def test_photos_with_generated_weights_use_torchvision_preprocessing(photos: Path):
    spec, origin = from_files(SPEC, SEED, None, photos)
    assert spec == SPEC  # generated weights: the spec's own conventions
    assert origin.checkpoint is None
    assert not origin.is_generated
    assert origin.weights == {"source": "generated", "seed": SEED}
    evaluation, calibration, record = split(
        load_images(photos, SPEC.resolution, "torchvision"), seed=SEED
    )
    np.testing.assert_array_equal(origin.evaluation, evaluation)
    np.testing.assert_array_equal(origin.calibration, calibration)
    assert origin.inputs["preprocessing"] == "torchvision"
    assert origin.inputs["folder"] == str(photos)
    used = [f["path"] for name in ("evaluation", "calibration") for f in record[name]["files"]]
    assert len(used) == len(set(used)) == PHOTOS
    # 20 readable: calibration keeps its minimum of 8, evaluation gets 12 of the 64 wanted
    assert any("fewer than the 64 wanted" in p for p in origin.problems)


def test_photos_with_a_keras_file_use_keras_preprocessing(keras_file: Path, photos: Path):
    _, origin = from_files(SPEC, SEED, keras_file, photos)
    expected, _, _ = split(load_images(photos, SPEC.resolution, "keras"), seed=SEED)
    np.testing.assert_array_equal(origin.evaluation, expected)
    assert origin.inputs["preprocessing"] == "keras"


def test_unreadable_photos_are_problems_not_errors(files: Path):
    folder = _photo_folder(files / "with_junk", 16, seed=1)
    (folder / "notes.txt").write_text("not a photo\n")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    _, origin = from_files(SPEC, SEED, None, folder)
    assert origin.evaluation.shape[0] + origin.calibration.shape[0] == 16
    unread = [p for p in origin.problems if p.startswith(("notes.txt", "broken.jpg"))]
    assert len(unread) == 2
    assert all("\n" not in p for p in origin.problems)


# -- errors: one line ------------------------------------------------------------------


def _one_line_error(*args) -> str:
    with pytest.raises(OriginError) as info:
        from_files(SPEC, SEED, *args)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(files: Path):
    missing = files / "nowhere" / KERAS_NAME
    message = _one_line_error(missing)
    assert str(missing) in message
    assert "no such checkpoint file" in message


def test_not_a_checkpoint(files: Path):
    text = files / "weights.h5"
    text.write_text("these are not weights\n")
    message = _one_line_error(text)
    assert message.startswith(f"{text.name}: ")
    assert "not a checkpoint" in message


def test_too_few_photos(files: Path):
    folder = _photo_folder(files / "few", 10, seed=2)
    message = _one_line_error(None, folder)
    assert str(folder) in message
    assert "10 readable images, need at least 16" in message


def test_images_not_a_folder(keras_file: Path):
    message = _one_line_error(None, keras_file)
    assert "not a folder" in message


# -- labels ----------------------------------------------------------------------------


def test_weights_label(keras_file: Path):
    assert weights_label(generated(SPEC, SEED).weights) == f"generated (seed {SEED})"
    record = from_files(SPEC, SEED, keras_file)[1].weights
    sha = hashlib.sha256(keras_file.read_bytes()).hexdigest()
    plain = f"{keras_file.name} (sha256 {sha[:12]})"
    assert weights_label(record) == plain
    assert weights_label({**record, "classifier": "from the file"}) == plain
    generated_head = f"generated (seed {SEED}), the file has none"
    label = weights_label({**record, "classifier": generated_head})
    assert label == f"{plain}; classifier {generated_head}"


def test_inputs_label(keras_file: Path, photos: Path):
    record = generated(SPEC, SEED).inputs
    label = inputs_label(record)
    assert label.startswith(record["evaluation"]["source"])
    assert f"({EVALUATION_IMAGES} evaluation images)" in label
    noise = from_files(SPEC, SEED, keras_file)[1].inputs
    assert "pixel noise" in inputs_label(noise)
    origin = from_files(SPEC, SEED, None, photos)[1]
    n_eval, n_cal = origin.evaluation.shape[0], origin.calibration.shape[0]
    expected = f"photos: {photos} ({n_eval} evaluation, {n_cal} calibration)"
    assert inputs_label(origin.inputs) == expected
