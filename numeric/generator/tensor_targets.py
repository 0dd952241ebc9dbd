"""What differs between the NumPy and the JAX tensor kernels: the im2col view, and the
statements NumPy writes in place (``out=``, slice assignment) that JAX writes as new arrays
(``.at[...].set``). Everything else the two share, printed once."""

from __future__ import annotations

from dataclasses import dataclass

_JAX_WINDOWS = '''


def windows(x, kh, kw, s):
    """Every kh × kw window of the images x at stride s, as (n, h, w, kh, kw, c): im2col."""
    n, height, width, c = x.shape
    ho, wo = (height - kh) // s + 1, (width - kw) // s + 1
    shifted = [x[:, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s]
               for i in range(kh) for j in range(kw)]
    return jnp.stack(shifted, axis=3).reshape(n, ho, wo, kh, kw, c)'''


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
    imports: tuple = (
        "import numpy as np",
        "from numpy.lib.stride_tricks import sliding_window_view",
    )
    im2col = None  # the printer's own: sliding_window_view, made contiguous

    def module_text(self, lines: list[str]) -> str:
        return "\n".join(lines)

    @staticmethod
    def maximum_into(array: str, other: str) -> str:
        return f"np.maximum({array}, {other}, out={array})"

    @staticmethod
    def set_at(array: str, index: str, value: str) -> str:
        return f"{array}{index} = {value}"

    @staticmethod
    def add_at(array: str, index: str, value: str) -> str:
        return f"{array}{index} += {value}"


@dataclass(frozen=True)
class JaxTarget(NumPyTarget):
    """jax.numpy: arrays are immutable, and there is no strided window view."""

    name: str = "JAX"
    imports: tuple = ("import jax", "import jax.numpy as jnp", "import numpy as np")

    def module_text(self, lines: list[str]) -> str:
        """The shared lines with jnp for np (np stays for the loops over window positions)."""
        text = "\n".join(lines).replace("np.", "jnp.").replace("jjnp.", "jnp.")
        text = text.replace("jnp.ndindex", "np.ndindex").replace("import jnumpy", "import numpy")
        text = text.replace("J = float(jnp.sum(", "J = (jnp.sum(")  # a float outside jit only
        for name in ("forward", "loss", "loss_and_grads"):
            text = text.replace(f"\ndef {name}(", f"\ndef _{name}(")
        head, _, rest = text.partition("\n\nPARAMS")
        return head + _JAX_WINDOWS + "\n\n\nPARAMS" + rest + _JAX_ENTRY_POINTS

    @staticmethod
    def im2col(code, shape, axes, steps, rank, tail) -> str:
        if tuple(axes) != (1, 2) or not tail or rank != 4:
            raise NotImplementedError("the JAX target takes windows of (n, h, w, c) images only")
        step = dict(steps).get(1, 1)
        return f"windows({code}, {shape[0]}, {shape[1]}, {step})"

    @staticmethod
    def maximum_into(array: str, other: str) -> str:
        return f"{array} = np.maximum({array}, {other})"

    @staticmethod
    def set_at(array: str, index: str, value: str) -> str:
        return f"{array} = {array}.at[{index[1:-1]}].set({value})"

    @staticmethod
    def add_at(array: str, index: str, value: str) -> str:
        return f"{array} = {array}.at[{index[1:-1]}].add({value})"


TARGETS = {"numpy": NumPyTarget(), "jax": JaxTarget()}
