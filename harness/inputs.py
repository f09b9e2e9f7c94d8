"""The two seeded image sets every precision is measured with: evaluation and calibration.

The evaluation set is what accuracy is measured on (every row's ``top1_agree``,
``rel_l2_err``, ...: the backend's outputs against the PyTorch fp32 reference on
these images); its first :data:`PARITY_IMAGES` are the parity input an export is
checked with and the input the timed calls cycle through. The calibration set is
what int8 variants take their activation ranges from. The two come from
different random streams, so no calibration image is ever evaluated; both are
drawn like :func:`harness.weights.sample_input` (standard normal, the statistics
the generated weights were calibrated for). Photos and pixel noise for a
checkpoint replace them (:mod:`harness.origin`). Whatever their origin, an export
folder stores its two sets (:func:`write_sets`) and every consumer reads them
from there; their sha256 go into the manifest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from harness.formats import CALIBRATION_IMAGES
from harness.spec import ModelSpec
from harness.weights import sample_input

#: Images accuracy is measured on (at least 64, so one image is at most 1.6 % agreement).
EVALUATION_IMAGES = 64
#: The leading evaluation images an export's parity check runs.
PARITY_IMAGES = 8
#: The files an export folder stores its two sets in (NCHW float32).
EVALUATION_FILE = "evaluation.npy"
CALIBRATION_FILE = "calibration.npy"
#: The calibration set's own random stream (the evaluation set is sample_input's).
_CALIBRATION_STREAM = 0xCA1B


def evaluation_set(spec: ModelSpec, seed: int = 0) -> np.ndarray:
    """The seeded evaluation images, NCHW float32."""
    return sample_input(spec, EVALUATION_IMAGES, seed)


def calibration_set(spec: ModelSpec, seed: int = 0) -> np.ndarray:
    """The seeded calibration images, NCHW float32, disjoint from the evaluation set."""
    rng = np.random.default_rng([seed, _CALIBRATION_STREAM])
    shape = (CALIBRATION_IMAGES, 3, spec.resolution, spec.resolution)
    return rng.standard_normal(shape, dtype=np.float32)


def digest(images: np.ndarray) -> str:
    """sha256 of an image set's shape, dtype and bytes."""
    h = hashlib.sha256(f"{images.shape}{images.dtype}".encode())
    h.update(np.ascontiguousarray(images).tobytes())
    return h.hexdigest()


def describe_set(images: np.ndarray, source: str) -> dict[str, Any]:
    """The manifest's record of one image set: where it comes from, its size and sha256."""
    return {
        "source": source,
        "images": int(images.shape[0]),
        "shape": list(images.shape[1:]),
        "sha256": digest(images),
    }


def write_sets(folder: Path, evaluation: np.ndarray, calibration: np.ndarray) -> None:
    """Store an export's two image sets in its folder (what every consumer reads)."""
    for name, images in ((EVALUATION_FILE, evaluation), (CALIBRATION_FILE, calibration)):
        np.save(folder / name, np.ascontiguousarray(images, dtype=np.float32))


def read_evaluation(folder: Path) -> np.ndarray:
    """An export folder's evaluation images (the rows of its reference)."""
    return np.load(folder / EVALUATION_FILE)


def read_parity(folder: Path) -> np.ndarray:
    """The leading :data:`PARITY_IMAGES` evaluation images an export is checked with."""
    return np.load(folder / EVALUATION_FILE, mmap_mode="r")[:PARITY_IMAGES].copy()


def read_calibration(folder: Path) -> np.ndarray:
    """An export folder's calibration images (what int8 variants are calibrated on)."""
    return np.load(folder / CALIBRATION_FILE)
