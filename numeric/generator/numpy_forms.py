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
"""

from __future__ import annotations

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
