"""Resolve a spec into concrete layers: names, channels, kernels, strides.

Every consumer (MAC counts, weights, builders) walks this one resolved plan, so
the rounding rules and the block layout are written once. No framework imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.spec import DEFAULT_BN_EPS, ModelSpec

#: The BatchNorm epsilon of a spec without a ``[conventions]`` table.
BN_EPS = DEFAULT_BN_EPS


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding of one axis: (before, after), the extra pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def axis_pads(size: int, kernel: int, stride: int, mode: str) -> tuple[int, int]:
    """(before, after) padding of one axis under a spec's ``stride2_padding`` convention.

    Both conventions give ceil(size / stride) outputs for odd kernels, and both
    pad kernel // 2 on each side at stride 1; they differ on strided convs over
    even inputs ("same" pads (0, 1) where "symmetric" pads (1, 1) for a 3x3).
    """
    if mode == "same":
        return same_pads(size, kernel, stride)
    if mode == "symmetric":
        return kernel // 2, kernel // 2
    raise ValueError(f"unknown padding convention {mode!r}")


@dataclass(frozen=True)
class Conv:
    """A convolution followed by BatchNorm and an optional activation.

    ``in_size`` is the side of the (square) input feature map; with the spec's
    ``padding_mode`` it fixes the padding on each side (:attr:`pads`), which
    builders apply exactly. ``bn_eps`` is the BatchNorm epsilon.
    """

    name: str
    role: str  # stem | expand | dw | conv | project | head
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    groups: int
    activation: str | None  # "relu" | "relu6" | None (linear bottleneck)
    in_size: int
    padding_mode: str = "symmetric"  # spec.conventions.stride2_padding
    bn_eps: float = BN_EPS

    @property
    def padding(self) -> int:
        """Symmetric padding per side, k // 2: the output size is the same as with :attr:`pads`."""
        return self.kernel // 2

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """Padding (top, bottom, left, right) under the spec's convention."""
        before, after = axis_pads(self.in_size, self.kernel, self.stride, self.padding_mode)
        return before, after, before, after

    @property
    def symmetric(self) -> bool:
        """Whether every side pads the same (then one ``padding=`` number says it)."""
        return len(set(self.pads)) == 1

    @property
    def out_size(self) -> int:
        top, bottom, _, _ = self.pads
        return (self.in_size + top + bottom - self.kernel) // self.stride + 1

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """PyTorch layout (out, in / groups, kh, kw): the canonical layout of our weights."""
        return (self.out_channels, self.in_channels // self.groups, self.kernel, self.kernel)


@dataclass(frozen=True)
class Block:
    """An inverted residual block: [expand] -> dw (or a standard 3x3) -> project."""

    name: str
    convs: tuple[Conv, ...]
    residual: bool


@dataclass(frozen=True)
class Classifier:
    name: str
    kind: str  # linear (with bias) | conv1x1 (no bias)
    in_features: int
    out_features: int

    @property
    def bias(self) -> bool:
        return self.kind == "linear"

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """PyTorch/Core ML layout: ``(out, in)``, or ``(out, in, 1, 1)`` as a 1x1 conv."""
        shape = (self.out_features, self.in_features)
        return shape if self.kind == "linear" else (*shape, 1, 1)


@dataclass(frozen=True)
class Network:
    """The whole network, in execution order."""

    spec: ModelSpec
    stem: Conv
    blocks: tuple[Block, ...]
    head: Conv
    pool: str
    classifier: Classifier
    softmax: bool

    def convs(self) -> list[Conv]:
        """Every convolution in execution order."""
        return [self.stem, *(c for b in self.blocks for c in b.convs), self.head]

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Conv and classifier weight shapes in execution order, PyTorch/Core ML layout."""
        return [*(conv.weight_shape for conv in self.convs()), self.classifier.weight_shape]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor``, never more than 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def scaled_channels(spec: ModelSpec, channels: int) -> int:
    """Channels after the width multiplier, rounded the spec's way."""
    value = channels * spec.width
    if spec.rounding == "make_divisible":
        return make_divisible(value)
    return max(1, int(value))


def head_channels(spec: ModelSpec) -> int:
    mode = spec.head.scale_channels
    if mode == "always" or (mode == "above_one" and spec.width > 1.0):
        return scaled_channels(spec, spec.head.channels)
    return spec.head.channels


class _Planner:
    """Makes the convs in execution order, tracking the feature-map side between them."""

    def __init__(self, spec: ModelSpec) -> None:
        self.size = spec.resolution
        self.conventions = spec.conventions

    def conv(self, *layer: Any) -> Conv:
        """``Conv(name, role, in, out, kernel, stride, groups, activation)`` at the current side."""
        ours = self.conventions
        conv = Conv(
            *layer, in_size=self.size, padding_mode=ours.stride2_padding, bn_eps=ours.bn_eps
        )
        self.size = conv.out_size
        return conv


def resolve(spec: ModelSpec) -> Network:
    """Turn the spec's tables into the concrete layer plan."""
    plan = _Planner(spec)
    stem_out = scaled_channels(spec, spec.stem.channels)
    stem = plan.conv(
        "stem", "stem", 3, stem_out, spec.stem.kernel, spec.stem.stride, 1, spec.stem.activation
    )
    act = spec.blocks.activation
    blocks: list[Block] = []
    channels = stem_out
    for row in spec.blocks.table:
        out = scaled_channels(spec, row.c)
        for repeat in range(row.n):
            name = f"block{len(blocks)}"
            stride = row.s if repeat == 0 else 1
            hidden = channels * row.t
            convs: list[Conv] = []
            if row.t != 1 or spec.blocks.expand_when_t1:
                # pw: 1x1 expansion to in * t channels
                convs.append(plan.conv(f"{name}.expand", "expand", channels, hidden, 1, 1, 1, act))
            # dw: 3x3 spatial conv, depthwise (groups = channels) or standard (groups = 1)
            depthwise = spec.conv == "depthwise"
            role = "dw" if depthwise else "conv"
            groups = hidden if depthwise else 1
            convs.append(plan.conv(f"{name}.{role}", role, hidden, hidden, 3, stride, groups, act))
            # pw-linear: 1x1 projection, no activation
            convs.append(plan.conv(f"{name}.project", "project", hidden, out, 1, 1, 1, None))
            blocks.append(Block(name, tuple(convs), residual=stride == 1 and channels == out))
            channels = out
    head_out = head_channels(spec)
    head = plan.conv("head", "head", channels, head_out, 1, 1, 1, spec.head.activation)
    classifier = Classifier("classifier", spec.head.classifier, head_out, spec.classes)
    return Network(
        spec=spec,
        stem=stem,
        blocks=tuple(blocks),
        head=head,
        pool=spec.head.pool,
        classifier=classifier,
        softmax=spec.head.softmax,
    )
