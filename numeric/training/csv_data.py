"""A user's own data from a CSV file: inputs in the first columns, the class label last.
For a network on images or sequences a row holds one example flattened in C order (an
``(H, W, C)`` image's ``H*W*C`` values); :func:`~numeric.training.datasets.inputs_for`
shapes the rows to the network's input.

A first row that is not all numbers is a header. Every problem is reported with the line it
is on: a row with another number of fields, a field that is not a number, NaN or infinity,
a label that is not a whole number (its range is checked against the model by
:func:`~numeric.training.datasets.targets_for`).

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "points.csv"
>>> _ = path.write_text("x1,x2,label\\n0.5,1,0\\n2,-1,1\\n")
>>> data = load_csv(path)
>>> data.X.tolist(), data.labels.tolist(), data.lines
([[0.5, 1.0], [2.0, -1.0]], [0, 1], [2, 3])
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from derive.errors import BackpropInputError

from .datasets import Data


def load_csv(path) -> Data:
    """``X`` (m, columns - 1) in float64 and integer ``labels`` (m,) from a CSV file, with
    the line each example is on."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackpropInputError(f"no data file {str(path)!r}") from None
    except UnicodeDecodeError as err:
        raise BackpropInputError(f"{path}: not a UTF-8 text file ({err.reason})") from None
    rows = [(number, row) for number, row in enumerate(csv.reader(text.splitlines()), 1) if row]
    if rows and not all(_is_number(field) for field in rows[0][1]):
        header, rows = rows[0][1], rows[1:]
    else:
        header = None
    if not rows:
        raise BackpropInputError(f"{path}: no data rows")
    width = len(header) if header is not None else len(rows[0][1])
    if width < 2:
        raise BackpropInputError(
            f"{path}: a row needs at least one input column and the label column, got {width}"
        )
    values = np.empty((len(rows), width))
    for i, (number, row) in enumerate(rows):
        if len(row) != width:
            raise BackpropInputError(
                f"{path}, line {number}: {len(row)} fields where the rows above have {width}"
            )
        for j, field in enumerate(row):
            values[i, j] = _number(field, path, number, j, header)
    labels = values[:, -1]
    whole = labels == np.round(labels)
    if not whole.all():
        i = int(np.flatnonzero(~whole)[0])
        raise BackpropInputError(
            f"{path}, line {rows[i][0]}: label {rows[i][1][-1].strip()!r} is not a whole "
            "number (the last column holds class labels 0, 1, ...)"
        )
    lines = [number for number, _ in rows]
    return Data(values[:, :-1], labels.astype(np.int64), path.name, lines)


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _number(field: str, path: Path, line: int, column: int, header) -> float:
    name = f"column {column + 1}" + (f" ({header[column].strip()})" if header else "")
    try:
        value = float(field)
    except ValueError:
        raise BackpropInputError(
            f"{path}, line {line}: {field.strip()!r} in {name} is not a number"
        ) from None
    if not math.isfinite(value):
        raise BackpropInputError(
            f"{path}, line {line}: {field.strip()!r} in {name} is not a finite number"
        )
    return value
