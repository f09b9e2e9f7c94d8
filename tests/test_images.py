"""Real photos as evaluation and calibration images: found, decoded, cropped, split."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MIN_CALIBRATION,
    MIN_EVALUATION,
    ImagesError,
    find_images,
    load_images,
    split,
)
from harness.inputs import digest

R = 32  # output resolution; the shorter side is resized to round(32 / 0.875) = 37
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
NOISE = 12  # seeded noise photos, so that the folder holds enough readable images to split
READABLE = [
    "a/gray16.png",
    "a/grayscale.jpg",
    "a/rgba.png",
    "a/thirds.png",
    "a/white.png",
    "b/exif_rotated.jpg",
    *[f"deep/{i % 3}/nested/noise{i:02d}.{'JPG' if i % 2 else 'png'}" for i in range(NOISE)],
]


def _save(path: Path, image: Image.Image, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)


def _bands(size: tuple[int, int], colors: list[tuple[int, int, int]]) -> Image.Image:
    """Vertical bands of equal width, left to right."""
    image = Image.new("RGB", size)
    width = size[0] // len(colors)
    for i, color in enumerate(colors):
        image.paste(color, (i * width, 0, (i + 1) * width, size[1]))
    return image


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nested JPEG and PNG photos of every kind, one corrupt JPEG, a text file, hidden files."""
    root = tmp_path_factory.mktemp("photos")
    _save(root / "a/white.png", Image.new("RGB", (40, 40), WHITE))
    _save(root / "a/thirds.png", _bands((120, 40), [RED, GREEN, BLUE]))  # non-square
    _save(root / "a/rgba.png", Image.new("RGBA", (40, 50), (*BLUE, 0)))
    _save(root / "a/grayscale.jpg", Image.new("L", (50, 40), 128), quality=95)
    gray16 = np.full((40, 40), 128 * 257, dtype=np.uint16)
    _save(root / "a/gray16.png", Image.fromarray(gray16))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    _save(root / "b/exif_rotated.jpg", _bands((80, 40), [RED, BLUE]), exif=exif, quality=95)
    rng = np.random.default_rng(0)
    for name in READABLE[6:]:
        pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        kind = "PNG" if name.endswith("png") else "JPEG"
        _save(root / name, Image.fromarray(pixels), format=kind)
    encoded = io.BytesIO()
    Image.new("RGB", (64, 64), RED).save(encoded, "JPEG")
    (root / "broken").mkdir()
    (root / "broken/corrupt.jpg").write_bytes(encoded.getvalue()[:200])
    (root / "notes.txt").write_text("not a photo\n")
    _save(root / ".hidden/ignored.jpg", Image.new("RGB", (40, 40)))
    (root / "a/.DS_Store").write_bytes(b"\0\1")
    return root


@pytest.fixture(scope="module")
def keras_set(folder: Path):
    return load_images(folder, R, "keras")


def _image(image_set, name: str) -> np.ndarray:
    return image_set.images[image_set.paths.index(name)]


def test_find_images_lists_jpeg_and_png_names_recursively_and_sorted(folder: Path):
    found = [p.relative_to(folder).as_posix() for p in find_images(folder)]
    assert found == sorted([*READABLE, "broken/corrupt.jpg"])


def test_readable_images_are_used_the_others_reported_one_line_each(keras_set, folder: Path):
    assert keras_set.paths == tuple(sorted(READABLE))
    assert keras_set.folder == folder
    corrupt, text = keras_set.problems
    assert corrupt.startswith("broken/corrupt.jpg: unreadable (")
    assert corrupt.endswith(")")
    assert text == "notes.txt: not an image (skipped)"
    assert all("\n" not in problem for problem in keras_set.problems)


@pytest.mark.parametrize("preprocessing", ["keras", "torchvision"])
def test_output_is_nchw_float32_at_the_resolution(folder: Path, preprocessing: str):
    image_set = load_images(folder, R, preprocessing)
    assert image_set.images.shape == (len(READABLE), 3, R, R)
    assert image_set.images.dtype == np.float32
    assert image_set.preprocessing == preprocessing
    assert not image_set.images.flags.writeable


def test_keras_preprocessing_maps_pixels_to_minus_one_one(keras_set):
    assert keras_set.images.min() >= -1.0
    assert keras_set.images.max() <= 1.0
    assert np.all(_image(keras_set, "a/white.png") == 1.0)
    assert np.all(_image(keras_set, "a/rgba.png")[:2] == -1.0)  # pure blue: no red, no green


def test_torchvision_preprocessing_normalizes_with_imagenet_statistics(folder: Path, keras_set):
    image_set = load_images(folder, R, "torchvision")
    mean, std = np.array(IMAGENET_MEAN)[:, None, None], np.array(IMAGENET_STD)[:, None, None]
    white = _image(image_set, "a/white.png")
    np.testing.assert_allclose(white, np.broadcast_to((1 - mean) / std, white.shape), rtol=1e-6)
    # Same pixels as under keras, only scaled differently.
    np.testing.assert_allclose(
        image_set.images, ((keras_set.images + 1) / 2 - mean) / std, rtol=1e-5, atol=1e-5
    )


def test_grayscale_alpha_and_16_bit_images_become_rgb(keras_set):
    gray = _image(keras_set, "a/grayscale.jpg")
    assert np.array_equal(gray[0], gray[1])
    assert np.array_equal(gray[1], gray[2])
    np.testing.assert_allclose(gray, 128 / 127.5 - 1, atol=0.02)
    gray16 = _image(keras_set, "a/gray16.png")  # 128 * 257 of 65535 -> 128 of 255
    np.testing.assert_array_equal(gray16, np.float32(128) / np.float32(127.5) - np.float32(1))
    rgba = _image(keras_set, "a/rgba.png")  # fully transparent blue: alpha dropped
    np.testing.assert_array_equal(rgba[2], 1.0)
    np.testing.assert_array_equal(rgba[:2], -1.0)


def test_center_crop_keeps_the_center_of_a_wide_image(keras_set):
    # 120x40 red|green|blue -> 111x37 -> the middle 32 columns: all green.
    thirds = _image(keras_set, "a/thirds.png")
    expected = np.broadcast_to(np.array([-1.0, 1.0, -1.0])[:, None, None], thirds.shape)
    np.testing.assert_allclose(thirds, expected, atol=1e-6)


def test_exif_orientation_is_applied_before_cropping(keras_set):
    # Stored 80x40 red|blue, displayed rotated 90° clockwise: red on top, blue below.
    rotated = _image(keras_set, "b/exif_rotated.jpg")
    top, bottom = rotated[:, : R // 2 - 2], rotated[:, R // 2 + 2 :]
    np.testing.assert_allclose(top.mean(axis=(1, 2)), [1, -1, -1], atol=0.05)
    np.testing.assert_allclose(bottom.mean(axis=(1, 2)), [-1, -1, 1], atol=0.05)


def test_loading_is_deterministic(folder: Path, keras_set):
    again = load_images(folder, R, "keras")
    assert again.paths == keras_set.paths
    assert again.file_sha256 == keras_set.file_sha256
    assert digest(again.images) == digest(keras_set.images)


def test_split_is_disjoint_and_recorded(keras_set, folder: Path):
    evaluation, calibration, record = split(keras_set, 8, 8)
    assert evaluation.shape == (8, 3, R, R)
    assert calibration.shape == (8, 3, R, R)
    chosen = {
        name: [f["path"] for f in record[name]["files"]] for name in ("evaluation", "calibration")
    }
    assert not set(chosen["evaluation"]) & set(chosen["calibration"])
    for name, images in (("evaluation", evaluation), ("calibration", calibration)):
        assert record[name]["sha256"] == digest(images)
        assert record[name]["images"] == len(images)
        assert record[name]["shape"] == [3, R, R]
        stacked = np.stack([_image(keras_set, path) for path in chosen[name]])
        assert np.array_equal(stacked, images)  # each file is where the record says
    assert record["folder"] == str(folder)
    assert record["readable"] == len(READABLE)
    assert record["unused"] == len(READABLE) - 16
    assert record["problems"] == list(keras_set.problems)
    assert record["shortfalls"] == []


def test_split_is_seeded_and_deterministic(keras_set):
    first = split(keras_set, 8, 8, seed=0)[2]
    assert split(keras_set, 8, 8, seed=0)[2] == first
    assert split(keras_set, 8, 8, seed=1)[2]["evaluation"] != first["evaluation"]


def test_fewer_images_than_wanted_are_split_and_reported(keras_set):
    evaluation, calibration, record = split(keras_set)  # wants 64 + 32, has 18
    assert len(evaluation) == len(READABLE) - MIN_CALIBRATION
    assert len(calibration) == MIN_CALIBRATION
    assert record["unused"] == 0
    assert record["shortfalls"] == [
        f"evaluation: {len(READABLE) - MIN_CALIBRATION} images, fewer than the 64 wanted",
        f"calibration: {MIN_CALIBRATION} images, fewer than the 32 wanted",
    ]


def test_limited_loading_chooses_what_the_full_split_would(folder: Path, keras_set):
    limited = load_images(folder, R, "keras", limit=16, seed=3)
    assert len(limited.paths) == 16
    full, part = split(keras_set, 8, 8, seed=3), split(limited, 8, 8, seed=3)
    assert full[2]["evaluation"] == part[2]["evaluation"]
    assert full[2]["calibration"] == part[2]["calibration"]


def test_too_few_images_raise_one_line(folder: Path, tmp_path: Path):
    for name in READABLE[:3]:
        _save(tmp_path / name, Image.open(folder / name))
    (tmp_path / "notes.txt").write_text("x")
    image_set = load_images(tmp_path, R, "keras")
    with pytest.raises(ImagesError) as raised:
        split(image_set)
    message = str(raised.value)
    assert "\n" not in message
    assert "3 readable images" in message
    assert f"at least {MIN_EVALUATION + MIN_CALIBRATION}" in message


def test_bad_folder_or_preprocessing_raise(folder: Path, tmp_path: Path):
    with pytest.raises(ImagesError, match="not a folder"):
        load_images(tmp_path / "missing", R, "keras")
    with pytest.raises(ImagesError, match="expected one of keras, torchvision"):
        load_images(folder, R, "caffe")
