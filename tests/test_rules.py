"""The registry's derivative rules against SymPy's own diff of the definitions."""

import math

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derive import registry, rules
from derive.ops import at_position
from derive.registry import ACTIVATIONS, LOSSES

x, a = rules.x, rules.out
ELEMENTWISE = [name for name, act in ACTIVATIONS.items() if act.elementwise]
points = st.floats(-4, 4).filter(lambda v: abs(v) > 1e-3)  # away from the kinks at 0


@settings(max_examples=25, deadline=None)
@given(point=points)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_rule_equals_diff_of_definition(name, point):
    f = ACTIVATIONS[name].scalar
    rule = rules.elementwise_derivative(name).subs(a, f.subs(x, point)).subs(x, point)
    truth = sp.diff(f, x).subs(x, point)
    assert math.isclose(float(rule), float(truth), rel_tol=1e-12, abs_tol=1e-12)


def test_sigmoid_derivative_reuses_the_output():
    rule = rules.elementwise_derivative("sigmoid")
    assert rule.free_symbols == {a}
    assert sp.expand(rule - a * (1 - a)) == 0


def test_tanh_derivative_is_one_minus_a_squared():
    rule = rules.elementwise_derivative("tanh")
    assert rule.free_symbols == {a}
    assert sp.expand(rule - (1 - a**2)) == 0


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu"])
def test_derivative_at_the_kink_is_jaxs(name):
    """relu'(0) = 0 but leaky_relu'(0) = elu'(0) = 1 in jax.nn: cross-checks must agree there."""
    jax = pytest.importorskip("jax")
    f = ACTIVATIONS[name].scalar
    rule = rules.elementwise_derivative(name).subs(a, f.subs(x, 0)).subs(x, 0)
    assert float(rule) == float(jax.grad(getattr(jax.nn, name))(0.0))


@pytest.mark.parametrize("name", ["step", "sign"])
def test_perceptron_activations_are_flat_not_an_error(name):
    assert rules.is_flat(name)
    assert rules.activation_vjp(name) == 0


@pytest.mark.parametrize("width", [2, 3, 4])
def test_softmax_jacobian_matches_diff_of_concrete_softmax(width):
    zs = sp.symbols(f"z0:{width}", real=True)
    denom = sum(sp.exp(v) for v in zs)
    probs = [sp.exp(v) / denom for v in zs]
    jac = rules.activation_jacobian("softmax")
    for row in range(width):
        for col in range(width):
            ours = at_position(jac, {registry.a: probs, registry.z: zs}, j=row, l=col)
            assert sp.simplify(ours - sp.diff(probs[row], zs[col])) == 0


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradient_matches_diff_of_concrete_loss(name):
    width = 3
    outs = sp.symbols(f"a0:{width}", real=True)
    ys = [sp.Integer(0), sp.Integer(1), sp.Integer(0)]  # one-hot: valid for every loss
    point = {outs[0]: sp.Rational(1, 5), outs[1]: sp.Rational(3, 5), outs[2]: sp.Rational(1, 7)}
    loss = at_position(LOSSES[name].definition, {registry.a: outs, registry.y: ys})
    grad = rules.loss_gradient(name)
    for k in range(width):
        ours = at_position(grad, {registry.a: outs, registry.y: ys}, l=k).subs(point)
        truth = sp.diff(loss, outs[k]).subs(point)
        assert abs(float(ours - truth)) < 1e-12, (name, k)


def test_sigmoid_bce_delta_is_a_minus_y():
    k, n = rules.l, registry.n
    assert sp.simplify(rules.head_vjp("sigmoid", "bce") - (registry.a[k] - registry.y[k]) / n) == 0


@pytest.mark.parametrize("loss", ["cce", "sparse_cce"])
def test_softmax_cce_delta_is_p_minus_y(loss):
    k = rules.l
    assert rules.head_vjp("softmax", loss) == registry.a[k] - registry.y[k]


def test_cce_logits_gradient_is_softmax_minus_y():
    width = 3
    outs = sp.symbols(f"a0:{width}", real=True)
    ys = [sp.Integer(0), sp.Integer(0), sp.Integer(1)]
    grad = rules.loss_gradient("cce_logits")
    denom = sum(sp.exp(v) for v in outs)
    for k in range(width):
        ours = at_position(grad, {registry.a: outs, registry.y: ys}, l=k)
        assert sp.simplify(ours - (sp.exp(outs[k]) / denom - ys[k])) == 0
