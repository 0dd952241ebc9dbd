"""The hypothesis strategies draw only what fits, alone and composed."""

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import derive
import derive.registry
from numeric import strategies as S
from numeric.verification.run import data_shapes

SETTINGS = settings(max_examples=60, deadline=None)


def test_docstring_examples_run():
    assert doctest.testmod(S).failed == 0


@SETTINGS
@given(S.model_specs())
def test_specs_only_combine_what_fits(spec):
    assert S.fits(spec.output, spec.loss, spec.n_out)
    if spec.loss in ("cce", "sparse_cce"):
        assert spec.output == "softmax"
    if spec.loss in ("cce_logits", "bce_logits"):
        assert spec.output == "linear"
    if spec.loss == "bce":
        assert spec.output == "sigmoid"
    assert (spec.activation is None) == (len(spec.sizes) == 2)


@SETTINGS
@given(S.model_specs())
def test_spec_string_names_kind_and_sizes(spec):
    kind, rest = spec.spec.split(":")
    assert kind == spec.kind
    if kind == "mlp":
        assert tuple(int(n) for n in rest.split("-")) == spec.sizes
    elif kind == "chain":
        assert spec.sizes == (1,) * (int(rest) + 1)
    else:
        assert spec.sizes == (int(rest), 1) and (spec.output, spec.loss) == S.LOGREG_HEAD


@SETTINGS
@given(S.model_specs())
def test_cli_args_carry_every_option_the_spec_has(spec):
    args = spec.cli_args()
    assert args[0] == spec.spec
    opts = dict(zip(args[1::2], args[2::2], strict=True))
    if spec.kind == "logreg":
        assert opts == {}
    else:
        assert opts["--output"] == spec.output and opts["--loss"] == spec.loss
        assert opts.get("--activation") == spec.activation


@SETTINGS
@given(S.model_specs(kinds=("mlp", "chain"), activations=("relu",), losses=("mse", "cce")))
def test_restricting_the_choices_is_respected(spec):
    assert spec.kind in ("mlp", "chain") and spec.activation in (None, "relu")
    assert spec.loss in ("mse", "cce")


def test_choices_that_fit_nothing_are_an_error():
    @given(S.model_specs(kinds=("chain",), losses=("sparse_cce",)))
    def draw(spec):
        pass

    with pytest.raises(InvalidArgument, match="no kind"):
        draw()


@SETTINGS
@given(S.arrays_for({"W": (3, 2), "b": (2,), "s": ()}, dtype=np.float32))
def test_arrays_have_the_shapes_dtype_and_are_finite(p):
    assert {k: v.shape for k, v in p.items()} == {"W": (3, 2), "b": (2,), "s": ()}
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in p.values())


@SETTINGS
@given(st.sampled_from(S.TARGETS), st.integers(1, 4), st.integers(2, 4), st.data())
def test_data_targets_have_the_contract_shapes(targets, n_in, n_out, data):
    X, Y = data.draw(S.data_for(n_in, n_out, m=st.integers(1, 6), targets=targets))
    m = X.shape[0]
    assert X.shape == (m, n_in) and np.isfinite(X).all()
    if targets == "labels":
        assert Y.shape == (m,) and Y.dtype.kind == "i" and ((0 <= Y) & (Y < n_out)).all()
    else:
        assert Y.shape == (m, n_out)
    if targets == "onehot":
        assert (Y.sum(axis=1) == 1).all() and set(np.unique(Y)) <= {0.0, 1.0}
    if targets in ("unit", "binary"):
        assert ((0 <= Y) & (Y <= 1)).all()


@SETTINGS
@given(S.model_specs().flatmap(lambda s: st.tuples(st.just(s), S.data_for_spec(s, m=3))))
def test_specs_and_data_compose(spec_xy):
    spec, (X, Y) = spec_xy
    assert X.shape == (3, spec.n_in)
    if spec.kind == "logreg" or spec.loss == "sparse_cce":
        assert Y.shape == (3,)
    else:
        assert Y.shape == (3, spec.n_out)


# ---------------------------------------------------------------------------- built models

BUILD = settings(max_examples=25, deadline=None)


@BUILD
@given(S.model_specs())
def test_every_drawn_spec_builds(spec):
    model = S.model_for(spec)
    assert model.spec == spec.spec and model.loss == spec.loss
    assert model.output == spec.output


@SETTINGS
@given(st.sampled_from(S.OUTPUTS), st.sampled_from(sorted(derive.LOSSES)), st.integers(1, 3))
def test_fits_is_what_the_builders_accept(output, loss, n_out):
    try:
        derive.mlp([2, n_out], output=output, loss=loss)
    except derive.IncompatibleError:
        assert not S.fits(output, loss, n_out)
    else:
        assert S.fits(output, loss, n_out)


@BUILD
@given(S.model_specs(max_width=3).flatmap(lambda s: st.tuples(st.just(s), S.params_for(s))))
def test_params_have_the_shapes_the_model_declares(spec_params):
    spec, params = spec_params
    shapes = S.model_for(spec).param_shapes()
    assert {k: v.shape for k, v in params.items()} == shapes
    assert all(np.isfinite(v).all() for v in params.values())


@BUILD
@given(st.data())
def test_data_for_a_model_fits_its_contract_and_its_loss(data):
    spec = data.draw(S.model_specs(max_width=3))
    model = S.model_for(spec)
    X, Y = data.draw(S.data_for_model(model, m=4))
    assert {"X": X.shape, "Y": Y.shape} == data_shapes(model, 4)
    targets = derive.registry.loss(spec.loss).targets
    if targets == "one_hot":
        assert (Y.sum(axis=1) == 1).all()
    if targets == "labels":
        assert Y.dtype.kind == "i" and ((0 <= Y) & (Y < spec.n_out)).all()
    if targets == "binary":
        assert set(np.unique(Y)) <= {0.0, 1.0}


def test_data_for_an_expression_puts_its_inputs_in_columns():
    model = derive.from_expr("J = (w*x + b - y)**2", inputs=["x", "y"])

    @settings(max_examples=5, deadline=None)
    @given(S.data_for_model(model))
    def check(xy):
        X, Y = xy
        assert X.shape[1] == 2 and Y.shape == (X.shape[0], 0)

    check()


def test_targets_follow_the_registry():
    for name, loss in derive.LOSSES.items():
        spec = S.ModelSpec("mlp", (2, 3), None, loss.output or "linear", name)
        word = S.targets_for(spec)
        assert word == {"one_hot": "onehot"}.get(loss.targets, loss.targets)
