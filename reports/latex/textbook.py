"""Derivatives as a textbook writes them: ``σ'(z)`` for an elementwise activation, else
the derived expression; shared by the sections, the figures and the notebook display.
"""

from __future__ import annotations

import sympy as sp

from derive import registry
from derive.ops import ActivationOp, RowActivationOp

from .printer import activation_function


def elementwise_activation(node) -> str | None:
    """The registry name of the elementwise activation computing ``node``, if it is one."""
    op = node.op
    if isinstance(op, ActivationOp | RowActivationOp):
        if registry.activation(op.name).elementwise:
            return op.name
    return None


def local_textbook(branch, node, textbook: bool = True):
    """The local derivative of ``branch.child`` with respect to ``node``, as a textbook
    writes it: ``σ'(z)`` for an elementwise activation, else the derived expression."""
    name = elementwise_activation(branch.child)
    if textbook and name is not None and name != "linear":
        parent = node.symbol
        return activation_function(name)(parent).diff(parent)
    local = branch.local_derivative
    return sp.factor_terms(local) if local is not None else None


def activation_in(expr) -> bool:
    """Whether ``expr`` holds an activation's derivative, such as ``σ'(z)``."""
    return any(isinstance(d, sp.Derivative) for d in expr.atoms(sp.Derivative))
