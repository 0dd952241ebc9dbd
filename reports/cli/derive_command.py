"""``backprop derive``: the derivation as plain text."""

from __future__ import annotations

from .options import add_model_options, model_of, write

HELP = "print the derivation: forward pass, every backward step"


def add_arguments(p) -> None:
    add_model_options(p)
    p.add_argument("-o", "--output-file", dest="out", help="file to write (default: stdout)")


def run(args) -> int:
    from .plain import render

    write(render(model_of(args).derive()) + "\n", args.out)
    return 0
