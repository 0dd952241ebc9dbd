"""Derived gradients against independent routes: SymPy's diff of the expanded cost, and the
scalar level against the matrix level instantiated at concrete sizes."""

import random

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derive
from derive import evaluate
from derive.registry import ACTIVATIONS, LOSSES

SMOOTH_HIDDEN = ["linear", "sigmoid", "tanh", "softplus"]
KINKED_HIDDEN = ["relu", "leaky_relu", "elu"]
HEADS = [  # (output, loss) pairs that fit, one per loss
    ("sigmoid", "bce"),
    ("linear", "bce_logits"),
    ("softmax", "cce"),
    ("linear", "cce_logits"),
    ("softmax", "sparse_cce"),
    ("tanh", "sse"),
    ("sigmoid", "half_sse"),
    ("softmax", "mse"),
    ("linear", "mae"),
    ("linear", "huber"),
]


def needs_two_outputs(output, loss):
    return output == "softmax" or LOSSES[loss].min_outputs > 1


def random_point(model, rng, one_hot=True):
    """Values for every leaf of a scalar model; targets one-hot (valid for every loss)."""
    point = {}
    for node in model.inputs + model.params:
        point[node.symbol] = sp.Float(rng.uniform(-1.5, 1.5), 30)
    targets = model.targets
    hot = rng.randrange(len(targets))
    for k, node in enumerate(targets):
        point[node.symbol] = sp.Integer(int(k == hot)) if one_hot else sp.Float(rng.random(), 30)
    return point


def assert_gradients_match_diff(model, rng, points=2, tol=1e-12):
    """Each derived gradient, written in inputs and parameters, equals SymPy's diff of the
    expanded cost at random points."""
    derivation = model.derive()
    cost = model.cost_expression()
    for _ in range(points):
        point = random_point(model, rng)
        for param in model.params:
            ours = derivation.gradient(param.name, expanded=True).xreplace(point).doit()
            truth = sp.diff(cost, param.symbol).xreplace(point).doit()
            assert abs(complex(ours - truth)) <= tol * max(1.0, abs(complex(truth))), param.name


# ---------------------------------------------------------------------------- scalar level


def test_logistic_regression_symbolically_equals_diff():
    model = derive.logistic_regression(2)
    derivation = model.derive()
    cost = model.cost_expression()
    for param in model.params:
        ours = derivation.gradient(param.name, expanded=True)
        assert sp.simplify(ours - sp.diff(cost, param.symbol)) == 0


@pytest.mark.parametrize("activation", SMOOTH_HIDDEN + KINKED_HIDDEN)
@pytest.mark.parametrize("output,loss", HEADS)
def test_every_activation_and_loss_on_a_chain(activation, output, loss):
    if needs_two_outputs(output, loss):
        model = derive.mlp([1, 2, 2], activation, output, loss, level="scalar")
    else:
        model = derive.chain(3, activation=activation, output=output, loss=loss)
    assert_gradients_match_diff(model, random.Random(hash((activation, output, loss)) % 2**32))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 3), min_size=2, max_size=4),
    activation=st.sampled_from(SMOOTH_HIDDEN),
    head=st.sampled_from(HEADS),
    seed=st.integers(0, 2**16),
)
def test_scalar_mlp_gradients_equal_diff_of_expanded_cost(sizes, activation, head, seed):
    output, loss = head
    if needs_two_outputs(output, loss):
        sizes[-1] = max(sizes[-1], 2)
    model = derive.mlp(sizes, activation, output, loss, level="scalar")
    assert_gradients_match_diff(model, random.Random(seed), points=1)


@pytest.mark.parametrize(
    "text",
    [
        "J = 3*(a + b*c)",
        "x*y + sin(x*y)",
        "a/(b + c) - exp(-a)",
        "sigmoid(w*x + b)",
        "log(1 + exp(u*v)) * sqrt(u**2 + 1)",
        "tanh(a)^3 - a",
    ],
)
def test_expression_gradients_equal_diff(text):
    model = derive.from_expr(text)
    derivation = model.derive()
    cost = model.cost_expression()
    for param in model.params:
        ours = derivation.gradient(param.name, expanded=True)
        assert sp.simplify(ours - sp.diff(cost, param.symbol)) == 0


# ---------------------------------------------------------------------------- matrix level


def matrix_values(sizes, batch, rng, labels):
    def rand(rows, cols):
        return sp.Matrix(rows, cols, lambda i, j: sp.Float(rng.uniform(-1, 1), 30))

    values = {"X": rand(batch, sizes[0])}
    for k in range(1, len(sizes)):
        values[f"W{k}"] = rand(sizes[k - 1], sizes[k])
        values[f"b{k}"] = rand(1, sizes[k])
    hot = [rng.randrange(sizes[-1]) for _ in range(batch)]
    values["Y"] = sp.Matrix(batch, sizes[-1], lambda i, j: int(j == hot[i]))
    return values


def scalar_values(values, row, sizes):
    """The same numbers, for one example, in the scalar model's names."""
    model = derive.mlp(sizes, level="scalar", loss="mse", output="linear")
    out = {}
    for node in model.nodes:
        if node.tensor is not None:
            name, index = node.tensor
            matrix = values[name]
            if name in ("X", "Y"):
                out[node.name] = matrix[row, index[0]]
            elif len(index) == 1:
                out[node.name] = matrix[0, index[0]]
            else:
                out[node.name] = matrix[index]
    return out


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 3), min_size=2, max_size=3),
    activation=st.sampled_from(SMOOTH_HIDDEN + KINKED_HIDDEN),
    head=st.sampled_from(HEADS),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_matrix_level_instantiated_equals_scalar_level(sizes, activation, head, batch, seed):
    output, loss = head
    if needs_two_outputs(output, loss):
        sizes[-1] = max(sizes[-1], 2)
    rng = random.Random(seed)
    values = matrix_values(sizes, batch, rng, labels=loss == "sparse_cce")
    matrix = evaluate(derive.mlp(sizes, activation, output, loss).derive(), values, batch)
    scalar = derive.mlp(sizes, activation, output, loss, level="scalar").derive()
    for row in range(batch):
        per_example = evaluate(scalar, scalar_values(values, row, sizes))
        for node in scalar.model.params:
            name, index = node.tensor
            entry = (0, index[0]) if len(index) == 1 else index
            matrix[f"d{name}"][entry] -= per_example[f"d{node.name}"] / batch
    for node in derive.mlp(sizes, activation, output, loss).params:
        assert max(abs(v) for v in matrix[f"d{node.name}"]) < 1e-20


# ---------------------------------------------------------------------------- textbook forms


def test_logistic_regression_batch_gradients_are_textbook():
    d = derive.logistic_regression(3, level="matrix").derive()
    X, A, Y = (sp.Symbol(s, real=True) for s in "XAY")
    m = derive.ops.m
    assert sp.simplify(d.step("Z").value - (A - Y) / m) == 0  # dZ = (A - Y)/m
    dz = d.step("Z").adjoint
    assert d.gradient("w") == d.model.node("X").matrix.T * dz  # ∇w = Xᵀ dZ
    assert d.gradient("b") == sp.OneMatrix(1, m) * dz  # ∂b = 1ᵀ dZ


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_dense_layer_gradients_are_textbook(activation):
    d = derive.mlp([4, 3, 2], activation=activation).derive()
    node = d.model.node
    dz1, dz2 = d.step("Z1").adjoint, d.step("Z2").adjoint
    assert d.gradient("W1") == node("X").matrix.T * dz1  # dW = A_prevᵀ dZ
    assert d.gradient("W2") == node("A1").matrix.T * dz2
    assert d.gradient("b2") == sp.OneMatrix(1, derive.ops.m) * dz2  # db = 1ᵀ dZ
    assert d.step("A1").value == dz2 * node("W2").matrix.T  # dA_prev = dZ Wᵀ
    # dZ = dA ⊙ g'(Z), with g' written in the layer's own output A1 (no exp recomputed)
    dz1_value = d.step("Z1").value
    a1 = node("A1").symbol
    assert node("Z1").symbol not in dz1_value.free_symbols
    assert not dz1_value.has(sp.exp)
    g_prime = derive.rules.elementwise_derivative(activation).subs(derive.rules.out, a1)
    assert sp.expand(dz1_value - sp.Symbol("dA1", real=True) * g_prime) == 0


@pytest.mark.parametrize(
    "output,loss", [("sigmoid", "bce"), ("softmax", "cce"), ("softmax", "sparse_cce")]
)
def test_matrix_head_simplifies_to_a_minus_y_over_m(output, loss):
    sizes = [3, 4, 1 if output == "sigmoid" else 3]
    d = derive.mlp(sizes, "relu", output, loss).derive()
    A, Y = sp.Symbol("A2", real=True), sp.Symbol("Y", real=True)
    assert sp.simplify(d.step("Z2").value - (A - Y) / derive.ops.m) == 0
    assert "dA2" not in {s.adjoint.name for s in d.needed_steps()}  # dead once simplified


@pytest.mark.parametrize("n_out", [2, 3, 4])
def test_scalar_softmax_cross_entropy_gives_a_minus_y_for_every_output_count(n_out):
    # with two outputs no coefficient of y repeats: the row-sum fact must still be found
    d = derive.mlp([2, n_out], "relu", "softmax", "cce", level="scalar").derive()
    for k in range(1, n_out + 1):
        a, y = sp.Symbol(f"a1_{k}", real=True), sp.Symbol(f"y{k}", real=True)
        assert d.step(f"z1_{k}").value == a - y


def test_3blue1brown_last_layer_and_recursion():
    depth = 3
    d = derive.chain(depth).derive()
    a = {k: sp.Symbol(f"a{k}", real=True) for k in range(1, depth + 1)}
    y = sp.Symbol("y", real=True)
    # ∂C0/∂w(L) = a(L-1) σ'(z(L)) 2(a(L) - y), with σ'(z) = a(1 - a)
    textbook = a[depth - 1] * a[depth] * (1 - a[depth]) * 2 * (a[depth] - y)
    assert sp.expand(d.gradient(f"w{depth}", closed=True) - textbook) == 0
    # and the recursion to earlier layers: ∂C0/∂z(l) = w(l+1) σ'(z(l)) ∂C0/∂z(l+1)
    for k in range(1, depth):
        dz_next = sp.Symbol(f"dz{k + 1}", real=True)
        w_next = sp.Symbol(f"w{k + 1}", real=True)
        assert d.step(f"a{k}").value == dz_next * w_next
        da = sp.Symbol(f"da{k}", real=True)
        assert sp.expand(d.step(f"z{k}").value - da * a[k] * (1 - a[k])) == 0


def test_forks_sum_their_branches():
    model = derive.from_expr("f = x*y + sin(x*y)")
    step = model.derive().step("u")  # u = x*y feeds both the sum and the sine
    assert step.is_fork and len(step.branches) == 2
    assert step.named == sp.Add(*[b.term for b in step.branches])


def test_one_sweep_one_step_per_node():
    model = derive.mlp([3, 3, 2], "tanh", level="scalar")
    d = model.derive()
    names = [s.node.name for s in d.steps]
    assert len(names) == len(set(names))
    assert set(names) == {n.name for n in model.needs_gradient()} | {model.cost.name}


def test_every_registry_entry_reaches_a_derivation():
    for act in ACTIVATIONS:
        if act != "softmax":
            derive.chain(2, activation=act).derive()
    for loss in LOSSES:
        output = {"bce": "sigmoid", "cce": "softmax", "sparse_cce": "softmax"}.get(loss, "linear")
        derive.mlp([2, 2], output=output, loss=loss).derive()


def test_entry_sums_split_over_terms_but_keep_constants_with_their_matrix():
    A, B = sp.Symbol("A", real=True), sp.Symbol("B", real=True)
    total, rowsum = derive.ops.total, derive.ops.rowsum
    assert total(A + 2 * B) == total(A) + 2 * total(B)
    # total(1) would have lost the shape it sums over (m*n ones, not 1)
    for reduce in (total, rowsum):
        assert reduce(1 - A).args == (1 - A,)
