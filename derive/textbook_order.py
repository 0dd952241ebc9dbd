"""The order a textbook writes a weighted sum in: ``w a + b``, weight first, bias last.

SymPy sorts the terms of a sum and the factors of a product by name, so ``z2 = w2 a1 + b2``
would print as ``a1 w2 + b2`` and ``z1 = w1 x + b1`` as ``b1 + w1 x``. Every printer (the
report's LaTeX, the terminal, the kernels' comments) asks these two functions instead, so
all of them show one order. A weight or bias is known by the builders' names for it
(``w2``, ``W1_1_2``, ``b``, ``b1_2``).

>>> import sympy as sp
>>> a1, w2, b2 = sp.symbols("a1 w2 b2")
>>> product_factors([a1, w2]), sum_terms([b2, a1 * w2])
([w2, a1], [a1*w2, b2])
"""

from __future__ import annotations

import re

_WEIGHT = re.compile(r"^[wW]\d*(_\d+)*$")
_BIAS = re.compile(r"^b\d*(_\d+)*$")


def _name(expr) -> str:
    return getattr(expr, "name", "") if getattr(expr, "is_symbol", False) else ""


def is_weight(expr) -> bool:
    return bool(_WEIGHT.match(_name(expr)))


def is_bias(expr) -> bool:
    return bool(_BIAS.match(_name(expr)))


def product_factors(factors) -> list:
    """The factors of a product, weights first, the rest in the order given."""
    factors = list(factors)
    return [f for f in factors if is_weight(f)] + [f for f in factors if not is_weight(f)]


def sum_terms(terms) -> list:
    """The terms of a sum, a lone bias last, the rest in the order given."""
    terms = list(terms)
    return [t for t in terms if not is_bias(t)] + [t for t in terms if is_bias(t)]
