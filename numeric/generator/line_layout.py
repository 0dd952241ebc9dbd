"""Line layout of generated code: statements within :data:`WIDTH` columns.

A statement's comment (the equation it implements) goes beside it when it fits, else above
it, broken at spaces; a long statement breaks at top-level operators or one argument per
line, as ``ruff format`` would write it.
"""

from __future__ import annotations

WIDTH = 100  # longest printed line: the project's ruff line-length


def wrap_statement(head: str, code: str, comment: str = "", indent: int = 4) -> list[str]:
    """``head + code`` with its comment beside it, or above it and wrapped, when too long.

    >>> wrap_statement("dZ2 = ", "(A2 - Y) / m", "dZ2 = (A2 - Y)/m")
    ['    dZ2 = (A2 - Y) / m  # dZ2 = (A2 - Y)/m']
    """
    pad = " " * indent
    line = f"{pad}{head}{code}"
    if comment and len(line) + 4 + len(comment) <= WIDTH:
        return [f"{line}  # {comment}"]
    lines = comment_lines(comment, pad) if comment else []
    return lines + split_line(head, code, "", pad)


def comment_lines(comment: str, pad: str) -> list[str]:
    """A comment over as many lines as it needs, broken at spaces."""
    lines, current = [], ""
    for word in comment.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and len(pad) + 2 + len(candidate) > WIDTH:
            lines.append(f"{pad}# {current}")
            current = word
        else:
            current = candidate
    return lines + ([f"{pad}# {current}"] if current else [])


_OPENERS, _CLOSERS = "([{", ")]}"


def _brackets(code: str):
    """``(i, c, depth)`` for each character outside strings, depth counted before it."""
    depth, quote = 0, None
    for i, c in enumerate(code):
        if quote:
            quote = None if c == quote else quote
        elif c in "\"'":
            quote = c
        else:
            yield i, c, depth
            depth += (c in _OPENERS) - (c in _CLOSERS)


def _top_level(code: str, separators: tuple[str, ...]) -> list[int]:
    """Positions of the separators that are outside brackets and strings."""
    return [
        i
        for i, c, depth in _brackets(code)
        if depth == 0
        and c not in _OPENERS + _CLOSERS
        and any(code.startswith(sep, i) for sep in separators)
    ]


def _outer_bracket(code: str) -> int | None:
    """Index of the bracket that the last character closes, if the code ends with one."""
    if not code or code[-1] not in _CLOSERS:
        return None
    opened, last = [], None
    for i, c, _ in _brackets(code):
        if c in _OPENERS:
            opened.append(i)
        elif c in _CLOSERS:
            last = (i, opened.pop() if opened else None)
    return last[1] if last and last[0] == len(code) - 1 else None


def split_line(head: str, code: str, tail: str, pad: str) -> list[str]:
    """Break a long line: at top-level operators inside parentheses, else one argument (or
    element) per line inside the closing bracket, as a formatter would."""
    if len(pad) + len(head) + len(code) + len(tail) <= WIDTH:
        return [f"{pad}{head}{code}{tail}"]
    inner = pad + "    "
    pieces = _operands(code)
    if pieces and head.endswith("= "):
        out = [f"{pad}{head}("]  # one operand per line, operators leading, as ruff format
        for text in pieces:
            out += split_line("", text, "", inner)
        return out + [f"{pad}){tail}"]
    opener = _outer_bracket(code)
    if opener is not None and not code[opener + 1 : -1].strip():  # (A * B).sum(): no arguments
        receiver, _, method = code[:opener].rpartition(".")  # to break: break the receiver
        if receiver and _outer_bracket(receiver) is not None:
            return split_line(head, receiver, f".{method}(){tail}", pad)
        return [f"{pad}{head}{code}{tail}"]
    if opener is not None:
        content = code[opener + 1 : -1]
        commas = _top_level(content, (", ",))
        bounds = [0, *[c + 2 for c in commas]]
        parts = [content[a:b] for a, b in zip(bounds, [*commas, len(content)])]
        out = [f"{pad}{head}{code[: opener + 1]}"]
        last = code[:opener].rstrip()[-1:]
        call = code[opener] != "(" or bool(commas) or (last.isalnum() or last in ("_", "]", ")"))
        if not call:  # a bracketed expression, not arguments: no comma (it is no tuple)
            for text in _operands(content) or [content]:
                out += split_line("", text.strip(), "", inner)
            return out + [f"{pad}{code[-1]}{tail}"]
        for part in parts:
            out += split_line("", part.strip(), ",", inner)
        return out + [f"{pad}{code[-1]}{tail}"]
    return [f"{pad}{head}{code}{tail}"]


def _operands(code: str) -> list[str] | None:
    """``code`` cut before its top-level operators of the loosest kind it has, or None."""
    for ops in ((" + ", " - "), (" * ", " / ", " @ "), (" & ", " | ")):
        hits = _top_level(code, ops)
        if hits:
            bounds = [0, *hits, len(code)]
            return [code[a:b].strip() for a, b in zip(bounds, bounds[1:])]
    return None
