"""The ops that layers add beyond a dense layer: layer normalization and a weight-decayed cost.

Layer normalization is defined once, over one row ``z[0..n-1]`` like an activation::

    mu = sum_i z[i] / n,   sigma = sqrt(sum_i (z[i] - mu)^2 / n + eps),   x̂[j] = (z[j] - mu) / sigma

Its backward rule is derived here by SymPy's ``diff`` through ``mu`` and ``sigma`` (the chain
rule over the two row statistics) and cancels to the textbook closed form
``dz = (n dx̂ - Σ dx̂ - x̂ Σ dx̂ x̂) / (n sigma)``. Weight decay's term of a weight's gradient is
SymPy's matrix calculus of ``(λ/2) trace(Wᵀ W)``. Nothing here is a typed derivative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import sympy as sp
from sympy import Indexed, Sum, Trace

from .ops import CostOp, _stand_in, lift, rowsum, total
from .registry import a, i, j, n, z
from .rules import da, index_diff, l, split_sums

mu = sp.Symbol("mu", real=True)  # the row's mean
sigma = sp.Symbol("sigma", positive=True)  # the row's standard deviation (with eps)
eps = sp.Symbol("epsilon", positive=True)
_variance = sp.Symbol("v", nonnegative=True)

MEAN = Sum(z[i], (i, 0, n - 1)) / n
VARIANCE = Sum((z[i] - mu) ** 2, (i, 0, n - 1)) / n
DEVIATION = sp.sqrt(_variance + eps)  # of the variance v
NORMALIZED = (z[j] - mu) / sigma


def _mean_facts(expr: sp.Expr) -> sp.Expr:
    """What the definition of the mean says: ``sum_i z[i] = n mu``, ``sum_i 1 = n``."""
    expr = expr.replace(lambda e: isinstance(e, Sum) and e.function == 1, lambda e: e.doit())
    return expr.xreplace({Sum(z[i], (i, 0, n - 1)): n * mu})


@cache
def layer_norm_vjp() -> sp.Expr:
    """``dz[l] = sum_j dx̂[j] d x̂[j] / d z[l]`` in index notation, in ``x̂`` (written ``a``) and
    ``sigma``: the chain rule through the mean and the deviation, each derived by SymPy.

    >>> layer_norm_vjp()
    (n*da[l] - a[l]*Sum(a[j]*da[j], (j, 0, n - 1)) - Sum(da[j], (j, 0, n - 1)))/(n*sigma)
    """
    d_mean = _mean_facts(index_diff(MEAN, z))
    d_variance = index_diff(VARIANCE, z) + sp.diff(VARIANCE, mu) * d_mean
    d_variance = sp.factor_terms(_mean_facts(split_sums(sp.expand(d_variance))))
    d_sigma = (sp.diff(DEVIATION, _variance) * d_variance).subs(_variance, sigma**2 - eps)
    jacobian = (
        sp.diff(NORMALIZED, z[l])
        + sp.diff(NORMALIZED, mu) * d_mean
        + sp.diff(NORMALIZED, sigma) * d_sigma
    )
    vjp = split_sums(Sum(da[j] * jacobian, (j, 0, n - 1)))
    # in forward values: z[t] - mu = sigma x̂[t]
    vjp = vjp.replace(
        lambda e: isinstance(e, Indexed) and e.base == z, lambda e: mu + sigma * a[e.indices[0]]
    )
    return sp.cancel(split_sums(sp.expand(vjp)))


def deviation_of(row: sp.Symbol, width: sp.Expr, epsilon: sp.Expr) -> sp.Expr:
    """``sigma`` of each row of a matrix, a column: the definitions above, lifted."""
    variance = lift(VARIANCE, {z: row}, width).xreplace({mu: rowsum(row) / width})
    return DEVIATION.xreplace({_variance: variance, eps: epsilon})


def normalized_of(row: sp.Symbol, deviation: sp.Symbol, width: sp.Expr) -> sp.Expr:
    """``x̂`` of a matrix, given its column of deviations."""
    return NORMALIZED.xreplace({z[j]: row, mu: rowsum(row) / width, sigma: deviation})


@dataclass
class RowDeviationOp:
    """``S = sigma`` of each row: a forward value the normalization reuses. It sends no branch
    back: the normalization's derivative already goes through it."""

    label: str = "σ"

    def backward(self, node, adjoint) -> dict:
        return {}


@dataclass
class LayerNormOp:
    """``N = x̂``, the rows of the parent normalized; parents ``(input, S)``."""

    width: sp.Expr
    label: str = "norm"

    def backward(self, node, adjoint) -> dict:
        source, deviation = node.parents
        rows = {da: _stand_in(adjoint), a: node.symbol}
        term = lift(layer_norm_vjp(), rows, self.width).xreplace({sigma: deviation.symbol})
        return {source: (None, term)}


_ROWS, _COLS = sp.symbols("_p _q", integer=True, positive=True)
_WEIGHT = sp.MatrixSymbol("_W", _ROWS, _COLS)  # any weight matrix: one derivation for all


@cache
def penalty_rule() -> sp.MatrixExpr:
    """``d ((1/2) trace(Wᵀ W)) / dW`` by SymPy's matrix calculus, for a placeholder ``_W``.

    >>> penalty_rule()
    _W
    """
    return (Trace(_WEIGHT.T * _WEIGHT) / 2).diff(_WEIGHT)


@dataclass
class DecayedCostOp(CostOp):
    """The mean loss plus ``(λ/2) Σ ‖W‖²`` over the weight matrices (the parents after the
    output and the target)."""

    decay: sp.Expr = field(default=sp.Integer(0))

    def definition(self, a_sym, y_sym, weights=()) -> sp.Expr:
        penalty = sp.Add(*[total(w.symbol**2) for w in weights])
        return super().definition(a_sym, y_sym) + self.decay / 2 * penalty

    def backward(self, node, adjoint) -> dict:
        output, target, *weights = node.parents
        out = super().backward(_Head(node), adjoint)
        for weight in weights:
            rule = penalty_rule().xreplace({_WEIGHT: weight.matrix})
            out[weight] = (None, _stand_in(adjoint) * self.decay * rule)
        return out


class _Head:
    """A cost node seen as output and target only, for the data term's backward step."""

    def __init__(self, node):
        self.parents = node.parents[:2]


@dataclass(frozen=True)
class Mask:
    """What a dropout mask node holds: 0/1 entries, kept with probability ``keep``. Data, not
    a parameter: no gradient is taken with respect to it."""

    keep: sp.Rational
    label: str = "mask"
