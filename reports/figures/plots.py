"""Plots: each activation with its derivative, and the finite-difference V curve.

Both come from the single definitions in ``derive.registry``: the activation is the
registry's SymPy expression, its derivative is ``derive.rules.elementwise_derivative`` (for
softmax, the diagonal of ``activation_jacobian``), each turned into NumPy by ``lambdify``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402

from derive import registry, rules  # noqa: E402
from derive.ops import at_position  # noqa: E402
from reports.latex.printer import TextbookPrinter  # noqa: E402

from .graph import mathtext  # noqa: E402

FUNCTION_COLOR = "#1f5fa8"
DERIVATIVE_COLOR = "#e67e22"
DTYPE_COLORS = {"float64": "#1f5fa8", "float32": "#c0392b", "float16": "#2e7d32"}

plt.rcParams.update(
    {
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "svg.fonttype": "none",
    }
)


def activation_curves(name: str, width: int = 2, grid=None):
    """``(z, g(z), g'(z), derivative_latex)`` for plotting; softmax varies its first input
    with the others held at 0 (``width`` inputs) and plots ``∂a_1/∂z_1``."""
    z = np.linspace(-4, 4, 801) if grid is None else np.asarray(grid, dtype=float)
    act = registry.activation(name)
    x = registry.x
    if act.elementwise:
        g = sp.lambdify(x, act.scalar, "numpy")
        derivative = rules.elementwise_derivative(name)
        d = sp.lambdify((x, rules.out), derivative, "numpy")
        values = np.broadcast_to(np.asarray(g(z), dtype=float), z.shape)
        slopes = np.broadcast_to(np.asarray(d(z, values), dtype=float), z.shape)
        text = TextbookPrinter({"x": "z"}).doprint(derivative)
        return z, values.copy(), slopes.copy(), text
    inputs = [sp.Symbol(f"z{k}", real=True) for k in range(width)]
    outputs = [sp.Symbol(f"a{k}", real=True) for k in range(width)]
    rows = {registry.z: inputs, registry.a: outputs}
    definition = at_position(act.definition, {registry.z: inputs}, j=0)
    diagonal = at_position(rules.activation_jacobian(name), rows, j=0, l=0)
    g = sp.lambdify(inputs, definition, "numpy")
    d = sp.lambdify(outputs, diagonal, "numpy")
    rest = [np.zeros_like(z)] * (width - 1)
    values = np.asarray(g(z, *rest), dtype=float)
    others = [
        np.asarray(
            sp.lambdify(inputs, at_position(act.definition, {registry.z: inputs}, j=k))(z, *rest)
        )
        for k in range(1, width)
    ]
    slopes = np.asarray(d(values, *others), dtype=float)
    names = {f"a{k}": f"a_{{{k + 1}}}" for k in range(width)}
    text = TextbookPrinter(names).doprint(rules.absorb_sign(sp.factor(diagonal)))
    return z, values, slopes, text


def plot_activations(names: list[str], path: Path, width: int = 2) -> Path:
    """One panel per activation: the function and its derivative."""
    names = list(dict.fromkeys(names))
    fig, axes = plt.subplots(1, len(names), figsize=(3.1 * len(names) + 0.3, 2.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        act = registry.activation(name)
        z, values, slopes, text = activation_curves(name, width)
        head = mathtext(act.latex) or name
        ax.plot(
            z,
            values,
            color=FUNCTION_COLOR,
            lw=1.6,
            label=f"{head}$(z)$" if head.startswith("$") else name,
        )
        label = mathtext(text)
        if act.elementwise:
            d_label = (
                f"{head[:-1]}'(z) = {label[1:]}" if label and head.startswith("$") else "derivative"
            )
        else:
            d_label = r"$\partial a_1/\partial z_1 = $" + (label or "")
        ax.plot(z, slopes, color=DERIVATIVE_COLOR, lw=1.6, ls="--", label=d_label)
        if rules.is_flat(name):
            ax.text(
                0.03,
                0.6,
                "derivative 0 almost everywhere,\nundefined at the jump",
                transform=ax.transAxes,
                fontsize=7,
                color=DERIVATIVE_COLOR,
            )
        if not act.elementwise:
            ax.set_xlabel(f"$z_1$ (the other {width - 1} input{'s' if width > 2 else ''} at 0)")
        else:
            ax.set_xlabel("$z$")
        ax.axhline(0, color="black", lw=0.5)
        ax.axvline(0, color="black", lw=0.5)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="upper left", frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_v_curve(curves: dict, path: Path, param_label: str, highlight: str = "float64") -> Path:
    """log-log |central difference - exact| against h, one line per dtype."""
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    for dtype, (steps, errors) in curves.items():
        shown = np.where(errors > 0, errors, np.nan)
        color = DTYPE_COLORS.get(dtype, "gray")
        ax.loglog(
            steps,
            shown,
            marker="o",
            ms=2.5,
            lw=2.0 if dtype == highlight else 1.2,
            color=color,
            label=dtype,
        )
        best = np.cbrt(np.finfo(dtype).eps)
        ax.axvline(best, color=color, ls=":", lw=1)
    ax.set_xlabel("step $h$")
    ax.set_ylabel("|central difference $-$ exact|")
    label = mathtext(param_label) or param_label
    ax.set_title(f"Finite-difference error for {label}", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
