"""``backprop codegen``: a NumPy (or JAX) kernel module."""

from __future__ import annotations

from .model_file import TensorNetworkFile
from .options import add_model_options, model_of, write

HELP = "write a NumPy (or JAX) kernel module"


def add_arguments(p) -> None:
    add_model_options(p)
    p.add_argument("--target", choices=["numpy", "jax"], default="numpy")
    p.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="dtype for integer inputs (uint8 pixels); float inputs keep theirs",
    )
    p.add_argument("-o", "--output-file", dest="out", help="file to write (default: stdout)")


def run(args) -> int:
    from numeric import codegen

    try:
        derivation = model_of(args, for_kernels=True).derive()
    except TensorNetworkFile as found:  # images or sequences: codegen takes the network itself
        derivation = found.model
    kernel = codegen(derivation, target=args.target, dtype=args.dtype)
    write(kernel.source, args.out)
    return 0
