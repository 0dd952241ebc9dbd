"""A derivation as plain text, for the terminal (``backprop derive``)."""

from __future__ import annotations

from sympy.printing.str import StrPrinter

from derive import Derivation, Model
from derive.textbook_order import sum_terms
from numeric.generator.equation_printer import textbook_product


class _Printer(StrPrinter):
    """SymPy's str printer, with ``@`` for matrix products and ``ᵀ`` for transposes."""

    def _print_OneMatrix(self, expr):
        return "1ᵀ" if expr.shape[0] == 1 else "1"

    def _print_Transpose(self, expr):
        inner = self._print(expr.arg)
        return (inner if expr.arg.is_symbol else f"({inner})") + "ᵀ"

    def _print_MatMul(self, expr):
        return " @ ".join(self.parenthesize(arg, 50) for arg in expr.args)

    def _as_ordered_terms(self, expr, order=None):
        return sum_terms(super()._as_ordered_terms(expr, order=order))  # w*a + b

    def _print_Mul(self, expr):
        return textbook_product(self, expr, super()._print_Mul)


def _text(expr) -> str:
    return _Printer().doprint(expr)


def describe(model: Model) -> str:
    """One line naming the model: spec, level, activations and loss."""
    return ", ".join([f"{model.spec} ({model.level} level)", *model.choices()])


def forward_lines(model: Model) -> list[str]:
    return [f"  {node.name} = {_text(node.expr)}" for node in model.nodes if not node.is_leaf]


def backward_lines(derivation: Derivation) -> list[str]:
    lines = []
    for step in derivation.steps[1:]:
        label = f"  {step.adjoint.name} = "
        lines.append(label + _text(step.named) + _fork_note(step))
        if step.simplified:
            lines.append(" " * len(label) + "= " + _text(step.value) + "   (simplified)")
    return lines


def _fork_note(step) -> str:
    if not step.is_fork:
        return ""
    return f"   (fork: {len(step.branches)} branches add)"


def render(derivation: Derivation) -> str:
    """The whole derivation: forward pass, backward steps, then each gradient in closed form."""
    model = derivation.model
    out = [describe(model), "", "Forward pass"] + forward_lines(model)
    out += ["", "Backward pass (reverse-mode chain rule, from the cost back)"]
    out += backward_lines(derivation)
    if model.level == "scalar":
        out += ["", "Gradients in forward values"]
        cost = model.cost.name
        for param in model.params:
            closed = derivation.gradient(param.name, closed=True)
            out.append(f"  ∂{cost}/∂{param.name} = {_text(closed)}")
    return "\n".join(out)
