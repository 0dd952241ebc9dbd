"""The ``backprop`` command: derive, codegen, check, report, train.

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
import re
import sys

from derive import BackpropInputError
from derive.errors import did_you_mean
from reports.latex.pdflatex import LatexError

from . import check_command, codegen_command, derive_command, report_command, train_command
from .lifecycle import INTERRUPTED, TERMINATED, Terminated, handle_sigterm, heartbeat

OK, MISMATCH, BAD_INPUT = 0, 1, 2
SIGPIPE_EXIT = 141  # what a shell reports for a process its pipe's reader closed on

COMMANDS = {
    "derive": derive_command,
    "codegen": codegen_command,
    "check": check_command,
    "report": report_command,
    "train": train_command,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, exit 2, with a "did you mean" for a near
    miss (Python 3.11's argparse has none)."""

    known_options: set[str] = set()  # every option of every subcommand, for suggestions

    def error(self, message: str):
        raise BackpropInputError(f"{message}{self._suggestion(message)} (see '{self.prog} --help')")

    def _suggestion(self, message: str) -> str:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:
            return did_you_mean(choice[1], re.findall(r"'([^']*)'", choice[2]))
        unknown = re.match(r"unrecognized arguments: (.*)$", message)
        if unknown:
            for word in unknown[1].split():
                hint = did_you_mean(word.split("=")[0], self.known_options)
                if word.startswith("-") and hint:
                    return hint
        return ""


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backprop",
        description="Derive backpropagation symbolically, "
        "generate NumPy kernels, and check them against JAX and finite differences.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, command in COMMANDS.items():
        command_parser = sub.add_parser(name, help=command.HELP)
        command.add_arguments(command_parser)
        _Parser.known_options |= set(command_parser._option_string_actions)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input prints one line and returns 2.

    Run as the ``backprop`` program (``argv`` None), SIGTERM ends it like Ctrl-C, with its
    cleanup, and a command without progress lines of its own says it is still working."""
    program = argv is None
    try:
        if program:
            handle_sigterm()
        args = _parser().parse_args(argv)
        if not program or args.command in ("report", "train"):  # these print their progress
            return COMMANDS[args.command].run(args)
        spec = getattr(args, "spec", None) or ""
        with heartbeat(f"working on backprop {args.command} {spec}".strip()):
            return COMMANDS[args.command].run(args)
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback
        print("backprop: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Terminated:
        print("backprop: terminated", file=sys.stderr)
        return TERMINATED
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
