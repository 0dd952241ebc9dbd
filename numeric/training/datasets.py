"""Small data sets made on the spot (no downloads), and targets shaped for a model.

The 2-D generators return ``X`` (m, 2) in float64 and integer class labels ``labels`` (m,):

* ``xor``      the four corners of the unit square, labelled x1 XOR x2 (no line separates them);
* ``planar``   the "flower" of Andrew Ng's course (course 1, week 3): two classes of petals;
* ``circles``  a ring around a disc;
* ``blobs``    two clouds with a guaranteed gap between them (linearly separable).

The image generator makes ``X`` (m, H, W, C) at the shape a network takes:

* ``bars``     a horizontal (class 0) or vertical (class 1) bar at a random place, with noise.

:func:`data_for` makes the one a model names, or says which fit it.

>>> data = make("xor")
>>> data.X.tolist(), data.labels.tolist()
([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1, 0])
>>> data = make("planar", seed=1)
>>> data.X.shape, sorted(set(data.labels.tolist()))
((400, 2), [0, 1])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from derive.errors import BackpropInputError, UnknownNameError
from derive.tensor_network import TensorNetwork


class Data(NamedTuple):
    """Examples as rows of ``X`` with their class ``labels``; ``lines`` are the file lines
    they came from (None for generated data)."""

    X: np.ndarray
    labels: np.ndarray
    name: str
    lines: list[int] | None = None

    def where(self, row: int) -> str:
        return f"line {self.lines[row]}" if self.lines else f"example {row + 1}"


def xor(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points (``seed`` is unused: there is nothing to draw)."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return X, np.array([0, 1, 1, 0])


def planar(seed: int = 0, m: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Ng's planar flower: per class, angles along half a turn with noise, radius
    ``4 sin(4 angle)`` with noise; the petals of the two classes interleave."""
    rng = np.random.default_rng(seed)
    per_class = m // 2
    X, labels = np.zeros((2 * per_class, 2)), np.zeros(2 * per_class, dtype=np.int64)
    for j in range(2):
        rows = slice(per_class * j, per_class * (j + 1))
        angle = np.linspace(j * 3.12, (j + 1) * 3.12, per_class)
        angle += 0.2 * rng.standard_normal(per_class)
        radius = 4 * np.sin(4 * angle) + 0.2 * rng.standard_normal(per_class)
        X[rows] = np.c_[radius * np.sin(angle), radius * np.cos(angle)]
        labels[rows] = j
    return X, labels


def circles(seed: int = 0, m: int = 200, noise: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 on a circle of radius 1, class 1 on one of radius 0.5, both with noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(m) % 2
    angle = rng.uniform(0, 2 * np.pi, m)
    radius = np.where(labels == 0, 1.0, 0.5)
    X = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    return X + noise * rng.standard_normal((m, 2)), labels


def blobs(seed: int = 0, m: int = 100, gap: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clouds around (-1.5, -1.5) and (1.5, 1.5); a point closer than ``gap``
    to the line x1 + x2 = 0, or beyond it, is drawn again, so a line separates the classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(m) % 2
    X = np.empty((m, 2))
    for row, label in enumerate(labels):
        side = 1.0 if label else -1.0
        while True:
            point = side * 1.5 + 0.8 * rng.standard_normal(2)
            if side * point.sum() / np.sqrt(2) >= gap:
                X[row] = point
                break
    return X, labels


def bars(
    seed: int = 0, shape: tuple = (8, 8, 1), m: int = 200, noise: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Images of ``shape`` (H, W, C), each Gaussian noise of scale ``noise`` plus one
    full-length bar of ones in every channel: a random row (class 0, horizontal) or a random
    column (class 1, vertical); the classes alternate.

    >>> X, labels = bars(shape=(4, 5, 1), m=2, noise=0)
    >>> np.sort(X[0, ..., 0].sum(axis=1)).tolist(), np.sort(X[1, ..., 0].sum(axis=0)).tolist()
    ([0.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 0.0, 4.0])
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(m) % 2
    X = noise * rng.standard_normal((m, *shape))
    height, width = shape[:2]
    for image, label in zip(X, labels):
        if label:
            image[:, rng.integers(width)] += 1.0
        else:
            image[rng.integers(height)] += 1.0
    return X, labels


DATASETS = {"xor": xor, "planar": planar, "circles": circles, "blobs": blobs}  # X (m, 2)
IMAGE_DATASETS = {"bars": bars}  # X (m, H, W, C) at the network's shape, 2 classes


def make(name: str, seed: int = 0) -> Data:
    """A generated data set by name: ``X`` (m, 2), or for ``bars`` images of the default
    shape (:func:`data_for` makes them at a network's), and integer ``labels`` (m,).

    >>> make("bars", seed=2).X.shape
    (200, 8, 8, 1)
    """
    generators = {**DATASETS, **IMAGE_DATASETS}
    if name not in generators:
        raise UnknownNameError("data set", name, list(generators))
    return Data(*generators[name](seed), name)


def data_for(model, name: str, seed: int = 0) -> Data:
    """The generated data set ``name`` shaped for ``model``; one error naming the sets that
    fit when it does not (a 2-D set for 2 inputs, ``bars`` for images and 2 classes)."""
    if name not in DATASETS and name not in IMAGE_DATASETS:
        raise UnknownNameError("data set", name, [*DATASETS, *IMAGE_DATASETS])
    fits = fitting(model)
    if name not in fits:
        made = "images (H, W, C) of 2 classes" if name in IMAGE_DATASETS else "2 input column(s)"
        raise BackpropInputError(
            f"{name} has {made}, but {model_name(model)} takes {input_description(model)}; "
            f"the data that fit it: {', '.join([*fits, 'FILE.csv'])}"
        )
    if name in IMAGE_DATASETS:
        return Data(*IMAGE_DATASETS[name](seed, input_shape(model)), name)
    return make(name, seed)


def fitting(model) -> list[str]:
    """The generated data sets that fit ``model``: the 2-D ones for 2 inputs (a dense model
    with more outputs than the data has classes still fits, as it does for a CSV), ``bars``
    for images of at least 2 x 2 pixels and a head of 2 classes."""
    shape = input_shape(model)
    if shape == (2,):
        return list(DATASETS)
    if len(shape) == 3 and min(shape[:2]) >= 2 and model.n_outputs <= 2:
        return list(IMAGE_DATASETS)
    return []


def input_shape(model) -> tuple[int, ...]:
    """One example's input shape: ``(n,)`` for a dense model, ``(H, W, C)`` or ``(T, d)``
    for a tensor network."""
    return tuple(int(s) for s in model.data_shapes(1)["X"][1:])


def model_name(model) -> str:
    """How messages name a model: its spec, or a tensor network's ``network(...)`` call."""
    return model.source if isinstance(model, TensorNetwork) else model.spec


def input_description(model) -> str:
    """What ``model`` takes, for messages: ``3 input column(s)``, or ``images (H, W, C)``
    or ``sequences (T, d)`` with its number of outputs."""
    shape = input_shape(model)
    if len(shape) == 1:
        return f"{shape[0]} input column(s)"
    kind = "images" if len(shape) == 3 else "sequences"
    return f"{kind} {shape} with {model.n_outputs} output(s)"


def targets_for(model, data: Data) -> np.ndarray:
    """Integer class labels as the ``Y`` a model's kernel takes: the labels themselves for
    a sparse loss, one-hot rows for several outputs, a column of 0/1 for one output (a
    vector for logistic regression). Raises ``BackpropInputError`` for a label the model
    has no output for. A tensor network takes no labels (its losses are one-hot), so
    its targets are the one-hot rows or the column."""
    labels = data.labels
    classes = max(model.n_outputs, 2)
    bad = (labels < 0) | (labels >= classes)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BackpropInputError(
            f"{data.name}, {data.where(row)}: label {labels[row]} is out of range: "
            f"{model_name(model)} has {model.n_outputs} output(s), so labels are "
            f"0..{classes - 1}"
        )
    labels = labels.astype(np.int64)
    dense = not isinstance(model, TensorNetwork)
    if dense and model.labels:
        return labels
    if model.n_outputs == 1:
        column = labels.astype(np.float64)
        return column if dense and model.real_target_vector else column[:, None]
    return np.eye(model.n_outputs)[labels]


def inputs_for(model, data: Data) -> Data:
    """The data with each row shaped as the model's input: a CSV's flat rows become images
    or sequences in C order (``H*W*C`` values per row for ``(H, W, C)``). A width that is
    not the model's is one error naming both."""
    shape = input_shape(model)
    if data.X.shape[1:] == shape:
        return data
    width, wanted = int(np.prod(data.X.shape[1:])), int(np.prod(shape))
    if len(shape) == 1:
        raise BackpropInputError(
            f"{data.name} has {width} input column(s), but {model_name(model)} takes {wanted}"
        )
    if data.X.ndim != 2 or width != wanted:
        raise BackpropInputError(
            f"{data.name} has {width} input values per example, but {model_name(model)} "
            f"takes {wanted}: one input of shape {shape}, flattened in C order"
        )
    return data._replace(X=data.X.reshape(len(data.X), *shape))


def best_line_accuracy(X: np.ndarray, labels: np.ndarray, directions: int = 720) -> float:
    """The largest fraction of 2-D points with labels 0/1 that one line ``w.x + b = 0`` puts
    on their side, over ``directions`` normals ``w`` and, for each, every threshold between
    the projected points (exact per direction). 1.0 means a line separates the classes."""
    best = 0
    for angle in np.linspace(0, np.pi, directions, endpoint=False):
        projected = X @ np.array([np.cos(angle), np.sin(angle)])
        order = np.argsort(projected, kind="stable")
        ranked, sorted_values = labels[order], projected[order]
        ones_above = np.concatenate([[0], np.cumsum(ranked[::-1])])[::-1]  # ones at/after k
        zeros_below = np.concatenate([[0], np.cumsum(1 - ranked)])  # zeros before k
        right = zeros_below + ones_above  # class 1 above cut k, or (mirrored) below it
        # a cut between two equal projections is no line: keep cuts between distinct values
        cuts = np.concatenate([[True], sorted_values[1:] > sorted_values[:-1], [True]])
        best = max(best, int(right[cuts].max()), int((len(X) - right[cuts]).max()))
    return best / len(X)
