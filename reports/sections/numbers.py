"""Numbers for a report: one seeded example, its forward values and adjoints, and checks.

The worked example and the graph figure use the values of :func:`worked_instance`: every
leaf (parameter, input, target) drawn from a seeded generator and rounded to two decimals so
that a reader can follow the arithmetic, then every node and adjoint evaluated by SymPy
through the derivation's own steps (``derive.evaluate``). Two independent routes check those
gradients: the closed form written in inputs and parameters alone
(``derivation.gradient(name, expanded=True)``), and JAX autodiff or finite differences of
the cost (``verification_checks``), plus the generated kernel when there is one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

import derive
from derive import registry
from reports.latex.notation import family


@dataclass
class Instance:
    """One example at the scalar level: leaves drawn from ``seed``; every value by name."""

    leaves: dict[str, float]
    values: dict[str, float]
    seed: int

    def adjoint(self, name: str) -> float:
        return self.values["d" + name]

    @property
    def cost(self) -> float:
        return self.values["__cost__"]


def seeded_leaves(model, seed: int = 0) -> dict[str, float]:
    """Parameters and inputs uniform in [-1, 1], targets as the loss expects, two decimals.

    >>> from derive import logistic_regression
    >>> sorted(seeded_leaves(logistic_regression(2), seed=1))
    ['b', 'w1', 'w2', 'x1', 'x2', 'y']
    """
    rng = np.random.default_rng(seed)
    leaves: dict[str, float] = {}
    for node in model.nodes:
        if node.role in ("param", "input"):
            value = 0.0
            while value == 0.0:  # a kink (relu at 0) would make the example a corner case
                value = round(float(rng.uniform(-1, 1)), 2)
            leaves[node.name] = value
    targets = [node.name for node in model.targets]
    kind = registry.loss(model.loss).targets if model.loss else "real"
    if kind in ("one_hot", "labels"):
        hot = int(rng.integers(len(targets)))
        leaves.update({name: float(k == hot) for k, name in enumerate(targets)})
    elif kind == "binary":
        leaves.update({name: float(rng.integers(2)) for name in targets})
    else:
        leaves.update({name: round(float(rng.uniform(0, 1)), 2) for name in targets})
    return leaves


def worked_instance(derivation, seed: int = 0) -> Instance:
    """Forward values and adjoints of one seeded example, through the derivation's steps."""
    model = derivation.model
    leaves = seeded_leaves(model, seed)
    exact = derive.evaluate(derivation, {k: sp.Float(repr(v), 30) for k, v in leaves.items()})
    values = {name: float(value) for name, value in exact.items()}
    values["__cost__"] = values[model.cost.name]
    return Instance(leaves, values, seed)


def expanded_gradients(derivation, instance: Instance) -> dict[str, float]:
    """Each parameter's gradient from its closed form in inputs and parameters alone."""
    subs = {sp.Symbol(k, real=True): sp.Float(repr(v), 30) for k, v in instance.leaves.items()}
    return {
        p.name: float(derivation.gradient(p.name, expanded=True).xreplace(subs).doit())
        for p in derivation.model.params
    }


# ---------------------------------------------------------------------------- verification


@dataclass
class CheckRow:
    """One parameter array: the largest difference of each route from the reference."""

    array: str
    shape: tuple[int, ...]
    differences: dict[str, float]
    scale: float  # largest |gradient| in the array, to read the differences against

    def ok(self, tolerance: float) -> bool:
        return all(d <= tolerance * max(1.0, self.scale) for d in self.differences.values())


@dataclass
class Checks:
    """Gradients of one example by several routes, compared array by array."""

    reference: str
    routes: list[str]
    rows: list[CheckRow] = field(default_factory=list)
    tolerance: float = 1e-6
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.ok(self.tolerance) for row in self.rows)


def _select(condlist, choicelist, default=0):
    """``np.select`` for SymPy's printed Piecewise, whose conditions may themselves be
    Piecewise results (floats holding 0/1) and whose constants would upcast float32."""
    arrays = [c for c in choicelist if isinstance(c, np.ndarray | np.generic)]
    conds = [np.asarray(c).astype(bool) for c in condlist]
    out = np.select(conds, choicelist, default=default)
    return out.astype(np.result_type(*arrays)) if arrays else out


def cost_function(model, module: str = "numpy") -> Callable[[dict], object]:
    """The cost of one example, ``f(leaves) -> cost``, computed node by node (scalar level).

    Each node's own expression is turned into code (SymPy ``lambdify``) and the graph is run
    forward, as a network runs; writing the cost out in the leaves instead would multiply
    out every Piecewise (relu, elu, huber) into an expression too large to evaluate. With
    NumPy, pass 0-d arrays (Piecewise conditions must be arrays).
    """
    modules = [{"select": _select}, "numpy"] if module == "numpy" else module
    steps = []
    for node in model.nodes:
        if node.is_leaf:
            continue
        parents = list(dict.fromkeys(node.parents))
        fn = sp.lambdify([p.symbol for p in parents], node.expr, modules=modules)
        steps.append((node.name, fn, [p.name for p in parents]))
    cost = model.cost.name

    def run(leaves: dict):
        env = dict(leaves)
        for name, fn, args in steps:
            env[name] = fn(*[env[a] for a in args])
        return env[cost]

    return run


def _jax_gradients(model, instance: Instance) -> dict[str, float]:
    import jax
    import jax.numpy as jnp

    run = cost_function(model, "jax")
    params = [p.name for p in model.params]
    with jax.enable_x64(True):
        point = jnp.array([instance.leaves[name] for name in params], dtype=jnp.float64)

        def cost(theta):
            env = dict(instance.leaves)
            env.update({name: theta[k] for k, name in enumerate(params)})
            return run(env)

        grad = np.asarray(jax.grad(cost)(point), dtype=np.float64)
    return dict(zip(params, grad.tolist()))


def _finite_differences(model, instance: Instance) -> dict[str, float]:
    run = cost_function(model)
    out = {}
    for p in model.params:
        x = instance.leaves[p.name]
        h = np.cbrt(np.finfo(np.float64).eps) * max(1.0, abs(x))
        env = {k: np.asarray(v) for k, v in instance.leaves.items()}  # 0-d: np.select wants arrays
        env[p.name] = np.asarray(x + h)
        up = run(env)
        env[p.name] = np.asarray(x - h)
        down = run(env)
        out[p.name] = float((up - down) / (2 * h))
    return out


def kernel_gradients(kernel, model, instance: Instance) -> dict[str, float] | None:
    """The generated kernel's gradients at the example, by scalar parameter name."""
    module = getattr(kernel, "module", None)
    run = getattr(module, "loss_and_grads", None)
    if run is None:
        return None
    arrays, X, Y = kernel_inputs(model, instance, getattr(module, "PARAMS", None))
    _, grads = run(arrays, X, Y)
    out = {}
    for p in model.params:
        array, index = p.tensor if p.tensor else (p.name, ())
        value = np.asarray(grads[array], dtype=np.float64)
        out[p.name] = float(value[index] if value.ndim else value)
    return out


def kernel_inputs(model, instance: Instance, shapes=None):
    """Parameter arrays and a one-row batch ``X, Y`` in the kernels' contract (DESIGN.md)."""
    shapes = dict(shapes or model.param_shapes())
    arrays = {name: np.zeros(shape) for name, shape in shapes.items()}
    for p in model.params:
        array, index = p.tensor if p.tensor else (p.name, ())
        target = arrays[array]
        if target.ndim == len(index):
            target[index] = instance.leaves[p.name]
        else:  # a scalar stored as a (1,) or (1, 1) array
            target.flat[0] = instance.leaves[p.name]
    X = np.array([[instance.leaves[n.name] for n in model.inputs]])
    y = [instance.leaves[n.name] for n in model.targets]
    loss = registry.loss(model.loss) if model.loss else None
    if loss is not None and loss.targets == "labels":
        Y = np.array([int(np.argmax(y))])
    elif model.kind == "logreg":
        Y = np.array(y)
    else:
        Y = np.array([y])
    return arrays, X, Y


def verification_checks(derivation, instance: Instance, kernel=None) -> Checks:
    """Compare the derivation's gradients with JAX, finite differences and the kernel."""
    model = derivation.model
    reference = {p.name: instance.adjoint(p.name) for p in model.params}
    routes: dict[str, dict[str, float]] = {"closed form": expanded_gradients(derivation, instance)}
    notes = []
    try:
        routes["JAX"] = _jax_gradients(model, instance)
    except ImportError:
        notes.append("JAX is not installed: no autodiff column.")
    routes["finite differences"] = _finite_differences(model, instance)
    if kernel is not None:
        try:
            grads = kernel_gradients(kernel, model, instance)
        except Exception as err:  # a kernel that fails is a finding, not a crash
            notes.append(f"The kernel could not be run on this example: {err}.")
            grads = None
        if grads is not None:
            routes["kernel"] = grads
    groups: dict[str, list] = {}
    for p in model.params:
        groups.setdefault(family(p), []).append(p.name)
    shapes = model.param_shapes()
    checks = Checks("derivation (SymPy, step by step)", list(routes), notes=notes)
    for array, names in groups.items():
        diffs = {
            route: max(abs(values[n] - reference[n]) for n in names)
            for route, values in routes.items()
        }
        scale = max(abs(reference[n]) for n in names)
        checks.rows.append(CheckRow(array, tuple(shapes.get(array, ())), diffs, scale))
    return checks


# ---------------------------------------------------------------------------- the V curve


def fd_error_curve(
    derivation, instance: Instance, param: str, dtypes=("float64", "float32"), steps=None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """|central difference - exact| against the step h, for one parameter, per dtype.

    The exact value is the derivation's gradient evaluated by SymPy at 30 digits.
    """
    model = derivation.model
    run = cost_function(model)
    steps = np.logspace(-14, 0, 57) if steps is None else np.asarray(steps)
    exact = instance.adjoint(param)
    curves = {}
    for dtype in dtypes:
        kind = np.dtype(dtype).type
        errors = []
        for h in steps:
            env = {k: np.asarray(v, dtype) for k, v in instance.leaves.items()}
            x = env[param]
            hh = kind(h)
            env[param] = np.asarray(x + hh, dtype)
            up = kind(run(env))
            env[param] = np.asarray(x - hh, dtype)
            down = kind(run(env))
            applied = float(x + hh) - float(x - hh)  # the step the rounding really took
            slope = (float(up) - float(down)) / applied if applied else np.nan
            errors.append(abs(slope - exact))
        curves[dtype] = (steps, np.array(errors))
    return curves


def random_batch(model, batch: int = 4, seed: int = 0):
    """Inputs and targets for a batch in the kernels' contract, targets as the loss expects."""
    rng = np.random.default_rng(seed)
    n_in, n_out = model.sizes[0], model.sizes[-1]
    X = rng.uniform(-1, 1, (batch, n_in))
    kind = registry.loss(model.loss).targets if model.loss else "real"
    if kind == "labels":
        return X, rng.integers(n_out, size=batch)
    if kind == "one_hot":
        Y = np.eye(n_out)[rng.integers(n_out, size=batch)]
    elif kind == "binary":
        Y = rng.integers(2, size=(batch, n_out)).astype(float)
    else:
        Y = rng.uniform(0, 1, (batch, n_out))
    return X, (Y[:, 0] if model.kind == "logreg" else Y)


def kernel_error_curve(
    kernel, model, seed: int = 0, dtypes=("float64", "float32"), steps=None
) -> tuple[dict, str, tuple]:
    """The V curve from a generated kernel (for networks too large for the scalar level).

    One entry of the first weight array, the one with the largest gradient on a random
    batch; the reference is the kernel's own float64 gradient.
    """
    steps = np.logspace(-14, 0, 57) if steps is None else np.asarray(steps)
    params = kernel.random_params(seed, "float64")
    X, Y = random_batch(model, seed=seed)
    _, grads = kernel.loss_and_grads(params, X, Y)
    array = next(iter(params))
    index = tuple(
        int(k) for k in np.unravel_index(np.argmax(np.abs(grads[array])), grads[array].shape)
    )
    exact = float(np.asarray(grads[array])[index])
    curves = {}
    for dtype in dtypes:
        p = {k: np.array(v, dtype=dtype) for k, v in params.items()}
        Xd = X.astype(dtype)
        x = p[array][index]
        errors = []
        for h in steps:
            up_x, down_x = (x + np.asarray(h, dtype)), (x - np.asarray(h, dtype))
            p[array][index] = up_x
            up = float(kernel.loss(p, Xd, Y))
            p[array][index] = down_x
            down = float(kernel.loss(p, Xd, Y))
            p[array][index] = x
            applied = float(up_x) - float(down_x)
            errors.append(abs((up - down) / applied - exact) if applied else np.nan)
        curves[dtype] = (steps, np.array(errors))
    return curves, array, index
