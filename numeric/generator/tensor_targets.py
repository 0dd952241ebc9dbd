"""What differs between the NumPy and the JAX tensor kernels, as printing choices the kernel
writer asks for (as the dense path's printers answer them): the array module's name, the
im2col view, the statements NumPy writes in place (slice assignment) that JAX writes
as new arrays (``.at[...].set``), the stable helpers' sources (``sigmoid``, ``softplus``, from
the dense path's printers) and JAX's ``jax.jit`` entry points. Everything else the two share,
printed once."""

from __future__ import annotations

from dataclasses import dataclass

from .jax_printer import JaxPrinter
from .numpy_printer import NumPyPrinter

_JAX_WINDOWS = '''

def windows(x, kh, kw, s):
    """Every kh × kw window of the images x at stride s, as (n, h, w, kh, kw, c): im2col."""
    n, height, width, c = x.shape
    ho, wo = (height - kh) // s + 1, (width - kw) // s + 1
    shifted = [x[:, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s]
               for i in range(kh) for j in range(kw)]
    return jnp.stack(shifted, axis=3).reshape(n, ho, wo, kh, kw, c)
'''

_JAX_ENTRY_POINTS = '''

_jit_forward, _jit_loss, _jit_loss_and_grads = map(jax.jit, (_forward, _loss, _loss_and_grads))


def forward(params, X, masks=None):
    """Network output for the inputs X (compiled by jax.jit on first call per shape)."""
    return _jit_forward(params, X, *([masks] if masks is not None else []))


def loss(params, X, Y, masks=None):
    """Mean cost over the batch, a Python float."""
    return float(_jit_loss(params, X, Y, *([masks] if masks is not None else [])))


def loss_and_grads(params, X, Y, masks=None):
    """Mean cost (a Python float) and its gradient for every parameter."""
    J, grads = _jit_loss_and_grads(params, X, Y, *([masks] if masks is not None else []))
    return float(J), grads'''


@dataclass(frozen=True)
class NumPyTarget:
    name: str = "NumPy"
    xp: str = "np"  # the array module, as the kernels name it
    imports: tuple = ("import numpy as np",)
    loop_imports: tuple = ()  # where a kernel loops over window positions (np.ndindex)
    # after the imports, where a kernel takes windows of an image (im2col)
    window_helpers: tuple = ("from numpy.lib.stride_tricks import sliding_window_view",)
    entry_points: tuple = ()  # lines after the kernels
    im2col = None  # the printer's own: sliding_window_view, made contiguous

    @staticmethod
    def kernel_name(name: str) -> str:
        """The name ``forward``, ``loss``, ``loss_and_grads`` is printed under."""
        return name

    @staticmethod
    def as_float(code: str) -> str:
        """A 0-d array as the Python float the interface returns."""
        return f"float({code})"

    @staticmethod
    def helper_source(name: str) -> str:
        """A helper function's source (``sigmoid``, ``softplus``), as the dense kernels print it."""
        return NumPyPrinter().helper_source(name)

    @staticmethod
    def set_at(array: str, index: str, value: str) -> str:
        return f"{array}{index} = {value}"

    @staticmethod
    def add_at(array: str, index: str, value: str) -> str:
        return f"{array}{index} += {value}"


@dataclass(frozen=True)
class JaxTarget(NumPyTarget):
    """jax.numpy: arrays are immutable, and there is no strided window view. The kernels are
    ``_forward`` ... compiled by ``jax.jit``; ``forward`` ... call them (NumPy is imported for
    the Python loops over window positions, ``np.ndindex``, where there are some)."""

    name: str = "JAX"
    xp: str = "jnp"
    imports: tuple = ("import jax", "import jax.numpy as jnp")
    loop_imports: tuple = ("import numpy as np",)
    window_helpers: tuple = tuple(_JAX_WINDOWS.split("\n"))
    entry_points: tuple = tuple(_JAX_ENTRY_POINTS.split("\n"))

    @staticmethod
    def kernel_name(name: str) -> str:
        return f"_{name}"

    @staticmethod
    def as_float(code: str) -> str:
        return code  # a float outside jit only: the entry points convert it

    @staticmethod
    def helper_source(name: str) -> str:
        return JaxPrinter().helper_source(name)

    @staticmethod
    def im2col(code, shape, axes, steps, rank, tail) -> str:
        if tuple(axes) != (1, 2) or not tail or rank != 4:
            raise NotImplementedError("the JAX target takes windows of (n, h, w, c) images only")
        step = dict(steps).get(1, 1)
        return f"windows({code}, {shape[0]}, {shape[1]}, {step})"

    @staticmethod
    def set_at(array: str, index: str, value: str) -> str:
        return f"{array} = {array}.at[{index[1:-1]}].set({value})"

    @staticmethod
    def add_at(array: str, index: str, value: str) -> str:
        return f"{array} = {array}.at[{index[1:-1]}].add({value})"


TARGETS = {"numpy": NumPyTarget(), "jax": JaxTarget()}
