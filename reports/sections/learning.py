"""The Learning section (``backprop report --train``): the update rule as its definition in
``derive.optimizers`` writes it, the loss curve, the decision boundary, and for the
perceptron why it learns a separable set and never XOR. The tensor report (images,
sequences) adds the same section through :func:`learning_tex`."""

from __future__ import annotations

import sympy as sp

from derive.optimizers import HYPERPARAMETERS, LATEX, t
from reports.latex.layout import section, tex_escape
from reports.latex.printer import TextbookPrinter, format_number

from .context import ReportContext

DATA_NAMES = {
    "xor": "the four XOR points",
    "planar": "the planar flower of Andrew Ng's course",
    "circles": "two circles, one inside the other",
    "blobs": "two separable clouds of points",
    "bars": "images of a horizontal (class 0) or vertical (class 1) bar in noise",
}


def learning_section(ctx: ReportContext) -> str:
    """Empty unless the report was asked to train (``--train``)."""
    return "" if ctx.training is None else learning_tex(ctx.training, ctx.figures)


def learning_tex(run, figures: dict) -> str:
    """The section for ``run`` (a ``reports.training.TrainingRun`` of a dense model or a
    tensor network); ``figures`` holds the drawn ``learning_loss`` and, for two inputs,
    ``learning_boundary`` (their files, beside the document)."""
    parts = [_setup(run), _rule(run), _figures(figures, run), _outcome(run)]
    if run.perceptron:
        parts.append(_why_perceptron(run))
    return section("Learning", "learning", "\n\n".join(p for p in parts if p))


def _setup(run) -> str:
    data = run.data
    about = DATA_NAMES.get(data.name, f"\\texttt{{{tex_escape(data.name)}}}")
    history = run.run.history
    sentences = [
        f"The network was trained on {about} ({len(data.X)} examples) by the update rule",
        f"below ({run.optimizer.title}): {run.epochs} epochs of {history.steps_per_epoch}",
        f"batches of {min(run.batch_size, len(data.X))}{_last_batch(run)}, in a new random",
        f"order each epoch (seed {run.seed}), from random starting parameters.",
        "At every step $t = 1, 2, \\ldots$ each parameter array (written $\\theta$ below,",
        "entry by entry) is changed by these assignments, in order. They are printed from",
        "the rule's definition in \\texttt{derive.optimizers}; the NumPy code the training",
        "loop runs is printed from the same definition.",
    ]
    return " ".join(sentences)


def _last_batch(run) -> str:
    rest = len(run.data.X) % run.batch_size
    return f" (the last of {rest})" if rest and run.batch_size < len(run.data.X) else ""


def _rule(run) -> str:
    rule = run.optimizer
    lines = []
    for lhs, rhs in rule.written:
        arrow = "=" if lhs in rule.shorthands else "\\leftarrow"
        lines.append(f"  {_latex(lhs)} &{arrow} {_right_side(lhs, rhs)}")
    values = ", ".join(
        f"${_latex(HYPERPARAMETERS[name])} = {format_number(value, 4)}$"
        for name, value in rule.values.items()
    )
    signal = f"${_latex(rule.signal)} = {_latex(rule.signal_definition)}$"
    where = (
        f"where {signal} is the gradient of the batch's mean cost $J$ (the backward pass "
        f"above) and {values}."
        if rule.uses_gradient
        else f"where {signal}, summed over the examples of the batch: $x$ is the input the "
        f"weight multiplies (1 for the bias), $y$ the target and $\\hat{{y}}$ the unit's "
        f"output, so only misclassified examples move the weights ({_batch_sums(rule)}); "
        f"{values}."
    )
    body = "\\\\\n".join(lines)
    return f"\\subsection*{{{rule.title}}}\n\\begin{{align*}}\n{body}\n\\end{{align*}}\n{where}"


def _batch_sums(rule) -> str:
    """The rule's sums over a batch as matrices (rows are examples), as the loop's code
    computes them: ``X^T (Y - Yhat)`` for the weights."""
    printer = TextbookPrinter(names={str(s): tex for s, tex in LATEX.items()})
    sums = rule.batch_signals()
    return (
        f"for a batch, ${_latex(rule.signal)} = {printer.doprint(sums['weight'])}$ for the "
        f"weights and ${printer.doprint(sums['bias'])}$ for the bias"
    )


def _figures(figures: dict, run) -> str:
    out = []
    if "learning_loss" in figures:
        what = "error rate" if run.perceptron else "mean cost"
        accuracy = " and the accuracy on all examples after each epoch"
        accuracy = accuracy if run.run.history.accuracy else ""
        out.append(_figure(figures["learning_loss"].name, 0.78,
                           f"The {what} of each batch before its step (light), its mean over "
                           f"each epoch{accuracy}.", "fig:loss"))  # fmt: skip
    if "learning_boundary" in figures:
        out.append(_figure(figures["learning_boundary"].name, 0.5,
                           "The class the trained network predicts at each point of the "
                           "plane, with the training examples.", "fig:boundary"))  # fmt: skip
    return "\n".join(out)


def _outcome(run) -> str:
    history = run.run.history
    what = "error rate" if run.perceptron else "mean cost"
    text = (
        f"Over the run the {what} went from ${format_number(history.epoch_loss[0], 3)}$ "
        f"(first epoch) to ${format_number(history.epoch_loss[-1], 3)}$ (last epoch)"
    )
    if history.accuracy:
        text += f"; the trained network classifies {history.accuracy[-1]:.1%} of them right"
    text = text.replace("%", "\\%") + "."
    if run.best_line is not None and run.best_line < 1 and not run.perceptron:
        text += (
            f" No line separates these classes (the best one gets {run.best_line:.0%} right, "
            "over 720 directions and every threshold); the hidden layer's features do."
        ).replace("%", "\\%")
    return text


def _why_perceptron(run) -> str:
    history = run.run.history
    lines = [
        "\\subsection*{Why the perceptron needs its own rule, and when it stops}",
        "The unit's output is $\\operatorname{step}(z)$, whose derivative is $0$ wherever it "
        "exists, so the backward pass above gives every weight a gradient of $0$: the error "
        "rate is flat between the jumps of a staircase, and gradient descent has no slope "
        "to descend. Rosenblatt's rule does not use the gradient; it moves the weights by "
        "the error term of each example it gets wrong.",
    ]
    if run.best_line is not None and run.best_line < 1:
        lines.append(
            f"On these examples no line separates the classes: the best line, over 720 "
            f"directions and every threshold, puts {run.best_line:.0%} of them on their side. "
            "Some example is misclassified whatever the weights, so the rule changes them at "
            "every epoch and never stops"
            + (
                f": after {run.epochs} epochs it has not converged."
                if not history.converged_epoch
                else "."
            )  # fmt: skip
            + " A hidden layer removes the limit: \\texttt{mlp:2-4-1} with $\\tanh$ units, "
            "trained by gradient descent, separates XOR."
        )
    elif history.converged_epoch:
        lines.append(
            "A line separates these classes, so the rule stops after finitely many mistakes "
            "(the perceptron convergence theorem, Novikoff 1962): in this run, epoch "
            f"{history.converged_epoch} was the first without a mistake."
        )
    else:
        lines.append(f"It had not converged after {run.epochs} epochs.")
    return "\n".join(lines).replace("%", "\\%")


def _figure(name: str, width: float, caption: str, label: str) -> str:
    return (
        "\\begin{figure}[H]\n\\centering\n"
        f"\\includegraphics[width={width:.2f}\\textwidth]{{{name}}}\n"
        f"\\caption{{{caption}}}\\label{{{label}}}\n\\end{{figure}}"
    )


def _latex(expr) -> str:
    if isinstance(expr, sp.Derivative):  # dJ/dtheta as the textbooks write it
        ((variable, _),) = expr.variable_count
        return f"\\frac{{\\partial {_latex(expr.expr)}}}{{\\partial {_latex(variable)}}}"
    return sp.latex(expr, symbol_names=LATEX)


def _right_side(lhs, rhs) -> str:
    """As a textbook writes it: the assigned symbol's own term leads (SymPy prints
    ``- \\eta g + \\theta``), and in each term the rates lead: ``(1 - \\beta_1) g``."""
    terms = sorted(sp.Add.make_args(rhs), key=lambda term: lhs not in term.free_symbols)
    text = _rate_first(terms[0])
    for term in terms[1:]:
        sign, term = ("-", -term) if term.could_extract_minus_sign() else ("+", term)
        text += f" {sign} {_rate_first(term)}"
    return text


def _rate_first(term) -> str:
    """A product with its factors made of rates only (``\\eta``, ``1 - \\beta_1``) first."""
    rates = set(HYPERPARAMETERS.values()) | {t}
    factors = sp.Mul.make_args(term)
    lead = [
        f
        for f in factors
        if f.free_symbols and f.free_symbols <= rates and not (f.is_Pow and f.exp.is_negative)
    ]
    if not lead or len(lead) == len(factors):
        return _latex(term)
    rest = _latex(sp.Mul(*[f for f in factors if f not in lead]))
    lead_text = " ".join(f"\\left({_latex(f)}\\right)" if f.is_Add else _latex(f) for f in lead)
    return f"{lead_text} {rest}"
