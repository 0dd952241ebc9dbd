"""derive: symbolic computation graphs and the reverse-mode chain rule, in SymPy."""

from . import layers
from .builders import chain, logistic_regression, mlp
from .custom import register_activation, register_loss, scoped_registry, unregister
from .errors import BackpropInputError, IncompatibleError, SpecError, UnknownNameError
from .evaluate import evaluate
from .expressions import from_expr, parse_expression
from .matrix_expressions import from_matrix_expr
from .model import Derivation, Model
from .network import network
from .registry import ACTIVATIONS, LOSSES
from .spec import build

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "BackpropInputError",
    "Derivation",
    "IncompatibleError",
    "Model",
    "SpecError",
    "UnknownNameError",
    "build",
    "chain",
    "evaluate",
    "layers",
    "from_expr",
    "from_matrix_expr",
    "logistic_regression",
    "mlp",
    "network",
    "parse_expression",
    "register_activation",
    "register_loss",
    "scoped_registry",
    "unregister",
]
