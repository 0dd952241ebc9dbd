"""derive.from_matrix_expr refuses a parameter whose shape has the batch size m: a kernel's
PARAMS are numbers, and such a model failed later, inside codegen ("Cannot convert symbols
to int"). Data (X, Y) keep their rows of m; a model file holding such a cost is one line."""

from __future__ import annotations

import numpy as np
import pytest

import derive
from derive import from_matrix_expr
from numeric import codegen
from reports.cli.main import main

BATCH_SIZED = [  # (cost, shapes, params, the refused parameter and its shape as printed)
    ("sum((X.T @ W)**2)", {"X": ("m", 3), "W": ("m", 2)}, ["W"], "'W' has shape (m, 2)"),
    ("sum((X.T @ W)**2)", {"X": ("m", 3), "W": ("m", 2)}, None, "'W' has shape (m, 2)"),
    ("sum(tanh(X @ W))", {"X": ("m", 3), "W": (3, "m")}, ["W"], "'W' has shape (3, m)"),
    (
        "sum((X @ W + b - Y)**2)/m",
        {"X": ("m", 3), "W": (3, 2), "b": ("m", 2), "Y": ("m", 2)},
        ["W", "b"],
        "'b' has shape (m, 2)",
    ),
]


@pytest.mark.parametrize("text, shapes, params, named", BATCH_SIZED)
def test_a_parameter_with_the_batch_size_in_its_shape_is_refused(text, shapes, params, named):
    with pytest.raises(derive.BackpropInputError) as info:
        from_matrix_expr(text, shapes, params=params)
    message = str(info.value)
    assert "\n" not in message and f"parameter {named}" in message, message
    assert "a parameter's shape must be numbers" in message, message
    assert "m is the batch size, which only the data X and Y may have" in message, message


def test_data_keep_their_rows_of_m_and_the_parameter_its_numbers():
    """Y of (m, 2) beside X is data: the cost sum((Xᵀ Y) ⊙ W) is read, printed and run,
    and its gradient is JAX autodiff's of the same cost written here."""
    jax = pytest.importorskip("jax")
    model = from_matrix_expr(
        "sum((X.T @ Y) * W)", {"X": ("m", 3), "Y": ("m", 2), "W": (3, 2)}, params=["W"]
    )
    assert model.param_shapes() == {"W": (3, 2)}
    kernel = codegen(model.derive())
    rng = np.random.default_rng(0)
    X, Y, W = rng.standard_normal((5, 3)), rng.standard_normal((5, 2)), rng.standard_normal((3, 2))
    J, grads = kernel.loss_and_grads({"W": W}, X, Y)
    with jax.enable_x64(True):
        want_J, want = jax.value_and_grad(lambda w: jax.numpy.sum((X.T @ Y) * w))(W)
    assert J == pytest.approx(float(want_J), rel=1e-12)
    np.testing.assert_allclose(grads["W"], np.asarray(want), rtol=1e-12)


def test_a_model_file_with_a_batch_sized_parameter_is_one_line(tmp_path, capsys):
    path = tmp_path / "net.py"
    path.write_text(
        "import derive\n"
        "model = derive.from_matrix_expr('sum((X.T @ W)**2)',\n"
        "    {'X': ('m', 3), 'W': ('m', 2)}, params=['W'])\n"
    )
    for command in ("derive", "codegen", "check"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("backprop: error: "), err
        assert "Traceback" not in err and str(path) in err, err
        assert "parameter 'W' has shape (m, 2)" in err and "Cannot convert" not in err, err
