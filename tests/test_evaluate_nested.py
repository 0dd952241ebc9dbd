"""derive.evaluate on matrix costs whose row sums and totals hold other row sums: the cost
against NumPy and the gradient against JAX autodiff, each written here from the text."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from derive import evaluate, from_matrix_expr

SHAPES = {"X": ("m", 3), "W": (3, 2), "b": (1, 2), "Y": ("m", 2)}
ROWS = 3

#: (text, the same cost over arrays, written with xp = numpy or jax.numpy)
NESTED = [
    (  # a total of a row sum times a matrix: the inner sum is each row's own
        "sum(rowsum(X @ W) * X)/m",
        lambda xp, X, W, b, Y: xp.sum(xp.sum(X @ W, axis=1, keepdims=True) * X) / len(X),
    ),
    (
        "sum(rowsum(rowsum(X @ W) * X))/m",
        lambda xp, X, W, b, Y: (
            xp.sum(xp.sum(xp.sum(X @ W, axis=1, keepdims=True) * X, axis=1)) / len(X)
        ),
    ),
    (  # a row sum of a row sum is itself
        "sum(rowsum(rowsum(X @ W + b)) * Y)",
        lambda xp, X, W, b, Y: xp.sum(xp.sum(X @ W + b, axis=1, keepdims=True) * Y),
    ),
    (
        "sum(rowsum(X @ W) * rowsum(Y * tanh(X @ W)))",
        lambda xp, X, W, b, Y: xp.sum(xp.sum(X @ W, axis=1) * xp.sum(Y * xp.tanh(X @ W), axis=1)),
    ),
    (  # a function of a row sum inside a total, and a total inside an entrywise product
        "sum(exp(rowsum(tanh(X @ W + b)) / 4) * Y) + sum((X @ W) * sum(X @ W))/m",
        lambda xp, X, W, b, Y: (
            xp.sum(xp.exp(xp.sum(xp.tanh(X @ W + b), axis=1, keepdims=True) / 4) * Y)
            + xp.sum(X @ W) ** 2 / len(X)
        ),
    ),
]


def _arrays(seed: int = 0) -> dict:
    """Values with 3 decimals (exact in SymPy and float64 alike); every row sum differs, so a
    sum taken at the wrong row changes the cost."""
    rng = np.random.default_rng(seed)
    values = {
        "X": rng.uniform(-1, 1, (ROWS, 3)),
        "W": rng.uniform(-1, 1, (3, 2)),
        "b": rng.uniform(-1, 1, (1, 2)),
        "Y": rng.uniform(-1, 1, (ROWS, 2)),
    }
    values = {name: value.round(3) for name, value in values.items()}
    row_sums = (values["X"] @ values["W"]).sum(axis=1)
    assert len(set(row_sums.round(6))) == ROWS
    return values


def _evaluated(text: str, arrays: dict) -> tuple[dict, dict]:
    """derive.evaluate's environment for ``text`` and the model's leaves by name."""
    shapes = {name: shape for name, shape in SHAPES.items() if name in text}
    model = from_matrix_expr(text, shapes)
    leaves = {node.name: sp.Matrix(arrays[node.name]) for node in model.nodes if node.is_leaf}
    return model, evaluate(model.derive(), leaves, batch=ROWS)


@pytest.mark.parametrize("text, cost", NESTED, ids=[text for text, _ in NESTED])
def test_nested_row_sums_evaluate_to_numpys_cost(text, cost):
    arrays = _arrays()
    model, env = _evaluated(text, arrays)
    value = env[model.cost.name]
    assert value.shape == (1, 1) and value[0, 0].is_number, value
    assert float(value[0, 0]) == pytest.approx(cost(np, **arrays), rel=1e-12)


@pytest.mark.parametrize("text, cost", NESTED, ids=[text for text, _ in NESTED])
def test_nested_row_sums_evaluate_to_jax_gradients(text, cost):
    arrays = _arrays(seed=1)
    model, env = _evaluated(text, arrays)
    params = [node.name for node in model.params]
    with jax.enable_x64(True):
        data = {name: jnp.asarray(value) for name, value in arrays.items()}

        def cost_of(theta):
            return cost(jnp, **{**data, **theta})

        truth = jax.grad(cost_of)({name: data[name] for name in params})
    for name in params:
        got = np.array(env[f"d{name}"].evalf(), dtype=float).reshape(truth[name].shape)
        np.testing.assert_allclose(got, truth[name], rtol=1e-10, atol=1e-12)


def test_a_total_of_row_sums_read_at_one_row_is_another_number():
    """The check has teeth: the cost with every row sum read at row 0 (the old bottom-up
    replacement's reading) differs from the evaluated cost."""
    arrays = _arrays()
    text, cost = NESTED[0]
    model, env = _evaluated(text, arrays)
    X, W = arrays["X"], arrays["W"]
    at_row_0 = np.sum((X @ W).sum(axis=1)[0] * X) / ROWS
    assert float(env[model.cost.name][0, 0]) != pytest.approx(at_row_0, rel=1e-6)
