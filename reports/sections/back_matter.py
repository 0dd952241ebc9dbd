"""The report's closing sections: the generated NumPy kernel, each line tied to its
equation, and the plots (activations with their derivatives, the finite-difference V curve).
"""

from __future__ import annotations

from reports.latex.layout import section

from .context import ReportContext

# ---------------------------------------------------------------------------- 10. listing


def listing_section(ctx: ReportContext) -> str:
    """The generated NumPy kernel, each line tied to the equation it implements."""
    kernel = ctx.kernel
    if kernel is None or not getattr(kernel, "source", None):
        return section(
            "Generated NumPy kernel",
            "listing",
            "The kernel generator (\\texttt{numeric.codegen}) is not available in this "
            "installation, so no listing is shown.",
        )
    lines = kernel.source.rstrip("\n").split("\n")
    tie = _line_names(kernel)
    derivation = getattr(kernel, "derivation", None)
    level = derivation.model.level if derivation is not None else None
    out = []
    for number, line in enumerate(lines, start=1):
        name = tie.get(number)
        label = ctx.equation_label(name, level) if name else None
        safe = _ascii_listing(line.replace("\t", "    "))
        if label:
            out.append(f"{safe}  (*@\\hfill\\eqref{{{label}}}@*)")  # no empty "#" first
        else:
            out.append(safe)
    body = "\n".join(out)
    return section(
        "Generated NumPy kernel",
        "listing",
        "The kernel below is generated from the derivation (\\texttt{numeric.codegen}); the "
        "number at the right of a line is the equation it implements.\n\n"
        "\\begin{lstlisting}[language=Python]\n" + body + "\n\\end{lstlisting}\n",
    )


_LISTING_SYMBOLS = {
    "ᵀ": r"$^{\top}$",
    "²": "$^2$",
    "³": "$^3$",
    "⊙": r"$\odot$",
    "·": r"$\cdot$",
    "×": r"$\times$",
    "→": r"$\to$",
    "≈": r"$\approx$",
    "−": "-",
    "σ": r"$\sigma$",
    "Σ": r"$\Sigma$",
    "∂": r"$\partial$",
    "ε": r"$\varepsilon$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "—": "--",
    "–": "-",
}


def _ascii_listing(line: str) -> str:
    """A source line pdflatex's listings can set: other characters as escaped LaTeX."""
    out = []
    for ch in line:
        if ord(ch) < 128:
            out.append(ch)
        else:
            out.append(f"(*@{_LISTING_SYMBOLS.get(ch, '?')}@*)")
    return "".join(out)


#: kinds of kernel lines that implement an equation of the report
_EQUATION_KINDS = {"forward", "loss", "cost", "adjoint", "gradient"}


def _line_names(kernel) -> dict[int, str]:
    """Line number (1-based) -> node or step name, from the kernel's line table.

    ``numeric.codegen`` gives ``kernel.lines``, a list of ``(line, node, kind, function)``;
    a plain mapping ``{line: name}`` is taken too.
    """
    lines = getattr(kernel, "lines", None)
    if isinstance(lines, dict):
        return {int(k): str(v) for k, v in lines.items() if v}
    out = {}
    for entry in lines or ():
        kind = getattr(entry, "kind", "forward")
        if kind not in _EQUATION_KINDS:
            continue
        name = str(entry.node)
        if kind in ("adjoint", "gradient") and not name.startswith("d"):
            name = "d" + name  # a backward line names the node whose adjoint it computes
        out[int(entry.line)] = name
    return out


# ---------------------------------------------------------------------------- 11. plots


def plots_section(ctx: ReportContext) -> str:
    """The activation functions with their derivatives, and the finite-difference V curve."""
    parts, images = [], []
    if "activations" in ctx.figures:
        panels = len(ctx.figures.get("activation_names", [])) or 1
        width = min(1.0, 0.5 * panels)
        images.append(
            f"\\includegraphics[width={width:.2f}\\textwidth]{{{ctx.figures['activations'].name}}}"
        )
        parts.append(
            "\\begin{figure}[H]\n\\centering\n"
            f"{images[-1]}\n"
            "\\caption{Each activation of the network (blue) and its derivative (orange), "
            "both computed from the one SymPy definition in the registry. The derivative is "
            "written in the activation's output where that is cheaper, as the backward pass "
            "uses it.}\\label{fig:activations}\n\\end{figure}"
        )
    if "vcurve" in ctx.figures:
        param = ctx.figures.get("vcurve_param", "")
        images.append(f"\\includegraphics[width=0.6\\textwidth]{{{ctx.figures['vcurve'].name}}}")
        parts.append(
            "\\begin{figure}[H]\n\\centering\n"
            f"{images[-1]}\n"
            "\\caption{Error of the central difference "
            "$\\bigl(f(\\theta+h) - f(\\theta-h)\\bigr)/2h$ "
            f"against the exact derivative, for the parameter ${param}$ "
            + (
                "on a random batch of 4 examples (exact: the kernel's float64 gradient). "
                if ctx.figures.get("vcurve_batch")
                else "at the worked example. "
            )
            + _v_curve_reading(ctx, param)
            + "}"
            "\\label{fig:vcurve}\n\\end{figure}"
        )
    if not parts:
        return ""
    said = []
    if "activations" in ctx.figures:
        said.append("Figure~\\ref{fig:activations} shows the activations and their derivatives")
    if "vcurve" in ctx.figures:
        said.append("Figure~\\ref{fig:vcurve} shows why finite differences need a well-chosen step")
    text = "; ".join(said) + "."
    return _keep_together(images) + section("Plots", "plots", text + "\n\n" + "\n\n".join(parts))


def _keep_together(images: list[str]) -> str:
    """TeX that starts a new page unless the heading, its text and every plot (with room
    for captions) fit on this one: no heading orphaned at a page foot, no plot alone on
    the last page. The plots are placed here ([H]), not floated away from their section."""
    box = "\\par ".join(images)
    return (
        "\\par\\begingroup\\setbox0=\\vbox{" + box + "}%\n"
        "\\dimen0=\\pagegoal \\advance\\dimen0 by -\\pagetotal\n"
        f"\\dimen2=\\ht0 \\advance\\dimen2 by {6 + 4 * len(images)}\\baselineskip\n"
        "\\ifdim\\dimen0<\\dimen2 \\newpage\\fi\\endgroup\n"
    )


def _v_curve_reading(ctx: ReportContext, param: str) -> str:
    """What the V curve shows: a V, or (the cost not bending along the parameter) rounding
    error alone."""
    if ctx.figures.get("vcurve_curved", True):
        return (
            "For large $h$ the truncation error falls like $h^2$; for small $h$ rounding "
            "error grows like $\\varepsilon/h$. The best step sits near $\\varepsilon^{1/3}$ "
            "(dotted), far larger in \\texttt{float32} than in \\texttt{float64}."
        )
    return (
        f"The cost is linear or quadratic along ${param}$ (as along every parameter), so the "
        "central difference has no truncation error and the plot shows no V, only rounding "
        "error, which grows like $\\varepsilon/h$ as $h$ shrinks. A step where the difference "
        "is exact has no point on the logarithmic axis."
    )
