"""The NumPy spelling of the functions a kernel calls, chosen by measurement.

What a function *is* comes from its SymPy definition (and its derivative from SymPy); this
table only says how NumPy computes it fastest without losing accuracy. The numbers come
from ``python -m bench.elementwise_forms`` (re-run it to re-make the choice on another CPU
or NumPy): one core, a 256×64 array, NumPy 2.4 with AVX-512, each form writing into a
given array; accuracy is the largest relative error against long double over -1000..1000.

=========  ==========================================  ==============  ==========================
function   formulation                                 time f64 / f32  verdict
=========  ==========================================  ==============  ==========================
tanh       ``np.tanh(u, out=...)``                     1.00 / 1.00     chosen: fastest, 1.5e-16
           ``1 - 2/(exp(2u) + 1)``                     1.39 / 3.50     slower; 1.8 rel. error at 0
           ``2/(1 + exp(-2u)) - 1``                    1.43 / 3.48     slower; same cancellation
           ``sign(u) -d/(2 + d)``, ``d = expm1(-2|u|)`` 2.15 / 4.98     slower
sigmoid    ``where(u >= 0, 1, e)/(1 + e)``,            1.00 / 1.00     the old helper: np.where
           ``e = exp(-|u|)``                                           mispredicts on random signs
           ``1/(1 + exp(-u))``, in place               0.06 / 0.17     chosen: 2.2e-16 / 1.8e-7
           ``(1 + tanh(u/2))/2``, in place             0.06 / 0.12     relative error 1 for u << 0
softplus   ``max(u, 0) + log1p(exp(-|u|))``            1.00 / 1.00     kept
           the same, every step in one array           0.90 / 0.90     level (0.97-0.98) in the
                                                                       m=1024 logreg kernel
           ``np.logaddexp(0, u)``                      17 / 30         not vectorized
relu       ``u * (u > 0)``, the mask kept for dZ       1.00 / 1.00     kept (see below)
           ``np.maximum(u, 0)``                        0.56 / 0.65     alone; level in a kernel
           ``u * (u > 0).astype(dtype)``               0.94 / 0.95
=========  ==========================================  ==============  ==========================

NumPy's ``tanh`` is vectorized in both dtypes, so no spelling through ``exp`` beats it:
each needs an ``exp`` (half a ``tanh`` in float64, more than one in float32) *and* a
division. The sigmoid is the other way round: its only fast spelling overflows ``exp(-u)``
for ``u`` below -709 (float64), where ``1 / (1 + inf) = 0`` is the sigmoid rounded, so the
overflow is silenced rather than avoided. ReLU's mask is computed for the backward step
anyway, so only the forward product could become ``np.maximum``: whole MLP 784-512-10 and
residual-MLP kernels with that change measured level with these (ratios 1.00-1.01, the
machine's noise), so the form a reader recognises stays.

NumPy has no ``erf`` (an exact GELU's), so a kernel calling it imports ``scipy.special.erf``
(:data:`numeric.generator.kernel_printer.SCIPY_SPECIAL`; JAX depends on SciPy anyway): a
ufunc that writes ``out=`` like NumPy's, 8.6 / 31 times ``np.tanh`` (f64 / f32, SciPy 1.17,
measured once by hand as above) against 140 / 280 for ``np.vectorize(math.erf)``, a Python
call per entry. It is within 2.6e-16 / 5.1e-8 of erf (mpmath at 113 bits, inputs from 1e-300
to 1000 of either sign) wherever the result is a normal number.

The array steps around the functions, measured the same way on the residual MLP's 128×256
arrays (float32 / float64, time relative to the first form; ``bench.codegen_speed --lines``
gives each step's share of a kernel):

- ``R1 = A2 + X``: into the dead operand, ``np.add(A2, X, out=A2)``, 0.49 / 0.52 of a new
  array: chosen (:mod:`numeric.generator.memory_reuse`).
- ``x / m``: ``np.multiply(x, 1 / m, out=x)`` 0.61 / 0.38 of ``np.divide``: chosen (within
  an ulp; exact for powers of 2).
- ``1ᵀ dZ``: ``ones @ dZ`` 1.00, ``dZ.sum(axis=0)`` 2.25 / 2.33, ``np.einsum("ij->j", dZ)``
  2.05 / 2.45: the matrix-vector product stays.
- ReLU's mask as floats, ``(Z > 0).astype(dtype)``: its two products take 0.49 / 0.47 of
  the boolean mask's, but making it costs 2.5 / 3 times as much and it is 4 / 8 times the
  memory: whole kernel 1.006 / 1.016, so the boolean mask stays. ``np.copyto(dA, 0,
  where=~mask)`` and ``np.where(mask, dA, 0)``: 9-50 times slower.
- ``Z += b``: twice a contiguous add of its size (the broadcast: 5.8 against 2.9 µs in
  float32), and no spelling avoids it (``b`` tiled over a reshaped ``Z``: 0.87-1.02, before
  the tile): it stays, 2 % of the residual MLP's pass and 6 % of the tanh network's.
- a softmax's row maxima over 10 classes: ``Z.T.copy().max(axis=0)`` takes 0.25 / 0.39 of
  ``Z.max(axis=1)`` alone (128 rows; 0.12 at 1024), which reduces each short row on its
  own, but whole MLP and residual-MLP kernels measured level with it (0.998-1.004, two
  copies of one kernel 0.993-1.001): ``max(axis=1, keepdims=True)`` stays.
- ``dZ @ W.T`` takes 1.16 times ``A @ W`` in float32 (OpenBLAS's transposed operand; level
  in float64); a contiguous copy of ``W.T`` costs half a product and ``W @ dZ.T`` (1.05)
  leaves ``dA`` transposed for every later step, so the product stays as the floor has it.
  JAX's products are not OpenBLAS's: ``dZ Wᵀ`` 122 against 130 µs here (but ``Aᵀ dZ`` 136
  against 108), and at the MLP 784-512-10's shapes (m=128) ``X W1`` 712 against 753 and
  ``Xᵀ dZ1`` 610 against 676 (float32, one core, each alone under ``jax.jit``): part of
  JAX's lead over the floor in the MLP's float32 case is its own products.
"""

from __future__ import annotations

import sympy as sp

from .kernel_forms import masked_value

# Functions a NumPy kernel defines once and calls by name (the JAX printer keeps its own:
# XLA fuses them whatever the spelling). Each takes an array or a number and returns a new
# array.
HELPERS = {
    "sigmoid": '''def sigmoid(u):
    """Logistic sigmoid 1 / (1 + exp(-u)). exp(-u) overflows to inf where the sigmoid
    rounds to 0 (u < -709 in float64, -88 in float32), and 1 / (1 + inf) is that 0."""
    s = np.empty_like(u)
    with np.errstate(over="ignore"):
        np.exp(np.negative(u, out=s), out=s)
    s += 1
    return np.reciprocal(s, out=s)''',
    "softplus": '''def softplus(u):
    """Softplus log(1 + exp(u)) = max(u, 0) + log1p(exp(-|u|)), without overflow."""
    return np.maximum(u, 0) + np.log1p(np.exp(-np.abs(u)))''',
}


def select_by_masks(expr) -> tuple | None:
    """``(a, c, b)`` when ``expr`` is ``a if c else b`` that NumPy should compute as
    ``a * c + b * ~c`` rather than ``np.where(c, a, b)``; None otherwise.

    ``np.where`` branches per entry: on the random signs of a layer's pre-activations it
    mispredicts, 59 µs against 25 µs for the two products and their sum (256×64 float64;
    61 against 14 in float32, measured as ``bench.elementwise_forms`` does). The sum equals
    the selected value exactly (``a * 1 + b * 0``) only where the other value is finite, so
    both must be finite wherever they are computed: sums and products of arrays and numbers
    (leaky ReLU's ``Z`` and ``Z/100``), no function or power. ``a if c else 0`` is the
    single product of :func:`numeric.generator.kernel_forms.masked_value`, not this.

    >>> z = sp.Symbol("Z1", real=True)
    >>> select_by_masks(sp.Piecewise((z, z >= 0), (z / 100, True)))
    (Z1, Z1 >= 0, Z1/100)
    >>> select_by_masks(sp.Piecewise((z, z > 0), (sp.exp(z) - 1, True))) is None
    True
    """
    if not isinstance(expr, sp.Piecewise) or len(expr.args) != 2 or masked_value(expr):
        return None
    (value, cond), (other, always) = expr.args[0].args, expr.args[1].args
    if always != sp.true or not (value.free_symbols or other.free_symbols):
        return None
    if any(v.has(sp.Function) or v.has(sp.Pow) for v in (value, other)):
        return None
    return value, cond, other
