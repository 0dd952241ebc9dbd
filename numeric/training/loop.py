"""``train``: a generated kernel in a mini-batch loop, its parameters moved by an update rule.

Each epoch visits the examples in a fresh order, ``numpy.random.default_rng(seed)``'s
``permutation(m)`` (one draw per epoch, in epoch order), cut into batches of ``batch_size``
rows; the last batch holds what is left. A model with dropout gets new keep masks for every
batch from the same generator, drawn after the epoch's order: for each dropout layer in
layer order, ``rng.random((rows, *shape)) < keep`` (``shape`` one example's mask: a dense
layer's width, or a tensor network's map or vector before the dropout). Batches are gathered into
arrays made once, and the parameters are updated in place (:class:`Stepper`).

>>> import derive
>>> from numeric import codegen
>>> from numeric.training.datasets import make, targets_for
>>> model = derive.mlp([2, 4, 1], activation="tanh")
>>> kernel = codegen(model.derive())
>>> data = make("xor")
>>> from derive.optimizers import Adam
>>> run = train(kernel, kernel.random_params(seed=1), data.X, targets_for(model, data),
...             Adam(lr=0.05), epochs=300, batch_size=4, seed=0, progress=False)
>>> run.history.accuracy[-1]
1.0
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass

import numpy as np

from derive.errors import BackpropInputError
from derive.optimizers import UpdateRule
from numeric.generator.kernel import check_params, mask_shapes
from numeric.memory import keep_freed_memory

from .history import History, Progress, accuracy, class_kind
from .signal_code import signal_function
from .stepper import Stepper


@dataclass
class Training:
    """What :func:`train` returns: the trained ``params`` (the arrays given, updated in
    place), the ``history``, the rule, and the wall time."""

    params: dict[str, np.ndarray]
    history: History
    optimizer: UpdateRule
    seconds: float


def train(
    kernel,
    params: dict[str, np.ndarray],
    X,
    Y,
    optimizer: UpdateRule,
    epochs: int = 10,
    batch_size: int = 32,
    seed: int = 0,
    *,
    progress: bool | None = None,
    measure_accuracy: bool = True,
    keep_memory: bool = True,
) -> Training:
    """Train ``params`` (changed in place: pass copies to keep the start) on ``X``, ``Y``.

    ``optimizer`` is a rule of :mod:`derive.optimizers`; the perceptron rule needs a kernel
    of one layer with a step output. Accuracy (when the targets are classes and
    ``measure_accuracy``) is measured on all of ``X`` after each epoch. ``progress`` shows
    a bar on stderr (None: when stderr is a terminal). ``keep_memory`` has glibc keep freed
    memory for the next step (:func:`numeric.memory.keep_freed_memory`, for the rest of the
    process): a step's arrays are then not faulted in again, which makes a convnet's step
    up to a third faster; where that cannot be done (off glibc, or ``keep_memory=False``)
    the kernel writes the gradients into the same arrays every step (``out=``). Raises
    ``BackpropInputError`` for bad sizes, shapes or dtypes.
    """
    if not callable(getattr(kernel, "forward", None)):  # a Model or a network, say
        raise TypeError(
            f"train takes a kernel, got {type(kernel).__name__}: "
            "train(numeric.codegen(model.derive()), ...), or numeric.codegen(net) for a network"
            " on images or sequences"
        )
    if not isinstance(optimizer, UpdateRule):
        raise TypeError(f"optimizer must be a derive.optimizers rule, got {optimizer!r}")
    _check_count("epochs", epochs)
    _check_count("batch_size", batch_size)
    _check_seed(seed)
    _check_params(kernel, params)
    dtype = next(iter(params.values())).dtype
    X = np.ascontiguousarray(X, dtype=dtype)
    Y = np.ascontiguousarray(Y)
    if len(X) != len(Y) or len(X) == 0:
        raise BackpropInputError(f"X and Y must have the same number of rows (>0), got "
                                 f"{len(X)} and {len(Y)}")  # fmt: skip
    model = getattr(getattr(kernel, "derivation", None), "model", None)
    batch = _Batches(X, Y, batch_size, seed, _mask_shapes(kernel, model))
    if not batch.masks and _takes(kernel, "masks"):  # else dropout would be silently off
        raise BackpropInputError(
            "this kernel takes dropout masks, but it carries no model to draw them from (a "
            "kernel loaded from a file); train the kernel numeric.codegen(...) returns"
        )
    check_optimizer(optimizer, {name: p.shape for name, p in params.items()}, model)
    signals = None if optimizer.uses_gradient else _Perceptron(kernel, params, batch.size)
    stepper = Stepper(optimizer, params)
    kind = class_kind(model, Y) if measure_accuracy else None
    history = History(batch.per_epoch, len(X))
    bar = Progress(epochs, batch.per_epoch, enabled=progress)
    kept = keep_memory and keep_freed_memory()
    start = time.perf_counter()
    # freed memory kept, new gradient arrays come from the heap still in cache: 0-3 % faster
    # than arrays kept between steps, written cold. Else each new one would fault its pages
    # back in (1.4x the residual MLP's pass), so the kernel writes into the same arrays.
    takes_out = not kept and _takes(kernel, "out")
    out = {"out": {n: np.empty_like(p) for n, p in params.items()}} if takes_out else {}
    for epoch in range(epochs):
        for xb, yb, masks in batch.epoch():
            if signals is not None:
                loss, signal = signals(xb, yb)
            elif masks:
                loss, signal = kernel.loss_and_grads(params, xb, yb, masks=masks, **out)
            else:
                loss, signal = kernel.loss_and_grads(params, xb, yb, **out)
            stepper.step(signal)
            history.add_step(loss, len(xb))
            bar.step(epoch, history.last_loss)
        history.end_epoch(accuracy(kind, kernel, params, X, Y) if kind else None)
    bar.close()
    return Training(params, history, optimizer, time.perf_counter() - start)


def check_optimizer(optimizer: UpdateRule, shapes: dict[str, tuple[int, ...]], model=None) -> None:
    """Refuse a rule that cannot train parameters of these ``shapes`` (name -> shape, in the
    kernel's order): the perceptron rule trains one layer, a weight and a bias, with a step
    output (``model``'s, when known); a gradient rule trains any. :func:`train` calls it; a
    caller that announces a run calls it first, so a refused run is its error alone.
    Raises ``BackpropInputError``.

    >>> from derive.optimizers import Perceptron
    >>> check_optimizer(Perceptron(), {"w": (2,), "b": ()})
    >>> check_optimizer(Perceptron(), {"W1": (2, 3), "b1": (3,), "W2": (3,), "b2": ()})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    derive.errors.BackpropInputError: the perceptron rule trains one layer, ... W2 (3,), b2 ()
    """
    from .datasets import model_name

    if optimizer.uses_gradient:
        return
    if model is not None and model.output not in ("step", None):
        raise BackpropInputError(
            f"the perceptron rule trains a step output, but {model_name(model)} has "
            f"{model.output}; use --output step"
        )
    found = [tuple(shape) for shape in shapes.values()]
    if len(found) != 2 or len(found[0]) not in (1, 2) or found[1] != found[0][1:]:
        raise BackpropInputError(
            "the perceptron rule trains one layer, a weight and a bias; got parameters "
            + ", ".join(f"{name} {tuple(shape)}" for name, shape in shapes.items())
        )


class _Batches:
    """Shuffled batches gathered into arrays made once (a view of them for the last one)."""

    def __init__(self, X, Y, batch_size, seed, masks):
        self.X, self.Y = X, Y
        self.size = min(batch_size, len(X))
        self.per_epoch = math.ceil(len(X) / self.size)
        self.rng = np.random.default_rng(seed)
        self.xb = np.empty((self.size, *X.shape[1:]), dtype=X.dtype)
        self.yb = np.empty((self.size, *Y.shape[1:]), dtype=Y.dtype)
        self.masks = masks

    def epoch(self):
        order = self.rng.permutation(len(self.X))
        for lo in range(0, len(order), self.size):
            rows = order[lo : lo + self.size]
            # mode="clip" (the rows are in range): take's default mode fills a new array and
            # copies it into `out`, a batch-sized allocation at every step
            xb = np.take(self.X, rows, axis=0, out=self.xb[: len(rows)], mode="clip")
            yb = np.take(self.Y, rows, axis=0, out=self.yb[: len(rows)], mode="clip")
            yield xb, yb, self._draw_masks(len(rows))

    def _draw_masks(self, rows: int) -> dict[str, np.ndarray]:
        return {
            name: (self.rng.random((rows, *shape)) < keep).astype(self.X.dtype)
            for name, (shape, keep) in self.masks.items()
        }


def _takes(kernel, argument: str) -> bool:
    """The kernel's ``loss_and_grads`` has this argument (``masks``; ``out``, which a JAX
    kernel or one written before it lacks)."""
    function = getattr(getattr(kernel, "module", kernel), "loss_and_grads", None)
    try:
        return argument in inspect.signature(function).parameters
    except (TypeError, ValueError):  # not a Python function: nothing to read
        return False


def _mask_shapes(kernel, model) -> dict[str, tuple[tuple[int, ...], float]]:
    """Dropout keep masks the kernel takes: name -> (one example's shape, keep probability),
    from its tensor network's dropout layers or its dense model's mask nodes ({} for a
    kernel read from a file, which carries neither)."""
    network = getattr(kernel, "network", None)
    source = network if network is not None else model
    return {} if source is None else mask_shapes(source)


class _Perceptron:
    """The perceptron rule's signal on a batch, by the code :mod:`.signal_code` prints from
    the rule's definition, into arrays made once: ``Xᵀ (Y - Yhat)`` for the weight and
    ``1ᵀ (Y - Yhat)`` for the bias (its input is always 1)."""

    def __init__(self, kernel, params, batch_size):
        names = list(params)
        self.kernel, self.params = kernel, params
        self.delta = {name: np.empty_like(p) for name, p in params.items()}
        weight, bias = (self.delta[name] for name in names)
        self.outputs = int(np.prod(bias.shape))  # units: a row of the bias, a column of W
        self.weight = weight.reshape(len(weight), self.outputs)  # views: 2-D for the code
        self.bias = bias.reshape(1, self.outputs)
        self.ones = np.ones((batch_size, 1), dtype=weight.dtype)
        self.signal = signal_function()

    def __call__(self, xb, yb):
        rows = len(xb)
        outputs = self.kernel.forward(self.params, xb).reshape(rows, self.outputs)
        if outputs.dtype != self.ones.dtype or not outputs.flags.writeable:
            outputs = outputs.astype(self.ones.dtype)  # the error is written over it
        errors = self.signal(xb, yb.reshape(rows, self.outputs), outputs, self.ones[:rows],
                             self.weight, self.bias)  # fmt: skip
        return float(np.abs(errors).mean()), self.delta


def _check_params(kernel, params) -> None:
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    shapes = getattr(kernel, "params", None)
    if shapes is None:
        return
    if list(params) != list(shapes):
        raise BackpropInputError(
            f"params must be the kernel's {', '.join(shapes)}, got {', '.join(params)}"
        )
    check_params(shapes, params)


def _check_count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BackpropInputError(f"{name} must be a positive integer, got {value!r}")


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BackpropInputError(f"seed must be a non-negative integer, got {seed!r}")
