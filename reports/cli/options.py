"""What every subcommand shares: the model options, building the model, the output file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from derive import ACTIVATIONS, LOSSES, BackpropInputError
from derive.spec import FORMS, build

from .model_file import is_model_file, load_model


def add_model_options(parser: argparse.ArgumentParser, spec_required: bool = True) -> None:
    parser.add_argument(
        "spec",
        nargs=None if spec_required else "?",
        help=f"model: {FORMS}, or a file net.py that defines model",
    )
    parser.add_argument("--activation", help=f"hidden activation: {', '.join(ACTIVATIONS)}")
    parser.add_argument(
        "--output",
        help="output activation (default: mlp sigmoid for 1 output, softmax for more; "
        "chain its hidden activation)",
    )
    parser.add_argument("--loss", help=f"loss: {', '.join(LOSSES)}")
    parser.add_argument(
        "--level",
        choices=["scalar", "matrix"],
        help="graph level (default: matrix for mlp, scalar otherwise; codegen and check "
        "build logreg at the matrix level)",
    )


def model_of(args, for_kernels: bool = False):
    if is_model_file(args.spec):  # net.py defines model; the options are its own business
        given = [f"--{k}" for k in ("activation", "output", "loss", "level") if getattr(args, k)]
        if given:
            raise BackpropInputError(f"{', '.join(given)} does not apply to a model file")
        return load_model(args.spec)
    return build(args.spec, args.activation, args.output, args.loss, args.level, for_kernels)


def check_seed(seed: int) -> None:
    if seed < 0:
        raise BackpropInputError(f"--seed must be a non-negative integer, got {seed}")


def write(text: str, path: str | None) -> None:
    """``text`` into the file ``-o`` names, or to stdout a line at a time: one large write
    to a pipe whose reader left (``| head``) loses its error in Python's buffer, and the
    command would end with 0 and cut output."""
    if path is not None:
        _writable_file(path).write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.writelines(text.splitlines(keepends=True))
        sys.stdout.flush()


def _writable_file(path: str) -> Path:
    if not path.strip():
        raise BackpropInputError(f"-o {path!r} is empty; give a file name, or leave -o out")
    target = Path(path)
    if target.is_dir():
        raise BackpropInputError(f"-o {path!r} is a directory; give a file name")
    if not target.parent.exists():
        raise BackpropInputError(
            f"cannot write {path!r}: directory {str(target.parent)!r} does not exist"
        )
    return target
