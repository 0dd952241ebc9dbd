"""Jupyter display: ``Model`` and ``Derivation`` render as LaTeX and Markdown in a notebook.

``derive`` knows nothing of output formats (and must not import ``reports``), so the
display methods are attached from here by :func:`install`, which ``import reports`` runs.
For a chosen notation, wrap an object: ``show(derivation, "3b1b")``.

>>> from derive import chain
>>> install()
>>> "\\\\begin{aligned}" in chain(1)._repr_latex_()
True
"""

from __future__ import annotations

import derive

from .latex import notation as notation_mod
from .latex.layout import representatives
from .latex.notation import family, matrix_names, symbol_table
from .latex.printer import TextbookPrinter, activation_function, named_factor
from .latex.textbook import elementwise_activation

#: at most this many lines of each kind before a display is summarised
DISPLAY_LIMIT = 40


def _printer(model, notation) -> tuple[TextbookPrinter, dict]:
    names = symbol_table(model, notation_mod.get(notation, model))
    return TextbookPrinter(names, matrix_names(model)), names


def _aligned(lines: list[tuple[str, str]]) -> str:
    body = " \\\\\n".join(f"{lhs} &= {rhs}" for lhs, rhs in lines)
    return f"\\begin{{aligned}}\n{body}\n\\end{{aligned}}"


def forward_lines(model, notation=None) -> list[tuple[str, str]]:
    """``(lhs, rhs)`` LaTeX pairs, one per computed node (a few per family for big graphs)."""
    printer, names = _printer(model, notation)
    nodes = [n for n in model.nodes if not n.is_leaf]
    shown, _ = representatives(nodes, family, limit=DISPLAY_LIMIT, per_group=1)
    lines = []
    for node in shown:
        rhs = printer.doprint(node.expr)
        act = elementwise_activation(node)
        if act is not None and node.expr.func.__name__ != act and act != "linear":
            applied = activation_function(act)(*[p.symbol for p in node.parents])
            rhs = f"{printer.doprint(applied)} = {rhs}"
        lines.append((names[node.name], rhs))
    return lines


def backward_lines(derivation, notation=None) -> list[tuple[str, str]]:
    """``(adjoint, named = simplified)`` pairs for the steps the gradients need."""
    printer, names = _printer(derivation.model, notation)
    steps = derivation.needed_steps()
    shown, _ = representatives(steps, lambda s: family(s.node), limit=DISPLAY_LIMIT, per_group=1)
    lines = []
    for step in shown:
        rhs = printer.doprint(step.named)
        if step.simplified:
            rhs += " = " + printer.doprint(step.value)
        lines.append((names["d" + step.node.name], rhs))
    return lines


def _title(model) -> str:
    parts = [f"{model.spec}", f"{model.level} level"]
    parts += [f"{x}" for x in (model.activation, model.output, model.loss) if x]
    return ", ".join(parts)


def model_latex(model, notation=None) -> str:
    """The forward pass as one ``aligned`` block, for ``_repr_latex_``."""
    return "$$" + _aligned(forward_lines(model, notation)) + "$$"


def model_markdown(model, notation=None) -> str:
    return f"**{_title(model)}** — forward pass\n\n" + model_latex(model, notation)


def derivation_latex(derivation, notation=None) -> str:
    """Forward pass, then each backward step (named factors = simplified form)."""
    forward = _aligned(forward_lines(derivation.model, notation))
    backward = _aligned(backward_lines(derivation, notation))
    return f"$${forward}$$\n$${backward}$$"


def derivation_markdown(derivation, notation=None) -> str:
    model = derivation.model
    forward = _aligned(forward_lines(model, notation))
    backward = _aligned(backward_lines(derivation, notation))
    return (
        f"**{_title(model)}**\n\n*Forward pass*\n\n$${forward}$$\n\n"
        f"*Backward pass* (reverse-mode chain rule, from the cost back)\n\n$${backward}$$"
    )


def gradient_chain_latex(derivation, param: str, notation=None) -> str:
    """One parameter's gradient as the chain rule writes it: named factors, then the local
    derivatives (``σ'(z)``), then the closed form in forward values.

    >>> from derive import chain
    >>> text = gradient_chain_latex(chain(2).derive(), "w2", "3b1b")
    >>> r"a^{(1)} \\sigma'(z^{(2)}) 2 (a^{(2)} - y)" in text
    True
    """
    from .sections.backward_pass import unroll
    from .sections.context import ReportContext

    model = derivation.model
    ctx = ReportContext(model, notation_mod.get(notation, model), scalar=derivation, matrix=None)
    printer = ctx.printer(derivation)
    named, local = unroll(ctx, derivation, model.node(param))
    lhs = printer.doprint(named_factor(model.cost.symbol, model.node(param).symbol))
    closed = printer.doprint(derivation.gradient(param, closed=True))
    forms = [" ".join(f"{c.joiner} {c.tex}".strip() for c in chunks) for chunks in (named, local)]
    lines = [(lhs, forms[0]), ("", forms[1]), ("", closed)]
    return "$$" + _aligned(lines) + "$$"


class gradient_chain:  # noqa: N801
    """Display one parameter's chain rule: ``gradient_chain(d, "w3", "3b1b")``."""

    def __init__(self, derivation, param: str, notation: str | None = None):
        self.args = (derivation, param, notation)

    def _repr_latex_(self) -> str:
        return gradient_chain_latex(*self.args)

    _repr_markdown_ = _repr_latex_


class show:  # noqa: N801  (reads like a function in a notebook cell)
    """Display a model or derivation in a chosen notation: ``show(d, "3b1b")``."""

    def __init__(self, obj, notation: str | None = None):
        self.obj, self.notation = obj, notation

    def _repr_latex_(self) -> str:
        if isinstance(self.obj, derive.Derivation):
            return derivation_latex(self.obj, self.notation)
        return model_latex(self.obj, self.notation)

    def _repr_markdown_(self) -> str:
        if isinstance(self.obj, derive.Derivation):
            return derivation_markdown(self.obj, self.notation)
        return model_markdown(self.obj, self.notation)


def install() -> None:
    """Give ``derive.Model`` and ``derive.Derivation`` their notebook displays."""
    derive.Model._repr_latex_ = lambda self: model_latex(self)
    derive.Model._repr_markdown_ = lambda self: model_markdown(self)
    derive.Derivation._repr_latex_ = lambda self: derivation_latex(self)
    derive.Derivation._repr_markdown_ = lambda self: derivation_markdown(self)
