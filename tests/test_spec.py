from pathlib import Path

import pytest

from harness.exporters.artifacts import cache_key
from harness.spec import (
    Conventions,
    SpecError,
    available_models,
    final_feature_size,
    load_spec,
    spec_from_dict,
)

REFERENCE_TOML = (Path(__file__).parents[1] / "models" / "mobilenet_v2.toml").read_text()
KERAS_CONVENTIONS = '\n[conventions]\nbn_eps = 1e-3\nstride2_padding = "same"\n'


def write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def test_shipped_specs_load():
    assert available_models() == ["mobilenet_v2", "mobilenet_v2_article", "standard_conv"]
    ref = load_spec("mobilenet_v2")
    assert (ref.resolution, ref.classes, ref.width, ref.conv) == (224, 1000, 1.0, "depthwise")
    assert [(r.t, r.c, r.n, r.s) for r in ref.blocks.table][:2] == [(1, 16, 1, 1), (6, 24, 2, 2)]
    twin = load_spec("standard_conv")
    assert twin.conv == "standard"
    assert twin.blocks == ref.blocks
    assert twin.head == ref.head
    assert twin.stem == ref.stem
    article = load_spec("mobilenet_v2_article")
    assert article.blocks.expand_when_t1
    assert article.rounding == "truncate"
    assert article.stem.activation == "relu"
    assert article.head.pool == "avg7x7"


def test_load_by_path_and_overrides(tmp_path):
    path = write_spec(tmp_path, REFERENCE_TOML)
    spec = load_spec(path, width=1.4, resolution=192)
    assert (spec.width, spec.resolution) == (1.4, 192)
    assert final_feature_size(spec) == 6


def test_round_trip_through_dict():
    spec = load_spec("mobilenet_v2_article", width=0.5)
    assert spec_from_dict(spec.to_dict()).to_dict() == spec.to_dict()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("classes = 1000", "classes = 1000\ncolour = 1"), "model.colour"),
        (lambda t: t + "\n[extra]\nx = 1\n", "[extra]"),
        (lambda t: t.replace("classes = 1000\n", ""), "missing field model.classes"),
        (lambda t: t.replace("[stem]", "[stemm]"), "[stemm]"),
        (lambda t: t.replace("width = 1.0", "width = 0.0"), "model.width"),
        (lambda t: t.replace("width = 1.0", "width = -1"), "model.width"),
        (lambda t: t.replace("width = 1.0", 'width = "wide"'), "model.width"),
        (lambda t: t.replace("resolution = 224", "resolution = 16"), "resolution"),
        (lambda t: t.replace("resolution = 224", "resolution = 0"), "model.resolution"),
        (lambda t: t.replace("[1, 16, 1, 1]", "[1, 16, 1]"), "blocks.table[0]"),
        (lambda t: t.replace("[6, 24, 2, 2]", '[6, "24", 2, 2]'), "blocks.table[1]"),
        (lambda t: t.replace("[6, 24, 2, 2]", "[6, 24, 2, 3]"), "blocks.table[1]"),
        (lambda t: t.replace("[6, 24, 2, 2]", "[0, 24, 2, 2]"), "blocks.table[1]"),
        (lambda t: t.replace('conv = "depthwise"', 'conv = "grouped"'), "model.conv"),
        (lambda t: t.replace("softmax = false", "softmax = 1"), "head.softmax"),
        (lambda t: t.replace("[model]", "[model"), "not valid TOML"),
        (lambda t: t + "\n[conventions]\nbn_eps = 0\n", "conventions.bn_eps"),
        (lambda t: t + "\n[conventions]\nbn_eps = -1e-5\n", "conventions.bn_eps"),
        (lambda t: t + "\n[conventions]\nbn_eps = nan\n", "conventions.bn_eps"),
        (lambda t: t + '\n[conventions]\nbn_eps = "1e-5"\n', "conventions.bn_eps"),
        (lambda t: t + '\n[conventions]\nstride2_padding = "valid"\n', "stride2_padding"),
        (lambda t: t + "\n[conventions]\nstride2_padding = 1\n", "stride2_padding"),
        (lambda t: t + "\n[conventions]\nmomentum = 0.1\n", "conventions.momentum"),
    ],
)
def test_bad_specs_name_file_and_field(tmp_path, edit, message):
    path = write_spec(tmp_path, edit(REFERENCE_TOML))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    text = str(info.value)
    assert message in text
    assert str(path) in text
    assert "\n" not in text


def test_conventions_default_to_the_historical_ones():
    spec = load_spec("mobilenet_v2")
    assert spec.conventions == Conventions(bn_eps=1e-3, stride2_padding="symmetric")
    assert spec.to_dict()["conventions"] == {"bn_eps": 1e-3, "stride2_padding": "symmetric"}


def test_conventions_table(tmp_path):
    spec = load_spec(write_spec(tmp_path, REFERENCE_TOML + KERAS_CONVENTIONS))
    assert spec.conventions == Conventions(bn_eps=1e-3, stride2_padding="same")
    partial = REFERENCE_TOML + "\n[conventions]\nbn_eps = 1e-5\n"
    spec = load_spec(write_spec(tmp_path, partial))
    assert spec.conventions == Conventions(bn_eps=1e-5, stride2_padding="symmetric")


def test_conventions_round_trip_and_old_dicts(tmp_path):
    spec = load_spec(write_spec(tmp_path, REFERENCE_TOML + KERAS_CONVENTIONS), width=0.5)
    back = spec_from_dict(spec.to_dict())
    assert back.conventions == spec.conventions
    assert back.to_dict() == spec.to_dict()
    old = load_spec("mobilenet_v2").to_dict()
    del old["conventions"]  # a manifest written before the table existed
    assert spec_from_dict(old).conventions == Conventions()


def test_with_conventions():
    spec = load_spec("mobilenet_v2", width=0.35, resolution=96)
    torch_like = spec.with_conventions(bn_eps=1e-5)
    assert torch_like.conventions == Conventions(bn_eps=1e-5, stride2_padding="symmetric")
    keras_like = torch_like.with_conventions(bn_eps=1e-3, stride2_padding="same")
    assert keras_like.conventions == Conventions(bn_eps=1e-3, stride2_padding="same")
    assert (keras_like.width, keras_like.resolution) == (0.35, 96)
    assert len({cache_key(s, 0) for s in (spec, torch_like, keras_like)}) == 3
    with pytest.raises(SpecError, match=r"conventions\.bn_eps") as info:
        spec.with_conventions(bn_eps=0.0)
    assert spec.source in str(info.value)
    with pytest.raises(SpecError, match=r"conventions\.stride2_padding"):
        spec.with_conventions(stride2_padding="SAME")


def test_article_needs_a_7x7_final_map():
    assert load_spec("mobilenet_v2_article", resolution=200).resolution == 200
    with pytest.raises(SpecError, match="7x7"):
        load_spec("mobilenet_v2_article", resolution=192)


@pytest.mark.parametrize("width", [0, -0.5, 4.5, float("nan")])
def test_bad_width_override(width):
    with pytest.raises(SpecError, match="--width"):
        load_spec("mobilenet_v2", width=width)


def test_unknown_model_lists_choices():
    with pytest.raises(SpecError, match="mobilenet_v2, mobilenet_v2_article, standard_conv"):
        load_spec("resnet50")
