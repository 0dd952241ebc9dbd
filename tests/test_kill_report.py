"""A ``backprop report`` run killed at any point (SIGKILL, SIGTERM, SIGINT) loses nothing and
leaves nothing behind: the earlier report is intact, SIGTERM and SIGINT end in one line with
their usual exit codes, no pdflatex outlives the run, and the next run removes what a SIGKILL
left (the half-built folder)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = ["J = a*b"]  # the smallest report: the run is mostly imports and pdflatex

needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")


def _start(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "backprop", "report", *SPEC, "-o", str(out)]
    return subprocess.Popen(
        command, cwd=out.parent, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _run_until(proc: subprocess.Popen, stage: str) -> list[str]:
    """Read progress lines until ``stage`` starts (the run is then inside it)."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(stage):
            return seen
    raise AssertionError(f"the run ended before {stage!r}: {''.join(seen)}")


def _pdflatex_under(folder: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if (proc / "comm").read_text().strip() == "pdflatex":
                if str(folder.resolve()) in os.readlink(proc / "cwd"):
                    pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".building-" in p.name or ".old-" in p.name)


@needs_pdflatex
@pytest.mark.parametrize(
    "kills",
    [
        [
            (signal.SIGTERM, "pdflatex pass 1", 143),
            (signal.SIGINT, "writing report.tex", 130),
            (signal.SIGKILL, "pdflatex pass 1", -9),
        ]
    ],
)
def test_a_killed_report_run_keeps_the_earlier_report_and_leaves_nothing(tmp_path, kills):
    out = tmp_path / "report"
    first = _start(out)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "report.pdf" in earlier
    for sig, stage, code in kills:
        proc = _start(out)
        _run_until(proc, stage)
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == code, (sig, stage)
        rest = proc.stderr.read()
        if sig != signal.SIGKILL:  # one line, no traceback, nothing left
            assert "Traceback" not in rest and rest.strip().count("\n") == 0, rest
            assert rest.strip() in ("backprop: interrupted", "backprop: terminated"), rest
            assert _leftovers(tmp_path) == []
        assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier, (sig, stage)
        for _ in range(50):  # pdflatex dies with its parent, even by SIGKILL
            if not _pdflatex_under(tmp_path):
                break
            time.sleep(0.1)
        assert _pdflatex_under(tmp_path) == [], (sig, stage)
    assert _leftovers(tmp_path)  # the SIGKILL left its half-built folder ...
    after = _start(out)
    assert after.wait(timeout=300) == 0, after.stderr.read()
    assert _leftovers(tmp_path) == []  # ... and the next run removed it


def test_the_next_run_removes_a_dead_runs_folders_and_brings_back_a_report(tmp_path):
    from reports.document import write_report

    dead = 2**22 + 12345  # above the default pid_max: no process has it
    out = tmp_path / "report"
    old = tmp_path / f".report.old-{dead}-abc"
    old.mkdir()
    (old / "report.tex").write_text("the earlier report")
    (old / ".backprop-report").write_text("")
    (tmp_path / f".report.building-{dead}-xyz").mkdir()
    alive = tmp_path / f".report.building-{os.getpid()}-live"  # a run still going: kept
    alive.mkdir()
    write_report(derive_model(), out, compile_pdf=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "report"]


def test_a_failed_pdflatex_names_its_log_where_it_now_is(tmp_path, monkeypatch):
    from reports import document
    from reports.latex import pdflatex

    def failing(tex_path, engine=None, progress=None):
        log = tex_path.with_suffix(".log")
        log.write_text("! Undefined control sequence.\n")
        raise pdflatex.LatexError(f"pdflatex failed: ! Undefined control sequence. (log: {log})")

    monkeypatch.setattr(pdflatex, "compile_pdf", failing)
    monkeypatch.setattr(pdflatex, "find_engine", lambda preferred=None: pdflatex.Engine("x", "x"))
    with pytest.raises(pdflatex.LatexError) as info:
        document.write_report(derive_model(), tmp_path / "report")
    log = str(info.value).split("(log: ")[1].split(")")[0]
    assert Path(log).exists() and ".report.failed" in log


def derive_model():
    import derive

    return derive.from_expr("J = a*b")
