"""How a section of the report is laid out: its heading, escaped prose, roomy tables, and
long lists cut to a few members of each family with a note on what was left out.
"""

from __future__ import annotations

from collections.abc import Callable

#: at most this many rows of one kind before a table or list is summarised
ROW_LIMIT = 40
PER_FAMILY = 2


def tex_escape(text: str) -> str:
    """Escape text for LaTeX prose: ``a_b & 50%`` -> ``a\\_b \\& 50\\%``."""
    out = []
    for ch in str(text):
        if ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "~":
            out.append(r"\textasciitilde{}")
        elif ch == "^":
            out.append(r"\textasciicircum{}")
        elif ch == "\\":
            out.append(r"\textbackslash{}")
        else:
            out.append(ch)
    return "".join(out)


def representatives(
    items: list, key: Callable, limit: int = ROW_LIMIT, per_group: int = PER_FAMILY
) -> tuple[list, dict]:
    """All items when there are few; else the first ``per_group`` of each group.

    Returns the items to show and, per group, the items left out.

    >>> representatives(list(range(6)), lambda k: k % 2, limit=4, per_group=1)
    ([0, 1], {0: [2, 4], 1: [3, 5]})
    """
    if len(items) <= limit:
        return list(items), {}
    shown, skipped, seen = [], {}, {}
    for item in items:
        group = key(item)
        seen[group] = seen.get(group, 0) + 1
        if seen[group] <= per_group:
            shown.append(item)
        else:
            skipped.setdefault(group, []).append(item)
    return shown, skipped


def skipped_note(skipped: dict, describe: Callable, what: str) -> str:
    """One sentence naming what a summarised list left out, e.g. 18 more like $dW_{12}$."""
    if not skipped:
        return ""
    parts = [f"{len(items)} more like ${describe(items[0])}$" for items in skipped.values()]
    return (
        f"\\noindent\\emph{{Not shown: {', '.join(parts)} ({what} of the same form with "
        "other indices).}\n\n"
    )


def stretched(table: str) -> str:
    """A table with room between its rows when they hold fractions."""
    stretch = "2.3" if "\\frac" in table else "1.25"
    return f"{{\\renewcommand{{\\arraystretch}}{{{stretch}}}\n{table}}}\n"


def section(title: str, label: str, body: str) -> str:
    return f"\\section{{{title}}}\\label{{sec:{label}}}\n\n{body.strip()}\n"
