"""Parameters and data drawn for a model, as the data contract of DESIGN.md shapes them.

:func:`data_shapes` (``X`` and ``Y`` for a batch), :func:`target_kind` (what ``Y`` holds),
:func:`sample_params` and :func:`sample_data` (seeded draws), and :func:`draw_finite` (the
draw :func:`numeric.verify` checks at: one where the kernel's loss is finite).
"""

from __future__ import annotations

import math

import numpy as np

from derive import registry
from derive.errors import BackpropInputError
from numeric.generator.kernel import check_finite, mask_shapes
from numeric.gradcheck.inputs import GradcheckInputError, validate_params

#: Draws of parameters tried for a finite loss (expressions with log or sqrt of a parameter).
DRAWS = 8


def data_shapes(model, m: int) -> dict[str, tuple[int, ...]]:
    """Shapes of ``X`` and ``Y`` for a batch of ``m`` (DESIGN.md contract).

    ``Y`` is ``(m,)`` for logistic regression and integer labels, ``(m, 0)`` for an
    expression (it has no targets; its inputs, if any, are the columns of ``X``).

    >>> import derive
    >>> data_shapes(derive.build("logreg:3", for_kernels=True), 5)
    {'X': (5, 3), 'Y': (5,)}
    >>> data_shapes(derive.build("chain:2"), 5), data_shapes(derive.build("J = a*x"), 5)
    ({'X': (5, 1), 'Y': (5, 1)}, {'X': (5, 0), 'Y': (5, 0)})
    """
    return model.data_shapes(m)


def check_data(model, X, Y) -> tuple[np.ndarray, np.ndarray]:
    """A batch a caller gave, as arrays; a BackpropInputError names what does not fit.

    >>> import derive
    >>> check_data(derive.build("mlp:3-2"), np.zeros((4, 5)), np.zeros((4, 2)))
    Traceback (most recent call last):
    ...
    derive.errors.BackpropInputError: X has shape (4, 5); mlp:3-2 takes X of shape (m, 3)
    """
    X, Y = np.asarray(X), np.asarray(Y)
    wanted = data_shapes(model, "m")
    for name, array in (("X", X), ("Y", Y)):
        shape = tuple(X.shape[0] if d == "m" else d for d in wanted[name]) if X.ndim else None
        if array.shape != shape:
            text = "(" + ", ".join(map(str, wanted[name])) + ("," if len(wanted[name]) == 1 else "")
            rows = f" with m = {X.shape[0]}, the rows of X" if name == "Y" else ""
            raise BackpropInputError(
                f"{name} has shape {array.shape}; {model.spec} takes {name} of shape {text}){rows}"
            )
        check_finite(name, array)
    if target_kind(model) == "labels":
        n = model.n_outputs
        if Y.dtype.kind not in "iu" or Y.size and not (0 <= Y.min() and Y.max() < n):
            raise BackpropInputError(f"Y must hold integer labels 0..{n - 1}, got {Y[:5]}...")
    return X, Y


def check_params(shapes: dict, params: dict) -> dict[str, np.ndarray]:
    """Parameters a caller gave, as arrays; a BackpropInputError names a missing or misshapen
    one, or one that is not a finite float array (the gradient checker's own validation)."""
    for name, shape in shapes.items():
        if name not in params:
            raise BackpropInputError(f"params lacks {name!r}; the model's are {', '.join(shapes)}")
        if np.shape(params[name]) != tuple(shape):
            raise BackpropInputError(
                f"params[{name!r}] has shape {np.shape(params[name])}, not {tuple(shape)}"
            )
    try:
        return validate_params({name: params[name] for name in shapes})
    except GradcheckInputError as err:
        raise BackpropInputError(str(err)) from err


def target_kind(model) -> str:
    """What ``Y`` holds: the registry's word for the loss ("real", "binary", "one_hot",
    "labels"), or "none" for an expression."""
    if model.loss is None or not model.targets:
        return "none"
    return registry.loss(model.loss).targets


def sample_params(shapes, dtype="float64", seed=0, positive: bool = False) -> dict:
    """Random parameters: an ``(n_in, ...)`` array with standard deviation ``1/sqrt(n_in)``,
    a scalar (0-d) with 0.5; ``positive=True`` draws from ``[0.5, 1.5]`` instead (for
    expressions that take the log or square root of a parameter).

    >>> {k: v.shape for k, v in sample_params({"W1": (3, 2), "b": ()}).items()}
    {'W1': (3, 2), 'b': ()}
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        shape = tuple(shape)
        if positive:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.standard_normal(shape) * (1 / math.sqrt(shape[0]) if shape else 0.5)
        out[name] = np.asarray(value, dtype=dtype)
    return out


def sample_data(model, m: int, dtype="float64", seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A batch ``(X, Y)`` that fits the model's loss: ``X`` standard normal; ``Y`` one-hot
    rows (cce), integer labels (sparse_cce), 0/1 (bce), standard normal otherwise.

    >>> import derive
    >>> X, Y = sample_data(derive.mlp([3, 4], loss="sparse_cce"), 6)
    >>> X.shape, Y.shape, Y.dtype.kind
    ((6, 3), (6,), 'i')
    """
    rng = np.random.default_rng(seed)
    shapes = data_shapes(model, m)
    X = rng.standard_normal(shapes["X"]).astype(dtype)
    kind = target_kind(model)
    if kind == "labels":
        Y = rng.integers(0, model.n_outputs, m)
    elif kind == "one_hot":
        Y = np.eye(model.n_outputs, dtype=dtype)[rng.integers(0, model.n_outputs, m)]
    elif kind == "binary":
        Y = rng.integers(0, 2, shapes["Y"]).astype(dtype)
    else:
        Y = rng.standard_normal(shapes["Y"]).astype(dtype)
    return X, Y


def sample_masks(model, m: int, dtype="float64", seed=0) -> dict[str, np.ndarray]:
    """A 0/1 keep mask for each dropout layer of a batch of ``m``, each entry kept with the
    layer's probability (seeded; ``{}`` for a model without dropout).

    >>> import derive
    >>> from derive.layers import Dense, Dropout
    >>> masks = sample_masks(derive.network(3, [Dense(4), Dropout(0.5), Dense(2)], "mse"), 5)
    >>> {name: mask.shape for name, mask in masks.items()}
    {'M2': (5, 4)}
    """
    rng = np.random.default_rng([seed, 1])
    return {
        name: (rng.random((m, *shape)) < keep).astype(dtype)
        for name, (shape, keep) in mask_shapes(model).items()
    }


def draw_finite(model, kernel, shapes, dtype, batch, seed, data):
    """Seeded params (and data, unless given) at which the kernel's loss is finite.

    Only a loss that is not finite (or a floating-point error: ``1 / 0`` of Python numbers)
    asks for another draw; any other exception of the kernel (a shape error, a typo) is the
    kernel's, and propagates as it is.
    """
    params_seed, data_seed = np.random.SeedSequence(seed).spawn(2)
    X, Y = sample_data(model, batch, dtype, data_seed) if data is None else data
    value = math.nan
    for attempt in range(DRAWS):
        if attempt == 0:
            params = sample_params(shapes, dtype, params_seed)
        else:  # a log or sqrt of a parameter: try again, then with positive values
            seq = np.random.SeedSequence([seed, attempt])
            params = sample_params(shapes, dtype, seq, positive=attempt >= DRAWS // 2)
        with np.errstate(all="ignore"):
            try:
                value = kernel.loss(params, X, Y)
            except ArithmeticError as err:
                value = f"{type(err).__name__}: {err}"
                continue
            if np.isfinite(value):
                return params, X, Y
    raise BackpropInputError(
        f"the loss of {model.spec} is not finite at any of {DRAWS} random draws of the "
        f"parameters (the last gave {value})"
    )


__all__ = [
    "DRAWS",
    "data_shapes",
    "draw_finite",
    "sample_data",
    "sample_masks",
    "sample_params",
    "target_kind",
]
