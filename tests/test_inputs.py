"""The evaluation and calibration image sets: seeded, disjoint, hashed."""

import numpy as np

from harness.formats import CALIBRATION_IMAGES
from harness.inputs import (
    EVALUATION_IMAGES,
    PARITY_IMAGES,
    calibration_set,
    describe_set,
    digest,
    evaluation_set,
    read_calibration,
    read_evaluation,
    read_parity,
    write_sets,
)
from harness.spec import load_spec
from harness.weights import sample_input

SPEC = load_spec("mobilenet_v2", resolution=96)


def test_sets_have_their_sizes_at_the_specs_resolution():
    assert evaluation_set(SPEC).shape == (EVALUATION_IMAGES, 3, 96, 96)
    assert calibration_set(SPEC).shape == (CALIBRATION_IMAGES, 3, 96, 96)
    assert EVALUATION_IMAGES >= 64
    assert evaluation_set(SPEC).dtype == calibration_set(SPEC).dtype == np.float32


def test_sets_are_seeded():
    assert np.array_equal(evaluation_set(SPEC, 3), evaluation_set(SPEC, 3))
    assert np.array_equal(calibration_set(SPEC, 3), calibration_set(SPEC, 3))
    assert not np.array_equal(calibration_set(SPEC, 3), calibration_set(SPEC, 4))


def test_no_calibration_image_is_evaluated():
    evaluation = evaluation_set(SPEC).reshape(EVALUATION_IMAGES, -1)
    calibration = calibration_set(SPEC).reshape(CALIBRATION_IMAGES, -1)
    # Pairwise: no image of one set equals (or nearly equals) any image of the other.
    distances = np.linalg.norm(evaluation[:, None, :] - calibration[None, :, :], axis=2)
    assert distances.min() > 1.0


def test_parity_images_lead_the_evaluation_set():
    assert np.array_equal(evaluation_set(SPEC)[:PARITY_IMAGES], sample_input(SPEC, PARITY_IMAGES))


def test_digests_follow_content_shape_and_dtype():
    images = evaluation_set(SPEC)
    assert digest(images) == digest(images.copy())
    changed = images.copy()
    changed[5, 1, 2, 3] += 1e-3
    assert digest(changed) != digest(images)
    assert digest(images.reshape(32, -1)) != digest(images)
    assert digest(images.astype(np.float64)) != digest(images)


def test_description_of_a_set():
    images = evaluation_set(SPEC, 0)
    record = describe_set(images, "generated: seeded standard normal, seed 0")
    assert record == {
        "source": "generated: seeded standard normal, seed 0",
        "images": EVALUATION_IMAGES,
        "shape": [3, 96, 96],
        "sha256": digest(images),
    }


def test_a_folder_stores_both_sets_and_the_parity_images_lead(tmp_path):
    evaluation, calibration = evaluation_set(SPEC, 5), calibration_set(SPEC, 5)
    write_sets(tmp_path, evaluation, calibration)
    assert np.array_equal(read_evaluation(tmp_path), evaluation)
    assert np.array_equal(read_calibration(tmp_path), calibration)
    assert np.array_equal(read_parity(tmp_path), evaluation[:PARITY_IMAGES])
    assert np.array_equal(read_parity(tmp_path), sample_input(SPEC, PARITY_IMAGES, 5))
