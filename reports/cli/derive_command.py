"""``backprop derive``: the derivation as plain text."""

from __future__ import annotations

from .model_file import TensorNetworkFile
from .options import add_model_options, model_of, write

HELP = "print the derivation: forward pass, every backward step"


def add_arguments(p) -> None:
    add_model_options(p)
    p.add_argument("-o", "--output-file", dest="out", help="file to write (default: stdout)")


def run(args) -> int:
    from .plain import render

    try:
        model = model_of(args)
    except TensorNetworkFile as found:  # images or sequences: each layer's index-level rules
        from .tensor_plain import render as render_tensor

        write(render_tensor(found.model) + "\n", args.out)
        return 0
    write(render(model.derive()) + "\n", args.out)
    return 0
