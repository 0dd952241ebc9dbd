"""``backprop train``: the generated kernel learning a data set with a derived update rule.

Writes to a directory (``-o DIR``, default ``training``), all or nothing: the loss curve
(``loss.pdf``/``.png``), the decision boundary with the points for two inputs
(``boundary.pdf``/``.png``), the trained parameters (``params.npz``), the loss per step
(``history.csv``) and the one-line summary (``summary.txt``, also printed).

A model file may hold a network on images or sequences: it trains on ``bars`` (images) or a
CSV whose rows hold one example's inputs flattened in C order, then its label.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from derive.errors import BackpropInputError, UnknownNameError
from derive.optimizers import OPTIMIZERS, optimizer

from .model_file import TensorNetworkFile, is_model_file
from .options import add_model_options, check_seed, model_of

HELP = "train the kernel on a data set (xor, planar, circles, blobs, bars or a CSV file)"
MARKER = ".backprop-training"
DATA_SETS = ("xor", "planar", "circles", "blobs", "bars")


def add_training_options(p, seed: bool = True) -> None:
    """The options of a run; the report takes them too (it has its own ``--seed``)."""
    p.add_argument(
        "--data",
        help=f"{', '.join(DATA_SETS)} (generated; bars: images of a network's input shape), "
        "or FILE.csv: inputs (an image or sequence flattened in C order), then a class label "
        "0, 1, ... per row (default: planar, the flower of Ng's course; bars for images)",
    )
    p.add_argument("--optimizer", default="adam", help=f"{', '.join(OPTIMIZERS)} (default: adam)")
    p.add_argument("--lr", type=float, help="learning rate (default: the rule's, Keras's)")
    p.add_argument("--epochs", type=int, default=200, help="passes over the data (200)")
    p.add_argument("--batch-size", type=int, default=32, help="examples per step (32)")
    if seed:
        p.add_argument("--seed", type=int, default=0, help="data, start and batch order (0)")


def add_arguments(p) -> None:
    add_model_options(p)
    add_training_options(p)
    p.add_argument("-o", "--output-dir", dest="out", default="training", help="directory")


def training_run(args, progress: bool | None = None, say=None):
    """The run the options describe (also used by ``backprop report --train``); ``say``
    announces it once the options and the data are checked."""
    from reports.training import run_training

    check_seed(args.seed)
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value < 1:
            raise BackpropInputError(f"{flag} must be a positive integer, got {value}")
    rule = optimizer(args.optimizer, args.lr)
    if not rule.uses_gradient and not is_model_file(args.spec):
        _perceptron_defaults(args)
    model = _model(args)
    data = load_data(args.data, args.seed, model)
    return run_training(model, data, rule, args.epochs, args.batch_size, args.seed, progress,
                        say)  # fmt: skip


def _perceptron_defaults(args) -> None:
    """A step unit and its error rate, unless given. ``logreg:N`` is sigmoid + bce by its
    definition and takes neither option, so the perceptron on it is refused, naming the
    spec that is the perceptron."""
    kind, _, inputs = args.spec.strip().partition(":")
    if kind.strip().lower() == "logreg":
        unit = f"mlp:{inputs.strip()}-1" if inputs.strip().isdigit() else "mlp:N-1"
        raise BackpropInputError(
            f"the perceptron rule trains a step output, and {args.spec} is sigmoid + bce; "
            f"the perceptron on its inputs is {unit}"
        )
    args.output = args.output or "step"
    args.loss = args.loss or "mae"


def _model(args):
    try:
        return model_of(args, for_kernels=True)
    except TensorNetworkFile as found:  # images or sequences: the network is trained itself
        return found.model


def load_data(name: str | None, seed: int, model):
    """The data set ``--data`` names, made for ``model`` (a CSV's rows are shaped to its
    input later, in ``run_training``); by default planar, or bars for a network on images."""
    from numeric.training import load_csv
    from numeric.training.datasets import data_for

    if name is None:
        name = _default_data(model)
    if name in DATA_SETS:
        return data_for(model, name, seed)
    if name.lower().endswith(".csv") or os.path.sep in name:
        return load_csv(name)
    raise UnknownNameError("data set", name, [*DATA_SETS, "FILE.csv"])


def _default_data(model) -> str:
    """planar, or bars for images; a model no generated set fits needs a CSV, and the
    message says so rather than naming a set the user did not give."""
    from numeric.training.datasets import fitting, input_description, input_shape, model_name

    fits = fitting(model)
    if fits:
        return "planar" if "planar" in fits else fits[0]
    shape = input_shape(model)
    flattened = " flattened in C order" if len(shape) > 1 else ""
    raise BackpropInputError(
        f"no generated data set fits {model_name(model)} ({input_description(model)}); give "
        f"--data FILE.csv: a row per example, its {int(np.prod(shape))} input values"
        f"{flattened}, then its class label"
    )


def run(args) -> int:
    from reports.document import _check_output_dir, write_folder

    out = Path(args.out)
    _check_output_dir(out, MARKER, holds="training run")
    result = training_run(args)
    write_folder(out, lambda build: _write(result, build), MARKER, "backprop train")
    print(f"{result.summary()}; wrote {out}")
    return 0


def _write(result, build: Path) -> None:
    result.draw(build)
    np.savez(build / "params.npz", **result.run.params)
    history = result.run.history
    per_epoch = history.steps_per_epoch
    lines = ["step,epoch,loss"] + [
        f"{step + 1},{step // per_epoch + 1},{loss!r}"
        for step, loss in enumerate(history.step_loss.tolist())
    ]
    (build / "history.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (build / "summary.txt").write_text(result.summary() + "\n", encoding="utf-8")
