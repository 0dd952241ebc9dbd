"""A LaTeX/PDF report for a tensor network: each layer's backward rule, step by step.

For every op the network uses (convolution, pooling, flatten, attention, ...), the report prints
its index-level definition, the contraction ``L = Σ dZ Z`` differentiated by one entry (the
Kronecker deltas SymPy's ``diff`` gives), the deltas summed out (the derived rule), and the
named form a textbook prints (``dX`` = full convolution of ``dZ`` with the flipped kernel).
Two figures: one output position's receptive field, and the gradient routed through a max pool.
Given a training run (``backprop report net.py --train``), it ends with the Learning section
of the dense report: the update rule, the loss curve and how the run ended. The folder is
written as the dense report's: report.tex beside its figures, the PDF and its log, all or
nothing.

    python -m reports.tensor_report examples/mnist_convnet.py -o convnet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sympy as sp

from derive import tensor_ops as T
from derive.index_calculus import Contraction, flatten_sums
from reports.latex.layout import tex_escape
from reports.tensor_figures import draw_pool_gradient, draw_receptive_field
from reports.tensor_steps import softmax_rows

_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath,amssymb,graphicx,float}
\allowdisplaybreaks
\begin{document}
"""
#: the figures a report may include, by file name, and how each is drawn
_FIGURES = {"receptive_field.pdf": draw_receptive_field, "pool_gradient.pdf": draw_pool_gradient}


def contraction_tex(grad: Contraction) -> str:
    """``target = Σ_{indices} body [support]``: the sum's ranges go in the text below."""
    indices = ", ".join(sp.latex(lim[0]) for lim in grad.limits)
    body = sp.latex(grad.body)
    total = rf"\sum_{{{indices}}} {body}" if grad.limits else body
    support = "".join(
        rf"\,[{sp.latex(lo)} \le {sp.latex(cond)} \le {sp.latex(hi)}]"
        for cond, lo, hi in grad.support
    )
    return rf"{sp.latex(grad.target)} = {total}{support}"


def _ranges(grad: Contraction) -> str:
    parts = [
        rf"${sp.latex(lim[0])} = {sp.latex(lim[1])}, \dots, {sp.latex(lim[2])}$"
        for lim in grad.limits
    ]
    return ("summed over " + ", ".join(parts) + ".") if parts else ""


def _raw_step(target, definition, out_limits, operand, entry) -> str:
    """The contraction differentiated by one entry, deltas not yet summed out."""
    contraction = sp.Sum(T.dZ[target.indices] * definition, *out_limits)
    body, limits = flatten_sums(sp.diff(contraction, operand[entry]))
    indices = ", ".join(sp.latex(lim[0]) for lim in limits)
    by = sp.latex(operand[entry])
    return rf"\frac{{\partial L}}{{\partial {by}}} = \sum_{{{indices}}} {sp.latex(body)}"


def _definition(rule) -> str:
    return sp.latex(rule.definition.lhs) + " = " + sp.latex(rule.definition.rhs)


def _display(*lines: str) -> str:
    return "\\begin{align*}\n" + " \\\\\n".join(f"&{line}" for line in lines) + "\n\\end{align*}\n"


def _convolution() -> str:
    rule = T.convolution()
    out = [r"\section{Convolution}",
           "Defined once, entry by entry (channels last, stride $s$):",
           _display(_definition(rule)),
           r"With $L = \sum_{n,h,w,o} dZ_{n,h,w,o} Z_{n,h,w,o}$ (the adjoint $dZ$ flowing in), "
           "each gradient is the derivative of $L$ by one entry. SymPy's \\texttt{diff} gives "
           "Kronecker deltas; summing them out gives the derived rule."]  # fmt: skip
    k_entry, x_entry = (T.p, T.q, T.r, T.v), (T.p, T.q, T.r, T.v)
    steps = (
        ("K", "Kernel: a cross-correlation of the input with $dZ$.", T.K, k_entry),
        ("b", r"Bias: $dZ$ summed over examples and positions.", T.b, (T.v,)),
        ("X", "Input: SymPy's rule, then the change of variable $i = k_h - 1 - (q - s h)$, "
              "which reads the kernel flipped: a full convolution of $dZ$, dilated by $s$ and "
              "padded by $k-1$ ($dZ^{full}$), with the flipped kernel.", T.X, x_entry),
    )  # fmt: skip
    for name, words, base, entry in steps:
        out.append(f"\\subsection*{{$d{name}$}}\n{words}")
        out.append(_display(_raw_step(T.Z[T.n, T.h, T.w, T.o], T.CONV, T._CONV_OUT, base, entry)))
        out.append(_display(contraction_tex(rule.derived[name])))
        if rule.named[name] is not rule.derived[name]:
            out.append("Named form:" + _display(contraction_tex(rule.named[name])))
        out.append(_ranges(rule.named[name]))
    out.append(r"\begin{center}\includegraphics[width=0.8\textwidth]{receptive_field.pdf}"
               r"\end{center}")  # fmt: skip
    return "\n".join(out)


def _pooling(kinds) -> str:
    rule = T.pooling()
    out = [r"\section{Pooling}",
           "Windows of $s \\times s$, stride $s$; each input entry has weight $R$ in its window "
           "(average: $R = 1/s^2$; max: $R$ is 1 at the window's arg-max, SymPy's derivative of "
           "$\\max$ almost everywhere; ties go to the first in row-major order, as in JAX):",
           _display(_definition(rule)),
           _display(contraction_tex(rule.derived["X"])),
           "Exactly one window holds each entry ($h = \\lfloor q/s \\rfloor$):",
           _display(contraction_tex(rule.named["X"])),
           f"Used here: {', '.join(sorted(kinds))}. A map the size does not divide is cropped, "
           "as Keras does; its last rows and columns get no gradient.",
           r"\begin{center}\includegraphics[width=0.7\textwidth]{pool_gradient.pdf}"
           r"\end{center}"]  # fmt: skip
    derivative = T.max_derivative(2)[0]
    out.append("SymPy's derivative of the max of a $2\\times2$ window by its first entry:")
    out.append(
        _display(r"\frac{\partial \max(x_0,\dots,x_3)}{\partial x_0} = " + sp.latex(derivative))
    )
    return "\n".join(out)


def _simple(title: str, rule, words: str) -> str:
    return "\n".join([f"\\section{{{title}}}", words,
                      _display(_definition(rule)),
                      _display(contraction_tex(rule.named[next(iter(rule.named))]))])  # fmt: skip


def _attention() -> str:
    out = [r"\section{Self-attention}",
           r"$Q = X W_q$, $K = X W_k$, $V = X W_v$, $S = Q K^\top/\sqrt{d_k}$, "
           r"$P = \operatorname{softmax}(S)$ over each row, $O = P V$. "
           "Each product's rules:"]  # fmt: skip
    for kind in ("weights", "scores", "mix"):
        rule = T.product(kind)
        lines = [_definition(rule)]
        lines += [contraction_tex(grad) for grad in rule.derived.values()]
        out.append(_display(*lines))
    rows = softmax_rows("P", "dP")
    out.append("The softmax's row rule, derived from its definition by the registry, is "
               r"$dS = P \odot (dP - \operatorname{rowsum}(dP \odot P))$:")  # fmt: skip
    out.append(_display(r"dS_l = " + sp.latex(rows)))
    return "\n".join(out)


def report_tex(model, learning: str = "") -> str:
    """The LaTeX document for ``model`` (a TensorNetwork); ``learning`` is the Learning
    section's LaTeX when the network was trained."""
    from derive.tensor_layers import MaxPool2D

    rules = model.rules()
    layers = "\\\\\n".join(
        rf"{s.k} & \texttt{{{type(s.layer).__name__}}} & {s.inputs} & {s.outputs} & "
        + (", ".join(f"{n} {shape}" for n, shape in s.params.items()) or "--")
        for s in model.stages
    )
    parts = [
        _PREAMBLE,
        r"\section*{Backpropagation through a tensor network}",
        f"Loss: {tex_escape(model.loss)} (the mean over the batch), output {model.output}.\n",
        r"\begin{center}\small\begin{tabular}{rllll}" "\n"
        r"layer & op & in & out & parameters\\ \hline" "\n" + layers + "\n"
        r"\end{tabular}\end{center}",
    ]  # fmt: skip
    if "Conv2D" in rules:
        parts.append(_convolution())
    pools = {type(s.layer).__name__ for s in model.stages if isinstance(s.layer, MaxPool2D)}
    if pools:
        parts.append(_pooling(pools))
    if "Flatten" in rules:
        parts.append(_simple("Flatten", rules["Flatten"], "A reshape, row-major; its adjoint "
                             "is the reshape back:"))  # fmt: skip
    if "MeanOverTime" in rules:
        parts.append(_simple("Mean over time", rules["MeanOverTime"], "Each position's share:"))
    if any(key.startswith("SelfAttention") for key in rules):
        parts.append(_attention())
    if "Dense" in rules:
        parts.append(_simple("Dense", rules["Dense"], r"$Z = A W + b$, one row per example:"))
    parts += [learning, r"\end{document}"]
    return "\n".join(parts) + "\n"


def write_tensor_report(model, out_dir, training=None) -> Path:
    """Write ``report.tex``, its figures and ``report.pdf`` into the folder ``out_dir`` and
    return the PDF's path (``report.tex``'s when no TeX engine is installed: the rest is
    written all the same); ``training`` (a ``reports.training.TrainingRun`` of ``model``)
    adds the Learning section. The folder is written as the dense report's is, all or nothing
    (:func:`reports.document.write_folder`): a folder that holds anything but an earlier
    report is refused (``BackpropInputError``), and a failed run keeps the earlier report.
    """
    from reports.document import _check_output_dir, write_folder
    from reports.latex.pdflatex import find_engine

    out = Path(out_dir)
    _check_output_dir(out)
    engine = find_engine()
    write_folder(out, lambda build: _build(model, training, build, engine))
    return out / ("report.tex" if engine is None else "report.pdf")


def _build(model, training, folder: Path, engine) -> None:
    """report.tex, the figures it includes, and (given an engine) the PDF, all in ``folder``."""
    from reports.latex.pdflatex import compile_pdf

    tex = report_tex(model, _learning(training, folder))
    for name, draw in _FIGURES.items():
        if f"{{{name}}}" in tex:
            draw(folder / name)
    (folder / "report.tex").write_text(tex, encoding="utf-8")
    if engine is not None:
        compile_pdf(folder / "report.tex", engine)


def _learning(training, folder: Path) -> str:
    """The dense report's Learning section, its figures drawn into ``folder``."""
    if training is None:
        return ""
    from reports.sections.learning import learning_tex

    figures = {f"learning_{name}": path for name, path in training.draw(folder).items()}
    return learning_tex(training, figures)


def main(argv=None) -> int:
    from numeric.verification.tensor_check import load_model

    parser = argparse.ArgumentParser(description="report for a tensor network model file")
    parser.add_argument("file")
    parser.add_argument("-o", "--output-dir", default="report", help="folder to write")
    args = parser.parse_args(argv)
    print(f"wrote {write_tensor_report(load_model(args.file), args.output_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
