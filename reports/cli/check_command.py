"""``backprop check``: the kernel against JAX autodiff and finite differences (exit 1 on a
mismatch); ``--kernel FILE`` checks a saved or hand-edited kernel instead of a fresh one.
A tensor network's table has a third reference, the closed form (the derived rules evaluated)."""

from __future__ import annotations

from pathlib import Path

from derive import BackpropInputError

from .model_file import TensorNetworkFile, frame_in
from .options import add_model_options, check_seed, model_of

HELP = "check the kernel against JAX autodiff and finite differences"


def add_arguments(p) -> None:
    add_model_options(p)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--batch", type=int, default=8, help="examples in the test batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--kernel",
        metavar="FILE",
        help="check this kernel module (one 'backprop codegen -o' wrote, perhaps edited since) "
        "instead of a freshly generated one",
    )


def run(args) -> int:
    from numeric import verify

    if args.batch < 1:
        raise BackpropInputError(f"--batch must be a positive integer, got {args.batch}")
    check_seed(args.seed)
    try:
        model = model_of(args, for_kernels=True)
    except TensorNetworkFile as found:  # images or sequences: verify checks them too
        model = found.model
    kernel = _kernel_file(args.kernel, model) if args.kernel else None
    try:
        result = verify(model, args.dtype, args.batch, args.seed, kernel=kernel)
    except (Exception, SystemExit) as err:  # a kernel's sys.exit(0) is no pass
        frame = frame_in(err, kernel.path) if kernel is not None else None
        if frame is None:  # not the user's kernel: a bug, shown with its traceback
            raise
        raise BackpropInputError(
            f"{kernel.path}, line {frame.lineno}, in {frame.name}: "
            f"{type(err).__name__}: {err}".splitlines()[0]
        ) from err
    print(result.report())
    return 0 if result.ok else 1


def _kernel_file(path: str, model):
    """The kernel module in ``path``, checked to be one for ``model`` (its PARAMS)."""
    from numeric import Kernel

    if Path(path).is_dir():
        raise BackpropInputError(f"--kernel {path!r} is a directory; give the kernel's .py file")
    try:
        kernel = Kernel.from_file(path)
    except SyntaxError as err:
        raise BackpropInputError(f"{path}, line {err.lineno}: SyntaxError: {err.msg}") from err
    except (BackpropInputError, OSError):
        raise
    except (Exception, SystemExit) as err:  # the file's own code failed (or exited) on import
        frame = frame_in(err, Path(path))
        where = f", line {frame.lineno}" if frame is not None else ""
        message = f"{path}{where}: {type(err).__name__}: {err}".splitlines()[0]
        if isinstance(err, SystemExit):
            message = f"{path}{where}: it calls sys.exit({err.code!r}) when imported"
        raise BackpropInputError(f"cannot import the kernel: {message}") from err
    return kernel  # verify() says so if its PARAMS are not the model's
