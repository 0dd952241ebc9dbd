"""What :func:`numeric.check_gradients` is given: validated params, gradients and callables,
and the dtype and default tolerances they imply. Bad inputs raise :class:`GradcheckInputError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .evaluator import require_function
from .findings import Tolerance

#: (rtol, atol relative to the largest analytic gradient entry) per params dtype.
DEFAULT_TOLERANCES = {
    np.dtype(np.float64): (1e-7, 1e-10),
    np.dtype(np.float32): (1e-3, 1e-5),
    np.dtype(np.float16): (3e-2, 1e-2),
}


class GradcheckInputError(ValueError):
    """The inputs cannot be checked: the message names the bad value and what is allowed."""


def validate_params(params) -> dict[str, np.ndarray]:
    """``params`` as a dict of finite float arrays, or GradcheckInputError naming the bad one."""
    if not isinstance(params, Mapping) or not params:
        raise GradcheckInputError(
            f"params must be a non-empty dict name -> numpy array, got {type(params).__name__}"
        )
    out = {}
    for name, value in params.items():
        if not isinstance(name, str):
            raise GradcheckInputError(f"params keys must be str names, got {name!r}")
        arr = np.asarray(value)
        if arr.dtype.kind != "f":
            raise GradcheckInputError(
                f"params[{name!r}] has dtype {arr.dtype}; gradient checks need floating-point "
                "arrays (float32 or float64; a scalar is a 0-d array like np.array(0.5))"
            )
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            raise GradcheckInputError(
                f"params[{name!r}] is not finite at index {tuple(int(i) for i in bad[0])} "
                f"(value {arr[tuple(bad[0])]}); gradients can only be checked at finite params"
            )
        out[name] = arr
    return out


def _shape_mismatch(name: str, g: np.ndarray, x: np.ndarray) -> str:
    msg = f"gradient {name!r} has shape {g.shape} but params[{name!r}] has shape {x.shape}"
    if g.ndim == 2 and g.shape == x.shape[::-1]:
        return msg + ": a transpose?"
    if g.size == x.size:
        return msg + ": same size, a reshape or keepdims slip?"
    if g.ndim == x.ndim + 1 and g.shape[1:] == x.shape:
        return msg + ": one gradient per example? sum (or average) over the batch axis"
    return msg


def validate_grads(grads, params: dict[str, np.ndarray]) -> dict[str, np.ndarray | str]:
    """The analytic gradient as float64 arrays with the names of ``params``; a gradient of
    the wrong shape is a wrong gradient, so it comes back as the sentence that says so."""
    if not isinstance(grads, Mapping):
        raise GradcheckInputError(
            f"the gradient must be a dict name -> array like params, got {type(grads).__name__}"
        )
    missing = [n for n in params if n not in grads]
    extra = [n for n in grads if n not in params]
    if missing or extra:
        parts = [f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else ""]
        raise GradcheckInputError(
            "gradient names do not match params: "
            + ", ".join(p for p in parts if p)
            + f" (params are {list(params)}; return one gradient array per param, same names)"
        )
    out = {}
    for name, x in params.items():
        g = np.asarray(grads[name])
        if g.dtype.kind not in "fiu":
            raise GradcheckInputError(
                f"gradient {name!r} has dtype {g.dtype}; expected a real floating-point array"
            )
        out[name] = _shape_mismatch(name, g, x) if g.shape != x.shape else g.astype(np.float64)
    return out


def _is_pair(out) -> bool:
    return isinstance(out, tuple | list) and len(out) == 2 and isinstance(out[1], Mapping)


def resolve(loss_fn, grad_fn, loss_and_grad_fn, params):
    """Return (plain loss function, analytic gradient dict, how to name it in the repro)."""
    given = {"loss_fn": loss_fn, "grad_fn": grad_fn, "loss_and_grad_fn": loss_and_grad_fn}
    for role, fn in given.items():
        if fn is not None:
            require_function(fn, role)
    if loss_and_grad_fn is not None:
        if grad_fn is not None:
            raise GradcheckInputError("pass grad_fn or loss_and_grad_fn, not both")
        out = loss_and_grad_fn(dict(params))
        if not _is_pair(out):
            raise GradcheckInputError(
                "loss_and_grad_fn must return (loss, grads) with grads a dict, got "
                f"{type(out).__name__}"
            )
        plain = loss_fn if loss_fn is not None else (lambda p: loss_and_grad_fn(p)[0])
        both = _name(loss_and_grad_fn, "loss_and_grad_fn")
        return plain, out[1], f"{_name(loss_fn, 'None')}, None, params, loss_and_grad_fn={both}"
    if loss_fn is None:
        raise GradcheckInputError("nothing to check: pass loss_fn and grad_fn, or loss_and_grad_fn")
    if grad_fn is not None:
        names = f"{_name(loss_fn, 'loss_fn')}, {_name(grad_fn, 'grad_fn')}, params"
        return loss_fn, grad_fn(dict(params)), names
    out = loss_fn(dict(params))
    if not _is_pair(out):
        raise GradcheckInputError(
            f"grad_fn is None, so loss_fn must return (loss, grads); it returned "
            f"{type(out).__name__}. Pass grad_fn=(params -> dict of gradients) as well."
        )
    return (lambda p: loss_fn(p)[0]), out[1], f"{_name(loss_fn, 'loss_and_grad_fn')}, None, params"


def _name(fn, default: str) -> str:
    """The name a repro line can call ``fn`` by: its own, unless it is a lambda."""
    if fn is None:
        return "None"
    name = getattr(fn, "__name__", "")
    return name if name.isidentifier() else default


def default_tolerance(dtype: np.dtype, grads, rtol, atol) -> Tolerance:
    """``rtol``/``atol`` as given, else DEFAULT_TOLERANCES for ``dtype`` (atol scaled by the
    largest finite analytic entry)."""
    for what, value in (("rtol", rtol), ("atol", atol)):
        _check_tolerance(what, value)
    key = dtype if dtype in DEFAULT_TOLERANCES else np.dtype(np.float64)
    rtol_d, atol_rel = DEFAULT_TOLERANCES[key]
    if atol is None:
        finite = [np.max(np.abs(g[np.isfinite(g)]), initial=0.0) for g in grads.values()]
        atol = atol_rel * max(finite, default=0.0) or np.finfo(np.float64).tiny
    return Tolerance(rtol=rtol_d if rtol is None else rtol, atol=float(atol))


def _check_tolerance(what: str, value) -> None:
    """A tolerance is None or a finite number >= 0: NaN compares False, so it passed all."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{what} must be a number >= 0 (or None for the default), got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise GradcheckInputError(f"{what} must be a finite number >= 0, got {value!r}")


def params_dtype(params) -> np.dtype:
    """The least precise dtype among the params: it sets steps and tolerances."""
    return max((a.dtype for a in params.values()), key=lambda d: np.finfo(d).eps)
