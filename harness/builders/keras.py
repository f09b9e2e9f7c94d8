"""Build a Keras 3 functional model from a spec, with weights from :mod:`harness.weights`.

Layer names follow the spec (``block3.expand.conv``, ``block3.expand.bn``, ...).
Input is NHWC float32. Strided convs pad exactly what ``Conv.pads`` says (the
spec's convention) with ``ZeroPadding2D`` and use "valid": Keras' own "same"
pads 0 before and 1 after on even inputs, which is only one of the conventions.
Stride-1 convs pad k // 2 on each side under both, so they use "same".
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from harness.architecture import Conv, Network, resolve
from harness.spec import ModelSpec
from harness.weights import Weights, make_weights

INPUT_NAME = "input"


def _conv_bn_act(x, conv: Conv):
    """Conv -> BatchNorm -> activation (none for a linear bottleneck)."""
    top, bottom, left, right = conv.pads
    if conv.stride > 1 and any(conv.pads):
        x = layers.ZeroPadding2D(((top, bottom), (left, right)), name=f"{conv.name}.pad")(x)
        padding = "valid"
    else:
        padding = "same"
    if conv.groups == 1:
        x = layers.Conv2D(
            conv.out_channels,
            conv.kernel,
            strides=conv.stride,
            padding=padding,
            use_bias=False,
            name=f"{conv.name}.conv",
        )(x)
    else:
        x = layers.DepthwiseConv2D(
            conv.kernel,
            strides=conv.stride,
            padding=padding,
            use_bias=False,
            name=f"{conv.name}.conv",
        )(x)
    x = layers.BatchNormalization(epsilon=conv.bn_eps, name=f"{conv.name}.bn")(x)
    if conv.activation is not None:
        max_value = 6.0 if conv.activation == "relu6" else None
        x = layers.ReLU(max_value=max_value, name=f"{conv.name}.act")(x)
    return x


def _model(net: Network) -> keras.Model:
    res = net.spec.resolution
    inputs = keras.Input((res, res, 3), name=INPUT_NAME)
    x = _conv_bn_act(inputs, net.stem)
    for block in net.blocks:
        shortcut = x
        for conv in block.convs:  # [pw expand] -> dw (or standard 3x3) -> pw-linear
            x = _conv_bn_act(x, conv)
        if block.residual:
            x = layers.Add(name=f"{block.name}.add")([shortcut, x])
    x = _conv_bn_act(x, net.head)
    cls = net.classifier
    if net.pool == "global":
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        x = layers.AveragePooling2D(7, name="pool")(x)
        x = layers.Flatten(name="pool.flatten")(x)
    if cls.kind == "linear":
        x = layers.Dense(cls.out_features, name=cls.name)(x)
    else:
        x = layers.Reshape((1, 1, cls.in_features), name="classifier.reshape")(x)
        x = layers.Conv2D(cls.out_features, 1, use_bias=False, name=cls.name)(x)
        x = layers.Flatten(name="classifier.flatten")(x)
    if net.softmax:
        x = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, x, name=net.spec.name)


def _keras_weights(net: Network, weights: Weights) -> dict[str, list[np.ndarray]]:
    """The shared (PyTorch-layout) weights rearranged per Keras layer."""
    out: dict[str, list[np.ndarray]] = {}
    for conv in net.convs():
        w = weights[f"{conv.name}.weight"]
        # torch (out, in/g, kh, kw) -> keras conv (kh, kw, in, out), depthwise (kh, kw, C, 1)
        out[f"{conv.name}.conv"] = [
            w.transpose(2, 3, 1, 0) if conv.groups == 1 else w.transpose(2, 3, 0, 1)
        ]
        out[f"{conv.name}.bn"] = [
            weights[f"{conv.name}.bn.{k}"] for k in ("gamma", "beta", "mean", "var")
        ]
    cls = net.classifier
    w = weights[f"{cls.name}.weight"].T  # (out, in) -> (in, out)
    if cls.kind == "linear":
        out[cls.name] = [w, weights[f"{cls.name}.bias"]]
    else:
        out[cls.name] = [w[None, None]]
    return out


def build(spec: ModelSpec, weights: Weights | None = None, seed: int = 0) -> keras.Model:
    """The spec as a Keras model carrying the shared weights."""
    net = resolve(spec)
    model = _model(net)
    per_layer = _keras_weights(net, weights if weights is not None else make_weights(spec, seed))
    for name, arrays in per_layer.items():
        model.get_layer(name).set_weights([np.ascontiguousarray(a) for a in arrays])
    return model


def trainable_params(model: keras.Model) -> int:
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
