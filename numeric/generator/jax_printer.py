"""The JAX printer: the kernels over ``jax.numpy``, each compiled with ``jax.jit``."""

from __future__ import annotations

import sympy as sp

from .kernel_printer import KernelPrinter


class JaxPrinter(KernelPrinter):
    """The same kernels over ``jax.numpy``, each compiled with ``jax.jit``.

    A compiled function returns arrays; where the contract asks for a Python float (the
    cost), a thin wrapper converts the compiled function's result. ``Aᵀ B`` is printed as a
    contraction over the first axes (XLA would copy the transpose). Float64 inputs need
    JAX's x64 mode (``jax.enable_x64``); without it JAX computes in float32. Arrays are
    immutable, so nothing is written in place: XLA reuses buffers by itself.
    """

    module = "jnp"
    target = "jax"
    imports = ("import jax", "import jax.numpy as jnp")

    def _print_MatMul(self, expr):
        """``Aᵀ B`` as a contraction over the first axes: XLA would copy a transpose."""
        matrices = expr.as_coeff_matrices()[1]
        scalar = sp.Mul(*[a for a in expr.args if not isinstance(a, sp.MatrixExpr)])
        if len(matrices) != 2 or not any(isinstance(m, sp.Transpose) for m in matrices):
            return super()._print_MatMul(expr)
        left, right = matrices
        if isinstance(left, sp.OneMatrix) or isinstance(right, sp.OneMatrix):
            return super()._print_MatMul(expr)
        a, left_axis = (left.arg, 0) if isinstance(left, sp.Transpose) else (left, -1)
        b, right_axis = (right.arg, -1) if isinstance(right, sp.Transpose) else (right, 0)
        text = (
            f"jnp.tensordot({self._print(a)}, {self._print(b)}, axes=({left_axis}, {right_axis}))"
        )
        if scalar == 1:
            return text
        return self._print(scalar * sp.Symbol("__matrix__")).replace("__matrix__", text)

    def _print_erf(self, expr):
        return f"jax.scipy.special.erf({self._args(expr)})"  # jax.numpy has none

    def function(self, name, args, doc, body, returns):
        if not any(is_float for _, _, is_float in returns):
            inner = super().function(name, args, doc, body, returns)
            return [("@jax.jit", None, "def"), *inner]
        core = f"_{name}"
        plain = [(n, e, False) for n, e, _ in returns]
        out = [("@jax.jit", None, "def")]
        out += super().function(core, args, f"Compiled body of `{name}`.", body, plain)
        names = ", ".join(n for n, _, _ in returns)
        call = ", ".join(arg.split("=")[0] for arg in args.split(", "))  # masks=None: masks
        converted = ", ".join(f"float({n})" if f else n for n, _, f in returns)
        out += [
            ("", None, "blank"),
            ("", None, "blank"),
            (f"def {name}({args}):", None, "def"),
            (f'    """{doc}"""', None, "doc"),
            (f"    {names} = {core}({call})", None, "call"),
            (f"    return {converted}", None, "return"),
        ]
        return out
