"""Parity: pure comparison, and the exported files run by the runtimes directly."""

import json

import numpy as np
import pytest

from harness.parity import compare, within_tolerance
from harness.spec import load_spec
from harness.weights import sample_input


def test_compare_identical_and_perturbed():
    ref = np.random.default_rng(0).standard_normal((8, 10)).astype(np.float32)
    same = compare(ref, ref.copy())
    assert same == {"max_abs_err": 0.0, "rel_l2_err": 0.0, "top1_agree": 1.0}
    assert within_tolerance(same)
    noisy = ref + 1e-3
    errs = compare(ref, noisy)
    assert errs["max_abs_err"] == pytest.approx(1e-3, rel=1e-3)
    assert not within_tolerance(errs)  # 1e-3 on unit logits is ~1e-3 relative


def test_top1_disagreement_is_counted():
    ref = np.eye(4, dtype=np.float32)
    out = ref.copy()
    out[0] = [0, 1, 0, 0]
    assert compare(ref, out)["top1_agree"] == 0.75


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
    reference = np.load(folder / "reference.npy")
    x = sample_input(load_spec(name), 8, manifest["parity_input"]["seed"])
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
