"""The ``backprop`` command: derive, codegen, check, report.

Exit codes: 0 ok; 1 a verification mismatch (or a PDF that failed to compile); 2 bad input,
out of memory included (one line on stderr, no traceback); 141 the reader of the output left
early (``| head``), as a shell reports for SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from derive import ACTIVATIONS, LOSSES, BackpropInputError
from derive.spec import FORMS, build

from .tex import LatexError

OK, MISMATCH, BAD_INPUT = 0, 1, 2
SIGPIPE_EXIT = 141  # what a shell reports for a process its pipe's reader closed on


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2."""

    def error(self, message: str):
        raise BackpropInputError(f"{message} (see '{self.prog} --help')")


def _model_options(parser: argparse.ArgumentParser, spec_required: bool = True) -> None:
    parser.add_argument("spec", nargs=None if spec_required else "?", help=f"model: {FORMS}")
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


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backprop",
        description="Derive backpropagation symbolically, "
        "generate NumPy kernels, and check them against JAX and finite differences.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("derive", help="print the derivation: forward pass, every backward step")
    _model_options(p)
    p.add_argument("-o", "--output-file", dest="out", help="file to write (default: stdout)")

    p = sub.add_parser("codegen", help="write a NumPy (or JAX) kernel module")
    _model_options(p)
    p.add_argument("--target", choices=["numpy", "jax"], default="numpy")
    p.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="dtype for integer inputs (uint8 pixels); float inputs keep theirs",
    )
    p.add_argument("-o", "--output-file", dest="out", help="file to write (default: stdout)")

    p = sub.add_parser("check", help="check the kernel against JAX autodiff and finite differences")
    _model_options(p)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--batch", type=int, default=8, help="examples in the test batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--kernel",
        metavar="FILE",
        help="check this kernel module (one 'backprop codegen -o' wrote, perhaps edited since) "
        "instead of a freshly generated one",
    )

    p = sub.add_parser("report", help="write the LaTeX derivation report (and its PDF)")
    _model_options(p, spec_required=False)
    p.add_argument(
        "--notation",
        choices=["ng", "3b1b"],
        default=None,
        help="symbols of Andrew Ng's course or of 3Blue1Brown (default: by model)",
    )
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output-dir", dest="out", default="report", help="directory to write")
    return parser


def _model(args, for_kernels: bool = False):
    return build(args.spec, args.activation, args.output, args.loss, args.level, for_kernels)


def cmd_derive(args) -> int:
    from .plain import render

    _write(render(_model(args).derive()) + "\n", args.out)
    return OK


def cmd_codegen(args) -> int:
    from numeric import codegen

    kernel = codegen(_model(args, for_kernels=True).derive(), target=args.target, dtype=args.dtype)
    _write(kernel.source, args.out)
    return OK


def cmd_check(args) -> int:
    from numeric import verify

    if args.batch < 1:
        raise BackpropInputError(f"--batch must be a positive integer, got {args.batch}")
    _check_seed(args.seed)
    model = _model(args, for_kernels=True)
    kernel = _kernel_file(args.kernel, model) if args.kernel else None
    try:
        result = verify(model, args.dtype, args.batch, args.seed, kernel=kernel)
    except Exception as err:
        frame = _frame_in(err, kernel.path) if kernel is not None else None
        if frame is None:  # not the user's kernel: a bug, shown with its traceback
            raise
        raise BackpropInputError(
            f"{kernel.path}, line {frame.lineno}, in {frame.name}: "
            f"{type(err).__name__}: {err}".splitlines()[0]
        ) from err
    print(result.report())
    return OK if result.ok else MISMATCH


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
    except Exception as err:  # the file's own code failed while it was imported
        frame = _frame_in(err, Path(path))
        where = f", line {frame.lineno}" if frame is not None else ""
        message = f"{path}{where}: {type(err).__name__}: {err}".splitlines()[0]
        raise BackpropInputError(f"cannot import the kernel: {message}") from err
    return kernel  # verify() says so if its PARAMS are not the model's


def _frame_in(err: BaseException, path: Path):
    """The innermost frame of ``err``'s traceback that runs the file ``path``, or None."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == str(path)]
    return frames[-1] if frames else None


def cmd_report(args) -> int:
    from .document import DEFAULT_OPTIONS, DEFAULT_SPEC, write_report

    _check_seed(args.seed)
    if args.spec is None:  # the built-in default: Ng's two-layer planar classifier
        args.spec = DEFAULT_SPEC
        for option, value in DEFAULT_OPTIONS.items():
            setattr(args, option, getattr(args, option) or value)
    result = write_report(
        _model(args),
        Path(args.out),
        notation=args.notation,
        seed=args.seed,
        dtype=args.dtype,
        progress=lambda msg: print(msg, file=sys.stderr),
    )
    print(result.summary())
    return OK


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise BackpropInputError(f"--seed must be a non-negative integer, got {seed}")


def _write(text: str, path: str | None) -> None:
    """``text`` into the file ``-o`` names, or to stdout a line at a time: one large write
    to a pipe whose reader left (``| head``) loses its error in Python's buffer, and the
    command would end with 0 and cut output."""
    if path:
        _writable_file(path).write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.writelines(text.splitlines(keepends=True))
        sys.stdout.flush()


def _writable_file(path: str) -> Path:
    target = Path(path)
    if target.is_dir():
        raise BackpropInputError(f"-o {path!r} is a directory; give a file name")
    if not target.parent.exists():
        raise BackpropInputError(
            f"cannot write {path!r}: directory {str(target.parent)!r} does not exist"
        )
    return target


COMMANDS = {"derive": cmd_derive, "codegen": cmd_codegen, "check": cmd_check, "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input prints one line and returns 2."""
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except BackpropInputError as err:
        print(f"backprop: error: {err}", file=sys.stderr)
        return BAD_INPUT
    except LatexError as err:  # pdflatex failed: the earlier report is kept
        print(f"backprop: error: {err}".splitlines()[0], file=sys.stderr)
        return MISMATCH
    except MemoryError as err:  # a batch or a model too large for this machine
        print(f"backprop: error: out of memory: {err}".rstrip(": "), file=sys.stderr)
        return BAD_INPUT
    except BrokenPipeError:  # the reader left early (backprop derive ... | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT
    except OSError as err:  # unwritable output and the like: the user's to fix
        print(
            f"backprop: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
