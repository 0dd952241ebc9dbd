"""``backprop report``: the LaTeX derivation report and its PDF (the built-in default network
when no spec is given)."""

from __future__ import annotations

import sys
from pathlib import Path

from .model_file import TensorNetworkFile
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
        "update rule, the loss curve and the decision boundary",
    )
    add_training_options(p.add_argument_group("training (with --train)"), seed=False)


def run(args) -> int:
    from reports.document import DEFAULT_OPTIONS, DEFAULT_SPEC, write_report

    check_seed(args.seed)
    if args.spec is None:  # the built-in default: Ng's two-layer planar classifier
        args.spec = DEFAULT_SPEC
        for option, value in DEFAULT_OPTIONS.items():
            setattr(args, option, getattr(args, option) or value)
    training = None
    if args.train:
        print("training the network", file=sys.stderr)
        training = training_run(args, progress=False)
    try:
        model = model_of(args)
    except TensorNetworkFile as found:  # images or sequences: the tensor report
        from reports.tensor_report import write_tensor_report

        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"wrote {write_tensor_report(found.model, folder / 'report.pdf')}")
        return 0
    result = write_report(
        model,
        Path(args.out),
        notation=args.notation,
        seed=args.seed,
        dtype=args.dtype,
        progress=lambda msg: print(msg, file=sys.stderr),
        training=training,
    )
    print(result.summary())
    return 0
