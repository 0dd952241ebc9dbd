"""The ``backprop`` command: derive, codegen, check, report.

Each subcommand is a module (``<name>_command.py``) with its ``HELP``, ``add_arguments(parser)``
and ``run(args) -> exit code``; this module parses the command line, dispatches, and turns
errors into one line.

Exit codes: 0 ok; 1 a verification mismatch (or a PDF that failed to compile); 2 bad input,
out of memory included (one line on stderr, no traceback); 141 the reader of the output left
early (``| head``), as a shell reports for SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import sys

from derive import BackpropInputError
from reports.latex.pdflatex import LatexError

from . import check_command, codegen_command, derive_command, report_command

OK, MISMATCH, BAD_INPUT = 0, 1, 2
SIGPIPE_EXIT = 141  # what a shell reports for a process its pipe's reader closed on

COMMANDS = {
    "derive": derive_command,
    "codegen": codegen_command,
    "check": check_command,
    "report": report_command,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2."""

    def error(self, message: str):
        raise BackpropInputError(f"{message} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backprop",
        description="Derive backpropagation symbolically, "
        "generate NumPy kernels, and check them against JAX and finite differences.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input prints one line and returns 2."""
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command].run(args)
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
