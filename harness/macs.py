"""Analytic MACs and trainable parameters, per layer, from the spec alone.

Convention (docs/models.md): MACs count the multiply-adds of convolutions and the
classifier; BatchNorm is folded, activations, residual adds and pooling are not
counted. Parameters are trainable ones: conv and classifier weights, classifier
bias, BatchNorm gamma and beta (not the moving statistics).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.architecture import Conv, Network, resolve
from harness.spec import ModelSpec


@dataclass(frozen=True)
class LayerCount:
    name: str
    kind: str  # conv | dwconv | pool | linear
    in_shape: tuple[int, int, int]  # (C, H, W)
    out_shape: tuple[int, int, int]
    kernel: int
    stride: int
    groups: int
    macs: int
    params: int


@dataclass(frozen=True)
class ModelCount:
    model: str
    width: float
    resolution: int
    conv: str
    macs: int
    params: int
    layers: tuple[LayerCount, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def conv_macs(
    in_channels: int, out_channels: int, kernel: int, groups: int, out_h: int, out_w: int
) -> int:
    """Multiply-adds of a 2D convolution: k*k*(in/groups) per output element."""
    return kernel * kernel * (in_channels // groups) * out_channels * out_h * out_w


def _conv_count(conv: Conv, size: int) -> tuple[LayerCount, int]:
    out = conv_output_size(size, conv.kernel, conv.stride, conv.padding)
    weights = conv.out_channels * (conv.in_channels // conv.groups) * conv.kernel**2
    row = LayerCount(
        name=conv.name,
        kind="dwconv" if conv.groups > 1 else "conv",
        in_shape=(conv.in_channels, size, size),
        out_shape=(conv.out_channels, out, out),
        kernel=conv.kernel,
        stride=conv.stride,
        groups=conv.groups,
        macs=conv_macs(conv.in_channels, conv.out_channels, conv.kernel, conv.groups, out, out),
        params=weights + 2 * conv.out_channels,  # + BatchNorm gamma and beta
    )
    return row, out


def count_network(net: Network) -> ModelCount:
    """Per-layer MACs and parameters of a resolved network."""
    rows: list[LayerCount] = []
    size = net.spec.resolution
    for conv in net.convs():
        row, size = _conv_count(conv, size)
        rows.append(row)
    channels = net.head.out_channels
    pooled = 1 if net.pool == "global" else conv_output_size(size, 7, 7, 0)
    rows.append(
        LayerCount(
            "pool", "pool", (channels, size, size), (channels, pooled, pooled), 0, 0, 1, 0, 0
        )
    )
    cls = net.classifier
    rows.append(
        LayerCount(
            name=cls.name,
            kind="linear" if cls.kind == "linear" else "conv",
            in_shape=(cls.in_features, 1, 1),
            out_shape=(cls.out_features, 1, 1),
            kernel=1,
            stride=1,
            groups=1,
            macs=cls.in_features * cls.out_features,
            params=cls.in_features * cls.out_features + (cls.out_features if cls.bias else 0),
        )
    )
    spec = net.spec
    return ModelCount(
        model=spec.name,
        width=spec.width,
        resolution=spec.resolution,
        conv=spec.conv,
        macs=sum(r.macs for r in rows),
        params=sum(r.params for r in rows),
        layers=tuple(rows),
    )


def count(spec: ModelSpec) -> ModelCount:
    """Per-layer MACs and parameters of a spec."""
    return count_network(resolve(spec))
