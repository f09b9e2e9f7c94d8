"""Where a model's weights and images come from: generated and seeded, or the user's files.

An :class:`Origin` is decided once per model, in the parent process (no ML
framework is imported here): which weights (generated with a seed, or a
checkpoint file, known by its sha256 and layout) and which evaluation and
calibration images (generated, or photos from a folder, split disjointly). The
export folder's cache key covers it, so other weights or photos get their own
folder. The images follow the weights' preprocessing:

- generated weights, no photos: the seeded standard-normal sets of
  :mod:`harness.inputs` (the statistics the generated weights are calibrated for);
- generated weights, photos: torchvision preprocessing (ImageNet mean and std,
  which gives those same statistics);
- a checkpoint: its own preprocessing (Keras: [-1, 1]; torchvision: mean/std), on
  the photos or, without photos, on seeded uniform pixel noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.checkpoints import (
    CONVENTIONS,
    PREPROCESSING,
    CheckpointError,
    detect_layout,
    file_sha256,
)
from harness.formats import CALIBRATION_IMAGES
from harness.images import ImagesError, load_images, preprocess, split
from harness.inputs import (
    EVALUATION_IMAGES,
    calibration_set,
    describe_set,
    evaluation_set,
)
from harness.spec import ModelSpec

#: Preprocessing of photos fed to generated weights.
GENERATED_WEIGHTS_PREPROCESSING = "torchvision"
#: The cache key's origin part for generated weights and the generated standard-normal
#: sets (both are fixed by the spec, the seed and the harness code, already in the key).
GENERATED_KEY = {"weights": "generated", "inputs": "generated"}
#: The pixel-noise stream of each set (a checkpoint without photos).
_NOISE_STREAMS = {"evaluation": 0x9E1, "calibration": 0xCA1B}


class OriginError(ValueError):
    """A weights file or image folder that cannot be used (one-line message)."""


@dataclass(frozen=True, eq=False)
class Origin:
    """The weights and images one export folder is made with."""

    weights: dict[str, Any]  # the manifest's "weights" record (completed when staged)
    inputs: dict[str, Any]  # the manifest's "inputs" record
    evaluation: np.ndarray  # NCHW float32, preprocessed
    calibration: np.ndarray
    checkpoint: Path | None = None
    #: One line per photo not used, and per set smaller than wanted.
    problems: tuple[str, ...] = field(default=())
    #: Generated weights and the standard-normal sets (:func:`generated`).
    is_generated: bool = False

    def key(self) -> dict[str, Any]:
        """What the export folder's cache key covers: the file's and the images' sha256."""
        if self.is_generated:
            return GENERATED_KEY
        return {
            "weights": self.weights.get("sha256", "generated"),
            "evaluation": self.inputs["evaluation"]["sha256"],
            "calibration": self.inputs["calibration"]["sha256"],
        }


def generated(spec: ModelSpec, seed: int) -> Origin:
    """Generated weights and the seeded standard-normal image sets."""
    sets = {"evaluation": evaluation_set(spec, seed), "calibration": calibration_set(spec, seed)}
    source = f"generated: seeded standard normal, seed {seed}"
    return Origin(
        weights=generated_weights(seed),
        inputs={name: describe_set(images, source) for name, images in sets.items()},
        is_generated=True,
        **sets,
    )


def generated_weights(seed: int) -> dict[str, Any]:
    return {"source": "generated", "seed": seed}


def from_files(
    spec: ModelSpec, seed: int, weights: Path | None = None, images: Path | None = None
) -> tuple[ModelSpec, Origin]:
    """The spec with the checkpoint's conventions, and the origin of ``weights`` and
    ``images`` (either may be None: generated). Raises :class:`OriginError`."""
    if weights is None and images is None:
        return spec, generated(spec, seed)
    record = generated_weights(seed)
    preprocessing = GENERATED_WEIGHTS_PREPROCESSING
    if weights is not None:
        record, conventions = _checkpoint_record(Path(weights))
        spec = spec.with_conventions(**conventions)
        preprocessing = record["preprocessing"]
    if images is not None:
        evaluation, calibration, inputs, problems = _photos(spec, seed, Path(images), preprocessing)
    else:
        evaluation, calibration, inputs = _pixel_noise(spec, seed, preprocessing)
        problems = ()
    checkpoint = Path(weights).resolve() if weights is not None else None
    origin = Origin(record, inputs, evaluation, calibration, checkpoint, problems)
    return spec, origin


def _checkpoint_record(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The weights record a checkpoint file starts with, and its conventions."""
    if not path.is_file():
        raise OriginError(f"{path}: no such checkpoint file")
    try:
        layout = detect_layout(path)
    except CheckpointError as exc:
        raise OriginError(str(exc)) from None
    record = {
        "source": "checkpoint",
        "file": path.name,
        "sha256": file_sha256(path),
        "layout": layout,
        "preprocessing": PREPROCESSING[layout],
        "conventions": dict(CONVENTIONS[layout]),
    }
    return record, CONVENTIONS[layout]


def _photos(
    spec: ModelSpec, seed: int, folder: Path, preprocessing: str
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], tuple[str, ...]]:
    try:
        image_set = load_images(
            folder,
            spec.resolution,
            preprocessing,
            limit=EVALUATION_IMAGES + CALIBRATION_IMAGES,
            seed=seed,
        )
        evaluation, calibration, record = split(image_set, seed=seed)
    except ImagesError as exc:
        raise OriginError(str(exc)) from None
    problems = (*record["problems"], *record["shortfalls"])
    return evaluation, calibration, record, problems


def _pixel_noise(
    spec: ModelSpec, seed: int, preprocessing: str
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Seeded uniform pixel noise through the checkpoint's preprocessing."""
    sizes = {"evaluation": EVALUATION_IMAGES, "calibration": CALIBRATION_IMAGES}
    sets = {}
    for name, size in sizes.items():
        rng = np.random.default_rng([seed, _NOISE_STREAMS[name]])
        pixels = rng.integers(0, 256, (size, spec.resolution, spec.resolution, 3), np.uint8)
        sets[name] = preprocess(list(pixels), spec.resolution, preprocessing)
    source = f"generated: seeded uniform pixel noise, seed {seed}, {preprocessing} preprocessing"
    inputs = {name: describe_set(images, source) for name, images in sets.items()}
    return sets["evaluation"], sets["calibration"], inputs


def weights_label(record: dict[str, Any]) -> str:
    """One line for a row's ``weights`` column."""
    if record.get("source") != "checkpoint":
        return f"generated (seed {record.get('seed', 0)})"
    label = f"{record['file']} (sha256 {record['sha256'][:12]})"
    classifier = record.get("classifier")
    if classifier and classifier != "from the file":
        label += f"; classifier {classifier}"
    return label


def inputs_label(record: dict[str, Any]) -> str:
    """One line for a row's ``inputs`` column."""
    evaluation, calibration = record["evaluation"], record["calibration"]
    if "folder" in record:
        return (
            f"photos: {record['folder']} ({evaluation['images']} evaluation, "
            f"{calibration['images']} calibration)"
        )
    return f"{evaluation['source']} ({evaluation['images']} evaluation images)"
