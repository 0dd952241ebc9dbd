"""Every activation and loss, defined once as a SymPy expression over one row.

A row is what one example holds at one layer: ``z[0..n-1]`` going into an activation,
``a[0..n-1]`` coming out, ``y[0..n-1]`` the targets. An elementwise activation looks only at
``z[j]``; softmax looks at the whole row through a ``Sum``. Derivatives, kernels and LaTeX
are all derived from these definitions (see ``rules.py``): nothing here is a derivative.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import Abs, Piecewise, Rational, Sum, exp, log, tanh

from .errors import IncompatibleError, UnknownNameError

n = sp.Symbol("n", integer=True, positive=True)  # length of the row
i, j = sp.symbols("i j", integer=True, nonnegative=True)
z = sp.IndexedBase("z", real=True)  # pre-activations of one example
a = sp.IndexedBase("a", real=True)  # activations (network outputs) of one example
y = sp.IndexedBase("y", real=True)  # targets of one example
x = sp.Symbol("x", real=True)  # argument of an elementwise activation


def _row_sum(term: sp.Expr, index: sp.Symbol = j) -> sp.Expr:
    return Sum(term, (index, 0, n - 1))


@dataclass(frozen=True)
class Activation:
    """``definition`` gives ``a[j]`` in terms of the row ``z``."""

    name: str
    definition: sp.Expr
    latex: str
    summary: str
    output_only: bool = False

    @property
    def elementwise(self) -> bool:
        return not self.definition.has(Sum)

    @property
    def scalar(self) -> sp.Expr:
        """The elementwise definition as a function of ``x``."""
        return self.definition.xreplace({z[j]: x})


@dataclass(frozen=True)
class Loss:
    """``definition`` gives one example's loss in terms of the rows ``a`` and ``y``.

    ``output`` names the output activation the loss needs (None: any); ``targets`` says
    what a row of ``y`` holds: real values, 0/1 values, a one-hot row (sums to 1), or an
    integer label that the kernel one-hot encodes.
    """

    name: str
    definition: sp.Expr
    latex: str
    summary: str
    output: str | None = None
    targets: str = "real"
    min_outputs: int = 1

    @property
    def rows_sum_to_one(self) -> bool:
        return self.targets in ("one_hot", "labels")


def _elementwise(name, fn, latex, summary) -> Activation:
    return Activation(name, fn(z[j]), latex, summary)


ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in [
        _elementwise("linear", lambda t: t, r"\operatorname{id}", "identity"),
        _elementwise("sigmoid", lambda t: 1 / (1 + exp(-t)), r"\sigma", "logistic sigmoid"),
        _elementwise("tanh", tanh, r"\tanh", "hyperbolic tangent"),
        _elementwise(
            "relu", lambda t: Piecewise((t, t > 0), (0, True)), r"\operatorname{ReLU}", "max(0, z)"
        ),
        _elementwise(
            "leaky_relu",
            # z >= 0, not z > 0: at the kink JAX's leaky_relu takes slope 1 (relu's is 0)
            lambda t: Piecewise((t, t >= 0), (Rational(1, 100) * t, True)),
            r"\operatorname{LReLU}",
            "z for z >= 0, 0.01 z otherwise",
        ),
        _elementwise(
            "elu",
            lambda t: Piecewise((t, t > 0), (exp(t) - 1, True)),
            r"\operatorname{ELU}",
            "z for z > 0, exp(z) - 1 otherwise",
        ),
        _elementwise(
            "softplus", lambda t: log(1 + exp(t)), r"\operatorname{softplus}", "log(1 + e^z)"
        ),
        _elementwise(
            "step",
            lambda t: Piecewise((1, t > 0), (0, True)),
            r"\operatorname{step}",
            "perceptron step: 1 for z > 0, else 0",
        ),
        _elementwise(
            "sign",
            lambda t: Piecewise((1, t > 0), (-1, t < 0), (0, True)),
            r"\operatorname{sign}",
            "sign of z",
        ),
        Activation(
            "softmax",
            exp(z[j]) / _row_sum(exp(z[i]), i),
            r"\operatorname{softmax}",
            "exp(z_j) / sum_i exp(z_i), over the row",
            output_only=True,
        ),
    ]
}

_r = a[j] - y[j]
_bce = -(y[j] * log(a[j]) + (1 - y[j]) * log(1 - a[j]))
_huber = Piecewise((_r**2 / 2, Abs(_r) <= 1), (Abs(_r) - Rational(1, 2), True))
_log_sum_exp = log(_row_sum(exp(a[i]), i))

LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in [
        Loss("sse", _row_sum(_r**2), r"\mathcal{L}_{\mathrm{SSE}}", "sum of squared errors"),
        Loss(
            "half_sse",
            _row_sum(_r**2) / 2,
            r"\mathcal{L}_{\frac{1}{2}\mathrm{SSE}}",
            "half the sum of squared errors",
        ),
        Loss(
            "mse",
            _row_sum(_r**2) / n,
            r"\mathcal{L}_{\mathrm{MSE}}",
            "mean squared error over outputs",
        ),
        Loss(
            "mae",
            _row_sum(Abs(_r)) / n,
            r"\mathcal{L}_{\mathrm{MAE}}",
            "mean absolute error over outputs",
        ),
        Loss(
            "huber",
            _row_sum(_huber) / n,
            r"\mathcal{L}_{\mathrm{Huber}}",
            "Huber (delta = 1), mean over outputs",
        ),
        Loss(
            "bce",
            _row_sum(_bce) / n,
            r"\mathcal{L}_{\mathrm{BCE}}",
            "binary cross-entropy, mean over outputs",
            output="sigmoid",
            targets="binary",
        ),
        Loss(
            "bce_logits",
            _row_sum(log(1 + exp(a[j])) - y[j] * a[j]) / n,
            r"\mathcal{L}_{\mathrm{BCE}}",
            "binary cross-entropy on logits, mean over outputs",
            output="linear",
            targets="binary",
        ),
        Loss(
            "cce",
            -_row_sum(y[j] * log(a[j])),
            r"\mathcal{L}_{\mathrm{CE}}",
            "categorical cross-entropy",
            output="softmax",
            targets="one_hot",
            min_outputs=2,
        ),
        Loss(
            "cce_logits",
            -_row_sum(y[j] * (a[j] - _log_sum_exp)),
            r"\mathcal{L}_{\mathrm{CE}}",
            "categorical cross-entropy on logits",
            output="linear",
            targets="one_hot",
            min_outputs=2,
        ),
        Loss(
            "sparse_cce",
            -_row_sum(y[j] * log(a[j])),
            r"\mathcal{L}_{\mathrm{CE}}",
            "categorical cross-entropy on integer labels",
            output="softmax",
            targets="labels",
            min_outputs=2,
        ),
    ]
}


def activation(name: str) -> Activation:
    """Look up an activation by name, e.g. ``activation("tanh")``."""
    if isinstance(name, Activation):
        return name
    if name not in ACTIVATIONS:
        raise UnknownNameError("activation", name, sorted(ACTIVATIONS))
    return ACTIVATIONS[name]


def loss(name: str) -> Loss:
    """Look up a loss by name, e.g. ``loss("bce")``."""
    if isinstance(name, Loss):
        return name
    if name not in LOSSES:
        raise UnknownNameError("loss", name, sorted(LOSSES))
    return LOSSES[name]


def check_head(output: Activation, loss_: Loss, n_outputs: int) -> None:
    """Raise when a loss does not fit the output layer, e.g. CCE on one sigmoid unit."""
    if loss_.output is not None and output.name != loss_.output:
        why = (
            "it applies its own sigmoid/softmax to the logits"
            if loss_.output == "linear"
            else f"its log needs {loss_.output} probabilities"
        )
        raise IncompatibleError(
            f"loss {loss_.name!r} needs a {loss_.output} output ({why}), got {output.name!r}"
        )
    if n_outputs < loss_.min_outputs:
        raise IncompatibleError(
            f"loss {loss_.name!r} needs at least {loss_.min_outputs} outputs, got {n_outputs}"
        )
    if output.name == "softmax" and n_outputs < 2:
        raise IncompatibleError(f"softmax needs at least 2 outputs, got {n_outputs}")
