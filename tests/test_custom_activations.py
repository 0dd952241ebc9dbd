"""Users' own activations and losses (derive.register_activation / register_loss): derived
like the built-ins and reaching every part of the toolkit; oracles are JAX autodiff of the
same function written here in jax.numpy, and finite differences."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import derive
from derive import registry, rules
from derive.custom import RegistrationError
from numeric import codegen, verify

jax.config.update("jax_enable_x64", True)

#: name -> (definition as text, the same function in jax.numpy, written independently)
CUSTOM = {
    "swish": ("x * sigmoid(x)", lambda t: t * jax.nn.sigmoid(t)),
    "mish": ("x * tanh(log(1 + exp(x)))", lambda t: t * jnp.tanh(jax.nn.softplus(t))),
    "gelu_tanh": (
        "x * (1 + tanh(0.8 * (x + 0.044715 * x**3))) / 2",
        lambda t: t * (1 + jnp.tanh(0.8 * (t + 0.044715 * t**3))) / 2,
    ),
    "cubic": ("x**3 / 3 + x", lambda t: t**3 / 3 + t),
    "square": ("x**2", lambda t: t**2),
}


@pytest.fixture
def scoped():
    with derive.scoped_registry():
        yield


def _slope(name, point: float) -> float:
    """The registry's derivative rule at ``point``, its output ``a`` from the definition."""
    f = registry.activation(name).scalar
    rule = rules.elementwise_derivative(name)
    return float(rule.subs(rules.out, f.subs(rules.x, point)).subs(rules.x, point))


@settings(max_examples=15, deadline=None)
@given(point=st.floats(-3.5, 3.5))
@pytest.mark.parametrize("name", sorted(CUSTOM))
def test_registered_derivative_matches_jax_and_finite_differences(name, point):
    text, oracle = CUSTOM[name]
    with derive.scoped_registry():
        derive.register_activation(name, text)
        slope = _slope(name, point)
    assert math.isclose(slope, float(jax.grad(oracle)(point)), rel_tol=1e-9, abs_tol=1e-12)
    h = 1e-6
    fd = (float(oracle(point + h)) - float(oracle(point - h))) / (2 * h)
    assert math.isclose(slope, fd, rel_tol=1e-5, abs_tol=1e-6)


def test_an_output_form_is_kept_only_where_it_holds_for_every_x(scoped):
    """``x²`` has output ``a`` and slope ``2x``; ``2√a`` holds for x > 0 only."""
    derive.register_activation("square", "x**2")
    assert _slope("square", -1.5) == pytest.approx(-3.0)


def test_a_deliberately_wrong_rule_is_caught_by_the_oracle(scoped):
    """The comparison above can fail: a rule registered as the wrong function disagrees."""
    derive.register_activation("swish", "x * sigmoid(2 * x)")
    assert not math.isclose(_slope("swish", 1.0), float(jax.grad(CUSTOM["swish"][1])(1.0)))


@pytest.mark.parametrize("level", ["matrix", "scalar"])
def test_registered_activation_and_loss_pass_the_four_route_check(scoped, level):
    derive.register_activation("swish", "x * sigmoid(x)")
    derive.register_loss("log_cosh", "log(cosh(a - y))", reduction="mean")
    model = derive.mlp([3, 4, 2], activation="swish", output="swish", loss="log_cosh", level=level)
    assert verify(model, batch=5).ok


def test_registered_loss_gradient_matches_jax(scoped):
    derive.register_loss("log_cosh", "log(cosh(a - y))")
    model = derive.mlp([3, 2], output="linear", loss="log_cosh")
    kernel = codegen(model.derive())
    params = kernel.random_params(seed=3)
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))

    def cost(p):
        A = X @ p["W1"] + p["b1"]
        return jnp.mean(jnp.sum(jnp.log(jnp.cosh(A - Y)), axis=1))

    J, grads = kernel.loss_and_grads(params, X, Y)
    truth = jax.grad(cost)({k: jnp.asarray(v) for k, v in params.items()})
    assert J == pytest.approx(float(cost(params)), rel=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], truth[name], rtol=1e-10, atol=1e-12)


def test_registered_activation_parses_in_expressions(scoped):
    derive.register_activation("swish", "x * sigmoid(x)")
    model = derive.from_expr("J = swish(w*x + b)", params=["w", "b"], inputs=["x"])
    kernel = codegen(model.derive())
    params = {"w": np.array(0.7), "b": np.array(-0.2)}
    X = np.array([[0.3], [-1.1], [2.0]])
    _, grads = kernel.loss_and_grads(params, X, np.zeros((3, 0)))

    def cost(p):
        return jnp.mean(CUSTOM["swish"][1](p["w"] * X[:, 0] + p["b"]))

    truth = jax.grad(cost)(params)
    for name in params:
        assert float(grads[name]) == pytest.approx(float(truth[name]), rel=1e-10)


def test_jax_kernel_of_a_registered_activation(scoped):
    derive.register_activation("mish", CUSTOM["mish"][0])
    model = derive.mlp([2, 3, 1], activation="mish")
    numpy_kernel, jax_kernel = (codegen(model.derive(), t) for t in ("numpy", "jax"))
    params = numpy_kernel.random_params(seed=2)
    X, Y = np.random.default_rng(0).normal(size=(4, 2)), np.array([[1.0], [0.0], [1.0], [0.0]])
    with jax.enable_x64(True):
        J_jax, g_jax = jax_kernel.loss_and_grads(params, X, Y)
    J_np, g_np = numpy_kernel.loss_and_grads(params, X, Y)
    assert J_jax == pytest.approx(J_np, rel=1e-12)
    for name in params:
        np.testing.assert_allclose(np.asarray(g_jax[name]), g_np[name], rtol=1e-10, atol=1e-13)


def test_latex_plots_and_the_parser_list_read_the_registry(scoped):
    from derive.expressions import ACTIVATION_CALLS
    from reports.figures.plots import activation_curves
    from reports.latex.printer import TextbookPrinter, activation_function

    derive.register_activation("swish", "x * sigmoid(x)", latex=r"\operatorname{Swish}")
    derive.register_activation("soft_sign", "x / (1 + abs(x))")
    z = registry.x
    assert (
        TextbookPrinter()
        .doprint(activation_function("swish")(z))
        .startswith(r"\operatorname{Swish}")
    )
    assert r"\operatorname{soft\_sign}" in TextbookPrinter().doprint(
        activation_function("soft_sign")(z)
    )
    assert {"swish", "soft_sign"} <= set(ACTIVATION_CALLS)
    grid, values, slopes, _ = activation_curves("swish", grid=[-1.0, 0.5, 2.0])
    np.testing.assert_allclose(slopes, [float(jax.grad(CUSTOM["swish"][1])(t)) for t in grid])


def test_redefining_a_name_derives_it_anew(scoped):
    derive.register_activation("bent", "x**2")
    assert _slope("bent", 1.0) == pytest.approx(2.0)
    derive.register_activation("bent", "x**3", replace=True)
    assert _slope("bent", 1.0) == pytest.approx(3.0)


def test_scoped_registry_and_unregister_undo_registrations():
    with derive.scoped_registry():
        derive.register_activation("swish", "x * sigmoid(x)")
        derive.register_loss("log_cosh", "log(cosh(a - y))")
        derive.unregister("log_cosh")
        assert "log_cosh" not in derive.LOSSES
    assert "swish" not in derive.ACTIVATIONS
    with pytest.raises(derive.UnknownNameError):
        derive.mlp([2, 2, 1], activation="swish")


@pytest.mark.parametrize(
    "name,definition,pattern",
    [
        ("relu", "x", "built-in"),
        ("W1", "x", "collides"),
        ("b2", "x", "collides"),
        ("J", "x", "collides"),
        ("m", "x", "collides"),
        ("dz", "x", "collides"),
        ("dW1_2_3", "x", "collides"),
        ("gamma2", "x", "collides"),
        ("exp", "x", "collides"),
        ("sum", "x", "collides"),
        ("rowsum", "x", "collides"),
        ("my act", "x", "identifier"),
        ("lambda", "x", "identifier"),
        ("swish", "x * w", "only x; it also has w"),
        ("swish", "3", "must depend on x"),
        ("swish", "sqrt(x)", "finite real"),
        ("swish", "log(x)", "finite real"),
        ("swish", "x / (x - x)", "finite real"),
        ("swish", "f(x)", "unknown function 'f'"),
        ("swish", sp.Function("f")(registry.x), "calls 'f', which is no elementwise"),
        ("swish", sp.Function("softmax")(registry.x), "calls 'softmax'"),
    ],
)
def test_bad_registrations_are_refused(scoped, name, definition, pattern):
    with pytest.raises(derive.BackpropInputError, match=pattern):
        derive.register_activation(name, definition)


def test_a_complex_sympy_definition_is_refused(scoped):
    for twist in (registry.x * 1j, registry.x * sp.I):
        with pytest.raises(RegistrationError, match="finite real"):
            derive.register_activation("twist", twist)


def test_a_name_registered_twice_needs_replace(scoped):
    derive.register_activation("swish", "x * sigmoid(x)")
    with pytest.raises(RegistrationError, match="replace=True"):
        derive.register_activation("swish", "x")
    with pytest.raises(RegistrationError, match="replace=True"):
        derive.register_loss("swish", "(a - y)**2")


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(expr="(a - y)**2 * w"), "it also has w"),
        (dict(expr="y**2"), "depend on the prediction a"),
        (dict(expr="-y * log(a)"), "finite real"),
        (dict(expr="(a - y)**2", reduction="max"), "reduction must be one of"),
        (dict(expr="(a - y)**2", targets="labels"), "targets must be one of"),
    ],
)
def test_bad_losses_are_refused(scoped, kwargs, pattern):
    with pytest.raises(RegistrationError, match=pattern):
        derive.register_loss("my_loss", **kwargs)


def test_a_loss_on_probabilities_is_checked_where_they_live(scoped):
    """``-y log a`` is real for a in (0, 1): fine after a sigmoid output, refused on its own."""
    derive.register_loss(
        "my_bce",
        "-(y*log(a) + (1 - y)*log(1 - a))",
        output="sigmoid",
        targets="binary",
        reduction="mean",
    )
    model = derive.mlp([3, 2], loss="my_bce", output="sigmoid")
    assert verify(model, batch=4).ok
