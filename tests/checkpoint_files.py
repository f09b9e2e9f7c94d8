"""Checkpoint files in the published layouts, made here (nothing is downloaded).

- :func:`write_keras_legacy_h5` writes a Keras model's weights the way Keras 2's
  ``model.save_weights("x.h5")`` wrote the files keras.applications ships: root
  attributes ``layer_names`` (every layer, in model order), ``backend`` and
  ``keras_version``; one group per layer, created in sorted name order, with a
  ``weight_names`` attribute (``<layer>/<variable>:0``, trainable then non-trainable)
  and each dataset at ``<layer>/<layer>/<variable>:0``. The depthwise kernel is
  ``depthwise_kernel:0`` (Keras 3 renamed it ``kernel``).
- :class:`TorchvisionMobileNetV2` rebuilds the module tree of torchvision's
  ``torchvision/models/mobilenetv2.py`` (torchvision is not installed here), so its
  ``state_dict()`` has exactly the published keys and shapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

KERAS_2_VERSION = b"2.2.4"
#: keras.applications' cache name of a MobileNetV2 weights file: alpha, rows, "" or "_no_top".
KERAS_NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{}_{}{}.h5"


def keras_mobilenet_v2(alpha: float, rows: int, seed: int = 0, top: bool = True):
    """keras.applications' MobileNetV2 returning logits, with seeded random weights."""
    import keras

    model = keras.applications.MobileNetV2(
        weights=None,
        alpha=alpha,
        input_shape=(rows, rows, 3),
        include_top=top,
        classifier_activation=None,
    )
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        depthwise = type(layer).__name__ == "DepthwiseConv2D"
        values = [_random_value(rng, w.name, tuple(w.shape), depthwise) for w in layer.weights]
        if values:
            layer.set_weights(values)
    return model


def _random_value(
    rng: np.random.Generator, name: str, shape: tuple[int, ...], depthwise: bool
) -> np.ndarray:
    """He-scaled kernels and moderate BN statistics: activations stay finite and varied."""
    if name == "kernel":
        fan_in = shape[0] * shape[1] if depthwise else int(np.prod(shape[:-1]))
        value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    elif name == "gamma":
        value = rng.uniform(0.5, 1.0, shape)
    elif name in ("beta", "bias", "moving_mean"):
        value = rng.normal(0.0, 0.1, shape)
    elif name == "moving_variance":
        value = rng.uniform(0.5, 1.5, shape)
    else:
        raise ValueError(f"unexpected Keras variable {name}")
    return value.astype(np.float32)


def first_port_name(name: str) -> str:
    """The layer names of the first Keras port (keras#10047), which made the published files."""
    name = re.sub(r"^expanded_conv_", "block_0_", name)
    if name == "predictions":
        return "Logits"
    match = re.fullmatch(r"block_(\d+)_(expand|depthwise|project)(_BN)?", name)
    if match is None:
        return name
    i, role, bn = match.groups()
    return f"bn{i}_conv_{i}_bn_{role}" if bn else f"mobl{i}_conv_{i}_{role}"


def write_keras_legacy_h5(layers: Sequence, path: Path, rename: Callable[[str], str] = str) -> Path:
    """Write ``layers`` (a Keras model's ``.layers``) in Keras 2's legacy HDF5 weights layout."""
    import h5py

    names = [rename(layer.name) for layer in layers]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode("utf8") for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = KERAS_2_VERSION
        for name, layer in sorted(zip(names, layers, strict=True), key=lambda pair: pair[0]):
            group = f.create_group(name)
            weights = layer.trainable_weights + layer.non_trainable_weights
            weight_names = [f"{name}/{_keras_2_variable(layer, w)}:0" for w in weights]
            group.attrs["weight_names"] = np.array([w.encode("utf8") for w in weight_names])
            for weight_name, w in zip(weight_names, weights, strict=True):
                group.create_dataset(weight_name, data=np.asarray(w))
    return path


def _keras_2_variable(layer, weight) -> str:
    if type(layer).__name__ == "DepthwiseConv2D" and weight.name == "kernel":
        return "depthwise_kernel"
    return weight.name


def torchvision_model(width: float, seed: int = 0) -> TorchvisionMobileNetV2:
    """:class:`TorchvisionMobileNetV2` with seeded random BN statistics, in eval mode."""
    torch.manual_seed(seed)
    model = TorchvisionMobileNetV2(width)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.num_batches_tracked.fill_(1000)
    return model.eval()


def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision.models._utils._make_divisible."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvNormActivation(nn.Sequential):
    """torchvision.ops.misc.ConvNormActivation: Conv2d, BatchNorm2d, ReLU6."""

    def __init__(self, inp: int, oup: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        padding = (kernel - 1) // 2
        conv = nn.Conv2d(inp, oup, kernel, stride, padding, groups=groups, bias=False)
        super().__init__(conv, nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormActivation(inp, hidden, kernel=1))
        layers += [
            ConvNormActivation(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TorchvisionMobileNetV2(nn.Module):
    """torchvision.models.MobileNetV2's module tree (features..., classifier.1)."""

    SETTING = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        inp = _make_divisible(32 * width)
        last = _make_divisible(1280 * max(1.0, width))
        features: list[nn.Module] = [ConvNormActivation(3, inp, stride=2)]
        for t, c, n, s in self.SETTING:
            out = _make_divisible(c * width)
            for i in range(n):
                features.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
                inp = out
        features.append(ConvNormActivation(inp, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))
