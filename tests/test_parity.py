"""Parity: pure comparison, and the exported files run by the runtimes directly."""

import json

import numpy as np
import pytest

from harness.inputs import PARITY_IMAGES
from harness.parity import PSNR_CAP_DB, TOLERANCES, compare, psnr_db, within_tolerance
from harness.spec import load_spec
from harness.weights import sample_input


def test_compare_identical_and_perturbed():
    ref = np.random.default_rng(0).standard_normal((8, 10)).astype(np.float32)
    same = compare(ref, ref.copy())
    assert same == {
        "max_abs_err": 0.0,
        "rel_l2_err": 0.0,
        "top1_agree": 1.0,
        "top5_agree": 1.0,
        "psnr_db": PSNR_CAP_DB,
    }
    assert within_tolerance(same)
    noisy = ref + 1e-3
    errs = compare(ref, noisy)
    assert errs["max_abs_err"] == pytest.approx(1e-3, rel=1e-3)
    assert not within_tolerance(errs)  # 1e-3 on unit logits is ~1e-3 relative
    assert within_tolerance(errs, "fp16")


def test_psnr_of_a_known_perturbation_is_computed_by_hand():
    ref = np.array([[4.0, -2.0, 1.0, 0.0]])
    out = ref + np.array([[0.1, -0.1, 0.1, -0.1]])  # RMSE 0.1, max|ref| 4
    assert psnr_db(ref, out) == pytest.approx(20 * np.log10(4.0 / 0.1))  # 32.04 dB
    assert compare(ref, out)["psnr_db"] == pytest.approx(32.0412, abs=1e-4)
    assert psnr_db(ref, ref + 1e-12) == PSNR_CAP_DB  # beyond the cap: capped


def test_top1_disagreement_is_counted():
    ref = np.eye(4, dtype=np.float32)
    out = ref.copy()
    out[0] = [0, 1, 0, 0]
    assert compare(ref, out)["top1_agree"] == 0.75


def test_top5_counts_the_reference_class_among_the_five_largest():
    ref = np.zeros((2, 10))
    ref[0, 3] = ref[1, 7] = 1.0
    out = np.tile(np.arange(10.0), (2, 1))  # top-5: classes 5..9
    errs = compare(ref, out)
    assert (errs["top1_agree"], errs["top5_agree"]) == (0.0, 0.5)  # 7 is in, 3 is not
    few = compare(np.eye(3), np.eye(3)[::-1])  # three classes: top-5 is every class
    assert few["top5_agree"] == 1.0


def test_tolerances_loosen_with_precision_and_a_broken_file_fails_every_one():
    order = ["fp32", "fp16", "bf16", "int8"]
    assert [TOLERANCES[p].rel_l2 for p in order] == sorted(TOLERANCES[p].rel_l2 for p in order)
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((64, 1000))
    unrelated = compare(ref, rng.standard_normal((64, 1000)))  # rel_l2 ~1.41
    assert not any(within_tolerance(unrelated, p) for p in order)


@pytest.mark.parametrize("name", ["mobilenet_v2", "standard_conv", "mobilenet_v2_article"])
def test_runtimes_reproduce_the_reference_without_our_code(exported, name):
    """Load each file with its runtime's own API, feed the parity input, compare."""
    import keras
    import onnxruntime as ort
    import torch
    from ai_edge_litert.interpreter import Interpreter

    folder = exported(name)
    manifest = json.loads((folder / "manifest.json").read_text())
    art = manifest["artifacts"]
    reference = np.load(folder / "reference.npy")[:PARITY_IMAGES]
    x = sample_input(load_spec(name), PARITY_IMAGES, manifest["parity_input"]["seed"])
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))

    outputs = {}
    outputs["pytorch"] = (
        torch.export.load(folder / art["pytorch"]["path"])
        .module()(torch.from_numpy(x))
        .detach()
        .numpy()
    )
    outputs["keras"] = np.asarray(keras.saving.load_model(folder / art["keras"]["path"])(nhwc))
    session = ort.InferenceSession(folder / art["onnx"]["path"], providers=["CPUExecutionProvider"])
    outputs["onnx"] = session.run(None, {art["onnx"]["input_name"]: x})[0]
    interpreter = Interpreter(model_path=str(folder / art["tflite"]["path"]))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(nhwc.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, nhwc)
    interpreter.invoke()
    outputs["tflite"] = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    for fmt, out in outputs.items():
        errs = compare(reference, out)
        assert errs["rel_l2_err"] < 1e-4, fmt
        assert errs["top1_agree"] == 1.0, fmt
        assert errs["max_abs_err"] == pytest.approx(art[fmt]["parity"]["max_abs_err"], abs=1e-4)
