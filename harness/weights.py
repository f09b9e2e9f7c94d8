"""Deterministic weights from (spec, seed), shared by every builder.

Weights are plain numpy arrays in PyTorch layout (conv ``(out, in/groups, kh, kw)``,
linear ``(out, in)``), keyed ``<layer>.<tensor>`` with the layer names of
:mod:`harness.architecture`. Each layer draws from its own generator seeded by
(seed, layer name), so weights do not depend on the order layers are built in.

BatchNorm moving statistics are calibrated on a seeded batch with a small numpy
forward pass: each BN is given the mean and variance that its conv really
produces, so every activation stays near unit scale through the whole network
(no fp16 overflow, no collapse to zero) and the logits have a spread that
makes the top-1 class well separated.
"""

from __future__ import annotations

import zlib

import numpy as np

from harness.architecture import Conv, Network, resolve
from harness.spec import ModelSpec

Weights = dict[str, np.ndarray]

#: Calibration input: this many seeded images at the spec's resolution.
CALIBRATION_BATCH = 4
#: Target standard deviation of the logits.
LOGIT_STD = 4.0


def layer_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def sample_input(spec: ModelSpec, batch: int = 8, seed: int = 0) -> np.ndarray:
    """The fixed seeded input in NCHW float32 (standard normal, like normalised images)."""
    rng = np.random.default_rng([seed, 0x1A9E7])
    shape = (batch, 3, spec.resolution, spec.resolution)
    return rng.standard_normal(shape, dtype=np.float32)


def make_weights(spec: ModelSpec, seed: int = 0) -> Weights:
    """Generate and calibrate every trainable tensor and BN statistic of ``spec``."""
    net = resolve(spec)
    weights: Weights = {}
    x = sample_input(spec, CALIBRATION_BATCH, seed + 1).transpose(0, 2, 3, 1)
    x = _calibrated_conv(net.stem, x, seed, weights)
    for block in net.blocks:
        shortcut = x
        for conv in block.convs:
            x = _calibrated_conv(conv, x, seed, weights)
        if block.residual:
            x = x + shortcut
    x = _calibrated_conv(net.head, x, seed, weights)
    _init_classifier(net, x.mean(axis=(1, 2)), seed, weights)
    return weights


def _calibrated_conv(conv: Conv, x: np.ndarray, seed: int, weights: Weights) -> np.ndarray:
    """Draw the conv's weights, set its BN statistics from its real output, apply it."""
    rng = layer_rng(seed, conv.name)
    fan_in = conv.kernel * conv.kernel * (conv.in_channels // conv.groups)
    w = rng.normal(0.0, np.sqrt(2.0 / fan_in), conv.weight_shape).astype(np.float32)
    y = conv2d_nhwc(x, w, conv.stride, conv.pads, conv.groups)
    mean = y.mean(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    var = y.var(axis=(0, 1, 2), dtype=np.float64).astype(np.float32) + np.float32(1e-3)
    if conv.activation is None:
        # Linear bottleneck: smaller scale so residual sums stay near unit variance.
        gamma = rng.uniform(0.4, 0.7, conv.out_channels).astype(np.float32)
        beta = rng.normal(0.0, 0.1, conv.out_channels).astype(np.float32)
    else:
        gamma = rng.uniform(0.8, 1.2, conv.out_channels).astype(np.float32)
        beta = rng.normal(0.3, 0.1, conv.out_channels).astype(np.float32)
    weights[f"{conv.name}.weight"] = w
    weights[f"{conv.name}.bn.gamma"] = gamma
    weights[f"{conv.name}.bn.beta"] = beta
    weights[f"{conv.name}.bn.mean"] = mean
    weights[f"{conv.name}.bn.var"] = var
    y = (y - mean) / np.sqrt(var + conv.bn_eps) * gamma + beta
    return activate(y, conv.activation).astype(np.float32)


def _init_classifier(net: Network, pooled: np.ndarray, seed: int, weights: Weights) -> None:
    """Random classifier orthogonal to the mean feature, so logits follow the input.

    Random-weight features share a large common component; projecting it out
    keeps inputs from all landing on the same class with tiny margins.
    """
    cls = net.classifier
    rng = layer_rng(seed, cls.name)
    w = rng.standard_normal((cls.out_features, cls.in_features))
    mean = pooled.mean(axis=0, dtype=np.float64)
    w -= np.outer(w @ mean, mean) / max(float(mean @ mean), 1e-12)
    logits = (pooled - mean) @ w.T
    w *= LOGIT_STD / max(float(logits.std()), 1e-6)
    weights[f"{cls.name}.weight"] = w.astype(np.float32)
    if cls.bias:
        weights[f"{cls.name}.bias"] = rng.normal(0.0, 0.1, cls.out_features).astype(np.float32)


def activate(x: np.ndarray, activation: str | None) -> np.ndarray:
    if activation == "relu":
        return np.maximum(x, 0)
    if activation == "relu6":
        return np.clip(x, 0, 6)
    return x


def conv2d_nhwc(
    x: np.ndarray,
    w: np.ndarray,
    stride: int,
    padding: int | tuple[int, int, int, int],
    groups: int,
) -> np.ndarray:
    """Reference 2D convolution: NHWC input, torch-layout weight, groups 1 or depthwise.

    ``padding`` is one number for every side or (top, bottom, left, right).
    """
    n, h, wd, c = x.shape
    out_c, _, kh, kw = w.shape
    if groups not in (1, c) or (groups == c and out_c != c):
        raise ValueError(f"conv2d_nhwc supports groups 1 or depthwise, got {groups}")
    top, bottom, left, right = (padding,) * 4 if isinstance(padding, int) else padding
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh = (h + top + bottom - kh) // stride + 1
    ow = (wd + left + right - kw) // stride + 1
    out = np.zeros((n, oh, ow, out_c), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            tap = xp[
                :, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride
            ]
            if groups == 1:
                out += tap @ w[:, :, i, j].T
            else:
                out += tap * w[:, 0, i, j]
    return out
