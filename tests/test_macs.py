import pytest

from harness.macs import conv_macs, count
from harness.spec import load_spec

# tf-slim's MobileNetV2 table (millions of MACs, truncated): width -> resolution -> MMACs.
TF_SLIM_MMACS = {
    1.4: {224: 582},
    1.3: {224: 509},
    1.0: {224: 300, 192: 221, 160: 154, 128: 99, 96: 56},
    0.75: {224: 209, 192: 153, 160: 107, 128: 69, 96: 39},
    0.5: {224: 97, 192: 71, 160: 50, 128: 32, 96: 18},
    0.35: {224: 59, 192: 43, 160: 30, 128: 20, 96: 11},
}


def test_reference_counts():
    ref = count(load_spec("mobilenet_v2"))
    assert (ref.macs, ref.params) == (300_774_272, 3_504_872)
    wide = count(load_spec("mobilenet_v2", width=1.4))
    assert (wide.macs, wide.params) == (582_195_824, 6_108_776)


@pytest.mark.parametrize(
    ("width", "resolution", "mmacs"),
    [(w, r, m) for w, row in TF_SLIM_MMACS.items() for r, m in row.items()],
)
def test_matches_tf_slim_table(width, resolution, mmacs):
    assert (
        count(load_spec("mobilenet_v2", width=width, resolution=resolution)).macs // 10**6 == mmacs
    )


def test_article_worked_example():
    standard = conv_macs(64, 128, kernel=3, groups=1, out_h=112, out_w=112)
    depthwise = conv_macs(128, 128, kernel=3, groups=128, out_h=112, out_w=112)
    assert standard == 3 * 3 * 64 * 112 * 112 * 128 == 924_844_032
    assert depthwise == 14_450_688


def test_layer_table_sums_to_totals():
    counted = count(load_spec("mobilenet_v2"))
    assert sum(r.macs for r in counted.layers) == counted.macs
    assert sum(r.params for r in counted.layers) == counted.params
    names = [r.name for r in counted.layers]
    assert names[:3] == ["stem", "block0.dw", "block0.project"]
    assert names[-2:] == ["pool", "classifier"]
    stem = counted.layers[0]
    assert (stem.in_shape, stem.out_shape, stem.macs) == ((3, 224, 224), (32, 112, 112), 10_838_016)


def test_standard_twin_differs_only_in_3x3_convs():
    ref = count(load_spec("mobilenet_v2"))
    twin = count(load_spec("standard_conv"))
    for a, b in zip(ref.layers, twin.layers, strict=True):
        if a.kind == "dwconv":
            channels = a.in_shape[0]
            assert b.macs == a.macs * channels  # a full 3x3 conv sums over every input channel
        else:
            assert (a.macs, a.params) == (b.macs, b.params)
    assert 17 < twin.macs / ref.macs < 20  # the ~18x that the report puts against wall time


def test_article_counts_what_it_computes():
    ref = count(load_spec("mobilenet_v2"))
    article = count(load_spec("mobilenet_v2_article"))
    extra_expand = 32 * 32 * 112 * 112  # the 1x1 expansion the article adds to block 0
    assert article.macs == ref.macs + extra_expand
    # + expansion weights and BN (32*32 + 64); - classifier bias (1000)
    assert article.params == ref.params + 32 * 32 + 2 * 32 - 1000
