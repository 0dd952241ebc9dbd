"""Drop the statements of a printed function body whose results nothing reads.

A tensor kernel's ``loss`` and ``forward`` share the forward pass of ``loss_and_grads``, which
also keeps what the backward pass needs (a max pool's routing mask, the output activation
beside its stable log). Printing each function's pass once and pruning it here keeps the
emitters simple and the printed functions free of work they throw away.

The pass reads the body with :mod:`ast`, one top-level statement at a time from the last:
a statement stays when it writes a name read later (by name, into a subscript, by an
augmented assignment or an ``out=`` argument) or writes none (a call for its effect). Lines
are kept as printed, comments included; a comment line goes with the statement after it.

>>> body = ["    m = X.shape[0]", "    R = X > 0  # mask", "    A = X * 2", "    return A"]
>>> print("\\n".join(live_lines(body)))
    A = X * 2
    return A
"""

from __future__ import annotations

import ast
import textwrap


def live_lines(body: list[str]) -> list[str]:
    """``body`` (indented lines of one function) without its dead statements."""
    tree = ast.parse(textwrap.dedent("\n".join(body)))
    starts = _statement_starts(tree.body, body)
    live: set[str] = set()
    kept: list[list[str]] = []
    for statement, (lo, hi) in reversed(list(zip(tree.body, starts))):
        local = _loop_locals(statement)
        written, read = _writes(statement) - local, _reads(statement) - local
        if written and not written & live:
            continue
        live = (live - _assigned(statement)) | read
        kept.append(body[lo:hi])
    return [line for lines in reversed(kept) for line in lines]


def _statement_starts(statements, body) -> list[tuple[int, int]]:
    """Each statement's range of ``body``; comment lines before it belong to it."""
    ends = [s.end_lineno for s in statements]
    return list(zip([0, *ends[:-1]], ends))


def _loop_locals(statement) -> set[str]:
    """A loop's counters and the names its body assigns before reading them: they live
    inside the loop (``R = R.at[...].set(first)`` carries ``R`` from outside; ``first``
    is local)."""
    if not isinstance(statement, ast.For):
        return set()
    local: set[str] = _names_stored(statement.target)
    carried: set[str] = set()
    for inner in statement.body:
        carried |= _reads(inner) - local
        if isinstance(inner, ast.Assign):
            local |= _assigned(inner) - carried
    return local


def _names_stored(node) -> set[str]:
    return {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


def _writes(statement) -> set[str]:
    """Every name the statement changes: assigned, written into, or passed as ``out=``."""
    names = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            names |= {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.keyword) and node.arg == "out":
            names |= {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
    return names


def _assigned(statement) -> set[str]:
    """The names a plain top-level assignment replaces (their earlier values are dead)."""
    if isinstance(statement, ast.Assign):
        return {n for target in statement.targets for n in _names_stored(target)}
    return set()


def _reads(statement) -> set[str]:
    """Every name the statement reads, including arrays it writes into (they must exist)."""
    names = {
        n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    for node in ast.walk(statement):
        if isinstance(node, (ast.AugAssign, ast.Subscript)):
            target = node.target if isinstance(node, ast.AugAssign) else node.value
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


__all__ = ["live_lines"]
