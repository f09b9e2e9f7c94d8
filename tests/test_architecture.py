import pytest

from harness.architecture import axis_pads, make_divisible, resolve, same_pads
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


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (96, 3, 2, (0, 1)),  # even input: the extra pixel goes after
        (48, 3, 2, (0, 1)),
        (95, 3, 2, (1, 1)),  # odd input: symmetric
        (7, 3, 2, (1, 1)),
        (224, 7, 2, (2, 3)),
        (225, 7, 2, (3, 3)),
        (4, 5, 2, (1, 2)),
        (96, 3, 1, (1, 1)),  # stride 1: symmetric for any size
        (95, 3, 1, (1, 1)),
        (96, 1, 1, (0, 0)),
        (96, 1, 2, (0, 0)),
    ],
)
def test_same_pads_follow_tensorflow(size, kernel, stride, expected):
    assert same_pads(size, kernel, stride) == expected
    assert axis_pads(size, kernel, stride, "same") == expected
    assert axis_pads(size, kernel, stride, "symmetric") == (kernel // 2, kernel // 2)


@pytest.mark.parametrize("resolution", [96, 95])
def test_conventions_reach_every_conv(resolution):
    spec = load_spec("mobilenet_v2", width=0.35, resolution=resolution)
    ours = resolve(spec.with_conventions(bn_eps=1e-5, stride2_padding="same"))
    historical = resolve(spec)
    convs = ours.convs()
    assert [c.in_size for c in convs[1:]] == [c.out_size for c in convs[:-1]]
    assert convs[0].in_size == resolution
    for conv, old in zip(convs, historical.convs(), strict=True):
        assert (conv.bn_eps, old.bn_eps) == (1e-5, 1e-3)
        assert old.pads == (conv.kernel // 2,) * 4
        assert (conv.in_size, conv.out_size) == (old.in_size, old.out_size)  # same MACs
        if conv.stride == 1 or conv.in_size % 2:
            assert conv.pads == old.pads
        else:
            assert conv.pads == (0, 1, 0, 1)
            assert not conv.symmetric
    asymmetric = [c.name for c in convs if not c.symmetric]
    if resolution == 96:
        assert asymmetric == ["stem", "block1.dw", "block3.dw", "block6.dw", "block13.dw"]
    else:  # 95 -> 48: the stem pads (1, 1), every later strided conv sees an even side
        assert asymmetric == ["block1.dw", "block3.dw", "block6.dw", "block13.dw"]
