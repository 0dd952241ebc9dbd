"""``backprop report``: the LaTeX derivation report and its PDF (the built-in default network
when no spec is given)."""

from __future__ import annotations

import sys
from pathlib import Path

from .model_file import TensorNetworkFile, is_model_file
from .options import add_model_options, check_seed, model_of
from .train_command import add_training_options, training_run

HELP = "write the LaTeX derivation report (and its PDF)"


def add_arguments(p) -> None:
    add_model_options(p, spec_required=False)
    p.add_argument(
        "--notation",
        choices=["ng", "3b1b"],
        default=None,
        help="symbols of Andrew Ng's course or of 3Blue1Brown (default: by model)",
    )
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output-dir", dest="out", default="report", help="directory to write")
    p.add_argument(
        "--train",
        action="store_true",
        help="add a Learning section: train the network (options below) and show the "
        "update rule, the loss curve and, for two inputs, the decision boundary",
    )
    add_training_options(p.add_argument_group("training (with --train)"), seed=False)


def run(args) -> int:
    from reports.document import DEFAULT_OPTIONS, DEFAULT_SPEC, _check_output_dir, write_report

    check_seed(args.seed)
    if args.spec is None:  # the built-in default: Ng's two-layer planar classifier
        args.spec = DEFAULT_SPEC
        for option, value in DEFAULT_OPTIONS.items():
            setattr(args, option, getattr(args, option) or value)
    out = Path(args.out)
    network = _tensor_network(args)
    training = None
    if args.train:  # the output, the options and the data are checked before the run is
        # announced: a refused run prints its one error line only
        _check_output_dir(out)
        training = training_run(args, progress=False, say=_say)
    if network is not None:  # images or sequences: the tensor report
        return _tensor_report(network, out, training)
    result = write_report(
        model_of(args),  # after training_run, which gives the perceptron its step output
        out,
        notation=args.notation,
        seed=args.seed,
        dtype=args.dtype,
        progress=_say,
        training=training,
    )
    print(result.summary())
    return 0


def _tensor_network(args):
    """The model file's network on images or sequences; None for a dense model."""
    if not is_model_file(args.spec):
        return None
    try:
        model_of(args)
    except TensorNetworkFile as found:
        return found.model
    return None


def _tensor_report(model, folder: Path, training) -> int:
    from reports.latex.pdflatex import MISSING_ENGINE
    from reports.tensor_report import write_tensor_report

    written = write_tensor_report(model, folder, training)
    print(f"wrote {written}")
    if written.suffix == ".tex":  # no TeX engine: the .tex and its figures, as for the dense one
        print(MISSING_ENGINE)
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr)
