"""Read published MobileNetV2 checkpoints into the harness's weight layout.

Two layouts, detected from the file's first bytes (never from its name):

- ``keras_applications``: the legacy Keras HDF5 weights file that
  ``keras.applications.MobileNetV2`` downloads and caches,
  ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_<alpha>_<rows>[_no_top].h5``.
  Read with h5py. The layers are taken in the order of the file's ``layer_names``
  attribute, exactly as Keras' own legacy loader does: it ignores names, and the
  published files do not carry today's layer names (they come from the first
  Keras port, ``mobl1_conv_1_expand``, ``Logits``...). The ``predictions`` Dense is
  stored without its softmax (an activation has no weights), so the weights give logits.
- ``torchvision``: the state dict of ``torchvision.models.mobilenet_v2``
  (``mobilenet_v2-<hash>.pth``), loaded with ``torch.load(weights_only=True)``, so a
  pickle that would run code is refused rather than executed.

Every problem raises :class:`CheckpointError` with one line naming the file and
the first layer that does not fit the spec.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.architecture import Classifier, Conv, Network, resolve
from harness.spec import ModelSpec
from harness.weights import Weights

KERAS = "keras_applications"
TORCHVISION = "torchvision"

#: The numerics each source was trained with: BatchNorm epsilon and stride-2 padding.
CONVENTIONS: dict[str, dict[str, Any]] = {
    KERAS: {"bn_eps": 1e-3, "stride2_padding": "same"},
    TORCHVISION: {"bn_eps": 1e-5, "stride2_padding": "symmetric"},
}
#: Input preprocessing the weights expect: "keras" scales pixels to [-1, 1],
#: "torchvision" normalises with the ImageNet mean and std.
PREPROCESSING = {KERAS: "keras", TORCHVISION: "torchvision"}

#: keras.applications' cache name: alpha and rows as ``str(alpha)``, ``str(rows)``.
KERAS_FILE_NAME = re.compile(
    r"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_"
    r"(?P<alpha>\d+(?:\.\d+)?)_(?P<rows>\d+)(?P<no_top>_no_top)?\.h5"
)

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_BN_KERAS = ("gamma", "beta", "moving_mean", "moving_variance")
_BN_TORCH = ("weight", "bias", "running_mean", "running_var")
_BN_OURS = ("gamma", "beta", "mean", "var")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read for this spec; the message is one line."""


@dataclass(frozen=True)
class Checkpoint:
    """Published weights converted to :data:`harness.weights.Weights` for one spec."""

    weights: Weights  # our layout; no classifier entries when the file has none
    layout: str  # "keras_applications" | "torchvision"
    conventions: dict[str, Any]  # {"bn_eps": ..., "stride2_padding": "same" | "symmetric"}
    preprocessing: str  # "keras" ([-1, 1]) | "torchvision" (ImageNet mean/std)
    has_classifier: bool
    width: float | None  # as the file (its name) states it, else None
    resolution: int | None
    file: str
    sha256: str
    sources: dict[str, str]  # our key -> the tensor it was read from, in the file


def read_checkpoint(path: Path, spec: ModelSpec) -> Checkpoint:
    """Read a Keras-applications or torchvision MobileNetV2 file for ``spec``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path.name}: no such file")
    layout = detect_layout(path)
    net = resolve(spec)
    if layout == KERAS:
        weights, sources = _read_keras(path, net)
    else:
        weights, sources = _read_torchvision(path, net)
    has_classifier = f"{net.classifier.name}.weight" in weights
    width, resolution = None, None
    if layout == KERAS:
        width, resolution = _keras_name_claims(path, spec, has_classifier)
    sha256 = file_sha256(path)
    return Checkpoint(
        weights=weights,
        layout=layout,
        conventions=dict(CONVENTIONS[layout]),
        preprocessing=PREPROCESSING[layout],
        has_classifier=has_classifier,
        width=width,
        resolution=resolution,
        file=path.name,
        sha256=sha256,
        sources=sources,
    )


def file_sha256(path: Path) -> str:
    """sha256 of a checkpoint file's bytes: what names it in cache keys and manifests."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def detect_layout(path: Path) -> str:
    """``keras_applications`` for HDF5, ``torchvision`` for a PyTorch zip or pickle file."""
    with Path(path).open("rb") as f:
        head = f.read(8)
        if not head:
            raise CheckpointError(f"{path.name}: empty file, not a checkpoint")
        if head == _HDF5_SIGNATURE or _hdf5_after_user_block(f):
            return KERAS
    if head.startswith(b"PK\x03\x04"):  # torch.save's zip archive
        return TORCHVISION
    if head[0] == 0x80 and 2 <= head[1] <= 5:  # a pickle: torch.save's legacy format
        return TORCHVISION
    raise CheckpointError(
        f"{path.name}: not a checkpoint (neither a Keras HDF5 file nor a PyTorch zip or "
        "pickle file)"
    )


def _hdf5_after_user_block(f) -> bool:
    """HDF5 allows a user block: the signature may sit at 512, 1024, 2048... bytes."""
    offset = 512
    while True:
        f.seek(offset)
        head = f.read(8)
        if len(head) < 8:
            return False
        if head == _HDF5_SIGNATURE:
            return True
        offset *= 2


# -- what the spec needs, in execution order -----------------------------------------


@dataclass(frozen=True)
class _Layer:
    """One weighted layer of the spec as a source names and shapes it."""

    ours: str  # "block3.expand" / "block3.expand.bn" / "classifier"
    kind: str  # conv | dw | bn | dense
    theirs: str  # the source's name, for messages
    shapes: dict[str, tuple[int, ...]]  # tensor name -> shape in the source's layout


def _keras_plan(net: Network) -> list[_Layer]:
    """The weighted layers of keras.applications' MobileNetV2 for this plan, in order."""
    layers: list[_Layer] = []
    for conv in net.convs():
        conv_name, bn_name = _keras_names(conv)
        k, cin, cout = conv.kernel, conv.in_channels, conv.out_channels
        if conv.role == "dw":
            layers.append(_Layer(conv.name, "dw", conv_name, {"kernel": (k, k, cin, 1)}))
        else:
            in_per_group = cin // conv.groups
            layers.append(
                _Layer(conv.name, "conv", conv_name, {"kernel": (k, k, in_per_group, cout)})
            )
        shapes = dict.fromkeys(_BN_KERAS, (cout,))
        layers.append(_Layer(f"{conv.name}.bn", "bn", bn_name, shapes))
    cls = net.classifier
    shapes = {"kernel": (cls.in_features, cls.out_features)}
    layers.append(_Layer(cls.name, "dense", "predictions", _with_bias(shapes, cls)))
    return layers


def _with_bias(shapes: dict[str, tuple[int, ...]], cls: Classifier) -> dict[str, tuple[int, ...]]:
    """The published classifiers have a bias; a spec without one ("conv1x1") will not fit."""
    return {**shapes, "bias": (cls.out_features,)} if cls.bias else shapes


def _keras_names(conv: Conv) -> tuple[str, str]:
    """keras.applications' names for a conv and its BN (used in messages only)."""
    if conv.role == "stem":
        return "Conv1", "bn_Conv1"
    if conv.role == "head":
        return "Conv_1", "Conv_1_bn"
    index = int(conv.name.split(".")[0].removeprefix("block"))
    prefix = f"block_{index}_" if index else "expanded_conv_"
    role = {"dw": "depthwise", "conv": "depthwise"}.get(conv.role, conv.role)
    return prefix + role, f"{prefix}{role}_BN"


def _torchvision_plan(net: Network) -> list[_Layer]:
    """The weighted modules of torchvision's MobileNetV2 for this plan, in order."""
    layers: list[_Layer] = []
    modules = [("features.0.0", "features.0.1", net.stem)]
    for i, block in enumerate(net.blocks, start=1):
        for j, conv in enumerate(block.convs):
            if conv.role == "project":  # pw-linear: a bare Conv2d then its BatchNorm2d
                modules.append((f"features.{i}.conv.{j}", f"features.{i}.conv.{j + 1}", conv))
            else:  # ConvNormActivation: Sequential(Conv2d, BatchNorm2d, ReLU6)
                modules.append((f"features.{i}.conv.{j}.0", f"features.{i}.conv.{j}.1", conv))
    last = len(net.blocks) + 1
    modules.append((f"features.{last}.0", f"features.{last}.1", net.head))
    for conv_name, bn_name, conv in modules:
        layers.append(_Layer(conv.name, "conv", conv_name, {"weight": conv.weight_shape}))
        shapes = dict.fromkeys(_BN_TORCH, (conv.out_channels,))
        layers.append(_Layer(f"{conv.name}.bn", "bn", bn_name, shapes))
    cls = net.classifier
    shapes = {"weight": (cls.out_features, cls.in_features)}
    layers.append(_Layer(cls.name, "dense", "classifier.1", _with_bias(shapes, cls)))
    return layers


def _to_ours(layer: _Layer, tensors: dict[str, np.ndarray], layout: str) -> Weights:
    """Rename and transpose one layer's tensors (already shape-checked) to our layout."""
    if layer.kind == "bn":
        names = _BN_KERAS if layout == KERAS else _BN_TORCH
        return {f"{layer.ours}.{o}": tensors[t] for o, t in zip(_BN_OURS, names, strict=True)}
    if layout == TORCHVISION:
        return {f"{layer.ours}.{t}": v for t, v in tensors.items()}
    if layer.kind == "dense":  # (in, out) -> (out, in)
        out = {f"{layer.ours}.weight": tensors["kernel"].T}
        return out | ({f"{layer.ours}.bias": tensors["bias"]} if "bias" in tensors else {})
    # conv (kh, kw, in, out) -> (out, in, kh, kw); depthwise (kh, kw, C, 1) -> (C, 1, kh, kw)
    axes = (2, 3, 0, 1) if layer.kind == "dw" else (3, 2, 0, 1)
    return {f"{layer.ours}.weight": tensors["kernel"].transpose(axes)}


def _check_shapes(
    file: str, name: str, layer: _Layer, tensors: Mapping[str, Any], spec: ModelSpec
) -> None:
    """Every tensor of the layer must have the shape the spec needs, in the file's layout."""
    for tensor, needed in layer.shapes.items():
        shape = tuple(tensors[tensor].shape)
        if shape != needed:
            raise CheckpointError(
                f"{file}: layer {name} has {tensor} {shape}, the spec (width {spec.width}) "
                f"needs {needed}"
            )


def _float32(value: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(value, dtype=np.float32))


# -- Keras applications (legacy HDF5) --------------------------------------------------


def _read_keras(path: Path, net: Network) -> tuple[Weights, dict[str, str]]:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py comes with Keras
        raise CheckpointError(f"{path.name}: reading HDF5 needs h5py ({exc})") from None
    file = path.name
    try:
        with h5py.File(path, "r") as f:
            return _read_keras_group(_weights_group(f, file), file, net)
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{file}: truncated or damaged HDF5 file ({reason})") from None


def _weights_group(f, file: str):
    """The group holding ``layer_names``: the root, or ``model_weights`` of a saved model."""
    if "layer_names" in f.attrs:
        return f
    if "model_weights" in f and "layer_names" in f["model_weights"].attrs:
        return f["model_weights"]
    raise CheckpointError(
        f"{file}: HDF5 file without the legacy Keras 'layer_names' attribute (not a "
        "keras.applications weights file; a Keras 3 .weights.h5 file has another layout)"
    )


def _read_keras_group(group, file: str, net: Network) -> tuple[Weights, dict[str, str]]:
    """Match the file's weighted layers, in order, to the spec's; check shapes; convert."""
    found = list(_keras_layers(group))
    plan = _keras_plan(net)
    weights: Weights = {}
    sources: dict[str, str] = {}
    for index, layer in enumerate(plan):
        if index >= len(found):
            if layer.kind == "dense":  # a _no_top file ends after the head's BatchNorm
                break
            after = f"after layer {found[-1][0]}" if found else "with no weighted layer"
            raise CheckpointError(
                f"{file}: the file ends {after}; the spec needs layer {layer.theirs} "
                f"({layer.ours}) next"
            )
        name, datasets = found[index]
        tensors = _keras_tensors(file, name, datasets, layer)
        _check_shapes(file, name, layer, tensors, net.spec)
        converted = _to_ours(layer, {t: _float32(v[()]) for t, v in tensors.items()}, KERAS)
        weights.update(converted)
        for ours, (_, dataset) in zip(converted, _ordered(tensors, layer), strict=True):
            sources[ours] = dataset.name.lstrip("/")
    if len(found) > len(plan):
        raise CheckpointError(
            f"{file}: layer {found[len(plan)][0]} is not in the spec ({net.spec.name}): the "
            f"spec's last layer is {plan[-1].theirs}"
        )
    return weights, sources


def _ordered(tensors: dict[str, Any], layer: _Layer) -> list[tuple[str, Any]]:
    """The layer's tensors in the order :func:`_to_ours` emits them."""
    order = _BN_KERAS if layer.kind == "bn" else ("kernel", "bias")
    return [(t, tensors[t]) for t in order if t in tensors]


def _keras_layers(group) -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    """The file's layers that hold weights, in ``layer_names`` order, with their datasets."""
    for name in _attribute(group, "layer_names"):
        layer = group[name]
        weight_names = _attribute(layer, "weight_names")
        if weight_names:
            yield name, [(w, layer[w]) for w in weight_names]


def _keras_tensors(file: str, name: str, datasets: list, layer: _Layer) -> dict[str, Any]:
    """Name a layer's datasets by their base names (``kernel:0`` -> ``kernel``)."""
    tensors: dict[str, Any] = {}
    for weight_name, dataset in datasets:
        base = weight_name.rsplit("/", 1)[-1].split(":")[0]
        if base == "depthwise_kernel":  # Keras 2 names; Keras 3 calls it "kernel"
            base = "kernel"
        tensors[base] = dataset
    if set(tensors) != set(layer.shapes):
        held = ", ".join(w.rsplit("/", 1)[-1] for w, _ in datasets)
        raise CheckpointError(
            f"{file}: layer {name} holds ({held}); the spec needs the {_KIND[layer.kind]} "
            f"{layer.theirs} ({layer.ours}) here"
        )
    return tensors


_KIND = {"conv": "conv", "dw": "depthwise conv", "bn": "BatchNorm", "dense": "Dense classifier"}


def _attribute(group, name: str) -> list[str]:
    """A list-of-names attribute as Keras writes it, chunked into name0, name1... when large."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _keras_name_claims(
    path: Path, spec: ModelSpec, has_classifier: bool
) -> tuple[float | None, int | None]:
    """Width and resolution from keras.applications' file name; they must fit the spec."""
    match = KERAS_FILE_NAME.fullmatch(path.name)
    if match is None:
        return None, None
    width, rows = float(match["alpha"]), int(match["rows"])
    if not math.isclose(width, spec.width):
        raise CheckpointError(
            f"{path.name}: the file name says width {width:g}, the spec has width {spec.width:g}"
        )
    if rows != spec.resolution:
        raise CheckpointError(
            f"{path.name}: the file name says resolution {rows} (trained at {rows} px), the "
            f"spec has resolution {spec.resolution}"
        )
    if bool(match["no_top"]) == has_classifier:
        holds = "holds" if has_classifier else "has no"
        raise CheckpointError(
            f"{path.name}: the file name contradicts its content: it {holds} a classifier"
        )
    return width, rows


# -- torchvision (state dict) -----------------------------------------------------------


def _read_torchvision(path: Path, net: Network) -> tuple[Weights, dict[str, str]]:
    state = _load_state_dict(path)
    file = path.name
    plan = _torchvision_plan(net)
    if not any(k.startswith("classifier.") for k in state):
        plan = plan[:-1]  # a features-only state dict
    weights: Weights = {}
    sources: dict[str, str] = {}
    used: set[str] = set()
    for layer in plan:
        keys = {t: f"{layer.theirs}.{t}" for t in layer.shapes}
        missing = [k for k in keys.values() if k not in state]
        if missing:
            raise CheckpointError(
                f"{file}: no tensor {missing[0]}: the spec needs layer {layer.theirs} "
                f"({layer.ours}) here"
            )
        tensors = {t: state[k] for t, k in keys.items()}
        _check_shapes(file, layer.theirs, layer, tensors, net.spec)
        converted = _to_ours(
            layer, {t: _float32(v.float().numpy()) for t, v in tensors.items()}, TORCHVISION
        )
        weights.update(converted)
        sources.update(zip(converted, keys.values(), strict=True))
        used.update(keys.values())
        if layer.kind == "bn":
            used.add(f"{layer.theirs}.num_batches_tracked")
    extra = [k for k in state if k not in used]
    if extra:
        raise CheckpointError(
            f"{file}: layer {extra[0].rsplit('.', 1)[0]} ({extra[0]}) is not in the spec "
            f"({net.spec.name}, width {net.spec.width})"
        )
    return weights, sources


def _load_state_dict(path: Path) -> Mapping[str, Any]:
    """``torch.load(weights_only=True)``: tensors only, code-running pickles refused."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _refusal(str(exc))
        if reason is not None:
            raise CheckpointError(
                f"{path.name}: refused: the pickle would run code to load ({reason})"
            ) from None
        raise CheckpointError(f"{path.name}: truncated or damaged PyTorch file ({exc})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).split(". ")[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path.name}: truncated or damaged PyTorch file ({reason})"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(
            f"{path.name}: not a torchvision state dict (expected a flat dict of tensors, got "
            f"{type(state).__name__})"
        )
    return state


def _refusal(message: str) -> str | None:
    """The line of torch's weights-only error that names what it refused, if it refused."""
    if not message.startswith("Weights only load failed"):
        return None
    for line in message.splitlines():
        if "GLOBAL" in line or "nsupported" in line:
            return line.strip().rstrip(".")
    return None
