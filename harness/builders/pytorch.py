"""Build a PyTorch ``nn.Module`` from a spec, with weights from :mod:`harness.weights`.

Module names follow the spec (``stem``, ``block3.expand``, ``block3.dw``,
``block3.project``, ``head``, ``classifier``), so the state dict is a name
lookup away from the shared weights. Input is NCHW float32.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from harness.architecture import Block, Conv, Network, resolve
from harness.spec import ModelSpec
from harness.weights import Weights, make_weights

_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}


class ConvBNAct(nn.Sequential):
    """[pad ->] Conv -> BatchNorm -> activation (none for a linear bottleneck).

    Symmetric padding is the conv's own ``padding``; asymmetric padding (TF "same"
    on an even input) is a ``ZeroPad2d`` named ``pad`` before a conv with none.
    """

    def __init__(self, conv: Conv) -> None:
        top, bottom, left, right = conv.pads
        layers: dict[str, nn.Module] = {}
        if not conv.symmetric:
            layers["pad"] = nn.ZeroPad2d((left, right, top, bottom))
        layers["conv"] = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel,
            stride=conv.stride,
            padding=top if conv.symmetric else 0,
            groups=conv.groups,
            bias=False,
        )
        layers["bn"] = nn.BatchNorm2d(conv.out_channels, eps=conv.bn_eps)
        if conv.activation is not None:
            layers["act"] = _ACTIVATIONS[conv.activation]()
        super().__init__(OrderedDict(layers))


class InvertedResidual(nn.Module):
    """[pw expand] -> dw (or standard 3x3) -> pw-linear, plus the skip when shapes allow."""

    def __init__(self, block: Block) -> None:
        super().__init__()
        self.residual = block.residual
        self.roles = [conv.role for conv in block.convs]
        for conv in block.convs:
            self.add_module(conv.role, ConvBNAct(conv))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for role in self.roles:
            out = getattr(self, role)(out)
        return x + out if self.residual else out


class MobileNet(nn.Module):
    """stem -> inverted residual blocks -> head -> pool -> classifier [-> softmax]."""

    def __init__(self, net: Network) -> None:
        super().__init__()
        self.stem = ConvBNAct(net.stem)
        self.block_names = [block.name for block in net.blocks]
        for block in net.blocks:
            self.add_module(block.name, InvertedResidual(block))
        self.head = ConvBNAct(net.head)
        # "avg7x7" is the article's fixed 7x7 pool; the spec validator guarantees a 7x7 map.
        self.pool = nn.AdaptiveAvgPool2d(1) if net.pool == "global" else nn.AvgPool2d(7)
        cls = net.classifier
        if cls.kind == "linear":
            self.classifier: nn.Module = nn.Linear(cls.in_features, cls.out_features)
        else:
            self.classifier = nn.Conv2d(cls.in_features, cls.out_features, 1, bias=False)
        self.softmax = net.softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in self.block_names:
            x = getattr(self, name)(x)
        x = self.pool(self.head(x))
        if isinstance(self.classifier, nn.Linear):
            x = self.classifier(torch.flatten(x, 1))
        else:
            x = torch.flatten(self.classifier(x), 1)
        return torch.softmax(x, dim=1) if self.softmax else x


def state_dict_from_weights(net: Network, weights: Weights) -> dict[str, torch.Tensor]:
    """Map the shared weights onto this builder's state-dict names."""
    state: dict[str, np.ndarray] = {}
    for conv in net.convs():
        state[f"{conv.name}.conv.weight"] = weights[f"{conv.name}.weight"]
        for ours, theirs in (
            ("gamma", "weight"),
            ("beta", "bias"),
            ("mean", "running_mean"),
            ("var", "running_var"),
        ):
            state[f"{conv.name}.bn.{theirs}"] = weights[f"{conv.name}.bn.{ours}"]
    cls = net.classifier
    w = weights[f"{cls.name}.weight"]
    state[f"{cls.name}.weight"] = w if cls.kind == "linear" else w[:, :, None, None]
    if cls.bias:
        state[f"{cls.name}.bias"] = weights[f"{cls.name}.bias"]
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def build(spec: ModelSpec, weights: Weights | None = None, seed: int = 0) -> MobileNet:
    """The spec as an eval-mode PyTorch module carrying the shared weights."""
    net = resolve(spec)
    model = MobileNet(net)
    state = state_dict_from_weights(
        net, weights if weights is not None else make_weights(spec, seed)
    )
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"weight transfer mismatch: missing {missing}, unexpected {unexpected}")
    return model.eval()


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
