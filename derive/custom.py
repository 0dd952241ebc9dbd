"""Users' own activations and losses, registered through one public function each.

``register_activation("swish", "x * sigmoid(x)")`` adds an entry to ``registry.ACTIVATIONS``
like the built-ins: from then on the name works wherever a built-in's does (the builders,
``--activation``, the expression parser's ``swish(w*x + b)``, codegen, the JAX route, LaTeX,
the plots), because all of them read the registry and derive from its one definition.

A loss is given per output unit, in the prediction ``a`` and the target ``y`` of that unit:
``register_loss("log_cosh", "log(cosh(a - y))")`` is ``sum_j log cosh(a_j - y_j)`` for one
example (``reduction="mean"`` divides by the number of outputs, as ``mse`` does); the cost
is the mean of the example losses over the batch, as for every loss.

>>> with scoped_registry():
...     act = register_activation("swish", "x * sigmoid(x)")
...     from derive import rules
...     rules.elementwise_derivative("swish").has(registry.x)
True
"""

from __future__ import annotations

import builtins
import keyword
import re
from contextlib import contextmanager

import sympy as sp
from sympy.core.function import AppliedUndef

from . import registry, rules
from .errors import BackpropInputError
from .expressions import FUNCTIONS
from .matrix_expressions import REDUCTIONS as REDUCTIONS_PARSED
from .registry import Activation, Loss, a, j, x, y, z

BUILT_IN = frozenset(registry.ACTIVATIONS) | frozenset(registry.LOSSES)

#: What a generated name looks like: ``W1``, ``b1``, ``z2_3``, ``J``, ``m``, ``dZ1``, ``dW1_2_3``
#: (one letter, digits and ``_digits``, perhaps the ``d`` of an adjoint), and the names of
#: layer parameters (``gamma2``, ``beta2``, ``mask3``).
_GENERATED = re.compile(r"d?([A-Za-z]|gamma|beta|mask|keep|ones)\d*(_\d+)*")

#: Names the parsers, the kernels and the JAX route use themselves.
_TAKEN = frozenset(
    {
        *FUNCTIONS,
        *REDUCTIONS_PARSED,
        "max",
        "min",
        *"np jnp jax params cost forward loss loss_and_grads PARAMS T".split(),
        *"pi E I oo nan inf Sum Piecewise".split(),
    }
)
TARGETS = ("real", "binary", "one_hot")
REDUCTIONS = ("sum", "mean")
_SAMPLES = (-3.1, -1.2, -0.3, 0.4, 1.7, 2.9)  # where a definition must be a finite real number


class RegistrationError(BackpropInputError):
    """A name or a definition that cannot join the registry."""


# ---------------------------------------------------------------------------- public API


def register_activation(
    name: str, expr_of_x, latex: str | None = None, summary: str | None = None, replace=False
) -> Activation:
    """Add an elementwise activation ``g(x)``, given as SymPy or as text in ``x``.

    The definition may call other activations (``"x * sigmoid(x)"``); it must be real for
    every real ``x``. ``latex`` is its symbol in reports (``\\operatorname{name}`` by default).
    ``replace=True`` redefines a name registered before (never a built-in).

    >>> with scoped_registry():
    ...     register_activation("swish", "x * sigmoid(x)").scalar
    x/(1 + exp(-x))
    """
    _check_name(name, replace)
    expr = _definition(expr_of_x, {"x": x}, "activation", name)
    if x not in expr.free_symbols:
        raise RegistrationError(f"activation {name!r} must depend on x, got {expr}")
    _check_real(name, expr, {x: _SAMPLES})
    act = Activation(name, expr.xreplace({x: z[j]}), latex or _latex(name), summary or str(expr))
    return _add(registry.ACTIVATIONS, act)


def register_loss(
    name: str,
    expr,
    latex: str | None = None,
    summary: str | None = None,
    reduction: str = "sum",
    output: str | None = None,
    targets: str = "real",
    replace=False,
) -> Loss:
    """Add a loss, given per output unit in the prediction ``a`` and the target ``y``.

    One example's loss is the ``reduction`` (``"sum"`` or ``"mean"``) of ``expr`` over the
    output units. ``output`` names the output activation the loss needs (None: any);
    ``targets`` says what ``y`` holds: ``"real"``, ``"binary"`` (0/1) or ``"one_hot"``.

    >>> with scoped_registry():
    ...     register_loss("log_cosh", "log(cosh(a - y))", reduction="mean").definition
    Sum(log(cosh(a[j] - y[j])), (j, 0, n - 1))/n
    """
    _check_name(name, replace)
    _choice(reduction, REDUCTIONS, "reduction")
    _choice(targets, TARGETS, "targets")
    if output is not None:
        registry.activation(output)
    unit = _definition(expr, {"a": rules.out, "y": sp.Symbol("y", real=True)}, "loss", name)
    target = sp.Symbol("y", real=True)
    if rules.out not in unit.free_symbols:
        raise RegistrationError(f"loss {name!r} must depend on the prediction a, got {unit}")
    probabilities = output in ("sigmoid", "softmax")
    a_samples = (0.07, 0.3, 0.55, 0.93) if probabilities else _SAMPLES
    y_samples = (0, 1) if targets != "real" else (-0.8, 0.2, 1.3)
    _check_real(name, unit, {rules.out: a_samples, target: y_samples})
    row = sp.Sum(unit.xreplace({rules.out: a[j], target: y[j]}), (j, 0, registry.n - 1))
    definition = row / registry.n if reduction == "mean" else row
    loss = Loss(
        name,
        definition,
        latex or rf"\mathcal{{L}}_{{{_latex(name)}}}",
        summary or f"{reduction} over outputs of {unit}",
        output=output,
        targets=targets,
        min_outputs=2 if targets == "one_hot" else 1,
    )
    return _add(registry.LOSSES, loss)


def unregister(name: str) -> None:
    """Remove a registered activation or loss (a built-in stays)."""
    if name in BUILT_IN:
        raise RegistrationError(f"{name!r} is built in; only registered names can be removed")
    for table in (registry.ACTIVATIONS, registry.LOSSES):
        if name in table:
            del table[name]
            _forget_derived()
            return
    raise RegistrationError(f"{name!r} is not registered")


@contextmanager
def scoped_registry():
    """Registrations made inside the block are undone on leaving it (tests use it so that
    no registration leaks into another test)."""
    saved = dict(registry.ACTIVATIONS), dict(registry.LOSSES)
    try:
        yield
    finally:
        for table, before in zip((registry.ACTIVATIONS, registry.LOSSES), saved, strict=True):
            if table != before:
                table.clear()
                table.update(before)
                _forget_derived()


# ---------------------------------------------------------------------------- checks


def _check_name(name, replace: bool) -> None:
    if not isinstance(name, str):
        raise TypeError(f"a registered name is a str, got {type(name).__name__}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or keyword.iskeyword(name):
        raise RegistrationError(
            f"cannot register {name!r}: a name is an ASCII identifier (letters, digits, _)"
        )
    if name in BUILT_IN:
        raise RegistrationError(f"cannot register {name!r}: it is a built-in name")
    if _GENERATED.fullmatch(name) or name in _TAKEN or hasattr(builtins, name):
        raise RegistrationError(
            f"cannot register {name!r}: it collides with a parameter, node or generated name "
            "(W1, b1, Z2, J, m, dZ1, ...) or a function the parsers use; choose a longer name"
        )
    registered = name in registry.ACTIVATIONS or name in registry.LOSSES
    if registered and not replace:
        raise RegistrationError(f"{name!r} is registered already; pass replace=True to redefine it")


def _choice(value, allowed, what: str) -> None:
    if value not in allowed:
        raise RegistrationError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")


def _definition(expr, variables: dict[str, sp.Symbol], what: str, name: str) -> sp.Expr:
    """The definition as SymPy over ``variables`` (text is parsed, never evaluated), with
    calls of registered activations written out (``sigmoid(x)`` is ``1/(1 + exp(-x))``)."""
    if isinstance(expr, str):
        from .expressions import parse_expression

        expr = parse_expression(expr)[1]
    try:
        expr = sp.sympify(expr, strict=True)
    except (sp.SympifyError, TypeError):
        raise RegistrationError(
            f"{what} {name!r}: expected a SymPy expression or text, got {expr!r}"
        ) from None
    if not isinstance(expr, sp.Expr):
        raise RegistrationError(f"{what} {name!r}: expected an expression, got {expr!r}")
    expr = expr.doit()
    allowed = ", ".join(variables)
    others = sorted(s.name for s in expr.free_symbols if s.name not in variables)
    if others:
        raise RegistrationError(
            f"{what} {name!r} may use only {allowed}; it also has {', '.join(others)}"
        )
    expr = expr.xreplace({s: variables[s.name] for s in expr.free_symbols})
    return _expand_calls(expr, what, name)


def _expand_calls(expr: sp.Expr, what: str, name: str) -> sp.Expr:
    for call in sorted(expr.atoms(AppliedUndef), key=sp.count_ops):
        inner = call.func.__name__
        act = registry.ACTIVATIONS.get(inner)
        if act is None or not act.elementwise:
            known = ", ".join(n for n, a_ in registry.ACTIVATIONS.items() if a_.elementwise)
            raise RegistrationError(
                f"{what} {name!r} calls {inner!r}, which is no elementwise activation; "
                f"known: {known}"
            )
        expr = expr.xreplace({call: act.scalar.xreplace({x: call.args[0]})})
    return _expand_calls(expr, what, name) if expr.atoms(AppliedUndef) else expr


def _check_real(name: str, expr: sp.Expr, samples: dict[sp.Symbol, tuple]) -> None:
    """Refuse a definition that is not a finite real number at every sample point."""
    if expr.is_real is False:
        raise RegistrationError(f"{name!r} must be a finite real number for real inputs: {expr}")
    points = [{}]
    for symbol, values in samples.items():
        if symbol in expr.free_symbols:
            points = [{**p, symbol: sp.Float(v)} for p in points for v in values]
    for point in points:
        try:
            value = complex(sp.N(expr.xreplace(point)))
        except TypeError:  # zoo, nan: no number at all
            value = complex(float("nan"))
        if value.imag != 0 or value.real != value.real or abs(value.real) == float("inf"):
            where = ", ".join(f"{_shown(s)}={float(v):g}" for s, v in point.items())
            raise RegistrationError(
                f"{name!r} must be a finite real number for real inputs; at {where} it is "
                f"{sp.N(expr.xreplace(point), 4)}"
            )


def _shown(symbol: sp.Symbol) -> str:
    return "a" if symbol == rules.out else symbol.name


def _latex(name: str) -> str:
    escaped = name.replace("_", r"\_")
    return rf"\operatorname{{{escaped}}}"


def _add(table: dict, entry):
    table[entry.name] = entry
    _forget_derived()
    return entry


def _forget_derived() -> None:
    """Rules are cached by name: a name that changes its definition must be derived anew."""
    for rule in (
        rules.elementwise_derivative,
        rules.activation_jacobian,
        rules.activation_vjp,
        rules.loss_gradient,
        rules.head_vjp,
    ):
        rule.cache_clear()
