"""A tensor network's derivation as plain text, for the terminal (``backprop derive net.py``).

The layers with their shapes, then the reverse sweep layer by layer (:mod:`reports.tensor_steps`):
each layer's index-level definition and its backward rules as SymPy derived them, followed by
the named form when a change of summation variable gives one (``dX`` as a full convolution).
A sum prints as ``Σ_{i<k_h, j<k_w} body``, every index counted from 0; a condition a summed-out
delta left prints after the body in brackets.
"""

from __future__ import annotations

from dataclasses import fields

from sympy.printing.str import StrPrinter

from derive.index_calculus import Contraction
from reports.tensor_steps import LayerSteps, reverse_sweep


class _Printer(StrPrinter):
    """SymPy's str printer with ``Σ_{i<n}`` for a sum, ``max_{i<n}`` for a max over indices."""

    def _print_Sum(self, expr):
        body = self.parenthesize(expr.function, 50, strict=True)  # only a sum of terms
        return f"{sum_indices(expr.limits)} {body}"

    def _print_Maximum(self, expr):
        body = self.parenthesize(expr.function, 50, strict=True)
        return f"max{sum_indices(expr.limits)[1:]} {body}"


def _text(expr) -> str:
    return _Printer().doprint(expr)


def sum_indices(limits) -> str:
    """``Σ_{n<m, h<H_o}`` for limits ``(n, 0, m - 1), (h, 0, H_o - 1)``."""
    parts = []
    for index, lo, hi in limits:
        if lo == 0:
            parts.append(f"{index}<{_text(hi + 1)}")
        else:
            parts.append(f"{_text(lo)}≤{index}≤{_text(hi)}")
    return "Σ_{" + ", ".join(parts) + "}"


def contraction_text(grad) -> str:
    """``target = Σ_{limits} body  [lo ≤ expr ≤ hi]``, or an Eq's two sides."""
    if not isinstance(grad, Contraction):
        return f"{_text(grad.lhs)} = {_text(grad.rhs)}"
    body = _text(grad.body)
    total = f"{sum_indices(grad.limits)} {body}" if grad.limits else body
    support = "".join(f"  [{_text(lo)} ≤ {_text(e)} ≤ {_text(hi)}]" for e, lo, hi in grad.support)
    return f"{_text(grad.target)} = {total}{support}"


def _short(layer) -> str:
    """``Conv2D(32, 3, 'relu')``: the layer's arguments, defaults left out."""
    args = [getattr(layer, f.name) for f in fields(layer)]
    defaults = [f.default for f in fields(layer)]
    while args and args[-1] == defaults[len(args) - 1]:
        args.pop()
    return f"{type(layer).__name__}({', '.join(map(repr, args))})"


def describe(net) -> str:
    """``network((28, 28, 1), [Conv2D(32, 3, 'relu'), ...], 'cce')``, as a person writes it."""
    layers = ", ".join(_short(stage.layer) for stage in net.stages)
    return f"network({net.input_shape}, [{layers}], {net.loss!r})"


def layer_lines(net) -> list[str]:
    rows = []
    for stage in net.stages:
        params = ", ".join(f"{name} {shape}" for name, shape in stage.params.items())
        shapes = f"{stage.inputs} -> {stage.outputs}"
        rows.append((f"{stage.k}", _short(stage.layer), shapes, params))
    widths = [max(len(row[col]) for row in rows) for col in range(3)]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3]
        for row in rows
    ]


def _sizes(sizes: dict) -> str:
    return ", ".join(f"{symbol} = {value}" for symbol, value in sizes.items())


def _continued(lhs, rhs) -> str:
    """``= rhs`` under the ``=`` of a line ``lhs = ...``: the same entry, another form."""
    return " " * (len(_text(lhs)) + 3) + f"= {_text(rhs)}"


def layer_text(layer: LayerSteps) -> list[str]:
    stage = layer.stage
    sizes = f"   ({_sizes(layer.sizes)})" if layer.sizes else ""
    out = [f"Layer {stage.k}, {_short(stage.layer)}{sizes}"]
    for forms in layer.definitions:
        first, *others = forms if isinstance(forms, tuple) else (forms,)
        out.append(f"  {contraction_text(first)}")
        out += [_continued(first.lhs, other.rhs) for other in others]
    out += [f"  ({note})" for note in layer.notes]
    for step in layer.steps:
        out.append(f"  {contraction_text(step.derived)}")
        if step.named is not None:  # "= named form" under the "=" of the derived rule
            target = _text(step.named.target)
            out.append(" " * (len(target) + 2) + contraction_text(step.named)[len(target) + 1 :])
        out.append(f"      ({step.words})")
    if not layer.steps:
        out.append("  (the input needs no gradient)")
    return out


def render(net) -> str:
    """The whole derivation of ``net``, a TensorNetwork."""
    out = [f"{describe(net)} ({net.level} level), {net.output} output, {net.loss} loss", ""]
    out += ["Layers (shapes of one example; params by name)"] + layer_lines(net)
    out += [
        "",
        "Backward pass (reverse-mode chain rule, one sweep from the cost back; every rule",
        "derived by SymPy from the layer's index-level definition, indices counted from 0)",
    ]
    for layer in reverse_sweep(net):
        out += [""] + layer_text(layer)
    return "\n".join(out)


__all__ = ["contraction_text", "render", "sum_indices"]
