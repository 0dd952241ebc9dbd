"""Update rules: their printed NumPy code against SymPy and against optax, in place."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.errors import BackpropInputError
from derive.optimizers import SGD, Adam, Momentum, Perceptron, optimizer, theta
from numeric.training import Stepper, update_source

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

RULES = [SGD(lr=0.1), Momentum(lr=0.05, beta=0.8), Adam(lr=0.01), Perceptron(lr=0.5)]


def _sympy_step(rule, param, signal, state, t):
    """One step evaluated entry by entry from the rule's SymPy assignments (the oracle)."""
    values = {s: float(x) for s, x in rule.substitutions().items()}
    names = {theta: param, rule.signal: signal, **state}
    new_state = {s: np.array(a, dtype=float) for s, a in names.items()}
    for lhs, rhs in rule.assignments:
        fn = sp.lambdify(list(new_state), rhs.subs(values).subs(sp.Symbol("t", integer=True,
                         positive=True), t), "numpy")  # fmt: skip
        new_state[lhs] = np.asarray(fn(*new_state.values()), dtype=float)
    return new_state


@settings(max_examples=25, deadline=None)
@given(
    rule=st.sampled_from(RULES),
    values=st.lists(st.floats(-3, 3), min_size=3, max_size=9),
    steps=st.integers(1, 4),
)
def test_printed_update_equals_the_sympy_assignments(rule, values, steps):
    param = np.array(values)
    expected = {theta: param.copy(), **{s: np.zeros_like(param) for s in rule.state}}
    stepper = Stepper(rule, {"w": param}, chunk_bytes=16)  # slices of 2 entries: chunking too
    for t in range(1, steps + 1):
        signal = np.cos(param * t) + 0.5
        state = {s: expected[s] for s in rule.state}
        expected = _sympy_step(rule, expected[theta], signal, state, t)
        stepper.step({"w": signal})
    np.testing.assert_allclose(param, expected[theta], rtol=1e-12, atol=1e-15)
    for s in rule.state:
        np.testing.assert_allclose(stepper.state[str(s)]["w"], expected[s], rtol=1e-12,
                                   atol=1e-15)  # fmt: skip


def test_update_code_is_in_place_and_names_every_assignment():
    source = update_source(Adam())
    body = source.split("def update")[1]
    assert "# m = beta1*m + " in body and "# param = param - " in body
    assert body.count("out=") + body.count("= ") >= 10
    for line in body.splitlines()[2:]:
        code = line.strip()
        if code and not code.startswith("#"):  # every line writes into an existing array
            assert "out=" in code or any(op in code for op in ("+=", "-=", "*=", "/=")), code


def test_a_step_allocates_nothing_of_a_parameters_size():
    big = np.zeros(500_000)  # 4 MB
    for rule in (SGD(), Momentum(), Adam()):
        stepper = Stepper(rule, {"w": big})
        grad = np.ones_like(big)
        stepper.step({"w": grad})  # first call: compile caches and the like
        tracemalloc.start()
        for _ in range(3):
            stepper.step({"w": grad})
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < big.nbytes / 20, (rule, peak)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "0.1", True])
def test_a_bad_learning_rate_is_named(bad):
    with pytest.raises(BackpropInputError, match="lr"):
        SGD(lr=bad)


@pytest.mark.parametrize("beta", [1.0, -0.1, 1.5])
def test_a_decay_rate_outside_0_1_is_refused(beta):
    with pytest.raises(BackpropInputError, match=r"beta1 must be in \[0, 1\)"):
        Adam(beta1=beta)


def test_unknown_optimizer_lists_the_known_ones():
    with pytest.raises(BackpropInputError, match="sgd, momentum, adam, perceptron"):
        optimizer("rmsprop")


# -- against optax, the independent implementation


def _optax(rule):
    if isinstance(rule, SGD):
        return optax.sgd(rule.lr)
    if isinstance(rule, Momentum):
        return optax.sgd(rule.lr, momentum=rule.beta)
    # optax's eps is added to sqrt(v_hat), as in our definition (and torch's)
    return optax.adam(rule.lr, b1=rule.beta1, b2=rule.beta2, eps=rule.eps)


def _jax_cost(params, X, Y):
    """mlp 3-5-1, tanh hidden, sigmoid output, mean binary cross-entropy, in jax.numpy."""
    A1 = jnp.tanh(X @ params["W1"] + params["b1"])
    Z2 = A1 @ params["W2"] + params["b2"]
    return jnp.mean(jnp.sum(jax.nn.softplus(Z2) - Y * Z2, axis=1))


@pytest.fixture(scope="module")
def problem():
    import derive
    from numeric import codegen

    kernel = codegen(derive.mlp([3, 5, 1], activation="tanh").derive())
    rng = np.random.default_rng(7)
    X = rng.standard_normal((60, 3))
    Y = (X[:, :1] * X[:, 1:2] > 0).astype(float)
    return kernel, kernel.random_params(seed=3), X, Y


def _relative(ours, theirs):
    theirs = np.asarray(theirs)
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


@pytest.mark.parametrize("rule", [SGD(lr=0.3), Momentum(lr=0.1, beta=0.9), Adam(lr=0.02)])
def test_trajectory_matches_optax_for_100_steps(problem, rule):
    kernel, start, X, Y = problem
    params = {k: v.copy() for k, v in start.items()}
    stepper = Stepper(rule, params)
    tx = _optax(rule)
    jparams = {k: jnp.asarray(v) for k, v in start.items()}
    state = tx.init(jparams)
    grad = jax.jit(jax.grad(_jax_cost))
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(100):
        rows = rng.choice(len(X), size=16, replace=False)
        _, grads = kernel.loss_and_grads(params, X[rows], Y[rows])
        stepper.step(grads)
        updates, state = tx.update(grad(jparams, X[rows], Y[rows]), state, jparams)
        jparams = optax.apply_updates(jparams, updates)
        worst = max(worst, *(_relative(params[k], jparams[k]) for k in params))
    assert worst <= 1e-12
    assert _relative(params["W1"], start["W1"]) > 1e-3  # it did move


@pytest.mark.parametrize("rule", [SGD(lr=0.3), Momentum(lr=0.1, beta=0.9), Adam(lr=0.02)])
def test_train_follows_optax_over_its_own_batches(problem, rule):
    """numeric.train's documented batch order (one permutation per epoch), 10 batches of 6
    for 10 epochs: its losses at every step and its final params are optax's."""
    from numeric import train

    kernel, start, X, Y = problem
    params = {k: v.copy() for k, v in start.items()}
    run = train(kernel, params, X, Y, rule, epochs=10, batch_size=6, seed=5, progress=False)
    tx = _optax(rule)
    jparams = {k: jnp.asarray(v) for k, v in start.items()}
    state = tx.init(jparams)
    value_and_grad = jax.jit(jax.value_and_grad(_jax_cost))
    rng = np.random.default_rng(5)
    losses = []
    for _ in range(10):
        order = rng.permutation(len(X))
        for lo in range(0, len(X), 6):
            rows = order[lo : lo + 6]
            loss, grads = value_and_grad(jparams, X[rows], Y[rows])
            losses.append(float(loss))
            updates, state = tx.update(grads, state, jparams)
            jparams = optax.apply_updates(jparams, updates)
    assert len(run.history.step_loss) == 100
    np.testing.assert_allclose(run.history.step_loss, losses, rtol=1e-12)
    for k in params:
        assert _relative(params[k], jparams[k]) <= 1e-12
