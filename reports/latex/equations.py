"""Numbered ``align`` blocks whose long right-hand sides break across lines.

LaTeX does not break display math by itself (``breqn`` would, but we keep to plain
amsmath). So each right-hand side is cut into *chunks* at its top-level ``+``/``-`` (or
between factors of a long product), the width of each chunk is estimated in em, and the
chunks are packed greedily into lines that fit the text width. A ``\\left(`` left open at a
line end is closed with ``\\right.`` and reopened on the next line with ``\\left.``.

>>> import sympy as sp
>>> a = sp.symbols("a0:30")
>>> lines = break_expr(sp.Add(*a), TextbookPrinter(), budget=20)
>>> len(lines) > 1, lines[1].startswith("+ ")
(True, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from .printer import TextbookPrinter

#: text width of the report in em of the body font (A4, 2.2 cm margins, 11 pt)
TEXT_WIDTH_EM = 42.0
#: estimates run up to ~20% short of TeX's widths (measured on our formulas): pad them
WIDTH_SAFETY = 1.2
#: what an equation number and the gap before it take, in em
NUMBER_EM = 4.0

# ---------------------------------------------------------------------------- widths

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}^_&]|\s+|.")
_WIDE_OPS = {r"\odot", r"\times", r"\approx", r"\leq", r"\geq", r"\neq", r"\to", r"\mapsto"}
_COMMAND_EM = {
    r"\cdot": 0.9,
    r"\partial": 0.6,
    r"\sum": 1.5,
    r"\top": 0.8,
    r"\quad": 1.0,
    r"\qquad": 2.0,
    r"\,": 0.17,
    r"\:": 0.22,
    r"\;": 0.28,
    r"\!": -0.17,
    r"\ldots": 1.3,
    r"\cdots": 1.3,
    r"\log": 1.5,
    r"\exp": 1.6,
    r"\tanh": 2.1,
    r"\ln": 1.0,
    r"\max": 1.9,
    r"\min": 1.8,
    r"\infty": 1.0,
    r"\checkmark": 0.8,
    r"\\": 0.0,
    r"\nonumber": 0.0,
    r"\displaystyle": 0.0,
    r"\textstyle": 0.0,
}
_TEXT_FONTS = {r"\operatorname", r"\mathrm", r"\text", r"\textrm", r"\textsf", r"\mathsf"}
_SAME_WIDTH = {r"\mathcal", r"\mathbf", r"\boldsymbol", r"\mathbb", r"\bm", r"\mathit"}


def tex_width(tex: str, scale: float = 1.0) -> float:
    """Rough width of display math in em; errs on the wide side.

    >>> 2 < tex_width(r"\\frac{\\partial C_{0}}{\\partial w^{(3)}}") < 4
    True
    """
    tokens = [t for t in _TOKEN.findall(tex) if not t.isspace()]
    width, _ = _measure(tokens, 0, scale)
    return width * WIDTH_SAFETY


def _group(tokens: list[str], i: int, scale: float) -> tuple[float, int, str]:
    """Width of one argument (a braced group or a single token) starting at ``i``."""
    if i >= len(tokens):
        return 0.0, i, ""
    if tokens[i] == "{":
        start = i + 1
        width, i = _measure(tokens, start, scale)
        return width, i + 1, "".join(tokens[start:i])
    width, _ = _measure(tokens[i : i + 1], 0, scale)
    return width, i + 1, tokens[i]


def _measure(tokens: list[str], i: int, scale: float) -> tuple[float, int]:
    width = 0.0
    last_script = 0.0  # x^{a}_{b}: the scripts stack, so only the wider counts
    while i < len(tokens):
        tok = tokens[i]
        if tok == "}":
            return width, i
        if tok == "{":
            w, i, _ = _group(tokens, i, scale)
            width += w
            last_script = 0.0
            continue
        if tok in ("^", "_"):
            w, i, _ = _group(tokens, i + 1, scale * 0.7)
            if last_script:
                width += max(0.0, w - last_script)
                last_script = 0.0
            else:
                width += w
                last_script = w
            continue
        last_script = 0.0
        i += 1
        if tok == r"\frac" or tok == r"\dfrac" or tok == r"\tfrac":
            top, i, _ = _group(tokens, i, scale)
            bottom, i, _ = _group(tokens, i, scale)
            width += max(top, bottom) + 0.4 * scale
        elif tok in (r"\left", r"\right", r"\bigl", r"\bigr", r"\Bigl", r"\Bigr", r"\big", r"\Big"):
            if i < len(tokens):
                width += 0.0 if tokens[i] == "." else 0.45 * scale
                i += 1
        elif tok in _TEXT_FONTS:
            _, i, text = _group(tokens, i, scale)
            width += 0.5 * scale * len(re.sub(r"\\[A-Za-z]+|[{}\\]", "", text)) + 0.3 * scale
        elif tok in _SAME_WIDTH:
            w, i, _ = _group(tokens, i, scale)
            width += w
        elif tok == r"\begin":
            _, i, env = _group(tokens, i, scale)
            w, i = _environment(tokens, i, env, scale)
            width += w
        elif tok == r"\end":
            _, i, _ = _group(tokens, i, scale)
        elif tok in _WIDE_OPS:
            width += 1.6 * scale
        elif tok in _COMMAND_EM:
            width += _COMMAND_EM[tok] * scale
        elif tok.startswith("\\") and len(tok) > 2:
            width += 0.65 * scale  # a Greek letter or a symbol
        elif tok in "+-=<>":
            width += (1.5 if scale >= 1 else 0.8) * scale
        elif tok in "()[]|":
            width += 0.4 * scale
        elif tok in ",.;:'":
            width += 0.3 * scale
        elif tok == "&":
            pass
        elif tok.isdigit():
            width += 0.5 * scale
        else:
            width += 0.55 * scale
    return width, i


def _environment(tokens: list[str], i: int, env: str, scale: float) -> tuple[float, int]:
    """Width of ``\\begin{cases}...\\end{cases}`` and the like: its widest row."""
    depth, start = 1, i
    while i < len(tokens) and depth:
        if tokens[i] == r"\begin":
            depth += 1
        elif tokens[i] == r"\end":
            depth -= 1
        i += 1
    body = tokens[start : i - 1]
    rows, row = [], []
    for tok in body:
        if tok == r"\\":
            rows.append(row)
            row = []
        else:
            row.append(tok)
    rows.append(row)
    widest = max((_measure(r, 0, scale)[0] + 1.0 for r in rows), default=0.0)
    _, i, _ = _group(tokens, i, scale)  # the "{cases}" after \end
    return widest + 1.2 * scale, i


# ---------------------------------------------------------------------------- chunks and lines


@dataclass
class Chunk:
    """A piece of a right-hand side and what joins it to the piece before (``+``, ``-``)."""

    joiner: str
    tex: str


def chunks_of(expr, printer: TextbookPrinter, budget: float) -> list[Chunk]:
    """Cut a SymPy expression at its top level: the terms of a sum; inside the one long sum
    of a product; or else between the factors of a product."""
    if isinstance(expr, sp.Add) and not isinstance(expr, sp.MatrixExpr):
        return _terms(expr, printer)
    if isinstance(expr, sp.Mul) and tex_width(printer.doprint(expr)) > budget:
        sums = [f for f in expr.args if isinstance(f, sp.Add)]
        widest = max(sums, key=lambda f: tex_width(printer.doprint(f))) if sums else None
        if widest is not None and tex_width(printer.doprint(widest)) > 0.6 * budget:
            # break inside the one long sum, with the other factors in front of it
            sums = [widest]
            coeff, rest = expr.as_coeff_Mul()
            others = [f for f in sp.Mul.make_args(rest) if f is not widest]
            front = printer.doprint(sp.Mul(*others)) if others else ""
            sign = "- " if coeff < 0 else ""
            scale = printer.doprint(abs(coeff)) + " " if abs(coeff) != 1 else ""
            inner = _terms(sums[0], printer)
            inner[0].tex = rf"{sign}{scale}{front} \left({inner[0].tex}".replace("  ", " ")
            inner[-1].tex += r"\right)"
            return inner
        return [
            Chunk("" if k == 0 else r"\times", printer.parenthesize(f, PRECEDENCE["Mul"]))
            for k, f in enumerate(expr.as_ordered_factors())
        ]
    return [Chunk("", printer.doprint(expr))]


def _terms(expr: sp.Add, printer: TextbookPrinter) -> list[Chunk]:
    chunks = []
    for k, term in enumerate(printer._as_ordered_terms(expr)):
        if term.could_extract_minus_sign():
            text = printer.parenthesize(-term, PRECEDENCE["Add"])
            chunks.append(Chunk("-", text) if k else Chunk("", "- " + text))
        else:
            chunks.append(Chunk("+" if k else "", printer.parenthesize(term, PRECEDENCE["Add"])))
    return chunks


def pack(chunks: list[Chunk], budget: float, indent: float = 1.0) -> list[str]:
    """Fill lines greedily; a line after the first starts with its joiner after ``\\quad``."""
    lines: list[str] = []
    current, width = "", 0.0
    for chunk in chunks:
        piece = f"{chunk.joiner} {chunk.tex}".strip() if current else chunk.tex
        w = tex_width(piece) + (1.5 if current else 0.0)
        limit = budget - (indent if lines else 0.0)
        if current and width + w > limit:
            lines.append(current)
            joiner = chunk.joiner or r"\times"
            current, width = f"{joiner} {chunk.tex}", tex_width(chunk.tex) + 1.5
        else:
            current = f"{current} {piece}".strip()
            width += w
    if current:
        lines.append(current)
    return _balance(lines)


def _balance(lines: list[str]) -> list[str]:
    r"""Close ``\left`` delimiters left open at a line end, and reopen them on the next."""
    out, open_count = [], 0
    for line in lines:
        text = r"\left. " * open_count + line
        open_count += len(re.findall(r"\\left\b", line)) - len(re.findall(r"\\right\b", line))
        out.append(text + r" \right." * max(open_count, 0))
    return out


def break_expr(expr, printer: TextbookPrinter, budget: float) -> list[str]:
    """The lines of one right-hand side, each within ``budget`` em when it can be."""
    text = printer.doprint(expr)
    if tex_width(text) <= budget:
        return [text]
    return pack(chunks_of(expr, printer, budget), budget)


def break_tex(chunks: list[Chunk], budget: float) -> list[str]:
    """The lines of a right-hand side already cut into printed chunks."""
    whole = " ".join(f"{c.joiner} {c.tex}".strip() if k else c.tex for k, c in enumerate(chunks))
    if tex_width(whole) <= budget:
        return [whole]
    return pack(chunks, budget)


# ---------------------------------------------------------------------------- align blocks


@dataclass
class Row:
    """``lhs = form_1 = form_2 = ...``, numbered once; each form may take several lines.

    A form is a SymPy expression (printed and broken by width), a pair (expression, printer)
    to print it with another printer, a list of chunks, or a finished LaTeX string.
    ``relation`` joins the forms (``=``, or ``\\approx`` before a rounded number). A form
    printed the same as the one before it (or as ``lhs``) is left out.
    """

    lhs: str
    forms: list = field(default_factory=list)
    label: str | None = None
    relations: list[str] | None = None


def align(rows: list[Row], printer: TextbookPrinter, width: float = TEXT_WIDTH_EM) -> str:
    """An ``align`` environment, one number per row (on its first line)."""
    if not rows:
        return ""
    lhs_width = max(tex_width(r.lhs) for r in rows)
    budget = max(width - NUMBER_EM - min(lhs_width, width / 3) - 2.0, 14.0)
    out = [r"\begin{align}"]
    for row in rows:
        relations = row.relations or ["="] * len(row.forms)
        lines: list[tuple[str, str]] = []
        room = 0.0  # what is left on the last line, for a short form to join it
        previous = row.lhs
        for relation, form in zip(relations, row.forms):
            if isinstance(form, list):
                broken = break_tex(form, budget)
            elif isinstance(form, str):
                broken = [form]
            elif isinstance(form, tuple):  # (expression, the printer to print it with)
                broken = break_expr(form[0], form[1], budget)
            else:
                broken = break_expr(form, printer, budget)
            if " ".join(broken).split() == previous.split():
                continue  # "= 3 = 3" says nothing twice
            previous = " ".join(broken)
            if len(broken) == 1 and lines and tex_width(broken[0]) + 2.0 <= room:
                lead, body = lines[-1]
                lines[-1] = (lead, f"{body} {relation} {broken[0]}")
                room -= tex_width(broken[0]) + 2.0
                continue
            lines.append((f"&{relation} ", broken[0]))
            lines += [(r"&\quad ", rest) for rest in broken[1:]]
            room = budget - tex_width(broken[-1]) if len(broken) == 1 else 0.0
        for k, (lead, body) in enumerate(lines):
            lhs = row.lhs if k == 0 else ""
            tail = ""
            if k == 0:
                tail = rf" \label{{{row.label}}}" if row.label else ""
            else:
                tail = r" \nonumber"
            out.append(f"  {lhs} {lead}{body}{tail} \\\\")
    out[-1] = out[-1].removesuffix(" \\\\")
    out.append(r"\end{align}")
    return "\n".join(out)
