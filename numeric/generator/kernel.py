"""``Kernel``: the source of a generated module, where each line comes from, and the module.

>>> import derive
>>> from numeric import codegen
>>> kernel = codegen(derive.logistic_regression(3, level="matrix").derive())
>>> kernel.params
{'w': (3,), 'b': ()}
>>> J, grads = kernel.loss_and_grads(kernel.random_params(), np.ones((5, 3)), np.ones(5))
>>> sorted(grads), grads["b"].shape
(['b', 'w'], ())
"""

from __future__ import annotations

import inspect
import linecache
import math
import os
import re
import types
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np

from derive.errors import BackpropInputError

from .out_arrays import check_out

FUNCTIONS = ("forward", "loss", "loss_and_grads")


class KernelLine(NamedTuple):
    """One line of a kernel's source and what it implements.

    ``node`` names the forward node or backward step (``"Z1"``, ``"dW2"``) or, for a shared
    temporary, the first statement that uses it; ``kind`` is one of ``forward``, ``loss``,
    ``cost``, ``adjoint``, ``gradient``, ``shared``, ``data``; ``function`` is the kernel
    function the line belongs to (``forward``, ``loss``, ``loss_and_grads``).
    """

    line: int
    node: str
    kind: str
    function: str


class Kernel:
    """A generated kernel: ``source`` (a Python module), ``lines`` (line -> node/step), and
    ``module`` (the loaded module: ``PARAMS``, ``forward``, ``loss``, ``loss_and_grads``).

    The three functions are also reachable on the kernel itself (``kernel.forward``).
    ``path`` is the file a kernel was read from (:meth:`from_file`), None for a generated one.
    ``network`` is the ``derive.tensor_network.TensorNetwork`` a tensor kernel was printed
    from (None otherwise): its calls are checked against the network's shapes.
    """

    path: Path | None = None

    def __init__(
        self,
        source: str,
        lines: list[KernelLine],
        params: dict[str, tuple[int, ...]],
        target: str,
        derivation=None,
        name: str = "kernel",
        network=None,
    ):
        self.source = source
        self.lines = lines
        self.params = dict(params)
        self.target = target
        self.derivation = derivation
        self.name = name
        self.network = network

    @classmethod
    def from_file(cls, path) -> Kernel:
        """A kernel module saved with :meth:`save` (and perhaps edited since), as a Kernel:
        its module is imported from the file itself, so a traceback shows the file's lines.
        ``lines`` is empty and ``derivation`` None: nothing says what a line implements.

        Raises ``BackpropInputError`` when the module lacks the contract (``PARAMS``,
        ``forward``, ``loss``, ``loss_and_grads``); errors of the file itself (a syntax
        error, a failing import) propagate as they are.
        """
        path = _kernel_file(path, "Kernel.from_file")
        module = load(path)
        missing = [f"{f}()" for f in FUNCTIONS if not callable(getattr(module, f, None))]
        if not hasattr(module, "PARAMS"):
            missing.insert(0, "PARAMS")
        if missing:
            raise BackpropInputError(
                f"{path} is not a kernel module: it defines no {', '.join(missing)}"
            )
        params = _shapes(module.PARAMS, path)
        source = path.read_text(encoding="utf-8")
        target = "jax" if re.search(r"^import jax\b", source, re.MULTILINE) else "numpy"
        kernel = cls(source, [], params, target, name=path.stem)
        kernel.path = path
        kernel.__dict__["module"] = module  # what `module` would compile: the file's own
        return kernel

    def __repr__(self) -> str:
        spec = self.derivation.model.spec if self.derivation is not None else self.name
        return f"Kernel({spec}, target={self.target!r}, {self.source.count(chr(10))} lines)"

    # -- the module

    @cached_property
    def module(self) -> types.ModuleType:
        """The source loaded as a module (no file needed; tracebacks show the source)."""
        filename = f"<backprop kernel {self.name} ({self.target})>"
        return module_from_source(self.source, _module_name(self.name), filename)

    @property
    def forward(self):
        return self._checked("forward")

    @property
    def loss(self):
        return self._checked("loss")

    @property
    def loss_and_grads(self):
        return self._checked("loss_and_grads")

    def _checked(self, function: str):
        """The module's function, first checking its arguments against the model's shapes (X,
        Y, the parameters, the dropout masks): a list X, a Y, W or mask of the wrong shape gets
        a message saying what to pass, not an error from deep inside NumPy nor, worse, a
        gradient NumPy broadcast silently. Data that is not finite is refused too, once the
        result shows it (scanning X before every call would cost more than the kernel)."""
        made = self.__dict__.setdefault("_checked_functions", {})  # made once: calls are hot
        if function not in made:
            made[function] = self._checking(function)
        return made[function]

    def _checking(self, function: str):
        after_x = _arguments_after_x(getattr(self.module, function))
        y_at = after_x.index("Y") if "Y" in after_x else None  # forward takes no Y
        masks_at = after_x.index("masks") if "masks" in after_x else len(after_x)
        out_at = after_x.index("out") if "out" in after_x else len(after_x)

        def checked(params, X, *rest, **kwargs):
            Y = None if y_at is None else rest[y_at] if len(rest) > y_at else kwargs.get("Y")
            masks = rest[masks_at] if len(rest) > masks_at else kwargs.get("masks")
            self._call_shapes.check(params, X, Y, masks)
            out = rest[out_at] if len(rest) > out_at else kwargs.get("out")
            if out is not None:
                _check_out(self.params, out, params, X, Y, masks)
            result = getattr(self.module, function)(params, X, *rest, **kwargs)
            if not _finite(result[0] if isinstance(result, tuple) else result):
                _check_finite(X, Y)
            return result

        checked.__name__ = checked.__qualname__ = function
        checked.__doc__ = getattr(self.module, function).__doc__
        return checked

    @cached_property
    def _call_shapes(self) -> CallShapes:
        """What a call must fit, read from the model once (see :class:`CallShapes`)."""
        if self.network is not None:
            return CallShapes.of(self.network, "the network", self.params)
        model = getattr(self.derivation, "model", None)
        if model is None:  # a kernel file: its PARAMS are all it says
            return CallShapes(None, None, self.params, None)
        return CallShapes.of(model, model.spec, self.params)

    def save(self, path) -> Path:
        """Write the module to ``path`` (a ``.py`` file, or a directory to put one in)."""
        path = Path(path)
        if path.is_dir():
            path = path / f"{_module_name(self.name)}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.source, encoding="utf-8")
        return path

    # -- helpers for callers

    def random_params(self, seed: int = 0, dtype="float64") -> dict[str, np.ndarray]:
        """Random parameters with the ``PARAMS`` shapes in ``dtype``: weights of an
        ``(n_in, n_out)`` matrix are drawn with standard deviation ``1/sqrt(n_in)``, vectors
        likewise with their length, scalars (0-d arrays) with standard deviation 0.5."""
        rng = np.random.default_rng(seed)
        params = {}
        for name, shape in self.params.items():
            scale = 1 / np.sqrt(shape[0]) if shape else 0.5
            params[name] = np.asarray(scale * rng.standard_normal(shape), dtype=dtype)
        return params

    def lines_of(self, node: str) -> list[int]:
        """Line numbers of the source that implement ``node`` (a node or adjoint name)."""
        return [entry.line for entry in self.lines if entry.node == node]


def load(path) -> types.ModuleType:
    """Import a kernel saved with :meth:`Kernel.save`, as the file reads now: compiled from
    its text, never from a cached ``.pyc`` (an edit within the second it was cached, of the
    same size, would not be seen)."""
    path = _kernel_file(path, "load")
    module = types.ModuleType(_module_name(path.stem))
    module.__file__ = str(path)
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
    return module


def _kernel_file(path, function: str) -> Path:
    """``path`` as a Path; anything else (a network, a Model: a kernel not made yet) is one
    TypeError saying how to make its kernel, not pathlib's from inside."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"{function} takes the path of a saved kernel file, got {type(path).__name__}: "
            "numeric.codegen(net) makes the kernel of a network, "
            "numeric.codegen(model.derive()) that of a Model"
        )
    return Path(path)


def _shapes(params, path) -> dict[str, tuple[int, ...]]:
    """``PARAMS`` of a kernel file as ``{name: shape}``, or a clear error."""
    try:
        shapes = {str(name): tuple(int(n) for n in shape) for name, shape in params.items()}
    except (AttributeError, TypeError, ValueError):
        shapes = None
    if shapes is None or any(n < 0 for shape in shapes.values() for n in shape):
        raise BackpropInputError(
            f"{path}: PARAMS must map each parameter name to its shape, got {params!r}"
        )
    return shapes


class CallShapes:
    """The shapes a kernel's call must fit, worked out once per kernel: a Model's sizes are
    SymPy expressions, and reading them at every call cost 6 to 30 µs, more than the kernel
    of a small model. ``data`` and ``masks`` give each array's shape after the batch axis
    (its rows are the rows of X); ``masks`` also the keep probability. ``owner`` names the
    model in messages; ``data`` and ``masks`` are None for a kernel file, which says
    nothing of them."""

    def __init__(self, owner: str | None, data: dict | None, params: dict, masks: dict | None):
        self.owner, self.data, self.params, self.masks = owner, data, dict(params), masks
        self._names, self._shapes = tuple(self.params), list(self.params.values())
        self._tails = (data["X"], data["Y"]) if data is not None else None

    @classmethod
    def of(cls, model, owner: str, params: dict) -> CallShapes:
        """A Model's or a TensorNetwork's shapes (``data_shapes("m")`` marks the batch axis)."""
        data = {}
        for name, shape in model.data_shapes("m").items():
            if shape[0] != "m" or "m" in shape[1:]:
                raise ValueError(f"{name} of {owner} has no batch axis first: {shape}")
            data[name] = tuple(int(n) for n in shape[1:])
        return cls(owner, data, params, mask_shapes(model))

    def check(self, params, X, Y, masks) -> None:
        """Each argument against its shape; the first that does not fit raises, naming the
        shape it has and the one it should have. Masks of None (evaluation) always fit."""
        if not self._fits(params, X, Y):
            self._explain(params, X, Y)
        if masks is not None and self.masks is not None:
            self._check_masks(masks, X.shape[0])

    def _fits(self, params, X, Y) -> bool:
        """The quick test: shape tuples compared, about 1 µs a call. False: look closer
        (``X.dtype`` is asked for too: a DataFrame has a shape, but no dtype)."""
        try:
            x = X.shape
            fits = X.dtype is not None and [params[n].shape for n in self._names] == self._shapes
            if self._tails is not None:
                fits = fits and x[1:] == self._tails[0]
                fits = fits and (
                    Y is None or Y.dtype is not None and Y.shape == (x[0], *self._tails[1])
                )
            return fits
        except (AttributeError, IndexError, KeyError, TypeError):
            return False

    def _explain(self, params, X, Y) -> None:
        """What :meth:`_fits` found wrong, as an error (none: a list parameter, say, fits)."""
        _check_arrays(X, Y)
        if self.data is not None:
            self._check_data(X, Y)
        check_params(self.params, params)

    def _check_data(self, X, Y) -> None:
        if X.ndim == 0:
            raise BackpropInputError(f"X must have a row per example, got a 0-d array {X}")
        rows = X.shape[0]
        for name, value in (("X", X), ("Y", Y)):
            if value is not None and tuple(value.shape) != (rows, *self.data[name]):
                raise BackpropInputError(
                    f"{name} has shape {tuple(value.shape)}; {self.owner} takes {name} of "
                    f"shape {(rows, *self.data[name])} for a batch of {rows}"
                )

    def _check_masks(self, masks, rows: int) -> None:
        """One mask per dropout layer (a model without dropout takes none), each (rows, its
        layer's width), holding 0 and 1 only."""
        if not self.masks:
            got = ", ".join(map(str, masks)) if isinstance(masks, dict) else type(masks).__name__
            raise BackpropInputError(
                f"{self.owner} has no dropout layer: its kernel takes no masks, got {got or '{}'}"
            )
        if not isinstance(masks, dict):
            raise TypeError(f"masks must be a dict of arrays by name, got {type(masks).__name__}")
        missing = [name for name in self.masks if name not in masks]
        unknown = [str(name) for name in masks if name not in self.masks]
        if missing or unknown:
            what = f"no {', '.join(missing)}" if missing else ", ".join(unknown)
            raise BackpropInputError(
                f"masks has {what}; the masks of {self.owner} are {', '.join(self.masks)} "
                "(one per dropout layer)"
            )
        for name, (shape, keep) in self.masks.items():
            if np.shape(masks[name]) != (rows, *shape):
                raise BackpropInputError(
                    f"mask {name} has shape {np.shape(masks[name])}; for a batch of {rows} it "
                    f"must have shape {(rows, *shape)} (the shape of its layer's input)"
                )
            _check_keep_mask(name, masks[name], keep)


def _arguments_after_x(function) -> list[str]:
    """The names of a kernel function's arguments after ``params, X``: ``["Y", "masks",
    "out"]`` for a ``loss_and_grads`` with dropout, say (masks may be passed by position)."""
    try:
        return list(inspect.signature(function).parameters)[2:]
    except (TypeError, ValueError):  # not a Python function: Y by position, masks by name
        return ["Y"]


def _check_arrays(X, Y) -> None:
    for name, value in (("X", X), ("Y", Y)):
        if value is None and name == "Y":  # forward takes no Y
            continue
        if not (hasattr(value, "shape") and hasattr(value, "dtype")):
            got = type(value).__name__
            raise TypeError(f"{name} must be a NumPy array, got {got}: pass np.asarray({name})")


def _check_keep_mask(name: str, mask, keep: float) -> None:
    """A keep mask is 1 (kept) or 0 (dropped); the kernel divides by ``keep`` itself, so a
    mask already scaled (1/keep for a kept entry, as some libraries draw it) would be scaled
    twice."""
    mask = np.asarray(mask)
    # two comparisons and counts of bools: np.count_nonzero of floats is 5x slower
    if mask.dtype == bool or np.count_nonzero(mask == 1) + np.count_nonzero(mask == 0) == mask.size:
        return
    index = tuple(int(i) for i in np.argwhere((mask != 0) & (mask != 1))[0])
    raise BackpropInputError(
        f"mask {name}{list(index)} is {mask[index]}; a keep mask holds 1 (kept) and 0 "
        f"(dropped) only: the kernel divides by the keep probability {float(keep):g} itself"
    )


def _finite(value) -> bool:
    """Whether a kernel's cost (a float) or output (an array) is finite; True for anything
    else (a kernel file may return what it likes)."""
    if isinstance(value, float):
        return math.isfinite(value)
    try:
        return bool(np.isfinite(value).all())
    except TypeError:
        return True


def _check_finite(X, Y) -> None:
    """Refuse data that is not finite, naming its first such entry (called only when a
    result is not finite: a NaN from the parameters or an overflow passes on as it is)."""
    check_finite("X", X)
    if Y is not None:  # forward takes no Y
        check_finite("Y", Y)


def check_finite(name: str, data) -> None:
    """Refuse ``data`` holding a NaN or an infinity, naming its first such entry (``X[2, 0]
    is nan``); integer data is always finite. :func:`numeric.verify` checks its data so too."""
    data = np.asarray(data)
    if data.dtype.kind not in "fc" or np.isfinite(data).all():
        return
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(data))[0])
    raise BackpropInputError(
        f"{name}{list(index)} is {data[index]}: the data must be finite numbers"
    )


def mask_shapes(model) -> dict[str, tuple[tuple[int, ...], float]]:
    """The dropout masks of a dense Model or a tensor network: name -> (shape of one
    example's mask, keep probability); a mask has the shape of its layer's input. Sizes
    are ints and the keep probability a float, for a dense model and a network alike."""
    if hasattr(model, "stages"):  # a TensorNetwork
        keep = model.masks
        return {
            f"M{st.k}": (tuple(int(n) for n in st.inputs), float(keep[f"M{st.k}"]))
            for st in model.stages
            if f"M{st.k}" in keep
        }
    return {
        node.name: (tuple(model._size(n) for n in node.shape[1:]), float(node.op.keep))
        for node in model.by_role("mask")
    }


def module_from_source(source: str, name: str, filename: str) -> types.ModuleType:
    """``source`` run as a module named ``name``; ``filename`` (in angle brackets) is what a
    traceback shows, with the source's lines (linecache holds them: there is no file)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def _check_out(shapes: dict, out, params: dict, X, Y, masks) -> None:
    """The gradient arrays of ``loss_and_grads(..., out=)`` (:mod:`.out_arrays`)."""
    dtype = np.asarray(X).dtype
    dtype = dtype if dtype.kind == "f" else None  # integer pixels: codegen's dtype, any float
    data = {"X": X, "Y": Y, **{f"mask {n}": v for n, v in (masks or {}).items()}}
    check_out(shapes, out, dtype, params, data)


def check_params(shapes: dict, params) -> None:
    """``params`` holds an array of each shape in ``shapes`` (name -> shape)."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    missing = [name for name in shapes if name not in params]
    if missing:
        raise BackpropInputError(
            f"params has no {', '.join(missing)}; the kernel takes {', '.join(shapes)}"
        )
    for name, shape in shapes.items():
        if np.shape(params[name]) != tuple(shape):
            raise BackpropInputError(
                f"parameter {name} has shape {np.shape(params[name])}, the kernel's is {shape}"
            )


def _module_name(name: str) -> str:
    text = "".join(c if c.isalnum() else "_" for c in name).strip("_") or "kernel"
    return text if not text[0].isdigit() else f"kernel_{text}"
