"""The verification section: the kernel against JAX and finite differences
(``numeric.verify``), and the worked example's gradients by every route.
"""

from __future__ import annotations

from reports.latex.layout import section, tex_escape
from reports.latex.printer import format_number

from .context import ReportContext


def verification_section(ctx: ReportContext) -> str:
    """Kernel vs JAX vs finite differences (``numeric.verify``), then the worked example
    by every route this report can take."""
    parts = []
    if ctx.verification is not None:
        parts.append(_numeric_verification(ctx, ctx.verification))
    if ctx.checks is not None:
        parts.append(_example_checks(ctx, ctx.checks))
    if not parts:
        parts.append(
            "No verification was run for this report: it needs the generated kernel "
            "(\\texttt{numeric.codegen}) for networks too large for the scalar level."
        )
    return section("Verification", "verification", "\n\n".join(parts))


def _numeric_verification(ctx: ReportContext, verification) -> str:
    """The table of ``numeric.verify``: per parameter, kernel against JAX and against FD."""
    rows = list(getattr(verification, "rows", ()) or ())
    if not rows or not hasattr(rows[0], "jax_abs"):
        return _external_verification(verification)
    lines = []
    for row in rows:
        shape = f"$({', '.join(map(str, row.shape))})$" if row.shape else "scalar"
        verdict = "$\\checkmark$" if row.verdict == "ok" else tex_escape(row.verdict)
        cells = [f"${_array_symbol(ctx, row.name)}$", shape]
        cells += [f"${format_number(v, 2)}$" for v in (row.jax_abs, row.jax_rel)]
        cells += [f"${format_number(v, 2)}$" for v in (row.fd_abs, row.fd_rel)]
        lines.append("  " + " & ".join(cells + [verdict]) + " \\\\")
    about = (
        f"\\texttt{{{tex_escape(getattr(verification, 'dtype', ''))}}}, a random batch of "
        f"{getattr(verification, 'batch', '?')} examples, seed {getattr(verification, 'seed', '?')}"
    )
    ok = getattr(verification, "ok", all(r.ok for r in rows))
    verdict = (
        "The kernel agrees with JAX and with finite differences."
        if ok
        else "\\textbf{The kernel disagrees with a reference: see the verdicts.}"
    )
    notes = "".join(f"\n\n\\noindent {tex_escape(n)}" for n in getattr(verification, "notes", ()))
    return (
        "\\subsection*{The kernel against JAX and finite differences}\n"
        f"\\texttt{{numeric.verify}} ran the generated kernel on {about}, and compared its "
        "gradients with JAX autodiff and with finite differences of its loss: the largest "
        "absolute difference per parameter array, and the same relative to the largest "
        "reference entry.\n\n"
        "\\begin{center}\\small\n\\begin{tabular}{@{}llrrrrl@{}}\n\\toprule\n"
        " & & \\multicolumn{2}{c}{vs JAX} & \\multicolumn{2}{c}{vs finite differences} & \\\\\n"
        "\\cmidrule(lr){3-4}\\cmidrule(lr){5-6}\n"
        "Array & Shape & abs & rel & abs & rel & \\\\\n\\midrule\n"
        + "\n".join(lines)
        + "\n\\bottomrule\n\\end{tabular}\n\\end{center}\n"
        + verdict
        + notes
    )


def _example_checks(ctx: ReportContext, checks) -> str:
    """The worked example's gradients by every route: closed form, JAX, FD, kernel."""
    routes = checks.routes
    head = " & ".join(["Array", "Shape"] + [tex_escape(r) for r in routes] + ["Largest $|g|$", ""])
    rows = []
    for row in checks.rows:
        shape = f"$({', '.join(map(str, row.shape))})$" if row.shape else "scalar"
        cells = [f"${_array_symbol(ctx, row.array)}$", shape]
        cells += [f"${format_number(row.differences[r], 2)}$" for r in routes]
        cells.append(f"${format_number(row.scale, 3)}$")
        cells.append("$\\checkmark$" if row.ok(checks.tolerance) else "\\textbf{mismatch}")
        rows.append("  " + " & ".join(cells) + " \\\\")
    spec = "@{}ll" + "r" * len(routes) + "rc@{}"
    text = (
        "\\subsection*{The worked example by every route}\n"
        f"The gradients of the worked example by the {tex_escape(checks.reference)} are the "
        "reference. Each column gives the largest absolute difference from it over the "
        "entries of one parameter array: the closed form in inputs and parameters alone, "
        "JAX autodiff of the cost, central finite differences in \\texttt{float64}"
        + (", and the generated NumPy kernel" if "kernel" in routes else "")
        + f". A row passes when every difference is below ${format_number(checks.tolerance)}$ "
        "times the largest gradient (at least 1).\n\n"
        f"\\begin{{center}}\\small\n\\begin{{tabular}}{{{spec}}}\n\\toprule\n"
        f"{head} \\\\\n\\midrule\n"
        + "\n".join(rows)
        + "\n\\bottomrule\n\\end{tabular}\n\\end{center}\n"
    )
    for note in checks.notes:
        text += f"\n\\noindent {tex_escape(note)}\n"
    verdict = (
        "All routes agree."
        if checks.ok
        else "\\textbf{Some routes disagree: see the rows marked mismatch.}"
    )
    return text + "\n" + verdict


def _array_symbol(ctx: ReportContext, array: str) -> str:
    """A parameter array in the notation: its matrix-level symbol when there is one."""
    for derivation in (ctx.matrix, ctx.scalar):
        if derivation is not None and array in ctx.names(derivation):
            return ctx.symbol(derivation, array)
    return tex_escape(array)


def _external_verification(verification) -> str:
    """A verification result from ``numeric.verify``: its table, or its text report."""
    rows = getattr(verification, "rows", None)
    if rows:
        keys = list(_row_dict(rows[0]))
        head = " & ".join(tex_escape(k) for k in keys)
        body = "\n".join(
            "  " + " & ".join(_cell(v) for v in _row_dict(r).values()) + " \\\\" for r in rows
        )
        return (
            "\\begin{center}\\small\n"
            f"\\begin{{tabular}}{{@{{}}{'l' * len(keys)}@{{}}}}\n\\toprule\n"
            f"{head} \\\\\n\\midrule\n{body}\n\\bottomrule\n\\end{{tabular}}\n\\end{{center}}\n"
        )
    text = verification.report() if hasattr(verification, "report") else str(verification)
    return "\\begin{verbatim}\n" + text.replace("\\end{verbatim}", "") + "\n\\end{verbatim}\n"


def _row_dict(row) -> dict:
    if isinstance(row, dict):
        return row
    if hasattr(row, "__dataclass_fields__"):
        return {k: getattr(row, k) for k in row.__dataclass_fields__}
    return dict(vars(row))


def _cell(value) -> str:
    if isinstance(value, bool):
        return "$\\checkmark$" if value else "\\textbf{no}"
    if isinstance(value, float):
        return f"${format_number(value, 3)}$"
    return tex_escape(str(value))
