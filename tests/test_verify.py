"""numeric.verify: right kernels pass, wrong ones are caught by JAX and by finite differences,
kinks are reported as kinks, float32 raises no false alarm, JAX's settings stay the user's.

Broken kernels are made by editing the generated source, the way a person's slip would look:
a line of ``loss_and_grads`` changed, or its returned gradients altered on the way out.
"""

import doctest
import functools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derive
from derive.spec import build
from numeric import codegen, strategies
from numeric.generator.kernel import Kernel
from numeric.verification import jax_route
from numeric.verification import run as verify_module
from numeric.verification.run import data_shapes, sample_data, sample_params, verify

jax = pytest.importorskip("jax")

SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@functools.cache
def built(spec, **options):
    """Model and its kernel, built once per spec (derive + codegen dominate small checks)."""
    model = build(spec, for_kernels=True, **options)
    return model, codegen(model.derive())


@functools.cache
def built_spec(spec: strategies.ModelSpec):
    model = strategies.model_for(spec)
    return model, codegen(model.derive())


# ---------------------------------------------------------------------------- broken kernels


def _variant(kernel: Kernel, source: str, tag: str) -> Kernel:
    return Kernel(source, kernel.lines, kernel.params, kernel.target, kernel.derivation,
                  name=f"{kernel.name} ({tag})")  # fmt: skip


def with_gradient(kernel: Kernel, name: str, expr: str) -> Kernel:
    """The kernel with ``grads[name]`` replaced by ``expr`` (``g`` is the right gradient,
    ``m`` the batch size) as ``loss_and_grads`` returns it."""
    source = kernel.source.replace("def loss_and_grads(", "def _right_loss_and_grads(")
    source += (
        "\n\ndef loss_and_grads(params, X, Y):\n"
        "    J, grads = _right_loss_and_grads(params, X, Y)\n"
        f"    g, m = grads[{name!r}], X.shape[0]\n"
        f"    grads[{name!r}] = {expr}\n"
        "    return J, grads\n"
    )
    return _variant(kernel, source, f"{name} = {expr}")


def with_line(kernel: Kernel, target: str, rewrite) -> Kernel:
    """The kernel with the line ``target = ...`` of ``loss_and_grads`` rewritten:
    ``rewrite(rhs) -> new rhs`` (the comment is kept)."""
    head, body = kernel.source.split("def loss_and_grads(", 1)
    pattern = re.compile(rf"^(\s+{re.escape(target)} = )(.*?)(  #.*)?$", re.MULTILINE)
    match = pattern.search(body)
    assert match is not None, f"no line '{target} = ...' in the generated loss_and_grads"
    new = match.group(1) + rewrite(match.group(2)) + (match.group(3) or "")
    body = body[: match.start()] + new + body[match.end() :]
    return _variant(kernel, head + "def loss_and_grads(" + body, f"{target} rewritten")


# ---------------------------------------------------------------------------- right kernels


def test_docstring_examples_run():
    assert doctest.testmod(verify_module).failed == 0
    assert doctest.testmod(jax_route).failed == 0


@pytest.mark.parametrize(
    "spec, options",
    [
        ("logreg:3", {}),
        ("chain:3", {}),
        ("chain:3", dict(level="matrix")),
        ("mlp:4-5-3", dict(activation="tanh", output="softmax", loss="cce")),
        ("J = 3*(a + b*c)", {}),
    ],
)
def test_right_kernels_agree_with_jax_to_1e_10_in_float64(spec, options):
    model, kernel = built(spec, **options)
    result = verify(model, kernel=kernel)
    assert result.ok, result.report()
    assert all(row.verdict == "ok" for row in result.rows)
    assert all(not row.jax_rel > 1e-10 for row in result.rows)  # NaN: a zero gradient
    assert [row.name for row in result.rows] == list(model.param_shapes())


@SETTINGS
@given(strategies.model_specs(max_width=4, max_hidden=2, max_depth=3), st.integers(0, 2**16))
def test_right_kernels_pass_for_every_kind_of_model(spec, seed):
    model, kernel = built_spec(spec)
    for dtype in ("float64", "float32"):
        result = verify(model, dtype=dtype, batch=5, seed=seed, kernel=kernel)
        assert result.ok, result.report()


@SETTINGS
@given(st.data())
def test_right_kernels_pass_at_edge_values_hypothesis_picks(data):
    """Zeros, repeated values, tiny and large entries: ties in a softmax, relu exactly at 0,
    saturated sigmoids. Disagreements there are kinks or rounding, never failures."""
    # mae at a = y: sign(0) = 0 here, 1 in jnp.abs (README); when a - y is 0 in one route and
    # a rounding error in the other, no step of FD can see that kink, so the routes differ
    losses = tuple(loss for loss in strategies.LOSSES if loss != "mae")
    specs = strategies.model_specs(kinds=("mlp", "chain"), losses=losses, max_width=3, max_hidden=1)
    spec = data.draw(specs)
    model, kernel = built_spec(spec)
    dtype = data.draw(st.sampled_from(["float64", "float32"]))
    params = data.draw(strategies.params_for(model, dtype=dtype))
    X, Y = data.draw(strategies.data_for_model(model, m=st.integers(1, 4), dtype=dtype))
    with np.errstate(all="ignore"):
        if not np.isfinite(kernel.loss(params, X, Y)):
            return
    result = verify(model, dtype=dtype, kernel=kernel, params=params, data=(X, Y))
    assert result.ok, result.report()


def test_expression_inputs_are_columns_of_x_and_y_is_ignored():
    model = derive.from_expr("J = (w*x + b - y)**2", inputs=["x", "y"])
    result = verify(model, batch=6)
    assert result.ok, result.report()
    assert result.X.shape == (6, 2) and result.Y.shape == (6, 0)


def test_draws_follow_the_data_contract():
    cases = {
        "logreg:3": ((7, 3), (7,)),
        "chain:2": ((7, 1), (7, 1)),
        "mlp:4-3-2": ((7, 4), (7, 2)),
    }
    for spec, (x_shape, y_shape) in cases.items():
        model = build(spec, for_kernels=True)
        assert data_shapes(model, 7) == {"X": x_shape, "Y": y_shape}
        X, Y = sample_data(model, 7, seed=3)
        assert (X.shape, Y.shape) == (x_shape, y_shape)
    _, Y = sample_data(build("mlp:4-3", loss="cce", for_kernels=True), 50)
    assert set(np.unique(Y)) == {0.0, 1.0} and (Y.sum(axis=1) == 1).all()
    _, Y = sample_data(build("mlp:4-3", loss="sparse_cce", for_kernels=True), 50)
    assert Y.shape == (50,) and Y.dtype.kind == "i" and set(np.unique(Y)) <= {0, 1, 2}
    _, Y = sample_data(build("logreg:2", for_kernels=True), 50)
    assert set(np.unique(Y)) == {0.0, 1.0}


def test_the_same_seed_checks_the_same_values():
    model, kernel = built("mlp:3-4-2", activation="tanh")
    a, b = verify(model, seed=5, kernel=kernel), verify(model, seed=5, kernel=kernel)
    c = verify(model, seed=6, kernel=kernel)
    assert all(np.array_equal(a.params[n], b.params[n]) for n in a.params)
    assert a.rows == b.rows and a.cost_kernel == b.cost_kernel != c.cost_kernel


def test_parameters_of_a_log_are_drawn_where_the_loss_is_finite():
    result = verify(derive.from_expr("J = log(a) + sqrt(b)*c"), seed=1)
    assert result.ok, result.report()
    assert result.params["a"] > 0 and result.params["b"] >= 0


@pytest.mark.parametrize(
    "option, message",
    [
        (dict(batch=0), "batch must be a positive integer, got 0"),
        (dict(batch=2.5), "batch must be a positive integer, got 2.5"),
        (dict(seed=-1), "seed must be a non-negative integer, got -1"),
    ],
)
def test_a_bad_batch_or_seed_is_named_not_a_numpy_error(option, message):
    model, kernel = built("logreg:3")
    with pytest.raises(derive.BackpropInputError, match=message):
        verify(model, kernel=kernel, **option)


def test_a_loss_with_no_finite_value_anywhere_is_an_input_error():
    with pytest.raises(derive.BackpropInputError, match="not finite at any of 8 random draws"):
        verify(derive.from_expr("J = log(-a**2 - 1)"))


def test_a_kernel_that_raises_raises_as_itself_and_is_not_used_to_draw():
    """A shape error in the kernel (``@`` with a 0-d weight) is the kernel's bug: it must not
    turn into "no finite loss" after a round of redraws. The draws are the model's own."""
    model, kernel = built("chain:2", level="matrix")
    source = kernel.source.replace("X * w1", "X @ w1")
    assert source != kernel.source
    calls = []

    broken = _variant(kernel, source, "X @ w1")
    loss = broken.module.loss
    broken.module.loss = lambda *args: calls.append(1) or loss(*args)
    with pytest.raises(ValueError, match="matmul") as caught:
        verify(model, kernel=broken)
    assert not isinstance(caught.value, derive.BackpropInputError) and not calls


def test_a_kernel_whose_loss_is_never_finite_fails_the_check_against_the_model():
    """The model's loss is finite at the draws, so a NaN from the kernel under test is a
    wrong kernel (a failed check), not a model without finite values (an input error)."""
    model, kernel = built("mlp:4-3-2")
    source = kernel.source.replace("return float(J)", "return float(J) * float('nan')")
    assert source.count("* float('nan')") == 2
    result = verify(model, kernel=_variant(kernel, source, "NaN loss"))
    assert not result.ok and np.isnan(result.cost_kernel)
    assert "the kernel's loss() gives nan" in result.report()


# ---------------------------------------------------------------------------- wrong kernels

MLP = ("mlp:4-3-3", dict(activation="tanh", output="softmax", loss="cce"))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "name, expr, why",
    [
        ("W2", "2 * g", "x2"),
        ("b1", "-g", "sign"),
        ("W1", "g * m", "missing_1/m"),
        ("W2", "g.T", "transpose"),
    ],
)
def test_a_wrong_gradient_is_caught_by_jax_and_by_fd(name, expr, why, dtype):
    model, kernel = built(*MLP[:1], **MLP[1])
    result = verify(model, dtype=dtype, kernel=with_gradient(kernel, name, expr))
    assert not result.ok
    assert result.disagreeing(name) == {"JAX", "FD"}, result.report()
    assert result.row(name).verdict == "MISMATCH (JAX and FD)"
    others = [row for row in result.rows if row.name != name]
    assert all(row.ok for row in others), result.report()
    hints = " ".join(m.hint for m in result.mismatches)
    words = {"x2": "× 2", "sign": "sign flip", "missing_1/m": "1/m", "transpose": ".T"}
    assert words[why] in hints.replace("2 ×", "× 2"), result.report()


def test_one_wrong_entry_is_found_and_located():
    model, kernel = built(*MLP[:1], **MLP[1])
    broken = with_gradient(kernel, "W1", "g + 1e-6 * (np.arange(g.size).reshape(g.shape) == 7)")
    result = verify(model, kernel=broken)
    (jax_m, fd_m) = [m for m in result.mismatches if m.param == "W1"]
    assert jax_m.count == fd_m.count == 1
    assert jax_m.index == fd_m.index == np.unravel_index(7, (4, 3))
    assert result.row("W1").worst == "[2, 1]"


def test_a_dropped_1_over_m_in_the_source_fails_every_parameter():
    model, kernel = built(*MLP[:1], **MLP[1])
    broken = with_line(kernel, "dZ2", lambda rhs: f"({rhs}) * m")
    result = verify(model, kernel=broken)
    assert {row.name for row in result.rows if not row.ok} == {"W1", "b1", "W2", "b2"}
    assert all(result.disagreeing(n) == {"JAX", "FD"} for n in ("W1", "b1", "W2", "b2"))
    assert "the 1/m of the batch mean is missing (batch_size = 8)" in result.report()


def test_a_wrong_cost_is_a_mismatch():
    model, kernel = built("logreg:3")
    head, tail = kernel.source.split("def loss(", 1)
    source = head + "def loss(" + tail.replace("return float(J)", "return 1.01 * float(J)", 1)
    result = verify(model, kernel=Kernel(source, [], kernel.params, "numpy", name="wrong loss"))
    assert not result.ok
    assert [m.route for m in result.mismatches if not m.param] == ["cost"]
    assert "the kernel's loss() gives" in result.report()


def test_malformed_gradients_are_mismatches_not_crashes():
    model, kernel = built(*MLP[:1], **MLP[1])
    result = verify(model, kernel=with_gradient(kernel, "W1", "g.T"))  # (3, 4), not (4, 3)
    assert result.row("W1").verdict == "MISMATCH (kernel)" and not result.ok
    assert "shape (3, 4), the parameter (4, 3) (transposed?)" in result.report()
    source = kernel.source.replace('"b2": db2', '"b2_typo": db2')
    assert source != kernel.source
    result = verify(model, kernel=Kernel(source, [], kernel.params, "numpy", name="typo"))
    assert result.disagreeing("b2") == {"kernel"}
    assert "gradients of no parameter" in result.report()


def test_a_kernel_for_another_model_is_refused():
    model, _ = built("logreg:3")
    _, other = built("logreg:4")
    with pytest.raises(derive.BackpropInputError, match="not a kernel for logreg:3: w is"):
        verify(model, kernel=other)


ONE_HOT = np.eye(2)[[0, 1, 0, 1]]


@pytest.mark.parametrize(
    "spec, X, Y, message",
    [
        (
            "mlp:3-2",
            np.zeros((4, 5)),
            ONE_HOT,
            r"X has shape \(4, 5\); mlp:3-2 takes X of shape \(m, 3\)",
        ),
        ("mlp:3-2", np.zeros((4, 3)), ONE_HOT[:3], r"Y has shape \(3, 2\).*with m = 4"),
        ("mlp:3-2", np.full((4, 3), np.nan), ONE_HOT, r"X\[0, 0\] is nan"),
        ("mlp:3-2", np.zeros((4, 3)), np.where(ONE_HOT == 1, np.inf, 0), r"Y\[0, 0\] is inf"),
        ("logreg:3", np.zeros((4, 3)), np.zeros((4, 1)), r"logreg:3 takes Y of shape \(m,\)"),
        ("mlp:3-4 sparse", np.zeros((4, 3)), np.array([0, 1, 5, 2]), r"integer labels 0\.\.3"),
    ],
)
def test_data_that_does_not_fit_the_model_is_named(spec, X, Y, message):
    model = derive.build("mlp:3-4", loss="sparse_cce") if spec == "mlp:3-4 sparse" else None
    model = model or derive.build(spec, for_kernels=True)
    with pytest.raises(derive.BackpropInputError, match=message):
        verify(model, data=(X, Y))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"W1": np.zeros((3, 2))}, "params lacks 'b1'"),
        ({"W1": np.zeros((2, 3)), "b1": np.zeros(2)}, r"params\['W1'\] has shape \(2, 3\)"),
        ({"W1": np.zeros((3, 2)), "b1": np.array([0, np.nan])}, "is not finite"),
    ],
)
def test_params_that_do_not_fit_the_model_are_named(params, message):
    with pytest.raises(derive.BackpropInputError, match=message):
        verify(derive.build("mlp:3-2"), params=params, data=(np.zeros((4, 3)), ONE_HOT))


def test_large_models_use_fast_fd_and_still_find_one_wrong_entry():
    model, kernel = built("mlp:80-60-10", activation="relu")  # 5,470 parameters
    result = verify(model, kernel=kernel, batch=4)
    assert result.ok and result.fd_mode == "fast", result.report()
    broken = with_gradient(kernel, "W1", "g + 1e-3 * (np.arange(g.size).reshape(g.shape) == 999)")
    result = verify(model, kernel=broken, batch=4)
    assert result.disagreeing("W1") == {"JAX", "FD"}, result.report()
    assert all(m.index == np.unravel_index(999, (80, 60)) for m in result.mismatches)


# ---------------------------------------------------------------------------- kinks


def test_relu_at_an_exact_kink_is_a_kink_not_a_failure():
    model, kernel = built("mlp:2-3-2", activation="relu", output="softmax", loss="cce")
    params = sample_params(model.param_shapes(), seed=1)
    X, Y = sample_data(model, 6, seed=1)
    X[0], params["b1"][1] = 0.0, 0.0  # Z1[0, 1] = 0 exactly
    result = verify(model, kernel=kernel, params=params, data=(X, Y))
    assert result.ok, result.report()
    assert ("b1", (1,)) in result.kinks
    assert result.row("b1").verdict == "kink at [1]"


def test_a_kink_excuses_the_conventions_of_jax_and_the_kernel():
    """|r| at r = 0: JAX takes 1, SymPy's sign(0) is 0; the one-sided slopes differ there."""
    model, kernel = built("chain:1", output="linear", loss="mae")
    params = {"w1": np.array(0.5), "b1": np.array(0.25)}
    X, Y = np.array([[1.0], [2.0], [-1.0]]), np.array([[0.75], [0.0], [3.0]])
    result = verify(model, kernel=kernel, params=params, data=(X, Y))
    assert result.ok, result.report()
    assert {row.verdict for row in result.rows} == {"kink"}


# ---------------------------------------------------------------------------- JAX


def test_jax_global_x64_flag_is_left_as_it_was():
    model, kernel = built("logreg:2")
    before = jax.config.jax_enable_x64
    verify(model, kernel=kernel)
    assert jax.config.jax_enable_x64 == before
    jax.config.update("jax_enable_x64", not before)
    try:
        verify(model, kernel=kernel)
        assert jax.config.jax_enable_x64 == (not before)
    finally:
        jax.config.update("jax_enable_x64", before)


def test_jax_runs_in_float64_whatever_the_global_flag():
    model, kernel = built("mlp:3-4-2", activation="tanh")
    with jax.enable_x64(False):
        result = verify(model, kernel=kernel)
    assert result.ok and max(row.jax_rel for row in result.rows) < 1e-13, result.report()


def test_jax_route_never_asks_for_the_derivation(monkeypatch):
    model = build("mlp:3-4-2", activation="sigmoid", for_kernels=True)

    def refuse(self):
        raise AssertionError("the JAX route must not read derived gradients")

    monkeypatch.setattr(derive.Model, "derive", refuse)
    params = sample_params(model.param_shapes())
    X, Y = sample_data(model, 5)
    cost, grads = jax_route.jax_gradients(model, params, X, Y)
    assert set(grads) == set(model.param_shapes()) and np.isfinite(cost)
    adjoints = {f"d{name}" for name in ("Z1", "A1", "Z2", "A2", "W1", "b1", "W2", "b2")}
    assert not adjoints & set(re.findall(r"\w+", jax_route.forward_source(model)))


def test_jax_route_matches_plain_autodiff_of_a_hand_written_forward():
    model = build("mlp:3-4-2", activation="tanh", output="linear", loss="mse", for_kernels=True)
    params = sample_params(model.param_shapes(), seed=2)
    X, Y = sample_data(model, 5, seed=2)

    def cost(p):
        A1 = jax.numpy.tanh(X @ p["W1"] + p["b1"])
        return jax.numpy.mean(jax.numpy.mean((A1 @ p["W2"] + p["b2"] - Y) ** 2, axis=1))

    with jax.enable_x64(True):
        expected = jax.grad(cost)({k: jax.numpy.asarray(v) for k, v in params.items()})
    _, grads = jax_route.jax_gradients(model, params, X, Y)
    for name in params:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------------------- report


def test_report_names_model_dtype_batch_seed_and_jax_version():
    model, kernel = built(*MLP[:1], **MLP[1])
    text = verify(model, dtype="float32", batch=5, seed=3, kernel=kernel).report()
    assert text.startswith("backprop check mlp:4-3-3 (tanh hidden, softmax output, cce loss")
    assert "float32, batch 5, seed 3" in text and f"JAX {jax.__version__}" in text
    lines = text.splitlines()
    start = next(k for k, line in enumerate(lines) if "JAX abs" in line)
    header, table = lines[start], lines[start + 1 : lines.index("", start)]
    assert [line.split()[0] for line in table] == ["W1", "b1", "W2", "b2"]
    for word in ("JAX abs", "JAX rel", "FD abs", "FD rel", "worst", "verdict"):
        column = header.index(word)  # every cell starts under its heading
        assert all(line[column - 2 : column] == "  " and line[column] != " " for line in table)
    assert text.rstrip().endswith("ok: kernel, JAX and FD agree")


def test_rows_hold_plain_values_for_other_reports():
    model, kernel = built("logreg:2")
    row = verify(model, kernel=kernel).rows[0]
    fields = {k: getattr(row, k) for k in row.__dataclass_fields__}
    assert list(fields) == [
        "name", "shape", "jax_abs", "jax_rel", "fd_abs", "fd_rel", "worst", "verdict",
    ]  # fmt: skip
    assert all(isinstance(v, str | tuple | float) for v in fields.values())
