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

import linecache
import re
import types
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np

from derive.errors import BackpropInputError

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
        path = Path(path)
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
        """The module's function, first checking X and Y: a list X or a Y of the wrong shape
        gets a message saying what to pass, not an error from deep inside NumPy."""
        call = getattr(self.module, function)
        model = getattr(self.derivation, "model", None)

        def checked(params, X, *rest, **kwargs):
            data = {"X": X} if function == "forward" else {"X": X, "Y": rest[0] if rest else None}
            _check_data(model, data)
            if self.network is not None:
                _check_network(self.network, params, data, kwargs.get("masks"))
            return call(params, X, *rest, **kwargs)

        checked.__name__ = checked.__qualname__ = function
        checked.__doc__ = call.__doc__
        return checked

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
    path = Path(path)
    module = types.ModuleType(_module_name(path.stem))
    module.__file__ = str(path)
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
    return module


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


def _check_data(model, data: dict) -> None:
    for name, value in data.items():
        if value is None:
            continue
        if not (hasattr(value, "shape") and hasattr(value, "dtype")):
            got = type(value).__name__
            raise TypeError(f"{name} must be a NumPy array, got {got}: pass np.asarray({name})")
    if model is None or not hasattr(model, "data_shapes") or not hasattr(data["X"], "ndim"):
        return
    if data["X"].ndim == 0:
        raise BackpropInputError(f"X must have a row per example, got a 0-d array {data['X']}")
    want = model.data_shapes(data["X"].shape[0])
    for name, value in data.items():
        if value is not None and tuple(value.shape) != tuple(want[name]):
            raise BackpropInputError(
                f"{name} has shape {tuple(value.shape)}; {model.spec} takes {name} of shape "
                f"{tuple(want[name])} for a batch of {data['X'].shape[0]}"
            )


def mask_shapes(network) -> dict[str, tuple[tuple[int, ...], float]]:
    """A tensor network's dropout masks: name -> (shape of one example's mask, keep
    probability); a mask has the shape of its layer's input."""
    keep = network.masks
    return {
        f"M{st.k}": (tuple(st.inputs), keep[f"M{st.k}"])
        for st in network.stages
        if f"M{st.k}" in keep
    }


def _check_network(network, params, data: dict, masks) -> None:
    """X, Y, the parameters and the dropout masks of a tensor kernel's call against the
    network's shapes: a wrong one is named with the shape it should have, before NumPy
    fails on it with a message about axes."""
    X = data["X"]
    if X.ndim == 0:
        raise BackpropInputError(f"X must have a row per example, got a 0-d array {X}")
    rows = X.shape[0]
    want = network.data_shapes(rows)
    for name, value in data.items():
        if value is not None and tuple(value.shape) != tuple(want[name]):
            raise BackpropInputError(
                f"{name} has shape {tuple(value.shape)}; the network takes {name} of shape "
                f"{tuple(want[name])} for a batch of {rows}"
            )
    check_params(network.param_shapes(), params)
    if masks is None:
        return
    if not isinstance(masks, dict):
        raise TypeError(f"masks must be a dict of arrays by name, got {type(masks).__name__}")
    for name, (shape, _) in mask_shapes(network).items():
        if name not in masks:
            raise BackpropInputError(f"masks has no {name}; this network's masks are "
                                     f"{', '.join(network.masks)}")  # fmt: skip
        if np.shape(masks[name]) != (rows, *shape):
            raise BackpropInputError(
                f"mask {name} has shape {np.shape(masks[name])}; for a batch of {rows} it must "
                f"have shape {(rows, *shape)} (the shape of its layer's input)"
            )


def module_from_source(source: str, name: str, filename: str) -> types.ModuleType:
    """``source`` run as a module named ``name``; ``filename`` (in angle brackets) is what a
    traceback shows, with the source's lines (linecache holds them: there is no file)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


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
