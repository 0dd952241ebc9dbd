"""derive: symbolic computation graphs and the reverse-mode chain rule, in SymPy."""

from .builders import chain, logistic_regression, mlp
from .errors import BackpropInputError, IncompatibleError, SpecError, UnknownNameError
from .model import Derivation, Model
from .registry import ACTIVATIONS, LOSSES

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "BackpropInputError",
    "Derivation",
    "IncompatibleError",
    "Model",
    "SpecError",
    "UnknownNameError",
    "chain",
    "logistic_regression",
    "mlp",
]
