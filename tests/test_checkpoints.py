"""Published MobileNetV2 checkpoints (Keras applications, torchvision) read into our weights.

The files are made here in the published layouts (see tests/checkpoint_files.py);
nothing is downloaded. The Keras file is checked against Keras' own loader, so the
mapping is tested against an independent reader, not against itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")
pytest.importorskip("keras")
torch = pytest.importorskip("torch")

import h5py  # noqa: E402
import keras  # noqa: E402
from checkpoint_files import (  # noqa: E402
    KERAS_NAME,
    first_port_name,
    keras_mobilenet_v2,
    torchvision_model,
    write_keras_legacy_h5,
)

from harness.checkpoints import CheckpointError, read_checkpoint  # noqa: E402
from harness.spec import ModelSpec, load_spec  # noqa: E402
from harness.weights import make_weights, sample_input  # noqa: E402

TV_NAME = "mobilenet_v2-0123abcd.pth"
SPEC = load_spec("mobilenet_v2", width=0.35, resolution=96)
NEEDS_CONVENTIONS = "needs spec conventions (stride2_padding='same', bn_eps=1e-3)"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="module")
def keras_model():
    """keras.applications' MobileNetV2 at alpha 0.35, 96 px, random weights, logits out."""
    return keras_mobilenet_v2(0.35, 96, seed=1)


@pytest.fixture(scope="module")
def keras_file(folder: Path, keras_model) -> Path:
    return write_keras_legacy_h5(keras_model.layers, folder / KERAS_NAME.format(0.35, 96, ""))


@pytest.fixture(scope="module")
def keras_loaded(keras_file: Path):
    """The fixture file read back by keras.applications itself (Keras' legacy H5 loader)."""
    return keras.applications.MobileNetV2(
        weights=str(keras_file), alpha=0.35, input_shape=(96, 96, 3), classifier_activation=None
    )


@pytest.fixture(scope="module")
def keras_ckpt(keras_file: Path):
    return read_checkpoint(keras_file, SPEC)


@pytest.fixture(scope="module")
def tv_model():
    return torchvision_model(0.35, seed=2)


@pytest.fixture(scope="module")
def tv_file(folder: Path, tv_model) -> Path:
    path = folder / TV_NAME
    torch.save(tv_model.state_dict(), path)
    return path


# -- Keras applications layout --------------------------------------------------------


def test_fixture_is_what_keras_applications_loads(keras_model, keras_loaded):
    for ours, theirs in zip(keras_model.get_weights(), keras_loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


KERAS_TENSORS = [
    # (Keras layer, weight index, our key, transpose into our layout)
    ("Conv1", 0, "stem.weight", (3, 2, 0, 1)),
    ("bn_Conv1", 0, "stem.bn.gamma", None),
    ("expanded_conv_depthwise", 0, "block0.dw.weight", (2, 3, 0, 1)),
    ("expanded_conv_project_BN", 2, "block0.project.bn.mean", None),
    ("block_3_expand", 0, "block3.expand.weight", (3, 2, 0, 1)),
    ("block_3_depthwise", 0, "block3.dw.weight", (2, 3, 0, 1)),
    ("block_3_depthwise_BN", 1, "block3.dw.bn.beta", None),
    ("block_3_project", 0, "block3.project.weight", (3, 2, 0, 1)),
    ("block_16_project_BN", 3, "block16.project.bn.var", None),
    ("Conv_1", 0, "head.weight", (3, 2, 0, 1)),
    ("predictions", 0, "classifier.weight", (1, 0)),
    ("predictions", 1, "classifier.bias", None),
]


@pytest.mark.parametrize(("layer", "index", "key", "axes"), KERAS_TENSORS)
def test_keras_tensors_land_in_place(keras_loaded, keras_ckpt, layer, index, key, axes):
    value = keras_loaded.get_layer(layer).get_weights()[index]
    expected = value if axes is None else value.transpose(axes)
    np.testing.assert_array_equal(keras_ckpt.weights[key], expected)


def test_keras_every_tensor_read_once(keras_file: Path, keras_ckpt):
    with h5py.File(keras_file) as f:
        datasets: list[str] = []
        f.visititems(
            lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None
        )
    assert sorted(keras_ckpt.sources.values()) == sorted(datasets)
    assert keras_ckpt.weights.keys() == make_weights(SPEC).keys()
    for key, value in make_weights(SPEC).items():
        assert keras_ckpt.weights[key].shape == value.shape, key
        assert keras_ckpt.weights[key].dtype == np.float32


def test_keras_facts(keras_file: Path, keras_ckpt):
    assert keras_ckpt.layout == "keras_applications"
    assert keras_ckpt.conventions == {"bn_eps": 1e-3, "stride2_padding": "same"}
    assert keras_ckpt.preprocessing == "keras"
    assert keras_ckpt.has_classifier
    assert (keras_ckpt.width, keras_ckpt.resolution) == (0.35, 96)
    assert keras_ckpt.file == keras_file.name
    assert keras_ckpt.sha256 == hashlib.sha256(keras_file.read_bytes()).hexdigest()


def test_keras_no_top(folder: Path, keras_model, keras_ckpt):
    body = keras.Model(keras_model.input, keras_model.get_layer("out_relu").output)
    path = write_keras_legacy_h5(body.layers, folder / KERAS_NAME.format(0.35, 96, "_no_top"))
    ckpt = read_checkpoint(path, SPEC)
    assert not ckpt.has_classifier
    assert not any(k.startswith("classifier.") for k in ckpt.weights)
    features = {k: v for k, v in keras_ckpt.weights.items() if not k.startswith("classifier.")}
    assert ckpt.weights.keys() == features.keys()
    assert all(np.array_equal(ckpt.weights[k], v) for k, v in features.items())


def test_keras_published_names_are_not_needed(folder: Path, keras_model, keras_ckpt):
    """The published files carry the first port's names (mobl1_conv_1_expand, Logits):
    like Keras' loader, the reader goes by layer order."""
    path = write_keras_legacy_h5(keras_model.layers, folder / "first_port.h5", first_port_name)
    with h5py.File(path) as f:
        assert {"mobl1_conv_1_expand", "bn1_conv_1_bn_expand", "Logits"} <= set(f)
    ckpt = read_checkpoint(path, SPEC)
    assert ckpt.weights.keys() == keras_ckpt.weights.keys()
    assert all(np.array_equal(ckpt.weights[k], v) for k, v in keras_ckpt.weights.items())
    assert (ckpt.width, ckpt.resolution) == (None, None)  # the name no longer says them


def test_keras_width_14(folder: Path):
    model = keras_mobilenet_v2(1.4, 96, seed=3, top=False)
    path = write_keras_legacy_h5(model.layers, folder / KERAS_NAME.format(1.4, 96, "_no_top"))
    ckpt = read_checkpoint(path, load_spec("mobilenet_v2", width=1.4, resolution=96))
    assert (ckpt.width, ckpt.resolution, ckpt.has_classifier) == (1.4, 96, False)
    assert ckpt.weights["stem.weight"].shape == (48, 3, 3, 3)
    assert ckpt.weights["head.weight"].shape == (1792, 448, 1, 1)
    kernel = model.get_layer("Conv_1").get_weights()[0]
    np.testing.assert_array_equal(ckpt.weights["head.weight"], kernel.transpose(3, 2, 0, 1))


# -- torchvision layout ---------------------------------------------------------------

TV_TENSORS = [
    ("features.0.0.weight", "stem.weight"),
    ("features.0.1.running_var", "stem.bn.var"),
    ("features.1.conv.0.0.weight", "block0.dw.weight"),
    ("features.1.conv.1.weight", "block0.project.weight"),
    ("features.1.conv.2.bias", "block0.project.bn.beta"),
    ("features.2.conv.0.0.weight", "block1.expand.weight"),
    ("features.2.conv.0.1.weight", "block1.expand.bn.gamma"),
    ("features.2.conv.1.0.weight", "block1.dw.weight"),
    ("features.2.conv.2.weight", "block1.project.weight"),
    ("features.2.conv.3.running_mean", "block1.project.bn.mean"),
    ("features.18.0.weight", "head.weight"),
    ("classifier.1.weight", "classifier.weight"),
    ("classifier.1.bias", "classifier.bias"),
]


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_torchvision_round_trip(folder: Path, tv_model, legacy: bool):
    state = tv_model.state_dict()
    path = folder / f"tv-{legacy}.pth"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    ckpt = read_checkpoint(path, SPEC)
    for theirs, ours in TV_TENSORS:
        np.testing.assert_array_equal(ckpt.weights[ours], state[theirs].numpy())
    used = {k for k in state if not k.endswith("num_batches_tracked")}
    assert sorted(ckpt.sources.values()) == sorted(used)
    assert ckpt.weights.keys() == make_weights(SPEC).keys()
    assert ckpt.layout == "torchvision"
    assert ckpt.conventions == {"bn_eps": 1e-5, "stride2_padding": "symmetric"}
    assert ckpt.preprocessing == "torchvision"
    assert (ckpt.width, ckpt.resolution, ckpt.has_classifier) == (None, None, True)


def test_torchvision_features_only(folder: Path, tv_model):
    state = {k: v for k, v in tv_model.state_dict().items() if k.startswith("features.")}
    torch.save(state, folder / "features.pth")
    ckpt = read_checkpoint(folder / "features.pth", SPEC)
    assert not ckpt.has_classifier
    assert "classifier.weight" not in ckpt.weights


def test_layout_comes_from_content_not_extension(folder: Path, keras_file: Path, tv_file: Path):
    shutil.copy(keras_file, folder / "keras_weights.pth")
    shutil.copy(tv_file, folder / "torch_weights.h5")
    assert read_checkpoint(folder / "keras_weights.pth", SPEC).layout == "keras_applications"
    assert read_checkpoint(folder / "torch_weights.h5", SPEC).layout == "torchvision"


# -- bad inputs: one line naming the file and the first layer that does not fit --------


def _error(path: Path, spec: ModelSpec = SPEC) -> str:
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path, spec)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path.name}: ")
    return message


def test_not_a_checkpoint(folder: Path):
    text = folder / "notes.h5"
    text.write_text("these are not weights\n")
    noise = folder / "noise.pth"
    noise.write_bytes(bytes(np.random.default_rng(7).integers(0, 0x7F, 4096, dtype=np.uint8)))
    empty = folder / "empty.h5"
    empty.write_bytes(b"")
    assert "not a checkpoint" in _error(text)
    assert "not a checkpoint" in _error(noise)
    assert "empty file" in _error(empty)


def test_truncated(folder: Path, keras_file: Path, tv_file: Path):
    for source in (keras_file, tv_file):
        cut = folder / "cut" / source.name
        cut.parent.mkdir(exist_ok=True)
        data = source.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        assert "truncated or damaged" in _error(cut)


def test_other_width(keras_file: Path, tv_file: Path):
    spec = load_spec("mobilenet_v2", resolution=96)
    assert _error(keras_file, spec) == (
        f"{keras_file.name}: layer Conv1 has kernel (3, 3, 3, 16), the spec (width 1.0) "
        "needs (3, 3, 3, 32)"
    )
    assert _error(tv_file, spec) == (
        f"{tv_file.name}: layer features.0.0 has weight (16, 3, 3, 3), the spec (width 1.0) "
        "needs (32, 3, 3, 3)"
    )


def test_other_architecture(keras_file: Path, tv_file: Path):
    spec = load_spec("standard_conv", width=0.35, resolution=96)
    assert "layer expanded_conv_depthwise has kernel (3, 3, 16, 1)" in _error(keras_file, spec)
    assert "layer features.1.conv.0.0 has weight (16, 1, 3, 3)" in _error(tv_file, spec)
    # a 1x1-conv classifier without a bias (like the article's head)
    no_bias = dataclasses.replace(SPEC, head=dataclasses.replace(SPEC.head, classifier="conv1x1"))
    assert "layer predictions holds (kernel:0, bias:0)" in _error(keras_file, no_bias)
    assert "layer classifier.1 (classifier.1.bias) is not in the spec" in _error(tv_file, no_bias)


def test_keras_missing_and_extra_layers(folder: Path, keras_model):
    kept = [layer for layer in keras_model.layers if not layer.name.startswith("block_16_")]
    short = write_keras_legacy_h5(kept, folder / "short.h5")
    # block_16 is gone: Conv_1 (made for block_16's 112 channels) comes where block_16_expand
    # (56 -> 336 channels) should
    needed = (
        "layer Conv_1 has kernel (1, 1, 112, 1280), the spec (width 0.35) needs (1, 1, 56, 336)"
    )
    assert needed in _error(short)
    extra = keras.layers.Dense(10, name="extra")
    longer = keras.Model(keras_model.input, extra(keras_model.output))
    path = write_keras_legacy_h5(longer.layers, folder / "longer.h5")
    assert "layer extra is not in the spec" in _error(path)


def test_torchvision_missing_and_extra_layers(folder: Path, tv_model):
    state = tv_model.state_dict()
    missing = {k: v for k, v in state.items() if not k.startswith("features.5.conv.1.0.")}
    torch.save(missing, folder / "missing.pth")
    assert "no tensor features.5.conv.1.0.weight" in _error(folder / "missing.pth")
    torch.save({**state, "features.19.0.weight": torch.zeros(8)}, folder / "extra.pth")
    assert "layer features.19.0 (features.19.0.weight) is not in the spec" in _error(
        folder / "extra.pth"
    )


def test_keras_file_name_contradicts_spec(folder: Path, keras_file: Path):
    cases = {
        KERAS_NAME.format(0.35, 224, ""): "says resolution 224",
        KERAS_NAME.format(0.5, 96, ""): "says width 0.5, the spec has width 0.35",
        KERAS_NAME.format(0.35, 96, "_no_top"): "contradicts its content",
    }
    for name, fragment in cases.items():
        path = folder / "renamed" / name
        path.parent.mkdir(exist_ok=True)
        shutil.copy(keras_file, path)
        assert fragment in _error(path)


def test_keras_3_weights_file_is_not_the_legacy_layout(folder: Path, keras_model):
    path = folder / "model.weights.h5"
    keras_model.save_weights(path)
    assert "legacy Keras 'layer_names'" in _error(path)


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(folder: Path):
    marker = folder / "pwned"
    zipped = folder / "evil.pth"
    torch.save({"features.0.0.weight": _RunsCode(marker)}, zipped)
    raw = folder / "evil_raw.pth"
    raw.write_bytes(pickle.dumps(_RunsCode(marker), protocol=2))
    for path in (zipped, raw):
        message = _error(path)
        assert "refused" in message
        assert "posix.system" in message
    assert not marker.exists()


# -- the same function as the source framework ----------------------------------------


def _with_conventions(ckpt) -> ModelSpec:
    if not hasattr(ModelSpec, "with_conventions"):
        pytest.skip(NEEDS_CONVENTIONS)
    return SPEC.with_conventions(**ckpt.conventions)


def _ours(ckpt) -> np.ndarray:
    from harness.builders.pytorch import build

    model = build(_with_conventions(ckpt), ckpt.weights)
    with torch.no_grad():
        return model(torch.from_numpy(sample_input(SPEC, 4, 0))).numpy()


def test_keras_file_reproduces_keras_applications(keras_model, keras_ckpt):
    from harness.parity import compare

    ours = _ours(keras_ckpt)
    theirs = np.asarray(keras_model(sample_input(SPEC, 4, 0).transpose(0, 2, 3, 1)))
    assert compare(theirs, ours)["rel_l2_err"] < 1e-5


def test_torchvision_file_reproduces_torchvision(tv_model, tv_file: Path):
    from harness.parity import compare

    ckpt = read_checkpoint(tv_file, SPEC)
    ours = _ours(ckpt)
    with torch.no_grad():
        theirs = tv_model(torch.from_numpy(sample_input(SPEC, 4, 0))).numpy()
    assert compare(theirs, ours)["rel_l2_err"] < 1e-5
