"""derive.from_matrix_expr: a scalar cost over matrices, derived in matrix form; gradients
against JAX autodiff of the same cost written here in jax.numpy, and finite differences."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import derive
from derive import from_matrix_expr
from numeric import check_gradients, codegen, verify

jax.config.update("jax_enable_x64", True)

LINEAR = {"X": ("m", 3), "W": (3, 2), "b": (1, 2), "Y": ("m", 2)}
TWO_LAYERS = {"X": ("m", 3), "W1": (3, 4), "b1": (1, 4), "W2": (4, 2), "Y": ("m", 2)}
SOFTMAX = {"X": ("m", 3), "W": (3, 4), "Y": ("m", 4)}

#: (text, shapes, the same cost in jax.numpy, written independently)
CASES = [
    (
        "sum((X @ W + b - Y)**2)/m",
        LINEAR,
        lambda p, X, Y: jnp.sum((X @ p["W"] + p["b"] - Y) ** 2) / len(X),
    ),
    (
        "mean((tanh(X @ W1 + b1) @ W2 - Y)**2)",
        TWO_LAYERS,
        lambda p, X, Y: jnp.mean((jnp.tanh(X @ p["W1"] + p["b1"]) @ p["W2"] - Y) ** 2),
    ),
    (
        "sum(log(rowsum(exp(X @ W))) - rowsum(Y * (X @ W)))/m",
        SOFTMAX,
        lambda p, X, Y: jnp.mean(
            jax.nn.logsumexp(X @ p["W"], axis=1) - jnp.sum(Y * (X @ p["W"]), axis=1)
        ),
    ),
    (
        "sum((sigmoid(X @ W) - Y)**2)/m + 0.01*sum(W**2)",
        {"X": ("m", 3), "W": (3, 2), "Y": ("m", 2)},
        lambda p, X, Y: (
            jnp.sum((jax.nn.sigmoid(X @ p["W"]) - Y) ** 2) / len(X) + 0.01 * jnp.sum(p["W"] ** 2)
        ),
    ),
    (
        "sum(X @ W @ V.T)/m + mean(X @ W)**2",
        {"X": ("m", 3), "W": (3, 2), "V": (4, 2)},
        lambda p, X, Y: jnp.sum(X @ p["W"] @ p["V"].T) / len(X) + jnp.mean(X @ p["W"]) ** 2,
    ),
    (  # every function of the scalar parser, tan too
        "mean(tan(X @ W / 4) * Y) + sum(sin(X @ W) * cos(X @ W))/m",
        {"X": ("m", 3), "W": (3, 2), "Y": ("m", 2)},
        lambda p, X, Y: (
            jnp.mean(jnp.tan(X @ p["W"] / 4) * Y)
            + jnp.sum(jnp.sin(X @ p["W"]) * jnp.cos(X @ p["W"])) / len(X)
        ),
    ),
    (  # a row b times and minus a matrix: one (m, 2) node Z ⊙ 1b, not 1b alone (that is b)
        "sum((X @ W) * b - b / 2)/m + sum((X @ W) / (2 + b**2))/m",
        LINEAR,
        lambda p, X, Y: (
            jnp.sum((X @ p["W"]) * p["b"] - p["b"] / 2) / len(X)
            + jnp.sum((X @ p["W"]) / (2 + p["b"] ** 2)) / len(X)
        ),
    ),
    (  # + b and - b cancel: b is then no parent of the sum
        "mean((X @ W + b) + (Y * b - b))",
        LINEAR,
        lambda p, X, Y: jnp.mean((X @ p["W"] + p["b"]) + (Y * p["b"] - p["b"])),
    ),
    (  # a row sum inside a row sum; and a cost longer than a line, broken inside .sum()
        "mean(rowsum(abs(X @ W + rowsum(X @ W + b) * (X @ W))) * rowsum(exp(X @ W + b)"
        " * (Y + X @ W + b)) * cos(X @ W))",
        LINEAR,
        lambda p, X, Y: jnp.mean(
            jnp.sum(
                jnp.abs(X @ p["W"] + jnp.sum(X @ p["W"] + p["b"], 1, keepdims=True) * (X @ p["W"])),
                1,
                keepdims=True,
            )
            * jnp.sum(jnp.exp(X @ p["W"] + p["b"]) * (Y + X @ p["W"] + p["b"]), 1, keepdims=True)
            * jnp.cos(X @ p["W"])
        ),
    ),
    (  # rowsum(Y) read alone and inside another row sum; X @ W read three times: one node
        "sum(rowsum(Y) * rowsum(rowsum(Y) * tanh(X @ W)) * (X @ W))/m + mean(X @ W)",
        LINEAR,
        lambda p, X, Y: (
            jnp.sum(
                jnp.sum(Y, 1, keepdims=True)
                * jnp.sum(jnp.sum(Y, 1, keepdims=True) * jnp.tanh(X @ p["W"]), 1, keepdims=True)
                * (X @ p["W"])
            )
            / len(X)
            + jnp.mean(X @ p["W"])
        ),
    ),
    (  # a (1, 3) weight is a factor of a product, not a bias: it stays (1, 3)
        "sum((X @ W + b - Y)**2)/m",
        {"X": ("m", 1), "W": (1, 3), "b": (1, 3), "Y": ("m", 3)},
        lambda p, X, Y: jnp.sum((X @ p["W"] + p["b"] - Y) ** 2) / len(X),
    ),
    (
        "sum(rowsum((X @ W + b)**2) * Y)/m",
        LINEAR | {"Y": ("m", 1)},
        lambda p, X, Y: (
            jnp.sum(jnp.sum((X @ p["W"] + p["b"]) ** 2, axis=1, keepdims=True) * Y) / len(X)
        ),
    ),
]


def _data(model, rows=5, seed=0):
    rng = np.random.default_rng(seed)
    shapes = model.data_shapes(rows)
    return rng.normal(size=shapes["X"]), rng.normal(size=shapes["Y"])


def _assert_matches_jax(
    kernel, shapes, oracle, X, Y, seed, rel=1e-12, rtol=1e-9, atol=1e-12, msg=""
):
    """The kernel's cost and gradients at random parameters against JAX autodiff of ``oracle``
    (the same cost written in jax.numpy); a (1, k) row's gradient compared flattened."""
    params = kernel.random_params(seed=seed)
    with jax.enable_x64(True):
        J, grads = kernel.loss_and_grads(params, X, Y)
    as_matrices = {k: v.reshape(shapes[k]) if shapes[k][0] == 1 else v for k, v in params.items()}
    truth = jax.grad(lambda p: oracle(p, X, Y))(as_matrices)
    assert J == pytest.approx(float(oracle(as_matrices, X, Y)), rel=rel, abs=1e-12), msg
    for name in params:
        np.testing.assert_allclose(
            np.asarray(grads[name]).reshape(-1),
            np.asarray(truth[name]).reshape(-1),
            rtol=rtol,
            atol=atol,
            err_msg=f"{msg}: d{name}",
        )


@pytest.mark.parametrize("text, shapes, oracle", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("target", ["numpy", "jax"])
def test_gradients_match_jax_autodiff_of_the_same_cost(text, shapes, oracle, target):
    model = from_matrix_expr(text, shapes)
    X, Y = _data(model)
    _assert_matches_jax(codegen(model.derive(), target), shapes, oracle, X, Y, seed=1, msg=text)


@pytest.mark.parametrize("text, shapes, oracle", CASES[:4], ids=[c[0] for c in CASES[:4]])
def test_the_four_route_check_passes(text, shapes, oracle):
    assert verify(from_matrix_expr(text, shapes), batch=4).ok


def test_finite_differences_of_the_kernel_loss():
    model = from_matrix_expr(*CASES[1][:2])
    kernel = codegen(model.derive())
    params = kernel.random_params(seed=2)
    X, Y = _data(model)
    _, grads = kernel.loss_and_grads(params, X, Y)
    h = 1e-6
    for name, value in params.items():
        for index in np.ndindex(value.shape):
            up, down = ({**params, name: value.copy()} for _ in range(2))
            up[name][index] += h
            down[name][index] -= h
            fd = (kernel.loss(up, X, Y) - kernel.loss(down, X, Y)) / (2 * h)
            assert grads[name][index] == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_a_product_read_twice_is_one_node():
    model = from_matrix_expr("sum(tanh(X @ W) * (X @ W) + rowsum(X @ W))", LINEAR)
    assert [n.name for n in model.nodes if n.op is not None] == ["Z1", "J"]


def test_gradients_come_out_in_matrix_form():
    d = from_matrix_expr("sum((X @ W + b - Y)**2)/m", LINEAR, params=["W", "b"]).derive()
    assert str(d.gradient("W")) == "X.T*dZ1"
    assert str(d.gradient("b")) == "1*dZ1"
    Z1, Y, m = (derive.ops.m if n == "m" else d.model.node(n).symbol for n in ("Z1", "Y", "m"))
    assert (d.step("Z1").value - 2 * (Z1 - Y) / m).simplify() == 0


@pytest.mark.parametrize(
    "name, wrong, why",
    [("W", "g.T", "transposed"), ("W", "g * m", "1/m"), ("b", "g * m", "1/m")],
    ids=["transposed square dW", "dW without 1/m", "db without 1/m"],
)
def test_a_wrong_gradient_is_caught(name, wrong, why):
    """A subtly wrong gradient (a square dW transposed: right shape, right diagonal; a missing
    1/m) fed to the real checkers: verify's four routes and check_gradients both fail it,
    naming the parameter; the right kernel passes the same checks."""
    from tests.test_verify import with_gradient

    model = from_matrix_expr(
        "sum((X @ W + b - Y)**2)/m", LINEAR | {"W": (3, 3), "b": (1, 3), "Y": ("m", 3)}
    )
    right = codegen(model.derive())
    broken = with_gradient(right, name, wrong)
    params = right.random_params(seed=1)
    X, Y = _data(model, rows=4)
    assert verify(model, batch=4, kernel=right).ok
    result = verify(model, batch=4, kernel=broken)
    assert not result.ok and {m.param for m in result.mismatches} == {name}
    assert check_gradients(lambda p: right.loss_and_grads(p, X, Y), params=params).ok
    found = check_gradients(lambda p: broken.loss_and_grads(p, X, Y), params=params, batch_size=4)
    assert not found.ok and found.finding(name).failed > 0, found.report()
    assert why in str(found.finding(name).hint), found.report()


def test_registered_activations_and_sympy_input():
    with derive.scoped_registry():
        derive.register_activation("swish", "x * sigmoid(x)")
        model = from_matrix_expr("sum(swish(X @ W + b) * Y)/m", LINEAR)
        assert verify(model, batch=4).ok
    import sympy as sp

    m = sp.Symbol("m", integer=True, positive=True)
    X, W = sp.MatrixSymbol("X", m, 3), sp.MatrixSymbol("W", 3, 2)
    model = from_matrix_expr(sp.Trace((X * W).T * (X * W)), {"X": ("m", 3), "W": (3, 2)})
    assert model.params[0].name == "W"


def test_the_model_reaches_the_cli_through_a_model_file(tmp_path, capsys):
    from reports.cli.main import main

    path = tmp_path / "linear.py"
    path.write_text(
        "import derive\n"
        "model = derive.from_matrix_expr('sum((X @ W + b - Y)**2)/m',\n"
        "    {'X': ('m', 3), 'W': (3, 2), 'b': (1, 2), 'Y': ('m', 2)})\n"
    )
    assert main(["check", str(path), "--batch", "4"]) == 0
    assert "ok: kernel, JAX and FD agree" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text, shapes, pattern",
    [
        ("sum(X @ W)", {"X": ("m", 3), "W": (2, 2)}, r"X \(m, 3\) @ W \(2, 2\)"),
        ("sum(X @ W + b)", {"X": ("m", 3), "W": (3, 2), "b": (1, 3)}, r"is \(m, 2\).*is \(1, 3\)"),
        ("X @ W", {"X": ("m", 3), "W": (3, 2)}, r"must be a scalar.*\(m, 2\)"),
        ("sum(foo(X @ W))", {"X": ("m", 3), "W": (3, 2)}, r"unknown function 'foo'; known: sum"),
        ("sum(X @ V)", {"X": ("m", 3), "W": (3, 2)}, r"unknown symbol 'V'"),
        ("sum(X @ W)", {"X": ("m", 3), "W": (3, "n")}, r"bad size 'n' in the shape of 'W'"),
        ("sum(X @ W)", {"X": ("m", 3), "W": (3,)}, r"shape of 'W' must be \(rows, cols\)"),
        ("sum(X @ W)", {"X": ("m", 3), "W": (3, 0)}, r"bad size 0"),
        ("sum(X @ W)", {"X": (4, 3), "W": (3, 2)}, r"one example per row"),
        ("sum(X @ W)", {"X": ("m", 3), "W": (3, 2)}, None),
        ("sum(X @ W", {"X": ("m", 3), "W": (3, 2)}, r"cannot parse"),
        ("__import__('os')", {"X": ("m", 3)}, r"unknown function '__import__'"),
        ("sum(X.real)", {"X": ("m", 3), "W": (3, 2)}, r"unsupported syntax 'X.real'"),
        ("sum(W**2)", {"X": ("m", 3), "W": (3, 2)}, r"does not use the data X"),
        ("sum(X @ W**W)", {"X": ("m", 3), "W": (3, 2)}, r"power .* must be a number"),
        ("sum(X @ W * 2) + sum(b * (X @ W)**0)", LINEAR, r"'\(X @ W\) \*\* 0' is the same number"),
        ("sum(X @ W) * 1e999", {"X": ("m", 3), "W": (3, 2)}, r"number '1e999' is too large"),
        ("sum(X @ W) * 10**400", {"X": ("m", 3), "W": (3, 2)}, r"'10 \*\* 400' is too large a"),
        ("sum((X @ W)**5000)", {"X": ("m", 3), "W": (3, 2)}, r"exponent in .* \(limit 1000\)"),
        ("sum(X @ W) * m**2000", {"X": ("m", 3), "W": (3, 2)}, r"exponent in 'm \*\* 2000'"),
    ],
)
def test_bad_matrix_expressions_are_refused_by_name(text, shapes, pattern):
    if pattern is None:
        from_matrix_expr(text, shapes)
        return
    with pytest.raises(derive.BackpropInputError, match=pattern):
        from_matrix_expr(text, shapes)


@pytest.mark.parametrize("scalar, matrix", [("x * 1e999", "sum(X @ W) * 1e999"),
    ("x * 2.0**2000", "sum(X @ W) * 2.0**2000"), ("x**1001", "sum((X @ W)**1001)")])  # fmt: skip
def test_runaway_numbers_are_refused_as_the_scalar_parser_refuses_them(scalar, matrix):
    with pytest.raises(derive.BackpropInputError) as scalar_error:
        derive.from_expr(scalar)
    with pytest.raises(derive.BackpropInputError) as matrix_error:
        from_matrix_expr(matrix, {"X": ("m", 3), "W": (3, 2)})
    assert " is too large" in str(scalar_error.value), scalar_error.value
    reason = str(scalar_error.value).split(" is too large")[-1]
    assert reason and str(matrix_error.value).endswith(" is too large" + reason)


def test_params_must_be_matrices_of_the_shapes():
    with pytest.raises(derive.BackpropInputError, match="'V' is not one of the matrices W"):
        from_matrix_expr("sum(X @ W)", {"X": ("m", 3), "W": (3, 2)}, params=["V"])
    with pytest.raises(TypeError, match="shapes must be a dict"):
        from_matrix_expr("sum(X @ W)", [("X", ("m", 3))])


#: the sum of a column (m, 1) times an (m, k) matrix: it broadcasts, so it is no np.vdot
#: (text, the same cost in jax.numpy)
COLUMN_TIMES_MATRIX = [
    (
        "sum(rowsum(X @ W + b) * Y)/m",
        lambda p, X, Y: jnp.sum(jnp.sum(X @ p["W"] + p["b"], axis=1, keepdims=True) * Y) / len(X),
    ),
    (
        "sum(rowsum(X @ W) * tanh(X @ W))",
        lambda p, X, Y: jnp.sum(jnp.sum(X @ p["W"], axis=1, keepdims=True) * jnp.tanh(X @ p["W"])),
    ),
    (
        "sum(Y * rowsum(X @ W)) + sum(Y * (X @ W + b))",
        lambda p, X, Y: (
            jnp.sum(Y * jnp.sum(X @ p["W"], axis=1, keepdims=True))
            + jnp.sum(Y * (X @ p["W"] + p["b"]))
        ),
    ),
]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from(COLUMN_TIMES_MATRIX),
    n=st.integers(1, 4),
    k=st.integers(2, 4),
    y_cols=st.sampled_from(["column", "matrix"]),
    rows=st.integers(1, 6),
    target=st.sampled_from(["numpy", "jax"]),
)
def test_a_column_times_a_matrix_sums_by_broadcasting(case, n, k, y_cols, rows, target):
    text, oracle = case
    shapes = {"X": ("m", n), "W": (n, k), "b": (1, k), "Y": ("m", 1 if y_cols == "column" else k)}
    if "b" not in text:
        del shapes["b"]
    model = from_matrix_expr(text, shapes)
    X, Y = _data(model, rows=rows, seed=rows)
    kernel = codegen(model.derive(), target)
    _assert_matches_jax(kernel, shapes, oracle, X, Y, seed=n + k, msg=f"{text} ({target})")


@pytest.mark.parametrize(
    "text, oracle", COLUMN_TIMES_MATRIX, ids=[c[0] for c in COLUMN_TIMES_MATRIX]
)
def test_a_column_times_a_matrix_passes_the_four_route_check(text, oracle):
    shapes = {"X": ("m", 3), "W": (3, 2), "b": (1, 2), "Y": ("m", 2)}
    if "b" not in text:
        del shapes["b"]
    assert verify(from_matrix_expr(text, shapes), batch=4).ok


EXACT_GELU = "x * (1 + erf(x / sqrt(2))) / 2"


@pytest.mark.parametrize("target", ["numpy", "jax"])
def test_an_exact_gelu_kernel_matches_jax_gelu(target):
    """Both kernels of an exact GELU (the NumPy one through scipy.special.erf): gradients
    are JAX autodiff's of jax.nn.gelu (written independently)."""
    with derive.scoped_registry():
        derive.register_activation("gelu", EXACT_GELU)
        model = derive.network(3, [derive.layers.Dense(4, "gelu"), derive.layers.Dense(2)], "mse")
        kernel = codegen(model.derive(), target)
    params = kernel.random_params(seed=3)
    X, Y = _data(model, rows=6, seed=4)

    def oracle(p):
        A1 = jax.nn.gelu(X @ p["W1"] + p["b1"], approximate=False)
        return jnp.mean((A1 @ p["W2"] + p["b2"] - Y) ** 2)

    with jax.enable_x64(True):
        J, grads = kernel.loss_and_grads(params, X, Y)
        truth = jax.grad(oracle)({k: jnp.asarray(v) for k, v in params.items()})
    assert J == pytest.approx(float(oracle(params)), rel=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], truth[name], rtol=1e-9, atol=1e-12)


def test_erf_in_a_matrix_expression_and_through_the_cli(tmp_path, capsys):
    from reports.cli.main import main

    model = from_matrix_expr("sum(erf(X @ W) * Y)/m", SOFTMAX)
    X, Y = _data(model)
    for target in ("numpy", "jax"):
        kernel = codegen(model.derive(), target)
        params = kernel.random_params(seed=5)
        with jax.enable_x64(True):
            _, grads = kernel.loss_and_grads(params, X, Y)
            truth = jax.grad(lambda W: jnp.sum(jax.scipy.special.erf(X @ W) * Y) / len(X))
            np.testing.assert_allclose(grads["W"], truth(jnp.asarray(params["W"])), rtol=1e-9)
    path = tmp_path / "gelu_net.py"
    path.write_text(
        "import derive\n"
        f"derive.register_activation('gelu', {EXACT_GELU!r}, replace=True)\n"
        "model = derive.network(3, [derive.layers.Dense(4, 'gelu'), derive.layers.Dense(2)],"
        " 'mse')\n"
    )
    with derive.scoped_registry():
        assert main(["codegen", str(path)]) == 0
        out = capsys.readouterr().out
        assert "from scipy.special import erf\n" in out and re.search(r"\berf\(Z1\b", out)
        assert main(["codegen", str(path), "--target", "jax"]) == 0
        assert "jax.scipy.special.erf(" in capsys.readouterr().out


# ---------------------------------------------------------------------------- drawn costs
# Random costs over X (m, 3), W (3, 2), b (1, 2), V (2, 2), Y (m, 2), each drawn as its text
# and the same cost in jax.numpy: entrywise functions, sums and products, a row sum times a
# matrix, a row b broadcast over the rows, quotients, products with V, a weight penalty.

_JNP = {"tanh": jnp.tanh, "sin": jnp.sin, "sigmoid": jax.nn.sigmoid, "abs": jnp.abs}
_LEAVES = [
    ("(X @ W)", lambda p, X, Y: X @ p["W"]),
    ("(X @ W + b)", lambda p, X, Y: X @ p["W"] + p["b"]),
    ("Y", lambda p, X, Y: Y),
]


def _call(name, a):
    return f"{name}({a[0]})", lambda p, X, Y: _JNP[name](a[1](p, X, Y))


def _binary(op, a, b):
    jax_op = {"+": jnp.add, "*": jnp.multiply}[op]
    return f"({a[0]} {op} {b[0]})", lambda p, X, Y: jax_op(a[1](p, X, Y), b[1](p, X, Y))


def _column_times(a, b):
    def value(p, X, Y):
        return jnp.sum(a[1](p, X, Y), axis=1, keepdims=True) * b[1](p, X, Y)

    return f"(rowsum({a[0]}) * {b[0]})", value


def _with_row(a):
    return f"({a[0]} * b - b / 2)", lambda p, X, Y: a[1](p, X, Y) * p["b"] - p["b"] / 2


def _ratio(a):
    return (
        f"({a[0]} / (1 + exp({a[0]})))",
        lambda p, X, Y: a[1](p, X, Y) / (1 + jnp.exp(a[1](p, X, Y))),
    )


def _times_v(a):
    return f"(tanh({a[0]}) @ V.T)", lambda p, X, Y: jnp.tanh(a[1](p, X, Y)) @ p["V"].T


_MATRICES = st.recursive(
    st.sampled_from(_LEAVES),
    lambda inner: st.one_of(
        st.builds(_call, st.sampled_from(sorted(_JNP)), inner),
        st.builds(_binary, st.sampled_from("+*"), inner, inner),
        st.builds(_column_times, inner, inner),
        st.builds(_with_row, inner),
        st.builds(_ratio, inner),
        st.builds(_times_v, inner),
    ),
    max_leaves=5,
)


def _cost(a, how):
    if how == "mean":
        return f"mean({a[0]})", lambda p, X, Y: jnp.mean(a[1](p, X, Y))
    if how == "penalty":
        return (
            f"sum({a[0]})/m + 0.1*sum(W**2)",
            lambda p, X, Y: jnp.sum(a[1](p, X, Y)) / len(X) + 0.1 * jnp.sum(p["W"] ** 2),
        )
    return f"sum({a[0]})/m", lambda p, X, Y: jnp.sum(a[1](p, X, Y)) / len(X)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cost=st.builds(_cost, _MATRICES, st.sampled_from(["sum", "mean", "penalty"])))
def test_drawn_costs_match_jax_autodiff(cost):
    text, oracle = cost
    everything = {"X": ("m", 3), "W": (3, 2), "b": (1, 2), "V": (2, 2), "Y": ("m", 2)}
    shapes = {k: v for k, v in everything.items() if re.search(rf"\b{k}\b", text)}
    assume("X" in shapes)
    model = from_matrix_expr(text, shapes)
    X, Y = _data(model, rows=4, seed=len(text))
    for target in ("numpy", "jax"):
        kernel = codegen(model.derive(), target)
        _assert_matches_jax(kernel, shapes, oracle, X, Y, seed=7, rel=1e-9, rtol=1e-8, atol=1e-10,
                            msg=f"{text} ({target})")  # fmt: skip
