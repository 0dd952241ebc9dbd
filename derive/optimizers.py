"""Update rules: how a parameter learns from a batch, each defined once as SymPy assignments.

A rule is a few assignments run in order at every step ``t = 1, 2, ...``: its state first
(momentum's velocity, Adam's two moments), then the parameter ``theta``. The NumPy update
code (``numeric.training``) and the report's equations are both printed from these
assignments; nothing else says what a rule does. Like optax, the rules share their pieces:
a step down the slope (``_descend``), a running sum (``_trace``), a running mean (``_average``).

Each rule reads one *signal* from the batch: the gradient ``g = dJ/dtheta`` for SGD, momentum
and Adam, Rosenblatt's error term ``(y - yhat) x`` for the perceptron.

>>> [str(lhs) + " <- " + str(rhs) for lhs, rhs in Momentum().assignments]
['v <- beta*v + g', 'theta <- -eta*v + theta']
>>> Adam().values
{'lr': 0.001, 'beta1': 0.9, 'beta2': 0.999, 'eps': 1e-07}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import sympy as sp
from sympy.tensor.array.expressions import convert_array_to_matrix, convert_indexed_to_array

from .errors import BackpropInputError, UnknownNameError

theta = sp.Symbol("theta", real=True)  # the parameter being learned (any entry of any array)
g = sp.Symbol("g", real=True)  # its gradient on the batch, dJ/dtheta
m = sp.Symbol("m", real=True)  # Adam's first moment (running mean of g)
v = sp.Symbol("v", real=True)  # momentum's velocity; Adam's second moment (of g**2)
t = sp.Symbol("t", integer=True, positive=True)  # the step number, from 1
eta = sp.Symbol("eta", positive=True)  # learning rate
beta, beta1, beta2 = sp.symbols("beta beta1 beta2", positive=True)
epsilon = sp.Symbol("epsilon", positive=True)
x, y, yhat = sp.symbols("x y yhat", real=True)  # the perceptron's input, target and output
e = sp.Symbol("e", real=True)  # the perceptron's signal, (y - yhat) x over the batch
m_hat, v_hat = sp.symbols("mhat vhat", real=True)  # Adam's bias-corrected moments
J = sp.Symbol("J", real=True)  # the batch's mean cost

# a batch, one example a row: m examples of n inputs and k outputs; `ones` is the input of
# a bias (always 1)
_m, _n, _k = sp.symbols("m n k", integer=True, positive=True)
X = sp.MatrixSymbol("X", _m, _n)
Y = sp.MatrixSymbol("Y", _m, _k)
Yhat = sp.MatrixSymbol("Yhat", _m, _k)
ones = sp.MatrixSymbol("ones", _m, 1)

#: how each symbol is written in LaTeX and in the printed NumPy code
LATEX = {theta: r"\theta", g: "g", m: "m", v: "v", t: "t", eta: r"\eta", beta: r"\beta",
         beta1: r"\beta_1", beta2: r"\beta_2", epsilon: r"\epsilon", x: "x", y: "y",
         yhat: r"\hat{y}", e: "e", J: "J", m_hat: r"\hat{m}", v_hat: r"\hat{v}",
         X: "X", Y: "Y", Yhat: r"\hat{Y}", ones: r"\mathbf{1}"}  # fmt: skip
PYTHON = {theta: "param", g: "grad", m: "m", v: "v", t: "t", eta: "lr", beta: "beta",
          beta1: "beta1", beta2: "beta2", epsilon: "eps", e: "delta"}  # fmt: skip

#: a rule's field (its constructor argument) -> the symbol it gives a value to
HYPERPARAMETERS = {"lr": eta, "beta": beta, "beta1": beta1, "beta2": beta2, "eps": epsilon}


def _descend(step: sp.Expr) -> sp.Expr:
    """theta moved against ``step`` by the learning rate."""
    return theta - eta * step


def _trace(state: sp.Symbol, decay: sp.Symbol) -> sp.Expr:
    """A decaying running sum of the gradient (heavy-ball momentum)."""
    return decay * state + g


def _average(state: sp.Symbol, decay: sp.Symbol, value: sp.Expr) -> sp.Expr:
    """An exponential running mean of ``value`` (Adam's moments)."""
    return decay * state + (1 - decay) * value


@dataclass(frozen=True)
class UpdateRule:
    """What every rule has: its hyperparameters (the dataclass fields), the symbols they
    stand for, and its assignments. Subclasses define ``written`` and ``title``."""

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    @property
    def values(self) -> dict[str, float]:
        """Hyperparameters by name, e.g. ``{'lr': 0.01}``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def written(self) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
        """The rule as a textbook writes it, in order: assignments to the state and to
        ``theta``, and perhaps shorthands (a left side in :attr:`shorthands`, such as Adam's
        bias-corrected ``mhat``) that later lines use."""
        raise NotImplementedError

    @property
    def shorthands(self) -> tuple[sp.Symbol, ...]:
        return ()

    @property
    def assignments(self) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
        """The assignments run at each step, shorthands written out."""
        defined, steps = {}, []
        for lhs, rhs in self.written:
            rhs = rhs.xreplace(defined)
            if lhs in self.shorthands:
                defined[lhs] = rhs
            else:
                steps.append((lhs, rhs))
        return tuple(steps)

    @property
    def state(self) -> tuple[sp.Symbol, ...]:
        """The arrays a rule keeps between steps (zero at the start), in assignment order."""
        return tuple(lhs for lhs, _ in self.assignments if lhs != theta)

    @property
    def signal(self) -> sp.Symbol:
        """The symbol the rule reads from each batch."""
        return g

    @property
    def signal_definition(self) -> sp.Expr:
        """What the signal is: dJ/dtheta, or the perceptron's error term."""
        return sp.Derivative(J, theta)

    @property
    def uses_gradient(self) -> bool:
        return self.signal == g

    def substitutions(self) -> dict[sp.Symbol, float]:
        """Symbol -> value, for evaluating the assignments with this rule's numbers."""
        return {HYPERPARAMETERS[name]: value for name, value in self.values.items()}

    def __post_init__(self):
        for name, value in self.values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BackpropInputError(f"{self.name} {name} must be a number, got {value!r}")
            if name.startswith("beta"):  # a decay rate: 0 keeps no memory, 1 never forgets
                if not 0 <= value < 1:
                    raise BackpropInputError(
                        f"{self.name} {name} must be in [0, 1) (a decay rate), got {value!r}"
                    )
            elif not math.isfinite(value) or value <= 0:
                raise BackpropInputError(
                    f"{self.name} {name} must be a positive number, got {value!r}"
                )


@dataclass(frozen=True)
class SGD(UpdateRule):
    """Gradient descent on each batch: ``theta <- theta - eta g``. Keras's default learning
    rate (0.01); torch has none."""

    lr: float = 0.01
    title = "Stochastic gradient descent"

    @property
    def written(self):
        return ((theta, _descend(g)),)


@dataclass(frozen=True)
class Momentum(UpdateRule):
    """Heavy-ball momentum as torch and optax write it: ``v <- beta v + g``, then
    ``theta <- theta - eta v``. Keras keeps ``-eta`` inside its velocity (``v <- beta v - eta
    g; theta <- theta + v``): the same trajectory while the learning rate is constant."""

    lr: float = 0.01
    beta: float = 0.9
    title = "Gradient descent with momentum"

    @property
    def written(self):
        return ((v, _trace(v, beta)), (theta, _descend(v)))


@dataclass(frozen=True)
class Adam(UpdateRule):
    """Adam (Kingma and Ba, Algorithm 1) with Keras's defaults: ``lr=0.001, beta1=0.9,
    beta2=0.999, eps=1e-7``. torch's ``Adam`` and optax's ``adam`` are the same rule with
    ``eps=1e-8`` by default. Keras adds ``eps`` to ``sqrt(v)`` before the bias correction
    (the paper's "epsilon hat" form), i.e. an ``eps / sqrt(1 - beta2**t)`` here: the
    trajectories differ only where ``sqrt(v)`` is near ``eps``."""

    lr: float = 0.001
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-7
    title = "Adam"

    @property
    def written(self):
        return (
            (m, _average(m, beta1, g)),
            (v, _average(v, beta2, g**2)),
            (m_hat, m / (1 - beta1**t)),  # bias corrections: the moments start at zero
            (v_hat, v / (1 - beta2**t)),
            (theta, _descend(m_hat / (sp.sqrt(v_hat) + epsilon))),
        )

    @property
    def shorthands(self):
        return (m_hat, v_hat)


@dataclass(frozen=True)
class Perceptron(UpdateRule):
    """Rosenblatt's rule, ``w <- w + eta (y - yhat) x`` (the bias is the weight of an input
    that is always 1), summed over a batch; one example per batch is the original online
    rule. It uses no gradient: the step output's derivative is 0 almost everywhere."""

    lr: float = 1.0
    title = "Rosenblatt's perceptron rule"

    @property
    def written(self):
        return ((theta, theta + eta * e),)

    @property
    def signal(self):
        return e

    @property
    def signal_definition(self):
        return (y - yhat) * x

    def batch_signals(self) -> dict[str, sp.MatrixExpr]:
        """The signal summed over a batch's rows, for the weights and for the bias, as matrix
        expressions SymPy finds for the sums of :attr:`signal_definition`.

        >>> Perceptron().batch_signals()
        {'weight': X.T*(Y - Yhat), 'bias': ones.T*(Y - Yhat)}
        """
        definition = self.signal_definition
        return {
            "weight": _summed_over_rows(definition, X),
            "bias": _summed_over_rows(definition, ones),
        }


def _summed_over_rows(definition: sp.Expr, inputs: sp.MatrixSymbol) -> sp.MatrixExpr:
    """Entry (i, j) is ``sum_r definition`` at example r, input i, output j."""
    r, i, j = sp.symbols("r i j", integer=True)
    example = {x: inputs[r, i], y: Y[r, j], yhat: Yhat[r, j]}
    total = sp.Sum(definition.xreplace(example), (r, 0, _m - 1))
    return convert_array_to_matrix(convert_indexed_to_array(total, first_indices=[i, j]))


OPTIMIZERS: dict[str, type[UpdateRule]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "adam": Adam,
    "perceptron": Perceptron,
}


def optimizer(name: str, lr: float | None = None) -> UpdateRule:
    """A rule by its CLI name, with its default hyperparameters and perhaps another ``lr``.

    >>> optimizer("adam", lr=0.01)
    Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-07)
    """
    if name not in OPTIMIZERS:
        raise UnknownNameError("optimizer", name, list(OPTIMIZERS))
    rule = OPTIMIZERS[name]
    return rule() if lr is None else rule(lr=lr)
