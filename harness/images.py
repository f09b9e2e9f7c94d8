"""Real photos as evaluation and calibration images.

A folder of JPEG and PNG files (searched recursively) becomes an :class:`ImageSet`
the way the reference evaluation pipelines prepare ImageNet photos: decode
(Pillow, EXIF orientation applied, converted to RGB), resize the shorter side to
``int(resolution / 0.875)`` rounded (256 for 224) with Pillow's antialiased
bilinear filter, center-crop ``resolution`` x ``resolution``, preprocess
(``"keras"``: ``x / 127.5 - 1``; ``"torchvision"``: ``(x / 255 - mean) / std``)
and lay out NCHW float32. This is torchvision's ``Resize(256)``, ``CenterCrop(224)``,
``ToTensor()``, ``Normalize(...)`` on PIL images, step for step.

:func:`split` then divides the readable images into disjoint evaluation and
calibration sets in a seeded order that depends on each file's own name only,
and returns the manifest's record of exactly which files went where.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from harness.formats import CALIBRATION_IMAGES
from harness.inputs import EVALUATION_IMAGES, PARITY_IMAGES, digest

#: File name endings read as images (case-insensitive); any other file is skipped.
EXTENSIONS = (".jpg", ".jpeg", ".png")
#: The decoders accepted: a file that is neither is unreadable, whatever its name.
DECODERS = ("JPEG", "PNG")
#: Shorter side after resizing = resolution / CROP_RATIO (256 for 224, as in torchvision).
CROP_RATIO = 0.875
#: ImageNet channel statistics torchvision's pretrained models are normalized with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The preprocessing names :func:`load_images` accepts.
PREPROCESSING = ("keras", "torchvision")
#: Fewest evaluation images: the parity check runs the first PARITY_IMAGES of them.
MIN_EVALUATION = PARITY_IMAGES
#: Fewest calibration images an int8 variant takes its activation ranges from.
MIN_CALIBRATION = 8


class ImagesError(Exception):
    """An image folder that cannot give the images a run needs (one-line message)."""


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Decoded, preprocessed images of a folder, and what could not be used."""

    images: np.ndarray  # (N, 3, R, R) float32, read-only, in the order of ``paths``
    paths: tuple[str, ...]  # the files used, relative to folder, "/"-separated, sorted
    file_sha256: tuple[str, ...]  # sha256 of each used file's bytes
    problems: tuple[str, ...]  # "<relative path>: <what was wrong>", one per file not used
    folder: Path
    preprocessing: str
    resolution: int


def find_images(folder: Path) -> list[Path]:
    """JPEG and PNG files under ``folder`` (by name ending), sorted by relative path."""
    return [path for path in _files(folder) if _is_image_name(path)]


def load_images(
    folder: Path,
    resolution: int,
    preprocessing: str,
    *,
    limit: int | None = None,
    seed: int = 0,
) -> ImageSet:
    """Decode, resize, center-crop and preprocess every image under ``folder``.

    With ``limit``, files are decoded in :func:`split`'s order for ``seed`` only
    until ``limit`` are readable, so a large folder is not decoded whole; with
    ``limit = evaluation + calibration``, ``split`` (same seed and sizes) then
    chooses the images it would from the full set. Unreadable files past the
    limit are not reported.
    """
    folder = Path(folder)
    if preprocessing not in PREPROCESSING:
        choices = ", ".join(PREPROCESSING)
        raise ImagesError(f"preprocessing {preprocessing!r}: expected one of {choices}")
    files = _files(folder)
    problems = {
        _relative(p, folder): "not an image (skipped)" for p in files if not _is_image_name(p)
    }
    candidates = [p for p in files if _is_image_name(p)]
    if limit is not None:
        candidates.sort(key=lambda p: _rank(_relative(p, folder), seed))
    used: dict[str, tuple[np.ndarray, str]] = {}
    for path in candidates:
        if limit is not None and len(used) >= limit:
            break
        decoded = _decode(path, resolution)
        if isinstance(decoded, str):
            problems[_relative(path, folder)] = decoded
        else:
            used[_relative(path, folder)] = decoded
    names = sorted(used)
    return ImageSet(
        images=preprocess([used[n][0] for n in names], resolution, preprocessing),
        paths=tuple(names),
        file_sha256=tuple(used[n][1] for n in names),
        problems=tuple(f"{name}: {problems[name]}" for name in sorted(problems)),
        folder=folder,
        preprocessing=preprocessing,
        resolution=resolution,
    )


def split(
    image_set: ImageSet,
    evaluation: int = EVALUATION_IMAGES,
    calibration: int = CALIBRATION_IMAGES,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Disjoint evaluation and calibration images, and the manifest's record of the split.

    Files are ranked by sha256 of ``"<seed>:<relative path>"`` (a seeded shuffle
    in which each file's place depends on its own name only). Evaluation takes
    the first ``min(evaluation, N - MIN_CALIBRATION)``, calibration the next
    ``min(calibration, rest)``: evaluation is served first, calibration keeps
    at least its minimum. Raises :class:`ImagesError` below the minimums.
    """
    if evaluation < MIN_EVALUATION or calibration < MIN_CALIBRATION:
        raise ValueError(f"wanted sizes must be >= {MIN_EVALUATION} and >= {MIN_CALIBRATION}")
    n = len(image_set.paths)
    if n < MIN_EVALUATION + MIN_CALIBRATION:
        raise ImagesError(_too_few(image_set))
    order = sorted(range(n), key=lambda i: _rank(image_set.paths[i], seed))
    n_eval = min(evaluation, n - MIN_CALIBRATION)
    n_cal = min(calibration, n - n_eval)
    chosen = {"evaluation": order[:n_eval], "calibration": order[n_eval : n_eval + n_cal]}
    wanted = {"evaluation": evaluation, "calibration": calibration}
    arrays = {name: image_set.images[idx] for name, idx in chosen.items()}
    record = {
        "folder": str(image_set.folder),
        "preprocessing": image_set.preprocessing,
        "pipeline": _pipeline(image_set),
        "split": f"files ranked by sha256('{seed}:<relative path>'); evaluation first",
        "seed": seed,
        "readable": n,
        "unused": n - n_eval - n_cal,
        "problems": list(image_set.problems),
        "shortfalls": [
            f"{name}: {len(idx)} images, fewer than the {wanted[name]} wanted"
            for name, idx in chosen.items()
            if len(idx) < wanted[name]
        ],
    }
    for name, idx in chosen.items():
        record[name] = {
            "source": f"photos: {image_set.folder} ({image_set.preprocessing} preprocessing)",
            "images": len(idx),
            "wanted": wanted[name],
            "shape": list(arrays[name].shape[1:]),
            "sha256": digest(arrays[name]),
            "files": [
                {"path": image_set.paths[i], "sha256": image_set.file_sha256[i]} for i in idx
            ],
        }
    return arrays["evaluation"], arrays["calibration"], record


def _files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, sorted by "/"-separated relative path."""
    if not folder.is_dir():
        raise ImagesError(f"{folder}: not a folder")
    files = [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda p: _relative(p, folder))


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS


def _relative(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def _rank(name: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def _decode(path: Path, resolution: int) -> tuple[np.ndarray, str] | str:
    """(cropped pixels, sha256 of the file), or why the file is unreadable."""
    try:
        data = path.read_bytes()
        pixels = _prepare(data, resolution)
    except Exception as error:  # OSError, and Pillow's decoders raise many types on bad data
        return f"unreadable ({_one_line(error)})"
    return pixels, hashlib.sha256(data).hexdigest()


def _prepare(data: bytes, resolution: int) -> np.ndarray:
    """Decoded RGB pixels, shorter side resized and center-cropped: (R, R, 3) uint8."""
    with Image.open(io.BytesIO(data), formats=DECODERS) as opened:
        opened.load()
        image = _rgb(ImageOps.exif_transpose(opened))
    image = _resize_shorter(image, round(resolution / CROP_RATIO))
    return np.asarray(_center_crop(image, resolution), dtype=np.uint8)


def _rgb(image: Image.Image) -> Image.Image:
    """RGB (alpha dropped, as torchvision's and Keras' loaders do); 16-bit gray scaled to 8."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        gray = np.round(np.asarray(image, dtype=np.float64) / 257).clip(0, 255)
        image = Image.fromarray(gray.astype(np.uint8))
    elif image.mode == "P":
        image = image.convert("RGBA")
    return image.convert("RGB")


def _resize_shorter(image: Image.Image, size: int) -> Image.Image:
    """torchvision ``Resize(size)``: shorter side to size, longer side truncated."""
    width, height = image.size
    if width <= height:
        new = (size, int(size * height / width))
    else:
        new = (int(size * width / height), size)
    return image.resize(new, Image.Resampling.BILINEAR)


def _center_crop(image: Image.Image, size: int) -> Image.Image:
    """torchvision ``CenterCrop(size)`` offsets (the shorter side is already >= size)."""
    width, height = image.size
    left, top = round((width - size) / 2), round((height - size) / 2)
    return image.crop((left, top, left + size, top + size))


def preprocess(pixels: list[np.ndarray], resolution: int, preprocessing: str) -> np.ndarray:
    """(N, R, R, 3) uint8 -> (N, 3, R, R) float32 model input, read-only."""
    x = np.zeros((0, resolution, resolution, 3), np.float32) if not pixels else np.stack(pixels)
    x = x.astype(np.float32)
    if preprocessing == "keras":  # keras.applications "tf" mode (MobileNetV2): [-1, 1]
        x = x / np.float32(127.5) - np.float32(1)
    else:  # torchvision ToTensor() then Normalize(IMAGENET_MEAN, IMAGENET_STD)
        mean, std = np.float32(IMAGENET_MEAN), np.float32(IMAGENET_STD)
        x = (x / np.float32(255) - mean) / std
    images = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    images.flags.writeable = False
    return images


def _pipeline(image_set: ImageSet) -> str:
    r = image_set.resolution
    return (
        f"RGB, EXIF-oriented; shorter side to {round(r / CROP_RATIO)} (bilinear, antialiased); "
        f"center crop {r}x{r}; {image_set.preprocessing} preprocessing; NCHW float32"
    )


def _too_few(image_set: ImageSet) -> str:
    need = MIN_EVALUATION + MIN_CALIBRATION
    return (
        f"{image_set.folder}: {len(image_set.paths)} readable images, need at least {need} "
        f"({MIN_EVALUATION} evaluation + {MIN_CALIBRATION} calibration); "
        f"{len(image_set.problems)} files skipped or unreadable"
    )


def _one_line(error: Exception) -> str:
    if isinstance(error, UnidentifiedImageError):
        return "not a JPEG or PNG file"
    text = " ".join(str(error).split())
    return text or type(error).__name__
