"""Running pdflatex, and reading its log for errors and lines that run off the page.

>>> problems("Overfull \\\\hbox (12.5pt too wide) in paragraph at lines 3--4", max_overfull_pt=1)
['Overfull \\\\hbox (12.5pt too wide) in paragraph at lines 3--4']
"""

from __future__ import annotations

import ctypes
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MISSING_ENGINE = (
    "report.pdf not made: no pdflatex on this machine; install it with "
    "'sudo apt install texlive-latex-recommended texlive-fonts-recommended' (or TeX Live, "
    "MacTeX, MiKTeX), then run the same backprop report again"
)
#: overfull boxes wider than this (in pt) count as running off the page
OVERFULL_PT = 1.0
PASSES = 3
TIMEOUT_S = 180


class LatexError(RuntimeError):
    """pdflatex failed; the message quotes its first error."""


@dataclass(frozen=True)
class Engine:
    name: str
    path: str


def find_engine(preferred: str | None = None) -> Engine | None:
    """pdflatex (or ``preferred``: ``latexmk``, ``pdflatex``) when it is on the PATH."""
    for name in [preferred] if preferred else ["pdflatex"]:
        path = shutil.which(name)
        if path:
            return Engine(name, path)
    return None


def compile_pdf(tex_path: Path, engine: Engine | None = None, progress=None) -> Path:
    """Compile ``tex_path`` in its own directory; return the PDF. Raises ``LatexError``."""
    engine = engine or find_engine()
    if engine is None:
        raise LatexError(MISSING_ENGINE)
    say = progress or (lambda message: None)
    workdir, name = tex_path.parent, tex_path.name
    flags = ["-interaction=nonstopmode", "-halt-on-error", "-file-line-error"]
    if engine.name == "latexmk":
        commands = [[engine.path, "-pdf", "-quiet", *flags, name]]
    else:
        commands = [[engine.path, *flags, name]] * PASSES
    log_path = tex_path.with_suffix(".log")
    for k, command in enumerate(commands, start=1):
        if engine.name != "latexmk":
            say(f"pdflatex pass {k}")
        try:
            run = subprocess.run(
                command,
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                errors="replace",
                preexec_fn=_die_with_parent,
            )
        except subprocess.TimeoutExpired as err:
            raise LatexError(f"{engine.name} took longer than {TIMEOUT_S} s") from err
        log = log_path.read_text(errors="replace") if log_path.exists() else run.stdout
        if run.returncode != 0:
            errors = [p for p in problems(log) if p.startswith("!") or ":" in p[:60]]
            first = errors[0] if errors else f"exit status {run.returncode}"
            raise LatexError(f"{engine.name} failed: {first} (log: {log_path})")
        if engine.name != "latexmk" and not needs_rerun(log):
            break
    return tex_path.with_suffix(".pdf")


def _die_with_parent() -> None:
    """In the child: ask Linux to kill pdflatex when backprop dies, even by SIGKILL (an
    interrupted run's own cleanup kills it otherwise; elsewhere this does nothing)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:  # looked up here, not in the child between fork and exec
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def needs_rerun(log: str) -> bool:
    return bool(re.search(r"Rerun to get|Label\(s\) may have changed|rerunfilecheck", log))


_OVERFULL = re.compile(r"^Overfull \\[hv]box \((?P<pt>[\d.]+)pt too (?:wide|high)\).*$", re.M)
_ERROR = re.compile(r"^(?:!.*|[^\s:]+\.tex:\d+: .*)$", re.M)


def problems(log: str, max_overfull_pt: float = OVERFULL_PT) -> list[str]:
    """Errors, overfull boxes wider than ``max_overfull_pt`` and undefined references."""
    found = [m.group(0) for m in _ERROR.finditer(log)]
    found += [m.group(0) for m in _OVERFULL.finditer(log) if float(m["pt"]) > max_overfull_pt]
    found += re.findall(r"^LaTeX Warning: (?:Reference|Citation) .* undefined.*$", log, re.M)
    found += re.findall(r"^Missing character: .*$", log, re.M)
    return found


def page_count(pdf: Path) -> int | None:
    """Pages of a PDF we just compiled, read from pdflatex's log."""
    log = pdf.with_suffix(".log")
    if not log.exists():
        return None
    match = re.search(r"Output written on .*?\((\d+) pages?", log.read_text(errors="replace"))
    return int(match.group(1)) if match else None
