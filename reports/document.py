"""Assemble ``report.tex`` from its sections, draw its figures, compile it, swap it in.

Writing is atomic: everything is built in a fresh directory beside the output directory,
and only a complete build replaces the old one (two renames), so a failed run leaves an
earlier report as it was.

>>> DEFAULT_SPEC, DEFAULT_OPTIONS["activation"]
('mlp:2-4-1', 'tanh')
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import derive
from derive.errors import BackpropInputError

from .latex import pdflatex as tex
from .sections.context import ReportContext, build_context
from .sections.order import SECTIONS

#: the built-in network: Andrew Ng's two-layer planar classifier (course 1, week 3)
DEFAULT_SPEC = "mlp:2-4-1"
DEFAULT_OPTIONS = {"activation": "tanh", "output": "sigmoid", "loss": "bce"}
#: a file that marks a directory as one of our reports (so it may be replaced)
MARKER = ".backprop-report"
T = TypeVar("T")

PREAMBLE = r"""\documentclass[11pt,a4paper]{article}
\usepackage[margin=2.2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{graphicx,float}
\usepackage{booktabs,longtable,tabularx,array}
\usepackage[table]{xcolor}
\usepackage{listings}
\usepackage{microtype}
\usepackage[font=small,labelfont=bf]{caption}
\usepackage[colorlinks=true,linkcolor=blue!50!black,urlcolor=blue!50!black]{hyperref}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
\setcounter{tocdepth}{1}
\numberwithin{equation}{section}
\lstset{basicstyle=\ttfamily\footnotesize,breaklines=true,columns=fullflexible,
  keepspaces=true,escapeinside={(*@}{@*)},commentstyle=\color{gray},
  keywordstyle=\color{blue!60!black}\bfseries,stringstyle=\color{green!40!black},
  frame=lines,framesep=4pt,numbers=left,numberstyle=\tiny\color{gray}}
\title{}\date{}
\begin{document}
"""


def default_model(level: str = "scalar") -> derive.Model:
    """The built-in network: ``mlp:2-4-1``, tanh hidden, sigmoid output, cross-entropy."""
    return derive.mlp([2, 4, 1], level=level, **DEFAULT_OPTIONS)


@dataclass
class ReportResult:
    """What ``write_report`` wrote."""

    out_dir: Path
    tex: Path
    pdf: Path | None
    figures: list[Path] = field(default_factory=list)
    message: str | None = None  # one line when no PDF could be made, saying how to get one
    pages: int | None = None

    def summary(self) -> str:
        """One or two lines for the terminal."""
        made = f"wrote {self.tex}"
        if self.pdf is not None:
            pages = f", {self.pages} pages" if self.pages else ""
            made += f" and {self.pdf}{pages}"
        return made + (f"\n{self.message}" if self.message else "")


def render_tex(ctx: ReportContext) -> str:
    """The whole LaTeX document for a context whose figures are drawn."""
    body = "\n".join(part for part in (section(ctx) for section in SECTIONS) if part)
    return PREAMBLE + body + "\n\\end{document}\n"


def write_report(
    model: derive.Model | None,
    out_dir: str | os.PathLike,
    *,
    notation: str | None = None,
    seed: int = 0,
    dtype: str = "float64",
    progress: Callable[[str], None] | None = None,
    verification=None,
    kernel=None,
    compile_pdf: bool = True,
    engine: str | None = None,
    training=None,
) -> ReportResult:
    """Write ``report.tex``, its figures and (with a TeX engine) ``report.pdf`` to ``out_dir``.

    ``model`` None means the built-in default; ``training`` (a
    :class:`reports.training.TrainingRun`) adds the Learning section. Raises
    ``BackpropInputError`` for an output directory that cannot be written, and
    ``tex.LatexError`` when LaTeX fails (the earlier report, if any, stays as it was).
    """
    say = progress or (lambda message: None)
    if dtype not in ("float64", "float32"):
        raise BackpropInputError(f"dtype must be float64 or float32, got {dtype!r}")
    out = Path(out_dir)
    _check_output_dir(out)
    model = model if model is not None else default_model()
    ctx = build_context(
        model,
        notation,
        dtype=dtype,
        seed=seed,
        kernel=kernel,
        verification=verification,
        progress=say,
    )
    ctx.training = training
    if kernel is None:
        ctx.kernel = _try_codegen(ctx, say)
    pdf, message, pages = write_folder(
        out, lambda build: _build(ctx, build, say, compile_pdf, engine)
    )
    figures = sorted(
        p for p in out.iterdir() if p.suffix in (".pdf", ".svg") and p.stem != "report"
    )
    return ReportResult(
        out_dir=out,
        tex=out / "report.tex",
        pdf=(out / "report.pdf") if pdf is not None else None,
        figures=figures,
        message=message,
        pages=pages,
    )


def _build(ctx: ReportContext, build: Path, say, compile_pdf: bool, engine: str | None):
    """Fill ``build`` and compile it: (the PDF or None, a line saying why not, its pages)."""
    _fill(ctx, build, say)
    if not compile_pdf:
        return None, None, None
    found = tex.find_engine(engine)
    if found is None:
        return None, tex.MISSING_ENGINE, None
    say(f"compiling report.pdf with {found.name}")
    pdf = tex.compile_pdf(build / "report.tex", found, progress=say)
    return pdf, None, tex.page_count(pdf)


def _fill(ctx: ReportContext, build: Path, say) -> None:
    """Compute the numbers, draw the figures and write report.tex into ``build``."""
    from .figures.draw import make_figures
    from .sections.numbers import verification_checks, worked_instance

    if ctx.scalar is not None:
        say("evaluating the worked example")
        ctx.instance = worked_instance(ctx.scalar, ctx.seed)
        if ctx.verification is None:
            say("checking the gradients (closed form, JAX, finite differences)")
            ctx.checks = verification_checks(ctx.scalar, ctx.instance, ctx.kernel)
    if ctx.verification is None and ctx.kernel is not None:
        ctx.verification = _try_verify(ctx, say)
    make_figures(ctx, build, say=say)
    if ctx.training is not None:
        say("drawing the loss curve and the decision boundary")
        ctx.figures.update({f"learning_{k}": p for k, p in ctx.training.draw(build).items()})
    say("writing report.tex")
    (build / "report.tex").write_text(render_tex(ctx), encoding="utf-8")


def _try_codegen(ctx: ReportContext, say):
    """The generated kernel, when ``numeric.codegen`` is there; None otherwise."""
    try:
        from numeric import codegen
    except ImportError:
        return None
    # the level the CLI's codegen uses: scalar for chains, matrix for the rest
    derivation = ctx.scalar if ctx.model.kind == "chain" else (ctx.matrix or ctx.scalar)
    try:
        say("generating the NumPy kernel")
        return codegen(derivation, dtype=ctx.dtype)
    except Exception as err:  # the listing is one section; a report without it still helps
        ctx.notes.append(f"The kernel generator failed on this model ({err}); no listing.")
        return None


def _try_verify(ctx: ReportContext, say):
    """``numeric.verify`` of the kernel on a random batch, when numeric has it."""
    try:
        from numeric import verify
    except ImportError:
        return None
    derivation = getattr(ctx.kernel, "derivation", None)
    if derivation is None:
        return None
    try:
        say("verifying the kernel against JAX and finite differences")
        return verify(derivation.model, ctx.dtype, batch=8, seed=ctx.seed, kernel=ctx.kernel)
    except Exception as err:  # the report still has its own checks
        ctx.notes.append(f"numeric.verify failed on this model ({err}).")
        return None


# ---------------------------------------------------------------------------- atomic writing


def write_folder(
    out: Path, fill: Callable[[Path], T], marker: str = MARKER, writer: str = "backprop report"
) -> T:
    """Write the report folder ``out`` all or nothing: ``fill`` writes everything into a fresh
    folder beside ``out``, which gets the ``marker`` (saying ``writer`` wrote it) and replaces
    ``out`` (:func:`_swap`); what ``fill`` returns is returned. On a LaTeX error the build
    is kept beside ``out`` as ``.NAME.failed`` for its log, and the error names it; on any
    other error or Ctrl-C the build is removed. Either way an earlier report stays as it
    was. Check ``out`` first (:func:`_check_output_dir`), before the work ``fill`` stands for.
    """
    build = _fresh_dir(out)
    try:
        result = fill(build)
        (build / marker).write_text(f"written by {writer}\n")
        _swap(build, out)
    except tex.LatexError as err:
        failed = out.resolve().parent / f".{out.name}.failed"
        shutil.rmtree(failed, ignore_errors=True)
        os.rename(build, failed)
        message = str(err).replace(str(build), str(failed))  # its log moved with it
        raise tex.LatexError(f"{message}; the failed build is in {failed}") from err
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return result


def _check_output_dir(out: Path, marker: str = MARKER, holds: str = "report") -> None:
    """``out`` may be made or replaced: it is new, empty, or holds ``marker`` (our own)."""
    if out.exists() and not out.is_dir():
        raise BackpropInputError(f"output {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise BackpropInputError(
            f"output directory {str(out)!r} is not empty and holds no earlier {holds}; "
            "choose a new or empty directory"
        )
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)  # like mkdir -p
    except OSError as err:
        raise BackpropInputError(
            f"cannot write to {str(out)!r}: {err.strerror or err} ({str(parent)!r})"
        ) from err
    try:  # a real probe: os.access says yes to root even where nothing can be written
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=parent))
    except OSError as err:
        raise BackpropInputError(
            f"cannot write to {str(out)!r}: {err.strerror or err} ({str(parent)!r})"
        ) from err


def _fresh_dir(out: Path) -> Path:
    parent = out.resolve().parent
    _remove_stale(out)
    try:  # the pid in the name tells a later run whether its writer is still alive
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.building-{os.getpid()}-", dir=parent))
    except OSError as err:
        raise BackpropInputError(f"cannot write to {str(out)!r}: {err.strerror}") from err


def _remove_stale(out: Path) -> None:
    """Folders a killed run left beside ``out`` (SIGKILL runs no cleanup): its half build
    goes; an earlier report it had moved aside comes back if ``out`` is missing."""
    parent = out.resolve().parent
    for kind in ("old", "building"):  # an old report first: it may have to come back
        for path in parent.glob(f".{out.name}.{kind}-*-*"):
            pid = path.name.removeprefix(f".{out.name}.{kind}-").split("-")[0]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            if kind == "old" and not out.exists():
                os.rename(path, out)
            else:
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextmanager
def _signals_held():
    """SIGINT and SIGTERM wait until both renames of a swap are done."""
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _swap(build: Path, out: Path) -> None:
    """Put ``build`` where ``out`` is; the old ``out`` goes only once the new one is in."""
    os.chmod(build, 0o755)
    with _signals_held():
        if not out.exists():
            os.rename(build, out)
            return
        prefix = f".{out.name}.old-{os.getpid()}-"
        old = Path(tempfile.mkdtemp(prefix=prefix, dir=out.resolve().parent))
        os.rmdir(old)
        os.rename(out, old)
        try:
            os.rename(build, out)
        except OSError:
            os.rename(old, out)
            raise
    shutil.rmtree(old, ignore_errors=True)
