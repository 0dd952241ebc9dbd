"""Write ``two_classics.ipynb`` from ``two_classics.py`` (percent-format cells, as Jupytext).

    python examples/make_notebook.py

The script is the source; the notebook is generated so the two never drift apart (a test
checks that they agree).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
_CELL = re.compile(r"^# %%(?P<markdown> \[markdown\])?.*$", re.M)


def cells(source: str) -> list[dict]:
    """Split percent-format source into notebook cells (markdown comments lose their '# ')."""
    marks = list(_CELL.finditer(source))
    out: list[dict] = []
    for k, mark in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(source)
        body = source[mark.end() : end].strip("\n")
        if mark["markdown"]:
            text = "\n".join(re.sub(r"^# ?", "", line) for line in body.splitlines())
            out.append(
                {
                    "cell_type": "markdown",
                    "id": f"cell-{len(out) + 1}",
                    "metadata": {},
                    "source": _lines(text),
                }
            )
        elif body.strip():
            out.append(
                {
                    "cell_type": "code",
                    "id": f"cell-{len(out) + 1}",  # nbformat 4.5 wants an id on every cell
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": _lines(body),
                }
            )
    return out


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def notebook(script: Path) -> dict:
    return {
        "cells": cells(script.read_text()),
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def main() -> int:
    script = HERE / "two_classics.py"
    target = script.with_suffix(".ipynb")
    target.write_text(json.dumps(notebook(script), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
