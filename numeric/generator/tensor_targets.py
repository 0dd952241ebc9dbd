"""What differs between the NumPy and the JAX tensor kernels, as printing choices the kernel
writer asks for (as the dense path's printers answer them): the array module's name, the
im2col view, the statements NumPy writes in place (slice assignment) that JAX writes as new
arrays (``.at[...].set``), the stable helpers' sources (``sigmoid``, ``softplus``, from the
dense path's printers) and JAX's ``jax.jit`` entry points. Everything else the two share,
printed once.

A NumPy kernel also takes ``out=``, the caller's gradient arrays (:mod:`.out_arrays`): each
parameter's gradient that is a matrix product (or a sum) is computed in its array
(:meth:`NumPyTarget.into_out`), the others copied there on return. JAX arrays are immutable:
its kernels take no ``out``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import out_arrays
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

#: printed into a NumPy kernel that computes a reshaped product into ``out`` (a conv's dW:
#: its im2col product is a matrix, the gradient (kh, kw, c, o)); with ``out=None``, or an
#: array whose memory is not in that order, the product is a new array, copied on return
MATMUL_INTO = '''def matmul_into(a, b, out):
    """a @ b, computed in out's memory where out (the caller's gradient array, of the
    product's size) holds its entries row by row; else a new array."""
    if out is None or not out.flags.c_contiguous:
        return a @ b
    return np.matmul(a, b, out=out.reshape(*a.shape[:-1], b.shape[-1]))'''


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
    writes_out: bool = True  # loss_and_grads(..., out=): gradients into the caller's arrays

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
    def into_out(param: str, shape: tuple, code: str) -> str:
        """``code``, the gradient of ``param`` (of ``shape``), written into the caller's array
        of it where that is a plain form: a matrix product ``a @ b`` (or one reshaped to the
        shape it has) as ``np.matmul(a, b, out=...)``; one reshaped ``(a @ b).reshape(shape)``
        (a conv's im2col product) into that array seen as the product (:data:`MATMUL_INTO`);
        a sum over axes with ``out=``. Any other form is left as it is (``gradients_into``
        copies it on return)."""
        into = out_arrays.into(param)
        product = _product(code)
        if product:
            return f"np.matmul({product[0]}, {product[1]}, out={into})"
        reshaped = re.fullmatch(r"\((.+)\)\.reshape\(([-\d, ]+)\)", code)
        product = reshaped and _product(reshaped[1])
        if product and reshaped[2] == ", ".join(map(str, shape)):
            if len(shape) == 2 and _rows(product[0]) == str(shape[0]):  # reshaped to itself
                return f"np.matmul({product[0]}, {product[1]}, out={into})"
            return f"matmul_into({product[0]}, {product[1]}, {into}).reshape({reshaped[2]})"
        total = re.fullmatch(r"(\w+)\.sum\(axis=(\d+|\([\d, ]+\))\)", code)
        if total:
            return f"{total[1]}.sum(axis={total[2]}, out={into})"
        return code

    @staticmethod
    def out_helpers(backward: str) -> list[str]:
        """The sources of the functions a ``loss_and_grads`` taking ``out`` calls:
        ``gradients_into`` (:data:`.out_arrays.HELPER`), and ``matmul_into`` where its
        ``backward`` lines do."""
        helpers = [out_arrays.HELPER.format(np="np")]
        return helpers + ([MATMUL_INTO] if "matmul_into(" in backward else [])

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
    writes_out: bool = False  # immutable arrays: nothing to write into

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
    def into_out(param: str, shape: tuple, code: str) -> str:
        return code

    @staticmethod
    def out_helpers(backward: str) -> list[str]:
        return []

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


def _product(code: str) -> tuple[str, str] | None:
    """``(a, b)`` where ``code`` is ``a @ b`` and nothing else: two operands with no space
    outside their brackets (``A0_cols.reshape(-1, 9).T``), so ``a @ b / 4`` is no product."""
    depth, spaces = 0, []
    for at, char in enumerate(code):
        depth += (char in "([") - (char in ")]")
        if depth < 0:  # "a) @ (b": the brackets of something around it
            return None
        if char == " " and depth == 0:
            spaces.append(at)
    if depth or len(spaces) != 2 or code[spaces[0] : spaces[1] + 1] != " @ ":
        return None
    return code[: spaces[0]], code[spaces[1] + 1 :]


def _rows(matrix: str) -> str | None:
    """The rows of a matrix printed as ``x.reshape(r, c)`` (``c`` for ``x.reshape(r, c).T``),
    as printed; None for any other form."""
    found = re.fullmatch(r".+\.reshape\((-?\d+), (-?\d+)\)(\.T)?", matrix)
    if found is None:
        return None
    return found[2] if found[3] else found[1]


TARGETS = {"numpy": NumPyTarget(), "jax": JaxTarget()}
