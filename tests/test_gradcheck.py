"""check_gradients against gradients that are right (JAX autodiff as the oracle) and gradients
that are wrong in each of the ways people get them wrong.

The models are written once, generic over the array module, so the NumPy loss the checker
differentiates numerically and the JAX function autodiff differentiates are the same code.
"""

import doctest
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numeric import gradcheck as gc
from numeric.gradcheck.check import GradcheckInputError, assert_gradients, check_gradients

jax = pytest.importorskip("jax")
jnp = jax.numpy

SETTINGS = settings(max_examples=10, deadline=None)


def _act(name, xp):
    if name == "relu":
        return jax.nn.relu if xp is jnp else (lambda z: np.maximum(z, 0.0))
    return {
        "tanh": xp.tanh,
        "sigmoid": lambda z: 1 / (1 + xp.exp(-z)),
        "softplus": lambda z: xp.log1p(xp.exp(z)),
    }[name]


def mlp_loss(p, X, Y, xp, act="tanh", head="sse"):
    """Mean loss of an MLP with params W1, b1, W2, b2, ...; head "sse" or "ce" (softmax)."""
    n_layers = len(p) // 2
    A = X
    for k in range(1, n_layers + 1):
        Z = A @ p[f"W{k}"] + p[f"b{k}"]
        A = _act(act, xp)(Z) if k < n_layers else Z
    if head == "sse":
        return 0.5 * xp.sum((Z - Y) ** 2) / X.shape[0]
    Zs = Z - xp.max(Z, axis=1, keepdims=True)
    return xp.sum(xp.log(xp.sum(xp.exp(Zs), axis=1)) - xp.sum(Zs * Y, axis=1)) / X.shape[0]


def make_model(sizes=(5, 4, 3), m=16, act="tanh", head="sse", dtype=np.float64, seed=0):
    """(loss_fn, correct grad_fn, params, batch size); the gradient comes from JAX."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, sizes[0])).astype(dtype)
    if head == "sse":
        Y = rng.normal(size=(m, sizes[-1])).astype(dtype)
    else:
        Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], m)]
    params = {}
    for k, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False), 1):
        params[f"W{k}"] = (rng.normal(size=(a, b)) / np.sqrt(a)).astype(dtype)
        params[f"b{k}"] = rng.normal(scale=0.3, size=b).astype(dtype)

    def loss_fn(p):
        return float(mlp_loss(p, X, Y, np, act, head))

    def grad_fn(p):
        with jax.enable_x64(True):
            g = jax.grad(lambda q: mlp_loss(q, X, Y, jnp, act, head))(p)
        return {k: np.asarray(v) for k, v in g.items()}

    return loss_fn, grad_fn, params, m


def corrupted(grad_fn, change):
    def wrong(p):
        g = {k: np.array(v) for k, v in grad_fn(p).items()}
        change(g)
        return g

    return wrong


def test_docstring_examples_run():
    assert doctest.testmod(gc).failed == 0


# --------------------------------------------------------------------------- right gradients


@SETTINGS
@given(
    st.sampled_from(["tanh", "sigmoid", "relu", "softplus"]),
    st.sampled_from(["sse", "ce"]),
    st.integers(0, 10_000),
)
def test_correct_float64_gradients_pass(act, head, seed):
    loss, grad, params, _ = make_model(act=act, head=head, seed=seed)
    result = check_gradients(loss, grad, params)
    assert result.ok, result.report()
    assert result.mode == "exact"


@SETTINGS
@given(
    st.sampled_from(["tanh", "sigmoid", "relu"]),
    st.sampled_from(["sse", "ce"]),
    st.integers(0, 10_000),
)
def test_correct_float32_gradients_pass(act, head, seed):
    loss, grad, params, _ = make_model(act=act, head=head, dtype=np.float32, seed=seed)
    result = check_gradients(loss, grad, params)
    assert result.ok, result.report()
    assert result.dtype == "float32"


@SETTINGS
@given(st.sampled_from(["tanh", "relu"]), st.integers(0, 10_000))
def test_float32_loss_that_stays_float32_passes_without_upcast(act, seed):
    loss, grad, params, _ = make_model(act=act, head="ce", dtype=np.float32, seed=seed)
    as32 = lambda p: {k: np.asarray(v, np.float32) for k, v in p.items()}  # noqa: E731
    result = check_gradients(lambda p: loss(as32(p)), grad, params)
    assert result.ok, result.report()
    assert result.notes == ()  # no float64 evaluation was possible


def test_float32_params_are_differenced_in_float64_when_the_loss_allows():
    loss, grad, params, _ = make_model(dtype=np.float32, seed=8)
    result = check_gradients(loss, grad, params)
    assert result.ok and "upcast to float64" in result.notes[0]


def test_relu_exactly_at_its_kink_is_a_kink_not_a_failure():
    loss, grad, params, _ = make_model(act="relu", seed=3)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(16, 5))  # the X make_model drew
    params["b1"][1] = -(X[0] @ params["W1"][:, 1])  # z1[0, 1] is exactly 0
    assert (X @ params["W1"] + params["b1"])[0, 1] == 0.0
    result = check_gradients(loss, grad, params)
    assert result.ok, result.report()
    assert sum(p.kinks for p in result.params) > 0


@pytest.mark.parametrize("subgradient", [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5)])
def test_a_tie_in_a_max_is_a_kink_whichever_subgradient(subgradient):
    params = {"w": np.array([0.3, 0.3])}
    result = check_gradients(
        lambda p: float(np.max(p["w"])), lambda p: {"w": np.array(subgradient)}, params
    )
    assert result.ok, result.report()
    assert result.finding("w").kinks == 2


@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e8])
def test_tolerances_follow_the_scale_of_the_loss(scale):
    loss, grad, params, _ = make_model(seed=5)
    result = check_gradients(
        lambda p: scale * loss(p), lambda p: {k: scale * v for k, v in grad(p).items()}, params
    )
    assert result.ok, result.report()


def test_loss_and_grad_forms_are_equivalent():
    loss, grad, params, _ = make_model(seed=1)
    g = grad(params)
    pair = lambda p: (loss(p), g)  # noqa: E731  (the grads are only used at params)
    assert check_gradients(pair, None, params).ok
    assert check_gradients(params=params, loss_and_grad_fn=pair).ok
    assert check_gradients(loss, params=params, loss_and_grad_fn=pair).ok


def test_vectorized_loss_gives_the_same_verdict_in_fewer_calls():
    A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    params = {"w": np.array([0.2, -0.4, 1.1])}
    grad = lambda p: {"w": A @ p["w"]}  # noqa: E731
    loop = check_gradients(lambda p: float(0.5 * p["w"] @ A @ p["w"]), grad, params)
    batch = check_gradients(
        lambda p: 0.5 * np.einsum("ki,ij,kj->k", p["w"], A, p["w"]), grad, params, vectorized=True
    )
    assert loop.ok and batch.ok
    assert batch.loss_calls < loop.loss_calls / 3


# --------------------------------------------------------------------------- wrong gradients


def _transpose(g):
    g["W1"] = g["W1"].T.copy()


def _times(name, r):
    def change(g):
        g[name] = g[name] * r

    return change


def _row(g):
    g["W1"][2] *= 1.5


def _column(g):
    g["W2"][:, 1] = 0.3


def _single(g):
    g["W1"][1, 2] *= 1.01


def _zero(g):
    g["b1"][:] = 0.0


PATTERNS = {
    "x2": (_times("W1", 2.0), "W1", "x2", "off by ×2"),
    "x1/2": (_times("W2", 0.5), "W2", "x1/2", "off by ×½"),
    "sign": (_times("b1", -1.0), "b1", "sign", "sign flip"),
    "missing_1/m": (_times("W2", 16.0), "W2", "factor", "a missing 1/m if 16 is your batch"),
    "extra_1/m": (_times("b2", 1 / 16), "b2", "factor", "numeric / 16"),
    "transpose": (_transpose, "W1", "transpose", "numeric.T"),
    "row": (_row, "W1", "rows", "row [2] wrong"),
    "column": (_column, "W2", "columns", "column [1] wrong"),
    "single": (_single, "W1", "single", "only entry [1, 2]"),
    "zero": (_zero, "b1", "zero", "exactly 0"),
}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_error_pattern_is_caught_with_its_hint(pattern):
    change, name, kind, words = PATTERNS[pattern]
    loss, grad, params, _ = make_model(sizes=(4, 4, 3), seed=11)
    result = check_gradients(loss, corrupted(grad, change), params)
    assert not result.ok
    assert [p.name for p in result.params if not p.ok] == [name]
    finding = result.finding(name)
    assert finding.hint is not None and finding.hint.kind == kind, result.report()
    assert words in result.report()


def test_batch_size_names_the_missing_mean():
    loss, grad, params, m = make_model(seed=2)
    result = check_gradients(loss, corrupted(grad, _times("W1", m)), params, batch_size=m)
    assert "the 1/m of the batch mean is missing (batch_size = 16)" in result.report()


def test_single_entry_finding_has_every_number_a_person_needs():
    loss, grad, params, _ = make_model(sizes=(4, 4, 3), seed=11)
    true = grad(params)["W1"][1, 2]
    result = check_gradients(loss, corrupted(grad, _single), params)
    (entry,) = result.failures
    assert (entry.name, entry.index, entry.status) == ("W1", (1, 2), "fail")
    assert entry.analytic == pytest.approx(1.01 * true, rel=1e-12)
    assert entry.numeric == pytest.approx(true, rel=1e-9)
    assert entry.rel_err == pytest.approx(0.01, rel=1e-6)
    assert entry.abs_err > entry.tol and entry.broke == "rtol,atol"
    assert result.finding("W1").failed == 1 and result.finding("W1").size == 16


def test_nan_in_the_gradient_is_a_finding_not_a_crash():
    loss, grad, params, _ = make_model(seed=4)
    result = check_gradients(
        loss, corrupted(grad, lambda g: g["b2"].__setitem__(0, np.nan)), params
    )
    (entry,) = result.failures
    assert entry.where == "b2[0]" and entry.status == "nonfinite"
    assert "not finite" in result.report()


def test_float32_catches_one_entry_off_by_one_percent():
    loss, grad, params, _ = make_model(dtype=np.float32, seed=6)
    g = grad(params)["W1"]
    i = np.unravel_index(np.argmax(np.abs(g)), g.shape)
    result = check_gradients(
        loss, corrupted(grad, lambda d: d["W1"].__setitem__(i, 1.01 * g[i])), params
    )
    assert [e.index for e in result.failures] == [tuple(int(j) for j in i)]


def test_assert_gradients_raises_with_the_report():
    loss, grad, params, _ = make_model(seed=7)
    with pytest.raises(AssertionError, match=r"(?s)FAILED.*sign flip.*repro: assert_gradients"):
        assert_gradients(loss, corrupted(grad, _times("b1", -1.0)), params)


def test_report_is_aligned_and_names_entry_values_and_tolerance():
    loss, grad, params, _ = make_model(sizes=(4, 4, 3), seed=11)
    report = check_gradients(loss, corrupted(grad, _row), params).report()
    lines = report.splitlines()
    header = next(ln for ln in lines if ln.lstrip().startswith("entry"))
    rows = [ln for ln in lines if ln.lstrip().startswith("W1[")]
    assert len(rows) == 4
    for column in ("abs err", "rel err", "tol", "broke"):
        at = header.index(column)
        assert all(r[at - 1] == " " and r[at] != " " for r in rows), column
    assert "4 of 16 wrong" in report and "partial_derivative(loss_fn, params, 'W1'" in report


# --------------------------------------------------------------------------- large models


@pytest.fixture(scope="module")
def large():
    """An MLP 100-400-20 (48,420 params) with a correct gradient: fast mode by default."""
    loss, grad, params, m = make_model(sizes=(100, 400, 20), m=32, act="tanh", head="ce")
    return loss, grad(params), params


def test_large_models_use_fast_mode_and_pass_when_right(large):
    loss, g, params = large
    for seed in range(3):
        result = check_gradients(loss, lambda p: g, params, seed=seed)
        assert result.ok and result.mode == "fast", result.report()


def test_large_relu_model_passes_when_right():
    loss, grad, params, _ = make_model(sizes=(100, 400, 20), m=32, act="relu", head="ce")
    g = grad(params)
    result = check_gradients(loss, lambda p: g, params, seed=0)
    assert result.ok and result.mode == "fast", result.report()


@pytest.mark.parametrize("seed", range(4))
def test_fast_mode_localizes_one_coordinate_off_by_one_percent(large, seed):
    loss, g, params = large
    rng = np.random.default_rng(seed)
    name = "W1" if seed % 2 == 0 else "W2"
    mags = np.abs(g[name]).ravel()
    flat = rng.choice(np.flatnonzero(mags >= np.median(mags)))
    i = tuple(int(j) for j in np.unravel_index(flat, g[name].shape))
    bad = {k: v.copy() for k, v in g.items()}
    bad[name][i] *= 1.01
    result = check_gradients(loss, lambda p: bad, params, seed=seed)
    assert [(e.name, e.index) for e in result.failures] == [(name, i)], result.report()
    assert result.finding(name).failed == 1 and not result.finding(name).failed_at_least


def test_fast_mode_localizes_one_percent_in_float32():
    loss, grad, params, _ = make_model(
        sizes=(50, 200, 10), m=32, act="relu", head="ce", dtype=np.float32, seed=9
    )
    g = grad(params)
    assert check_gradients(loss, lambda p: g, params, seed=0).ok
    mags = np.abs(g["W1"])
    i = tuple(int(j) for j in np.argwhere(mags >= np.median(mags[mags > 0]))[7])
    bad = dict(g, W1=g["W1"].copy())
    bad["W1"][i] *= 1.01
    result = check_gradients(loss, lambda p: bad, params, seed=0)
    assert [(e.name, e.index) for e in result.failures] == [("W1", i)], result.report()


def test_fast_mode_names_a_whole_tensor_ratio(large):
    loss, g, params = large
    bad = dict(g, W2=2 * g["W2"])
    result = check_gradients(loss, lambda p: bad, params, seed=1)
    finding = result.finding("W2")
    assert not result.ok and finding.hint is not None and finding.hint.kind == "x2"
    assert finding.failed > 0.9 * finding.size


def test_fast_mode_reports_nan_entries(large):
    loss, g, params = large
    bad = {k: v.copy() for k, v in g.items()}
    bad["W1"][3, 7] = np.inf
    result = check_gradients(loss, lambda p: bad, params, seed=2)
    assert [(e.where, e.status) for e in result.failures] == [("W1[3, 7]", "nonfinite")]


def test_mode_is_chosen_by_parameter_count():
    assert gc.choose_mode(gc.EXACT_MAX_PARAMS) == "exact"
    assert gc.choose_mode(gc.EXACT_MAX_PARAMS + 1) == "fast"


# --------------------------------------------------------------------------- bad input


def _ok_loss(p):
    return float(np.sum(p["w"] ** 2))


def _ok_grad(p):
    return {"w": 2 * p["w"]}


@pytest.mark.parametrize(
    "params, grad, words",
    [
        ({"w": np.array([1, 2])}, _ok_grad, "dtype int64"),
        ({"w": np.array([1.0, np.nan])}, _ok_grad, "not finite at index (1,)"),
        ({}, _ok_grad, "non-empty dict"),
        ({"w": np.ones(2)}, lambda p: {"w": np.ones(2), "v": np.ones(2)}, "unexpected ['v']"),
        ({"w": np.ones(2), "b": np.array(0.0)}, _ok_grad, "missing ['b']"),
        ({"w": np.ones(2)}, lambda p: [2.0, 2.0], "must be a dict"),
        ({"w": np.ones(2)}, lambda p: {"w": np.ones(2, complex)}, "real floating-point"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_value(params, grad, words):
    with pytest.raises(GradcheckInputError) as info:
        check_gradients(_ok_loss, grad, params)
    assert isinstance(info.value, ValueError)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "shape, wrong, words",
    [
        ((2, 3), (3, 2), "a transpose?"),
        ((4, 3), (5, 4, 3), "one gradient per example"),
        ((2,), (3,), "has shape (3,)"),
    ],
)
def test_a_wrong_shaped_gradient_is_a_failed_check_not_an_exception(shape, wrong, words):
    params = {"w": np.ones(shape), "b": np.array(0.5)}
    loss = lambda p: float(np.sum(p["w"] ** 2) + p["b"] ** 2)  # noqa: E731
    result = check_gradients(loss, lambda p: {"w": np.ones(wrong), "b": 2 * p["b"]}, params)
    assert not result.ok and result.finding("b").ok
    assert result.finding("w").failed == np.prod(shape)
    assert words in result.report()
    with pytest.raises(AssertionError, match=re.escape(words)):
        assert_gradients(loss, lambda p: {"w": np.ones(wrong), "b": 2 * p["b"]}, params)


def test_grad_fn_none_with_a_plain_loss_says_what_to_pass():
    with pytest.raises(GradcheckInputError, match="grad_fn is None"):
        check_gradients(_ok_loss, None, {"w": np.ones(2)})


def test_non_finite_loss_and_bad_mode_are_rejected():
    with pytest.raises(GradcheckInputError, match="loss_fn\\(params\\) = nan"):
        check_gradients(lambda p: float("nan"), _ok_grad, {"w": np.ones(2)})
    with pytest.raises(GradcheckInputError, match="mode must be"):
        check_gradients(_ok_loss, _ok_grad, {"w": np.ones(2)}, mode="quick")
