"""The ``backprop`` process: a long command says it is still working (on a terminal), and
``python -m backprop`` is the same program."""

import io
import subprocess
import sys
import time
from pathlib import Path

from reports.cli import lifecycle

ROOT = Path(__file__).resolve().parent.parent


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_long_command_says_it_is_still_working(monkeypatch):
    monkeypatch.setattr(lifecycle, "FIRST_NOTICE_S", 0.05)
    monkeypatch.setattr(lifecycle, "NOTICE_EVERY_S", 0.05)
    terminal = _Terminal()
    with lifecycle.heartbeat("checking chain:100", terminal):
        time.sleep(0.3)
    lines = terminal.getvalue().splitlines()
    assert lines and all(line.startswith("backprop: still checking chain:100 (") for line in lines)


def test_a_pipe_gets_no_heartbeat(monkeypatch):
    monkeypatch.setattr(lifecycle, "FIRST_NOTICE_S", 0.01)
    pipe = io.StringIO()
    with lifecycle.heartbeat("checking", pipe):
        time.sleep(0.1)
    assert pipe.getvalue() == ""


def test_python_dash_m_backprop_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "backprop", "derive", "mlp:4-0-2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == "backprop: error: layer size #1 must be a positive integer, got 0\n"
