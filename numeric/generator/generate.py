"""The kernel generator: :func:`codegen` prints a Derivation as a vectorized NumPy (or JAX)
kernel module. The package exports the function as ``numeric.codegen``; this module (not
named ``codegen``, so that name is never both) holds it and the :class:`Program` it prints.

The kernel is the Derivation read aloud: one line per forward node (``Z1 = X @ W1 + b1``),
one line per backward step (``dZ2 = (A2 - Y) / m``, ``dA1 = dZ2 @ W2.T``), each with the
formula it implements in a comment (a gradient is written into the caller's array when it
passes ``out=``: ``np.matmul(A1.T, dZ2, out=...)``, commented ``dW2 = A1ᵀ dZ2``). Nothing
here knows an activation or a loss by name; a new registry entry reaches the kernels through
the expressions the Derivation holds. What codegen adds is what a careful person adds when
writing the same code by hand:

* stable forms of the formulas (:mod:`numeric.generator.stable`): a sigmoid that never overflows,
  ``log(sigmoid(z))`` as ``-softplus(-z)``, max-shifted softmax and log-sum-exp;
* common subexpressions computed once (``Z1 > 0`` for ReLU forward and backward, the
  shifted ``exp`` shared by a softmax and its log-sum-exp);
* each function computing only what it returns (``loss`` skips the softmax itself when the
  cross-entropy needs only its log);
* at the scalar level, every node a batch vector, every gradient the batch mean of its
  per-example value.

The work is split by what it shares (modules of ``numeric.generator``): :mod:`.program`
reads the Derivation into statements, :mod:`.module_writer` lays them out as a module (with
the data lines of :mod:`.data_lines`, the shared values of :mod:`.shared_values` and the
``out=`` plan of :mod:`.memory_reuse`), all built from :mod:`.statements`.

>>> import derive
>>> kernel = codegen(derive.mlp([4, 3, 2], activation="tanh").derive())
>>> [line.strip() for line in kernel.source.splitlines() if line.strip().startswith("dW2 =")]
['dW2 = np.matmul(A1.T, dZ2, out=grads_out.get("W2"))  # dW2 = A1ᵀ dZ2']
"""

from __future__ import annotations

import re

from derive.errors import BackpropInputError

from .kernel import Kernel, KernelLine
from .printers import PRINTERS
from .program import Program

TARGETS = tuple(PRINTERS)


DTYPES = ("float64", "float32")


def codegen(derivation, target: str = "numpy", dtype: str = "float64") -> Kernel:
    """Print the kernel module of a Derivation for ``target`` (``"numpy"`` or ``"jax"``).

    A Model is derived first: ``codegen(model)`` is ``codegen(model.derive())``. The kernel
    computes in the dtype of its inputs, float32 or float64; ``dtype`` is the one
    it converts integer inputs to (uint8 pixels, say). A network on images or sequences (a
    ``derive.tensor_network.TensorNetwork``) is passed as it is, ``codegen(net)``: its kernel
    has the same interface, plus ``masks=`` when it has dropout; ``kernel.lines`` is empty.

    >>> import derive, numpy as np
    >>> kernel = codegen(derive.chain(2).derive())
    >>> kernel.params
    {'w1': (), 'b1': (), 'w2': (), 'b2': ()}
    >>> J, grads = kernel.loss_and_grads(kernel.random_params(), np.ones((4, 1)), np.zeros((4, 1)))
    >>> grads["w2"].shape, grads["w2"].dtype
    ((), dtype('float64'))
    """
    network = _tensor_network(derivation)
    if network is None:
        derivation = _derivation_of(derivation)
    if target not in PRINTERS:
        raise BackpropInputError(f"unknown codegen target {target!r}; known: {', '.join(TARGETS)}")
    if dtype not in DTYPES:
        raise BackpropInputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if network is not None:
        return _tensor_codegen(network, target, dtype)
    return Program(derivation).render(PRINTERS[target], dtype)


def _tensor_network(value):
    """The TensorNetwork ``value`` is (or is the derivation of), else None: a network on
    images or sequences has no separate Derivation object; its rules are ``net.rules()``."""
    from derive.tensor_network import TensorNetwork

    for candidate in (value, getattr(value, "model", None)):
        if isinstance(candidate, TensorNetwork):
            return candidate
    return None


def _tensor_codegen(network, target: str, dtype: str) -> Kernel:
    """A tensor network's kernel (:mod:`.tensor_kernel`, im2col and one matrix product per
    contraction), as a :class:`Kernel`; integer inputs convert to ``dtype`` as in any kernel."""
    from .tensor_kernel import tensor_codegen

    source = tensor_codegen(network, target)
    if dtype != "float64":
        source = re.sub(r"X\.astype\((j?np)\.float64\)", rf"X.astype(\1.{dtype})", source)
    return Kernel(source, [], network.param_shapes(), target, name="tensor_network",
                  network=network)  # fmt: skip


def _derivation_of(derivation):
    """The Derivation to print: ``derivation`` itself, or a Model's derivation (so
    ``codegen(model)`` works too); a TypeError that says what to pass for a spec string."""
    if isinstance(derivation, str):
        raise TypeError(
            f"codegen takes a Derivation, not the text {derivation!r}: "
            f"codegen(derive.build({derivation!r}, for_kernels=True).derive())"
        )
    if hasattr(derivation, "derive") and not hasattr(derivation, "steps"):
        derivation = derivation.derive()
    if not hasattr(derivation, "model"):
        raise TypeError(
            f"codegen takes a Derivation (model.derive()), got {type(derivation).__name__}"
        )
    return derivation


__all__ = ["DTYPES", "TARGETS", "Kernel", "KernelLine", "Program", "codegen"]
