"""README.md's examples run and show what they really print.

* every ```python block runs as-is, in a fresh namespace and an empty directory; when a
  ```text block follows it directly, that is its output;
* a ```python block whose first line is ``# test_<name>.py`` is a test file: all of them
  run in one throwaway pytest session (``pytester``) and must pass;
* in ```console blocks, ``$ backprop derive|codegen|check ...`` runs through
  ``reports.cli.main.main`` (``backprop report`` and anything else is left out: too slow for the
  suite), ``$ cat FILE`` reads a file a command wrote, and ``$ echo $?`` states the exit code
  of the command before it (0 when not stated);
* the quick start is exactly ``make report`` and ``make test``.

An output excerpt must appear in the real output line by line, in order (whitespace
normalized). ``...`` marks a cut, and lines with decimal numbers are not compared: rounding
and timings differ between machines.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from reports.cli.main import main

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
TEST_FILE = re.compile(r"^# (test_\w+\.py)\s*$")
#: a measured number (a timing, an error): compared as a placeholder, the rest of its line exactly
DECIMAL = re.compile(r"\d+\.\d+(?:e[+-]?\d+)?|\d+e[+-]?\d+")
#: CLI commands cheap enough for the suite (a few seconds at most for small models)
RUN = ("derive", "codegen", "check")

INSTALLED = any(ep.value == "numeric.pytest_plugin" for ep in entry_points(group="pytest11"))
PLUGIN = () if INSTALLED else ("-p", "numeric.pytest_plugin")


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    line: int
    output: str | None = None  # the ```text block right after a ```python block

    @property
    def id(self) -> str:
        return f"README.md:{self.line}"


def blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    found = list(FENCE.finditer(text))
    out = []
    for k, match in enumerate(found):
        line = text.count("\n", 0, match.start()) + 1
        output = None
        if k + 1 < len(found) and match["lang"] == "python":
            after = found[k + 1]
            if after["lang"] == "text" and not text[match.end() : after.start()].strip():
                output = after["body"]
        out.append(Block(match["lang"], match["body"], line, output))
    return out


BLOCKS = blocks()
PYTHON = [b for b in BLOCKS if b.lang == "python" and not TEST_FILE.match(b.body.split("\n")[0])]
TEST_FILES = [b for b in BLOCKS if b.lang == "python" and TEST_FILE.match(b.body.split("\n")[0])]
CONSOLE = [b for b in BLOCKS if b.lang == "console"]


def _norm(line: str) -> str:
    return DECIMAL.sub("#", " ".join(line.split()))


def assert_shows(excerpt: str, actual: str, where: str) -> None:
    """Every compared line of ``excerpt`` is a line of ``actual``, in the same order."""
    lines = [_norm(line) for line in actual.splitlines()]
    at = 0
    for shown in excerpt.splitlines():
        want = _norm(shown)
        if not want or want == "...":
            continue
        try:
            at = lines.index(want, at) + 1
        except ValueError:
            pytest.fail(
                f"{where}: README.md shows {shown.strip()!r}, which is not in the real output "
                f"(or not in this order); update the excerpt. Real output:\n{actual}",
                pytrace=False,
            )


# ---------------------------------------------------------------------------- quick start


def test_quick_start_is_exactly_make_report_and_make_test():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (first,) = [m for m in FENCE.finditer(section)][:1]
    commands = [line.split("#")[0].strip() for line in first["body"].splitlines()]
    assert [c for c in commands if c] == ["make report", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^report:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_readme_has_examples_of_every_kind():
    assert PYTHON and TEST_FILES and CONSOLE
    assert all(b.output is not None for b in PYTHON if "print(" in b.body)


# ---------------------------------------------------------------------------- python


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.id)
def test_python_example_runs_and_prints_what_the_readme_shows(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTEST_CURRENT_TEST")  # the README shows a script's output
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block.body, block.id, "exec"), {"__name__": "readme_example"})
    if block.output is not None:
        assert_shows(block.output, printed.getvalue(), block.id)


def test_test_file_examples_pass_under_pytest(pytester):
    files = {TEST_FILE.match(b.body.split("\n")[0])[1]: b.body for b in TEST_FILES}
    assert len(files) == len(TEST_FILES), "two README test files share a name"
    for name, source in files.items():
        pytester.makepyfile(**{name.removesuffix(".py"): source})
    expected = sum(len(re.findall(r"^def test_", s, re.M)) for s in files.values())
    result = pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=expected)


# ---------------------------------------------------------------------------- console


def _commands(body: str) -> list[tuple[str, str]]:
    """``(command, output)`` pairs of a console transcript."""
    pairs: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:].strip(), []))
        elif pairs:
            pairs[-1][1].append(line)
    return [(command, "\n".join(output)) for command, output in pairs]


def _run_backprop(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("block", CONSOLE, ids=lambda b: b.id)
def test_cli_example_runs_with_the_exit_code_and_output_shown(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pending = None  # (command, exit code) of the last command run, until its code is checked
    for command, shown in _commands(block.body):
        argv = shlex.split(command)
        if argv == ["echo", "$?"]:
            assert pending is not None, f"{block.id}: 'echo $?' after a command not run"
            assert pending[1] == int(shown.strip()), f"{block.id}: exit code of {pending[0]}"
            pending = None
            continue
        if pending is not None:
            assert pending[1] == 0, f"{block.id}: {pending[0]} exited {pending[1]}"
            pending = None
        if argv[:1] == ["cat"]:
            assert_shows(shown, (tmp_path / argv[1]).read_text(), f"{block.id}: {command}")
        elif argv[:1] == ["backprop"] and argv[1] in RUN:
            code, output = _run_backprop(argv[1:])
            assert_shows(shown, output, f"{block.id}: {command}")
            pending = (command, code)
    if pending is not None:
        assert pending[1] == 0, f"{block.id}: {pending[0]} exited {pending[1]}"
