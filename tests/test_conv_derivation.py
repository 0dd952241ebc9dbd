"""The tensor ops' backward rules, as derived and named, against SymPy's diff of the expanded
expression at small concrete sizes (an independent route: no delta is summed out by hand)."""

import itertools

import numpy as np
import pytest
import sympy as sp

from derive import tensor_ops as T
from derive.index_calculus import Contraction
from derive.ops import m


def _entries(shape):
    return itertools.product(*(range(size) for size in shape))


def _at(grad: Contraction, sizes: dict, entry) -> sp.Expr:
    """One entry of a gradient, every sum written out."""
    free = dict(zip(grad.target.indices, entry))
    return grad.expr().xreplace(sizes).xreplace(free).doit()


def _full(expr, sizes):
    """``dZ_full`` by its definition: ``dZ`` dilated by ``s``, padded by ``k - 1``."""
    s, kh, kw = sizes[T.s], sizes[T.k_h], sizes[T.k_w]
    ho, wo = sizes[T.H_out], sizes[T.W_out]

    def entry(f):
        n, y, x, o = f.indices
        hy, hx = y - (kh - 1), x - (kw - 1)
        if hy % s or hx % s or not (0 <= hy // s < ho and 0 <= hx // s < wo):
            return sp.S.Zero
        return T.dZ[n, hy // s, hx // s, o]

    return expr.replace(lambda f: isinstance(f, sp.Indexed) and f.base == T.dZ_full, entry)


def _conv_sizes(h, kh, s, c_in=2, c_out=2, batch=1):
    ho = (h - kh) // s + 1
    return {m: batch, T.H: h, T.W: h, T.k_h: kh, T.k_w: kh, T.s: s, T.C_in: c_in,
            T.C_out: c_out, T.H_out: ho, T.W_out: ho}  # fmt: skip


def _expanded_conv_cost(sizes):
    cost = sp.Sum(T.dZ[T.n, T.h, T.w, T.o] * T.CONV, *T._CONV_OUT)
    return cost.xreplace(sizes).doit()


@pytest.mark.parametrize("h, kh, s, c_in", [(3, 2, 1, 2), (4, 3, 1, 1), (5, 3, 2, 1)])
def test_conv_gradients_match_sympy_diff_of_the_expanded_sum(h, kh, s, c_in):
    sizes = _conv_sizes(h, kh, s, c_in=c_in)
    cost = _expanded_conv_cost(sizes)
    rule = T.convolution()
    shapes = {"K": (kh, kh, c_in, 2), "b": (2,), "X": (1, h, h, c_in)}
    bases = {"K": T.K, "b": T.b, "X": T.X}
    for name, shape in shapes.items():
        for entry in _entries(shape):
            want = sp.diff(cost, bases[name][entry])
            for form in (rule.derived[name], rule.named[name]):
                got = _full(_at(form, sizes, entry), sizes)
                assert sp.expand(got - want) == 0, (name, entry, got, want)


def test_conv_named_forms_are_the_textbook_ones():
    rule = T.convolution()
    dk = rule.named["K"]
    # dK: the input read through the window at (p, q), times dZ, summed over n, h, w
    assert set(dk.factors()) == {T.X[T.n, T.s * T.h + T.p, T.s * T.w + T.q, T.r],
                                 T.dZ[T.n, T.h, T.w, T.v]}  # fmt: skip
    assert {lim[0] for lim in dk.limits} == {T.n, T.h, T.w}
    # db: dZ summed over examples and positions
    assert rule.named["b"].body == T.dZ[T.n, T.h, T.w, T.v]
    # dX: the kernel flipped, against dZ_full read at q + i
    dx = rule.named["X"]
    assert T.K[T.k_h - 1 - T.i, T.k_w - 1 - T.j, T.v, T.o] in dx.factors()
    assert T.dZ_full[T.p, T.q + T.i, T.r + T.j, T.o] in dx.factors()
    assert dx.support == ()


def _pool_sizes(h, s):
    return {m: 1, T.H: h, T.W: h, T.s: s, T.C_in: 2, T.H_out: h // s, T.W_out: h // s}


@pytest.mark.parametrize("h, s", [(4, 2), (6, 3), (6, 2)])
def test_average_pool_spreads_one_over_size_squared(h, s):
    sizes = _pool_sizes(h, s)
    cost = sp.Sum(T.dZ[T.n, T.h, T.w, T.c] * T.POOL, *T._POOL_OUT).xreplace(sizes)
    cost = cost.xreplace({T.R: sp.IndexedBase("unused")}).doit()
    cost = cost.replace(lambda f: isinstance(f, sp.Indexed) and f.base.label.name == "unused",
                        lambda f: sp.Rational(1, s * s))  # fmt: skip
    named = T.pooling().named["X"]
    for entry in _entries((1, h, h, 2)):
        got = _at(named, sizes, entry).replace(
            lambda f: isinstance(f, sp.Indexed) and f.base == T.R, lambda f: sp.Rational(1, s * s)
        )
        assert sp.expand(got - sp.diff(cost, T.X[entry])) == 0


@pytest.mark.parametrize("seed", range(3))
def test_max_pool_gradient_goes_to_the_arg_max(seed):
    """SymPy's diff of the expanded ``Max`` over each window, at distinct random values, is
    the named form with ``R`` the arg-max indicator."""
    h, s = 4, 2
    sizes = _pool_sizes(h, s)
    values = np.random.default_rng(seed).permutation(h * h * 2).reshape(1, h, h, 2)
    cost = 0
    for n, y, x, c in _entries((1, h // s, h // s, 2)):
        window = [T.X[n, s * y + i, s * x + j, c] for i in range(s) for j in range(s)]
        cost += T.dZ[n, y, x, c] * sp.Max(*window)
    at_values = {T.X[e]: int(values[e]) for e in _entries(values.shape)}
    named = T.pooling().named["X"]
    for entry in _entries(values.shape):
        want = sp.diff(cost, T.X[entry]).xreplace(at_values)
        n, y, x, c = entry
        block = values[n, y - y % s : y - y % s + s, x - x % s : x - x % s + s, c]
        is_max = sp.Integer(int(values[entry] == block.max()))
        got = _at(named, sizes, entry).xreplace({T.R[entry]: is_max})
        assert sp.expand(got - want) == 0


def test_max_derivative_is_the_first_arg_max_indicator_away_from_ties():
    rule = T.max_derivative(2)
    window = sp.symbols("x0:4", real=True)
    for values in ([1, 4, 2, 3], [5, 1, 2, 0], [0, 1, 2, 3]):
        got = [float(d.xreplace(dict(zip(window, values)))) for d in rule]
        assert got == [float(k == int(np.argmax(values))) for k in range(4)]


def test_flatten_gradient_is_dz_reshaped():
    h, w, c = 2, 3, 2
    sizes = {m: 1, T.H: h, T.W: w, T.C_in: c}
    cost = sum(T.dZ[0, k] * T.X[(0, *np.unravel_index(k, (h, w, c)))] for k in range(h * w * c))
    named = T.flatten().named["X"]
    assert named.support == ()
    for entry in _entries((1, h, w, c)):
        assert sp.expand(_at(named, sizes, entry) - sp.diff(cost, T.X[entry])) == 0


def test_mean_over_time_shares_dz_equally():
    sizes = {m: 1, T.T: 3, T.d: 2}
    cost = sum(T.dZ[0, e] * sum(T.X[0, t, e] for t in range(3)) / 3 for e in range(2))
    for entry in _entries((1, 3, 2)):
        got = _at(T.mean_over_time().named["X"], sizes, entry)
        assert sp.expand(got - sp.diff(cost, T.X[entry])) == 0


@pytest.mark.parametrize("kind", ["weights", "scores", "mix"])
def test_attention_products_match_sympy_diff(kind):
    sizes = {m: 2, T.T: 2, T.d: 3, T.d_k: 2}
    rule = T.product(kind)
    target = rule.definition.lhs
    sizes_of = {T.n: 2, T.t: 2, T.k: 2, T.u: 2, T.e: 3}
    limits = [(ix, 0, sizes_of[ix] - 1) for ix in target.indices]
    cost = sp.Sum(T.dZ[target.indices] * rule.definition.rhs, *limits).xreplace(sizes).doit()
    a_shape = {"weights": (2, 2, 3), "scores": (2, 2, 2), "mix": (2, 2, 2)}[kind]
    b_shape = {"weights": (3, 2), "scores": (2, 2, 2), "mix": (2, 2, 3)}[kind]
    for name, base, shape in (("A", T.A, a_shape), ("B", T.B, b_shape)):
        for entry in _entries(shape):
            got = _at(rule.derived[name], sizes, entry)
            assert sp.expand(got - sp.diff(cost, base[entry])) == 0, (kind, name, entry)


def test_softmax_rule_is_p_times_dp_minus_rowsum():
    """Attention's softmax uses the registry's row rule; it has the ``P ⊙ (dP - Σ dP ⊙ P)``
    shape, and equals SymPy's diff of the expanded softmax of a row of three."""
    from derive.registry import a
    from derive.rules import activation_vjp, da, l

    rule = activation_vjp("softmax")
    j = sp.Symbol("j", integer=True, nonnegative=True)
    rowsum = sp.Sum(a[j] * da[j], (j, 0, sp.Symbol("n", integer=True, positive=True) - 1))
    assert sp.expand(rule - a[l] * (da[l] - rowsum)) == 0
    s = sp.symbols("s0:3", real=True)
    g = sp.symbols("g0:3", real=True)
    p = [sp.exp(si) / sum(sp.exp(sk) for sk in s) for si in s]
    cost = sum(gi * pi for gi, pi in zip(g, p))
    for col in range(3):
        got = rule.xreplace({l: col}).xreplace({sp.Symbol("n", integer=True, positive=True): 3})
        got = got.doit().replace(lambda f: isinstance(f, sp.Indexed) and f.base == a,
                                 lambda f: p[int(f.indices[0])])  # fmt: skip
        got = got.replace(lambda f: isinstance(f, sp.Indexed) and f.base == da,
                          lambda f: g[int(f.indices[0])])  # fmt: skip
        assert sp.simplify(got - sp.diff(cost, s[col])) == 0


@pytest.mark.parametrize("h, kh, s", [(4, 2, 1), (5, 2, 2)])
def test_conv_input_gradient_as_windows_added_back_matches_sympy_diff(h, kh, s):
    """col2im: each window's share ``dZ Wᵀ`` added back at ``s h + i`` is the same dX."""
    sizes = _conv_sizes(h, kh, s, c_in=1)
    cost = _expanded_conv_cost(sizes)
    share, place = T.as_window_scatter(T.convolution().derived["X"])
    q, r = list(place)
    ho = sizes[T.H_out]
    for entry in _entries((1, h, h, 1)):
        got = 0
        for y, x, i, j in _entries((ho, ho, kh, kh)):
            at = {T.h: y, T.w: x, T.i: i, T.j: j}
            if (place[q].xreplace(at | sizes), place[r].xreplace(at | sizes)) == entry[1:3]:
                got += _at(share, sizes, (entry[0], y, x, i, j, entry[3]))
        assert sp.expand(got - sp.diff(cost, T.X[entry])) == 0, entry
