"""The generated kernel as a module: its contract, how it reads, its stability, its targets.

Agreement over every builder and combination is in ``test_codegen_agreement.py``; here each
test proves one property of the printed code.
"""

from __future__ import annotations

import ast
import pkgutil
import re
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derive
from derive import registry
from derive.ops import total
from numeric import TARGETS, codegen
from numeric.generator.kernel import Kernel, load

from .test_codegen_agreement import (
    HIDDEN,
    MLP_COMBOS,
    assert_finite_differences,
    assert_gradients,
    jax_mlp,
    jax_reference,
    sample,
    sympy_oracle,
    targets,
)

jax = pytest.importorskip("jax")
jnp = jax.numpy


def mlp_kernel(*args, target="numpy", **kwargs) -> Kernel:
    return codegen(derive.mlp(*args, **kwargs).derive(), target=target)


def function_source(kernel: Kernel, name: str) -> str:
    """The text of one function of the kernel module."""
    tree = ast.parse(kernel.source)
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    return ast.get_source_segment(kernel.source, node)


def code_lines(text: str) -> list[str]:
    """Statements without their comments."""
    return [line.split("  #")[0].strip() for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------------- contract


def test_kernel_exposes_params_forward_loss_and_loss_and_grads():
    kernel = mlp_kernel([4, 3, 2], activation="tanh")
    module = kernel.module
    assert module.PARAMS == {"W1": (4, 3), "b1": (3,), "W2": (3, 2), "b2": (2,)}
    assert kernel.params == module.PARAMS
    params = kernel.random_params(seed=1)
    X, Y = np.ones((5, 4)), np.eye(2)[[0, 1, 1, 0, 1]]
    assert module.forward(params, X).shape == (5, 2)
    J, grads = module.loss_and_grads(params, X, Y)
    assert type(J) is float and J == module.loss(params, X, Y)
    assert list(grads) == list(module.PARAMS)
    assert all(grads[k].shape == module.PARAMS[k] for k in grads)


def test_scalar_parameters_and_their_gradients_are_0d_arrays():
    models = (
        derive.chain(2),
        derive.chain(2, level="matrix"),
        derive.logistic_regression(2, level="matrix"),
    )
    for model in models:
        kernel = codegen(model.derive())
        params = kernel.random_params(seed=0)
        m = 3
        X = np.ones((m, model.sizes[0]))
        Y = np.ones((m, 1)) if model.kind == "chain" else np.ones(m)
        _, grads = kernel.loss_and_grads(params, X, Y)
        for name, shape in kernel.params.items():
            assert (
                isinstance(grads[name], np.ndarray)
                and grads[name].shape == shape == params[name].shape
            )


def test_random_params_have_the_params_shapes_and_the_dtype_asked_for():
    kernel = mlp_kernel([3, 4, 2])
    params = kernel.random_params(seed=3, dtype="float32")
    assert {k: v.shape for k, v in params.items()} == kernel.params
    assert all(v.dtype == np.float32 for v in params.values())
    assert not np.array_equal(params["W1"], kernel.random_params(seed=4, dtype="float32")["W1"])


def test_sparse_labels_are_one_hot_encoded_in_the_inputs_dtype():
    kernel = mlp_kernel([3, 4, 3], output="softmax", loss="sparse_cce")
    dense = mlp_kernel([3, 4, 3], output="softmax", loss="cce")
    params = kernel.random_params(seed=2, dtype="float32")
    X = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    labels = np.array([0, 2, 1, 2, 0])
    J, grads = kernel.loss_and_grads(params, X, labels)
    J_dense, grads_dense = dense.loss_and_grads(params, X, np.eye(3, dtype=np.float32)[labels])
    assert J == pytest.approx(J_dense, rel=1e-6)
    assert all(grads[k].dtype == np.float32 for k in grads)
    assert all(np.allclose(grads[k], grads_dense[k], rtol=1e-5, atol=1e-7) for k in grads)


def test_an_expression_kernel_reads_its_inputs_from_the_columns_of_x_and_ignores_y():
    model = derive.from_expr("J = w*x + v*z**2", inputs=["x", "z"])
    kernel = codegen(model.derive())
    params = {"v": np.array(0.5), "w": np.array(2.0)}
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    assert np.allclose(kernel.forward(params, X), [2 + 0.5 * 4, 6 + 0.5])
    J, grads = kernel.loss_and_grads(params, X, None)
    assert J == pytest.approx(np.mean([4.0, 6.5]))
    assert grads["w"] == pytest.approx(2.0) and grads["v"] == pytest.approx(2.5)


def test_codegen_of_a_model_is_codegen_of_its_derivation_and_verify_takes_either():
    layers = [derive.layers.Dense(4, "tanh"), derive.layers.Dense(2, "softmax")]
    model = derive.network(3, layers, "cce")
    assert codegen(model).source == codegen(model.derive()).source
    from numeric import verify

    checked = verify(model.derive(), batch=4)
    assert checked.ok and checked.rows == verify(model, batch=4).rows


def test_an_unknown_target_is_a_clear_input_error():
    with pytest.raises(derive.BackpropInputError, match="unknown codegen target 'cuda'"):
        codegen(derive.chain(1).derive(), target="cuda")
    assert TARGETS == ("numpy", "jax")


# ---------------------------------------------------------------------------- the module


def test_a_numpy_kernel_imports_numpy_and_nothing_else():
    for kernel in (mlp_kernel([3, 2]), codegen(derive.chain(2).derive())):
        imports = [
            n
            for n in ast.walk(ast.parse(kernel.source))
            if isinstance(n, (ast.Import, ast.ImportFrom))
        ]
        assert [alias.name for n in imports for alias in n.names] == ["numpy"]


def test_a_jax_kernel_imports_jax_only():
    kernel = mlp_kernel([3, 2], target="jax")
    imports = [n for n in ast.walk(ast.parse(kernel.source)) if isinstance(n, ast.Import)]
    assert sorted(alias.name for n in imports for alias in n.names) == ["jax", "jax.numpy"]
    assert not re.search(r"(?<!j)np\.", kernel.source)


def test_numeric_exports_its_api_without_importing_jax():
    code = (
        "import sys, numeric\n"
        "assert 'jax' not in sys.modules, 'import numeric imported JAX'\n"
        "from numeric import (TARGETS, Kernel, KernelLine, Mismatch, Row, Verification,\n"
        "                     codegen, load, verify)\n"
        "assert callable(codegen) and callable(verify) and callable(load)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_no_exported_name_shadows_a_module_of_the_package():
    """``numeric.codegen`` is the function, always; its module has another name, so
    ``import numeric.generator.generate as g`` and
    ``monkeypatch.setattr("numeric.generator.generate.codegen")`` reach the module."""
    import numeric
    import numeric.generator.generate as generator

    modules = {info.name for info in pkgutil.iter_modules(numeric.__path__)}
    assert not modules & set(numeric.__all__)
    assert generator.TARGETS is numeric.TARGETS and generator.codegen is numeric.codegen


def test_save_writes_a_module_that_imports_and_computes_the_same(tmp_path):
    kernel = mlp_kernel([3, 4, 2], activation="sigmoid")
    path = kernel.save(tmp_path / "mlp_kernel.py")
    assert path.read_text() == kernel.source
    module = load(path)
    params, X = kernel.random_params(seed=5), np.random.default_rng(5).standard_normal((4, 3))
    Y = np.eye(2)[[0, 1, 1, 0]]
    assert module.loss_and_grads(params, X, Y)[0] == kernel.loss_and_grads(params, X, Y)[0]
    assert kernel.save(tmp_path).name.endswith(".py")  # a directory gets a file named after it


def test_a_kernel_file_is_read_as_it_is_now_even_after_a_same_size_edit(tmp_path, monkeypatch):
    """No stale ``.pyc``: an edit in the same second that keeps the size is still seen."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as for most users
    kernel = codegen(derive.chain(1, level="matrix").derive())
    path = kernel.save(tmp_path / "chain.py")
    params, X, Y = kernel.random_params(seed=1), np.ones((3, 1)), np.zeros((3, 1))
    assert load(path).loss(params, X, Y) == kernel.loss(params, X, Y)
    head, tail = kernel.source.split("def loss(")
    path.write_text(head + "def loss(" + tail.replace(") / m", ") * m", 1))  # J * m**2
    assert path.stat().st_size == len(kernel.source.encode())
    assert load(path).loss(params, X, Y) == pytest.approx(9 * kernel.loss(params, X, Y))
    from_file = Kernel.from_file(path)
    assert from_file.path == path and from_file.params == kernel.params and not from_file.lines
    assert from_file.loss(params, X, Y) == pytest.approx(9 * kernel.loss(params, X, Y))
    assert not (tmp_path / "__pycache__").exists()


GENERATED = {
    "mlp matrix": lambda: derive.mlp([4, 5, 3], activation="tanh").derive(),
    "mlp scalar, 12 inputs": lambda: derive.mlp([12, 3, 2], level="scalar").derive(),
    "chain": lambda: derive.chain(3, "elu", "huber").derive(),
    "chain matrix": lambda: derive.chain(3, "relu", "bce", "sigmoid", level="matrix").derive(),
    "logreg": lambda: derive.logistic_regression(3, level="matrix").derive(),
    "sparse labels": lambda: derive.mlp([4, 5, 3], "leaky_relu", "softmax", "sparse_cce").derive(),
    "logits": lambda: derive.mlp([4, 5, 3], "softplus", "linear", "cce_logits").derive(),
    "expression": lambda: derive.from_expr(
        "J = log(1 + exp(w*x)) - y*w*x", inputs=["x", "y"]
    ).derive(),
    "deep": lambda: derive.mlp([8] * 12, activation="sign").derive(),
}


@pytest.mark.parametrize("target", TARGETS)
def test_generated_sources_pass_ruff_check_and_ruff_format(tmp_path, target):
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed")
    for k, build in enumerate(GENERATED.values()):
        codegen(build(), target=target).save(tmp_path / f"kernel_{k}.py")
    rules = ["--isolated", "--line-length", "100"]
    check = [str(ruff), "check", *rules, "--select", "E,F,W,I,B,UP", str(tmp_path)]
    assert subprocess.run(check, capture_output=True, text=True).returncode == 0, subprocess.run(
        check, capture_output=True, text=True
    ).stdout
    formatted = subprocess.run(
        [str(ruff), "format", "--check", *rules, str(tmp_path)], capture_output=True, text=True
    )
    assert formatted.returncode == 0, formatted.stdout


# ---------------------------------------------------------------------------- how it reads


def test_a_sum_over_a_call_has_no_needless_parentheses():
    source = mlp_kernel([3, 2], activation="tanh", output="linear", loss="huber").source
    assert "np.where(" in source and "(np.where(" not in source


def test_a_sum_over_a_masked_product_sums_the_product_not_the_mask():
    """``total(Z if Z > 0 else 0)`` prints as ``Z * (Z > 0)``: its sum needs the brackets."""
    from numeric.generator.numpy_printer import NumPyPrinter

    z = sp.Symbol("Z1", real=True)
    for expr, oracle in [
        (total(sp.Piecewise((z, z > 0), (0, True))), lambda Z: sum(max(v, 0) for v in Z)),
        (
            total(sp.Piecewise((z, z > 0), (z / 100, True))),
            lambda Z: sum(v if v > 0 else v / 100 for v in Z),
        ),
    ]:
        code = NumPyPrinter().doprint(expr)
        Z1 = np.array([-2.0, 0.5, 3.0])
        assert np.isclose(eval(code, {"np": np, "Z1": Z1}), oracle(Z1)), code


def test_a_long_title_is_wrapped_in_the_docstring_not_cut():
    model = derive.mlp([784, 512, 10], "relu", "linear", "cce_logits")
    doc = ast.get_docstring(ast.parse(codegen(model.derive()).source))
    assert "(relu hidden layers, linear output, cce_logits loss), matrix level." in " ".join(
        doc.split()
    )


def test_the_backward_pass_reads_like_the_textbook():
    kernel = mlp_kernel([4, 3, 2], activation="sigmoid", output="sigmoid", loss="bce")
    body = function_source(kernel, "loss_and_grads")
    assert "dZ2 = (A2 - Y) / (2 * m)  # dZ2 = (A2 - Y)/(2*m)" in body
    # a gradient goes into the caller's array when given (out=); its comment is the textbook
    assert 'dW2 = np.matmul(A1.T, dZ2, out=grads_out.get("W2"))  # dW2 = A1ᵀ dZ2' in body
    assert "dA1 = dZ2 @ W2.T  # dA1 = dZ2 W2ᵀ" in body
    assert 'dW1 = np.matmul(X.T, dZ1, out=grads_out.get("W1"))  # dW1 = Xᵀ dZ1' in body
    assert 'db1 = np.matmul(ones, dZ1, out=grads_out.get("b1"))  # db1 = 1ᵀ dZ1' in body
    assert "Z1 = X @ W1  # Z1 = X W1 + 1 b1\n    Z1 += b1  # bias added in place" in body


@pytest.mark.parametrize("target", TARGETS)
def test_a_chain_matrix_kernel_multiplies_its_0d_weights_and_sums_their_gradients(target):
    """``X w1`` with a 0-d ``w1`` is ``X * w1`` (``@`` refuses a 0-d operand); ``Xᵀ dZ1`` and
    ``1ᵀ dZ1`` for a 0-d gradient are sums over the batch, not ``(1, 1)`` arrays."""
    np_ = {"numpy": "np", "jax": "jnp"}[target]
    kernel = codegen(derive.chain(2, level="matrix").derive(), target=target)
    body = function_source(kernel, "loss_and_grads" if target == "numpy" else "_loss_and_grads")
    assert "Z1 = X * w1 + b1  # Z1 = X w1 + 1 b1" in body
    assert "Z2 = A1 * w2 + b2  # Z2 = A1 w2 + 1 b2" in body
    assert f"dw1 = {np_}.vdot(X, dZ1)  # dw1 = Xᵀ dZ1" in body
    assert "db1 = dZ1.sum()  # db1 = 1ᵀ dZ1" in body
    assert re.search(r"dA1 = .*dZ2.*\bw2\b.*  # dA1 = dZ2 w2ᵀ", body)
    assert " @ " not in "".join(code_lines(body)) and "ones" not in body


def test_softmax_cross_entropy_delta_is_a_minus_y_over_m():
    body = function_source(mlp_kernel([4, 3, 3]), "loss_and_grads")
    assert "dZ2 = (A2 - Y) / m  # dZ2 = (A2 - Y)/m" in body


def test_every_line_of_a_function_carries_the_equation_it_implements():
    kernel = mlp_kernel([4, 3, 2], activation="tanh")
    lines = function_source(kernel, "loss_and_grads").splitlines()
    doc_end = next(k for k, line in enumerate(lines) if k > 0 and line.rstrip().endswith('"""'))
    body = lines[doc_end + 1 : -1]
    for k, line in enumerate(body):
        if line.strip().startswith("#") or line.strip().startswith(("W1, b1", "return")):
            continue
        assert "  # " in line or body[k - 1].strip().startswith("#"), line


def test_activation_derivatives_reuse_forward_values_and_never_recompute_exp():
    for activation, derivative in [("sigmoid", "A1*(1 - A1)"), ("tanh", "1 - A1²")]:
        body = function_source(mlp_kernel([4, 3, 2], activation=activation), "loss_and_grads")
        backward = body.split("# backward pass")[1]
        assert f"# dA1/dZ1 = {derivative}, in A1's memory" in backward
        assert "exp" not in "".join(code_lines(backward)), activation
        assert not re.search(r"\bZ1\b", "".join(code_lines(backward))), activation


@pytest.mark.parametrize(
    "activation, factor",
    [
        ("tanh", "dA1_dZ1 = np.subtract(1, np.square(A1, out=A1), out=A1)"),
        ("sigmoid", "dA1_dZ1 = np.multiply(A1, 1 - A1, out=A1)"),
        ("softplus", "dA1_dZ1 = np.exp(np.subtract(Z1, A1, out=A1), out=A1)"),
    ],
)
def test_an_activation_derivative_is_computed_in_the_memory_of_a_dead_forward_value(
    activation, factor
):
    """dZ1 = dA1 * dA1/dZ1 with the factor written over A1, which nothing reads afterwards:
    no full-size temporaries per layer (3 % of a 10-layer tanh pass in float64)."""
    body = function_source(mlp_kernel([4, 3, 2], activation=activation), "loss_and_grads")
    assert factor in body
    assert "dZ1 = np.multiply(dA1, dA1_dZ1, out=dA1)" in body
    after = body.split(factor)[1]
    assert not re.search(r"\bA1\b", "".join(code_lines(after.split("\n", 2)[2])))


def test_a_residual_sum_goes_into_its_dead_branch_and_no_line_writes_the_callers_arrays():
    """R1 = A2 + X is written over A2, which nothing reads afterwards (half the time of a
    new array); X, Y and the parameters belong to the caller and come back unchanged."""
    from derive.layers import Dense, Residual

    layers = [Residual(Dense(4, "relu"), Dense(4)), Residual(Dense(4, "tanh"), Dense(4))]
    model = derive.network(4, [*layers, Dense(3, "softmax")], "cce")
    kernel = codegen(model.derive())
    for function in ("forward", "loss_and_grads"):
        body = function_source(kernel, function)
        assert "R1 = np.add(A2, X, out=A2)" in body and "R2 = np.add(A4, R1, out=A4)" in body
    params = kernel.random_params(seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((5, 4)), np.eye(3)[rng.integers(0, 3, 5)]
    inputs = {**params, "X": X, "Y": Y}
    before = {name: value.copy() for name, value in inputs.items()}
    kernel.loss_and_grads(params, X, Y)
    kernel.forward(params, X)
    for name, value in inputs.items():
        assert np.array_equal(value, before[name]), name


def test_a_division_by_the_batch_size_prints_as_a_product_with_its_reciprocal():
    """np.divide by a number takes 1.5-2.6x np.multiply by its reciprocal (within an ulp)."""
    kernel = mlp_kernel([4, 3, 2], activation="tanh", output="tanh", loss="mse")
    backward = function_source(kernel, "loss_and_grads").split("# backward pass")[1]
    assert "dA2 = np.multiply(A2_minus_Y, 1 / m, out=A2_minus_Y)" in backward
    assert "np.divide(" not in backward


def test_a_deep_tanh_pass_holds_its_activations_and_one_working_array_at_most():
    """tracemalloc sees NumPy's allocations: at its peak a pass holds the L activations (each
    tanh written over its pre-activation), one working array for the adjoints and the
    gradients. A derivative factor with temporaries of its own (``1 - A**2``) adds two."""
    depth, m, n = 6, 128, 64
    kernel = mlp_kernel([n] * (depth + 1), activation="tanh", output="tanh", loss="mse")
    params = kernel.random_params(seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((m, n)), rng.standard_normal((m, n))
    kernel.loss_and_grads(params, X, Y)  # the module is loaded before tracing starts
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kernel.loss_and_grads(params, X, Y)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    array, grads = m * n * 8, sum(p.nbytes for p in params.values())
    assert peak - grads <= (depth + 1.5) * array, (peak - grads) / array


def test_relu_mask_is_computed_once_for_the_forward_and_the_backward_pass():
    body = function_source(mlp_kernel([4, 3, 2], activation="relu"), "loss_and_grads")
    assert sum(line.count("Z1 > 0") for line in code_lines(body)) == 1
    assert "Z1_pos = Z1 > 0" in body


def test_each_function_computes_only_what_it_returns():
    kernel = mlp_kernel([4, 3, 3])  # softmax + cross-entropy
    loss_body = "".join(code_lines(function_source(kernel, "loss")))
    assert "A2 =" not in loss_body  # the loss needs log-softmax, not the softmax itself
    forward_body = "".join(code_lines(function_source(kernel, "forward")))
    assert "Y" not in forward_body and " m " not in forward_body


def test_lines_map_each_forward_node_and_backward_step_to_its_line():
    kernel = mlp_kernel([4, 3, 2], activation="tanh")
    source = kernel.source.splitlines()
    entries = [e for e in kernel.lines if e.function == "loss_and_grads"]
    derivation = kernel.derivation
    for step in derivation.needed_steps():
        (line,) = [
            e.line
            for e in entries
            if e.node == step.node.name and e.kind in ("adjoint", "gradient")
        ]
        assert source[line - 1].strip().startswith(f"{step.adjoint.name} = ")
    for node in derivation.model.nodes:
        if not node.is_leaf:
            (line,) = [
                e.line for e in entries if e.node == node.name and e.kind in ("forward", "cost")
            ]
            assert source[line - 1].strip().startswith(f"{node.name} = ")
    assert kernel.lines_of("Z1") and all(isinstance(e.line, int) for e in kernel.lines)


# ---------------------------------------------------------------------------- stability

HEADS = sorted({(out, loss) for _, out, loss in MLP_COMBOS})


def extreme_case(out: str, loss: str, dtype, z: float):
    """A one-layer net whose logits reach +z and -z (never beyond): Z = X W."""
    n_out = 3 if registry.loss(loss).min_outputs > 1 or out == "softmax" else 1
    kernel = codegen(derive.mlp([2, n_out], activation="linear", output=out, loss=loss).derive())
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.25], [0.25, -0.25]], dtype=dtype)
    W = np.tile(np.array([[z], [-z]], dtype=dtype), (1, n_out)) * np.linspace(
        1, 0.5, n_out, dtype=dtype
    )
    params = {"W1": W, "b1": np.zeros(n_out, dtype=dtype)}
    Y, Yh = targets(loss, np.random.default_rng(0), 4, n_out)
    Y = Y.astype(dtype) if loss != "sparse_cce" else Y
    return kernel, params, X, Y, Yh, ("linear", out)[1:]


@pytest.mark.parametrize("out,loss", HEADS, ids=["-".join(h) for h in HEADS])
@pytest.mark.parametrize("dtype,z", [(np.float64, 700.0), (np.float32, 80.0)], ids=["f64", "f32"])
def test_extreme_logits_give_finite_losses_and_gradients_without_warnings(out, loss, dtype, z):
    kernel, params, X, Y, Yh, acts = extreme_case(out, loss, dtype, z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow, underflow to -inf logs, 0/0: all errors
        J, grads = kernel.loss_and_grads(params, X, Y)
        output = kernel.forward(params, X)
    assert np.isfinite(J) and all(np.all(np.isfinite(g)) for g in grads.values())
    assert np.all(np.isfinite(output)) and output.dtype == dtype
    reference = jax_reference(
        {k: v.astype(np.float64) for k, v in params.items()}, X.astype(np.float64), Yh, acts, loss
    )
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    scale = max(1.0, abs(reference[0]))
    assert J == pytest.approx(reference[0], rel=rtol, abs=rtol * scale)
    for name in grads:
        bound = rtol * max(1.0, float(np.max(np.abs(reference[1][name]))))
        assert np.max(np.abs(grads[name] - reference[1][name])) <= bound, name


@pytest.mark.parametrize("activation", HIDDEN)
@pytest.mark.parametrize("dtype,z", [(np.float64, 700.0), (np.float32, 80.0)], ids=["f64", "f32"])
def test_hidden_activations_are_stable_for_extreme_pre_activations(activation, dtype, z):
    kernel = mlp_kernel([2, 2, 2], activation=activation, output="softmax", loss="cce")
    params = {
        "W1": np.array([[z, -z], [-z, z]], dtype=dtype),
        "b1": np.zeros(2, dtype=dtype),
        "W2": np.array([[0.01, -0.02], [0.03, 0.01]], dtype=dtype),
        "b2": np.zeros(2, dtype=dtype),
    }
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.25]], dtype=dtype)
    Y = np.eye(2, dtype=dtype)[[0, 1, 1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J, grads = kernel.loss_and_grads(params, X, Y)
    assert np.isfinite(J) and all(
        np.all(np.isfinite(g)) and g.dtype == dtype for g in grads.values()
    )
    reference = jax_reference(
        {k: v.astype(np.float64) for k, v in params.items()},
        X.astype(np.float64),
        Y.astype(np.float64),
        (activation, "softmax"),
        "cce",
    )
    assert J == pytest.approx(reference[0], rel=1e-4 if dtype == np.float32 else 1e-9)


def test_float32_in_float32_out_with_python_numbers_never_upcasting():
    kernel = mlp_kernel([3, 4, 2], activation="leaky_relu", output="linear", loss="huber")
    params = kernel.random_params(seed=1, dtype="float32")
    X = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
    Y = np.random.default_rng(2).standard_normal((6, 2))  # float64 targets: converted
    J, grads = kernel.loss_and_grads(params, X, Y)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert kernel.forward(params, X).dtype == np.float32
    assert "astype(float)" not in kernel.source
    float64 = [line for line in code_lines(kernel.source) if "float64" in line]
    assert float64 and all(line.startswith('X = X if X.dtype.kind == "f"') for line in float64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_integer_inputs_are_computed_in_the_codegen_dtype_and_targets_keep_their_fraction(
    dtype,
):
    """uint8 pixels become ``dtype`` before anything reads them: the targets, read in X's
    dtype, would otherwise be truncated to integers (0.7 -> 0) and the loss silently wrong."""
    model = derive.mlp([4, 3, 2], activation="tanh", output="linear", loss="mse")
    kernel = codegen(model.derive(), dtype=dtype)
    params = kernel.random_params(seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    pixels, Y = rng.integers(0, 256, (6, 4), dtype=np.uint8), rng.random((6, 2))
    J, grads = kernel.loss_and_grads(params, pixels, Y)
    J_float, grads_float = kernel.loss_and_grads(params, pixels.astype(dtype), Y)
    assert J == J_float and all(np.array_equal(grads[n], grads_float[n]) for n in grads)
    assert {g.dtype for g in grads.values()} == {np.dtype(dtype)}
    assert kernel.forward(params, pixels).dtype == dtype


def test_an_unknown_codegen_dtype_is_a_clear_input_error():
    with pytest.raises(
        derive.BackpropInputError, match="dtype must be one of float64, float32, got 'float16'"
    ):
        codegen(derive.chain(1).derive(), dtype="float16")


# ---------------------------------------------------------------------------- the registry


def test_a_new_activation_and_a_new_loss_reach_the_kernel_with_no_codegen_change(monkeypatch):
    """Nothing in codegen names an activation or a loss: add two to the registry and the
    kernel follows, correct against JAX autodiff of the same definitions."""
    z, a, y, j, n = registry.z, registry.a, registry.y, registry.j, registry.n
    swish = registry.Activation(
        "swish", z[j] / (1 + sp.exp(-z[j])), r"\operatorname{swish}", "z sigmoid(z)"
    )
    log_cosh = registry.Loss(
        "log_cosh",
        sp.Sum(sp.log(sp.cosh(a[j] - y[j])), (j, 0, n - 1)) / n,
        r"\mathcal{L}",
        "log cosh",
    )
    monkeypatch.setitem(registry.ACTIVATIONS, "swish", swish)
    monkeypatch.setitem(registry.LOSSES, "log_cosh", log_cosh)
    kernel = mlp_kernel([3, 4, 2], activation="swish", output="tanh", loss="log_cosh")

    def cost(params, X, Y):
        A1 = jax.nn.silu(X @ params["W1"] + params["b1"])
        A2 = jnp.tanh(A1 @ params["W2"] + params["b2"])
        return jnp.mean(jnp.mean(jnp.log(jnp.cosh(A2 - Y)), axis=1))

    params = kernel.random_params(seed=9)
    X, Y = (
        np.random.default_rng(9).standard_normal((5, 3)),
        np.random.default_rng(8).standard_normal((5, 2)),
    )
    with jax.enable_x64(True):
        J, grads = jax.value_and_grad(cost)({k: jnp.asarray(v) for k, v in params.items()}, X, Y)
    assert_gradients(
        kernel.loss_and_grads(params, X, Y),
        (float(J), {k: np.asarray(v) for k, v in grads.items()}),
    )


# ---------------------------------------------------------------------------- JAX target

JAX_MODELS = {
    "mlp relu softmax": lambda: derive.mlp([4, 5, 3]),
    "mlp tanh sigmoid bce": lambda: derive.mlp([3, 4, 2], "tanh", "sigmoid", "bce"),
    "mlp huber": lambda: derive.mlp([3, 4, 2], "elu", "linear", "huber"),
    "sparse labels": lambda: derive.mlp([3, 4, 3], "softplus", "softmax", "sparse_cce"),
    "logreg matrix": lambda: derive.logistic_regression(3, level="matrix"),
    "logreg scalar": lambda: derive.logistic_regression(3),
    "chain": lambda: derive.chain(3, "sigmoid", "sse"),
    "chain matrix": lambda: derive.chain(3, "tanh", "huber", "linear", level="matrix"),
    "scalar mlp": lambda: derive.mlp([2, 3, 2], "relu", level="scalar"),
}


@pytest.mark.parametrize("name", JAX_MODELS)
def test_the_jax_kernel_computes_what_the_numpy_kernel_computes(name):
    derivation = JAX_MODELS[name]().derive()
    numpy_kernel, jax_kernel = codegen(derivation), codegen(derivation, target="jax")
    model = derivation.model
    params = numpy_kernel.random_params(seed=4)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((5, model.sizes[0]))
    n_out = model.sizes[-1]
    Y, _ = targets(model.loss, rng, 5, n_out)
    if model.kind == "logreg":
        Y = Y[:, 0]
    with jax.enable_x64(True):
        J, grads = jax_kernel.loss_and_grads(params, X, Y)
        output = np.asarray(jax_kernel.forward(params, X))
        assert isinstance(J, float)
        assert_gradients(
            (J, {k: np.asarray(v) for k, v in grads.items()}),
            numpy_kernel.loss_and_grads(params, X, Y),
        )
        assert np.allclose(output, numpy_kernel.forward(params, X), rtol=1e-12, atol=1e-14)
        J32, grads32 = jax_kernel.loss_and_grads(
            {k: v.astype(np.float32) for k, v in params.items()},
            X.astype(np.float32),
            Y if Y.dtype.kind == "i" else Y.astype(np.float32),
        )
    assert all(np.asarray(g).dtype == np.float32 for g in grads32.values())
    assert J32 == pytest.approx(J, rel=1e-4)


# ---------------------------------------------------------------------------- architectures


@st.composite
def networks(draw):
    sizes = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    n_out = sizes[-1]
    heads = [
        (o, loss)
        for _, o, loss in MLP_COMBOS
        if n_out >= max(registry.loss(loss).min_outputs, 2 if o == "softmax" else 1)
    ]
    out, loss = draw(st.sampled_from(sorted(set(heads))))
    activation = draw(st.sampled_from(HIDDEN))
    return sizes, activation, out, loss


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.integers(1, 4), st.integers(0, 2**16))
def test_any_architecture_agrees_with_its_scalar_level_derivation(network, m, seed):
    sizes, activation, out, loss = network
    acts = (activation,) * (len(sizes) - 2) + (out,)
    kernel = mlp_kernel(sizes, activation=activation, output=out, loss=loss)
    params, X, Y, Yh = sample(kernel, acts, loss, sizes, m, seed)
    scalar = derive.mlp(
        sizes, activation=activation, output=out, loss=loss, level="scalar"
    ).derive()
    assert_gradients(kernel.loss_and_grads(params, X, Y), sympy_oracle(scalar, params, X, Yh))
    assert_finite_differences(kernel, params, X, Y, seed=seed)


def test_the_jax_reference_here_is_the_forward_pass_it_claims():
    """Guard for the reference itself: a hand-computed one-unit network."""
    params = {"W1": np.array([[2.0]]), "b1": np.array([-1.0])}
    with jax.enable_x64(True):
        J, A = jax_mlp(params, jnp.array([[1.0]]), jnp.array([[0.5]]), ("linear",), "sse")
    assert float(J) == pytest.approx(0.25) and float(A[0, 0]) == pytest.approx(1.0)
