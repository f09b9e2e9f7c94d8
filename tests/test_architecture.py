import pytest

from harness.architecture import make_divisible, resolve
from harness.spec import load_spec


@pytest.mark.parametrize(
    ("value", "expected"),
    [(32.0, 32), (11.2, 16), (16 * 0.35, 8), (24 * 0.75, 24), (1280 * 1.4, 1792), (44.8, 48)],
)
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected


def test_reference_layout():
    net = resolve(load_spec("mobilenet_v2"))
    assert len(net.blocks) == 17
    assert [c.role for c in net.blocks[0].convs] == ["dw", "project"]  # t = 1: no expansion
    assert [c.role for c in net.blocks[1].convs] == ["expand", "dw", "project"]
    assert sum(b.residual for b in net.blocks) == 10
    dw = net.blocks[1].convs[1]
    assert (dw.name, dw.groups, dw.in_channels, dw.stride) == ("block1.dw", 96, 96, 2)
    assert net.head.out_channels == 1280
    assert net.classifier.bias


def test_standard_twin_changes_only_the_3x3_convs():
    ref = resolve(load_spec("mobilenet_v2"))
    twin = resolve(load_spec("standard_conv"))
    for a, b in zip(ref.convs(), twin.convs(), strict=True):
        if a.role == "dw":
            assert (b.role, b.groups) == ("conv", 1)
            assert (a.in_channels, a.out_channels, a.stride) == (
                b.in_channels,
                b.out_channels,
                b.stride,
            )
        else:
            assert a == b


def test_article_variant():
    net = resolve(load_spec("mobilenet_v2_article"))
    assert [c.role for c in net.blocks[0].convs] == ["expand", "dw", "project"]
    assert net.stem.activation == "relu"
    assert (net.classifier.kind, net.classifier.bias, net.softmax) == ("conv1x1", False, True)
    # int(c * width) rounding at width 0.35: 16 -> 5 channels (make_divisible gives 8)
    small = resolve(load_spec("mobilenet_v2_article", width=0.35))
    assert small.blocks[0].convs[-1].out_channels == 5


def test_head_widens_only_above_one():
    assert resolve(load_spec("mobilenet_v2", width=0.5)).head.out_channels == 1280
    assert resolve(load_spec("mobilenet_v2", width=1.4)).head.out_channels == 1792
