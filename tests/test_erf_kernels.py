"""erf in NumPy kernels (an exact GELU): the kernel imports scipy.special.erf, only when it
calls it, and its cost and gradients agree with JAX autodiff of the same cost written here
in jax.numpy (jax.scipy.special.erf) and with finite differences; numeric.verify and the CLI
take such models like any other."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import erf as jax_erf

import derive
from derive.layers import Dense
from numeric import check_gradients, codegen, verify
from numeric.generator.kernel import Kernel, load
from reports.cli.main import main

EXACT_GELU = "x * (1 + erf(x / sqrt(2))) / 2"
SCIPY_IMPORT = "from scipy.special import erf"


@pytest.fixture(autouse=True)
def gelu():
    with derive.scoped_registry():
        derive.register_activation("gelu", EXACT_GELU)
        yield


def _gelu(z):
    return z * (1 + jax_erf(z / jnp.sqrt(2.0))) / 2


def _softmax_cce(Z, Y):
    return jnp.mean(-jnp.sum(Y * jax.nn.log_softmax(Z, axis=1), axis=1))


#: (model, the same cost in jax.numpy over params p and data X, Y), built inside the registry
MODELS = {
    "network": (
        lambda: derive.network(3, [Dense(4, "gelu"), Dense(3, "gelu"), Dense(2)], "mse"),
        lambda p, X, Y: jnp.mean(
            (_gelu(_gelu(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]) @ p["W3"] + p["b3"] - Y) ** 2
        ),
    ),
    "mlp spec": (
        lambda: derive.build("mlp:3-4-2", activation="gelu", for_kernels=True),
        lambda p, X, Y: _softmax_cce(_gelu(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"], Y),
    ),
    "matrix expression": (
        lambda: derive.from_matrix_expr(
            "mean((erf(X @ W + b) - Y)**2) + sum(rowsum(erf(X @ W)) * erf(Y))/m",
            {"X": ("m", 3), "W": (3, 2), "b": (1, 2), "Y": ("m", 2)},
        ),
        lambda p, X, Y: (
            jnp.mean((jax_erf(X @ p["W"] + p["b"]) - Y) ** 2)
            + jnp.sum(jnp.sum(jax_erf(X @ p["W"]), axis=1, keepdims=True) * jax_erf(Y)) / len(X)
        ),
    ),
}


def _data(model, rows=6, seed=0):
    """X and Y for ``model``: rows of Y on the simplex for a cross-entropy, normal otherwise."""
    rng = np.random.default_rng(seed)
    shapes = model.data_shapes(rows)
    X = rng.normal(size=shapes["X"])
    if "cce loss" in model.choices():
        return X, rng.dirichlet(np.ones(shapes["Y"][1]), size=rows)
    return X, rng.normal(size=shapes["Y"])


@pytest.mark.parametrize("case", MODELS)
def test_an_erf_kernel_imports_scipy_and_matches_jax_autodiff(case):
    build, cost = MODELS[case]
    model = build()
    kernel = codegen(model.derive())
    assert re.search(rf"^import numpy as np\n{SCIPY_IMPORT}$", kernel.source, re.M)
    assert "jax" not in kernel.source and re.search(r"\berf\(", kernel.source)
    params = kernel.random_params(seed=1)
    X, Y = _data(model)
    J, grads = kernel.loss_and_grads(params, X, Y)
    with jax.enable_x64(True):
        theta = {name: jnp.asarray(value) for name, value in params.items()}
        if case == "matrix expression":  # a (1, 2) row is stored as a (2,) array
            theta["b"] = theta["b"].reshape(1, 2)
        truth_J, truth = jax.value_and_grad(cost)(theta, jnp.asarray(X), jnp.asarray(Y))
    assert J == pytest.approx(float(truth_J), rel=1e-12)
    for name in params:
        np.testing.assert_allclose(
            grads[name], np.reshape(truth[name], grads[name].shape), rtol=1e-9, atol=1e-12
        )


@pytest.mark.parametrize("case", MODELS)
def test_an_erf_kernel_matches_finite_differences(case):
    model = MODELS[case][0]()
    kernel = codegen(model.derive())
    X, Y = _data(model, seed=2)
    result = check_gradients(
        lambda p: kernel.loss_and_grads(p, X, Y), params=kernel.random_params(seed=3)
    )
    assert result.ok, result.report()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", MODELS)
def test_verify_passes_for_an_erf_model(case, dtype):
    result = verify(MODELS[case][0](), dtype=dtype, batch=5)
    assert result.ok, result.report()


def test_verify_catches_an_erf_kernel_computing_another_function():
    """tanh in place of erf (same shape, same signs, same limits) is caught."""
    model = MODELS["network"][0]()
    good = codegen(model.derive())
    source = good.source.replace(SCIPY_IMPORT, "from numpy import tanh as erf")
    assert source != good.source
    result = verify(model, kernel=Kernel(source, [], good.params, "numpy", name="tanh for erf"))
    assert not result.ok


def test_only_a_kernel_calling_erf_imports_scipy():
    plain = codegen(derive.network(3, [Dense(4, "tanh"), Dense(2)], "mse").derive())
    assert "scipy" not in plain.source
    source = codegen(MODELS["network"][0]().derive()).source
    assert source.count(SCIPY_IMPORT) == 1


def test_an_erf_kernel_writes_into_a_free_array():
    """SciPy's erf is a ufunc: where its operand is free, it writes there (out=), as tanh."""
    derive.register_activation("erf_unit", "erf(x)")
    model = derive.network(3, [Dense(4, "erf_unit"), Dense(2)], "mse")
    forward = codegen(model.derive()).source.split("def loss(")[0]
    assert re.search(r"A1 = erf\(Z1, out=Z1\)", forward), forward


MODEL_FILE = (
    "import derive\n"
    f"derive.register_activation('gelu', {EXACT_GELU!r}, replace=True)\n"
    "model = derive.network(3, [derive.layers.Dense(4, 'gelu'), derive.layers.Dense(2)], 'mse')\n"
)


def test_backprop_codegen_writes_a_numpy_erf_kernel_from_a_model_file(tmp_path, capsys):
    path = tmp_path / "gelu_net.py"
    path.write_text(MODEL_FILE)
    out = tmp_path / "kernel.py"
    assert main(["codegen", str(path), "-o", str(out)]) == 0
    source = out.read_text()
    assert SCIPY_IMPORT in source and "jax" not in source
    kernel = load(out)
    X, Y = (
        np.random.default_rng(4).normal(size=(5, 3)),
        np.random.default_rng(5).normal(size=(5, 2)),
    )
    params = {name: np.full(shape, 0.3) for name, shape in kernel.PARAMS.items()}

    def truth(p):
        return jnp.mean((_gelu(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"] - Y) ** 2)

    with jax.enable_x64(True):
        assert kernel.loss(params, X, Y) == pytest.approx(float(truth(params)), rel=1e-12)
    capsys.readouterr()
    assert main(["check", str(path), "--batch", "4"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("ok: kernel, JAX and FD agree")


def test_a_tensor_kernel_imports_erf_from_its_targets_scipy():
    """A convnet's kernels too: NumPy's imports scipy.special.erf and its gradients match
    finite differences; JAX's imports jax.scipy.special.erf and gives the same cost."""
    from derive.layers import Conv2D, Flatten

    net = derive.network((5, 5, 1), [Conv2D(2, 3, "gelu"), Flatten(), Dense(2)], "mse")
    numpy_kernel, jax_kernel = codegen(net), codegen(net, "jax")
    assert SCIPY_IMPORT in numpy_kernel.source.splitlines()
    assert "from jax.scipy.special import erf" in jax_kernel.source.splitlines()
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(3, 5, 5, 1)), rng.normal(size=(3, 2))
    params = numpy_kernel.random_params(seed=7)
    result = check_gradients(lambda p: numpy_kernel.loss_and_grads(p, X, Y), params=params)
    assert result.ok, result.report()
    with jax.enable_x64(True):
        assert jax_kernel.loss(params, X, Y) == pytest.approx(
            numpy_kernel.loss(params, X, Y), rel=1e-12
        )
