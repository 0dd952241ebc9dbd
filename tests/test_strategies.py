"""The hypothesis strategies draw only what fits, alone and composed."""

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from numeric import strategies as S

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
