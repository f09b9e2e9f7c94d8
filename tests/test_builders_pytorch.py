import numpy as np
import pytest

from harness.macs import count
from harness.spec import load_spec
from harness.weights import make_weights, sample_input

torch = pytest.importorskip("torch")
from harness.builders.pytorch import build, trainable_params  # noqa: E402

SPECS = ("mobilenet_v2", "standard_conv", "mobilenet_v2_article")


@pytest.mark.parametrize("name", SPECS)
def test_params_equal_analytic_count(name):
    spec = load_spec(name)
    assert trainable_params(build(spec)) == count(spec).params


@pytest.mark.parametrize("width", [0.35, 1.4])
def test_params_at_other_widths(width):
    spec = load_spec("mobilenet_v2", width=width, resolution=96)
    assert trainable_params(build(spec)) == count(spec).params


def test_module_names_come_from_the_spec():
    model = build(load_spec("mobilenet_v2", resolution=96))
    names = dict(model.named_modules())
    for name in ("stem", "block0.dw", "block0.project", "block3.expand", "head", "classifier"):
        assert name in names
    assert "block0.expand" not in names


def test_weights_are_the_shared_ones():
    spec = load_spec("mobilenet_v2", resolution=96)
    weights = make_weights(spec, seed=3)
    state = build(spec, weights).state_dict()
    assert np.array_equal(state["block3.dw.conv.weight"].numpy(), weights["block3.dw.weight"])
    assert np.array_equal(state["block3.dw.bn.running_var"].numpy(), weights["block3.dw.bn.var"])


def test_article_outputs_probabilities():
    spec = load_spec("mobilenet_v2_article")
    with torch.no_grad():
        out = build(spec)(torch.from_numpy(sample_input(spec, 2))).numpy()
    assert out.shape == (2, 1000)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.fixture(scope="module")
def same_and_symmetric():
    """The same weights in a TF-"same" and a symmetric-padding model (eps 1e-5 both)."""
    spec = load_spec("mobilenet_v2", width=0.35, resolution=96).with_conventions(bn_eps=1e-5)
    same = spec.with_conventions(stride2_padding="same")
    weights = make_weights(same)
    return spec, build(same, weights), build(spec, weights)


def test_same_padding_keeps_the_state_dict(same_and_symmetric):
    _, same, symmetric = same_and_symmetric
    assert same.state_dict().keys() == symmetric.state_dict().keys()
    modules = dict(same.named_modules())
    assert modules["stem.pad"].padding == (0, 1, 0, 1)  # (left, right, top, bottom)
    assert modules["stem.conv"].padding == (0, 0)
    assert modules["block2.dw.conv"].padding == (1, 1)
    assert "block2.dw.pad" not in modules
    assert modules["block1.dw.bn"].eps == 1e-5
    assert not any(name.endswith(".pad") for name, _ in symmetric.named_modules())


def test_same_padding_changes_the_outputs(same_and_symmetric):
    """The convention cannot silently do nothing: same weights, different function."""
    from harness.parity import compare

    spec, same, symmetric = same_and_symmetric
    x = torch.from_numpy(sample_input(spec, 8))
    with torch.no_grad():
        errors = compare(symmetric(x).numpy(), same(x).numpy())
    assert errors["rel_l2_err"] > 0.05
