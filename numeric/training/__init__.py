"""numeric.training: generated kernels in a mini-batch loop, moved by a derived update rule.

``train`` runs the loop (``loop``), after ``check_optimizer`` (which a caller may run
first, before announcing a run); ``Stepper`` applies a rule's update code, which
``update_code`` prints from the rule's SymPy assignments (``derive.optimizers``), as
``signal_code`` prints the perceptron's batch signal from its definition; ``History``
and the progress bar are in ``history``; ``datasets`` makes small data sets (2-D points,
``bars`` images; ``data_for`` at a model's input shape) and shapes inputs and targets for a
model (``inputs_for``, ``targets_for``); ``csv_data`` reads a user's own.
"""

from .csv_data import load_csv
from .datasets import DATASETS, Data, data_for, inputs_for, make, targets_for
from .history import History
from .loop import Training, check_optimizer, train
from .signal_code import signal_source
from .stepper import Stepper
from .update_code import update_source

__all__ = [
    "DATASETS",
    "Data",
    "History",
    "Stepper",
    "Training",
    "check_optimizer",
    "data_for",
    "inputs_for",
    "load_csv",
    "make",
    "signal_source",
    "targets_for",
    "train",
    "update_source",
]
