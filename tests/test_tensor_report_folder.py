"""The tensor report's folder is written as the dense report's is: a folder holding anything but
an earlier report is refused in one line and left untouched; a second report replaces the first;
a run that fails or is interrupted mid-write keeps the earlier report and leaves no build
behind; and the report.tex it leaves compiles on its own, its figures beside it (without a TeX
engine they are written all the same, as the dense report's are)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reports.cli.main import main
from reports.latex import pdflatex

needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex")

CONVNET = """\
from derive import network
from derive.layers import Conv2D, Dense, Flatten, MaxPool2D

model = network((6, 6, 1), [Conv2D(2, 3, "relu"), MaxPool2D(2), Flatten(), Dense(2, "softmax")],
                "cce")
"""
TRAIN = ["--train", "--epochs", "1"]


@pytest.fixture
def net(tmp_path) -> str:
    path = tmp_path / "tiny_convnet.py"
    path.write_text(CONVNET)
    return str(path)


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _beside(out: Path) -> list[str]:
    """What a run left next to ``out``: builds, moved-aside reports, failed builds."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


@pytest.mark.parametrize("train", [[], TRAIN], ids=["report", "report --train"])
def test_a_folder_holding_no_earlier_report_is_refused_in_one_line_and_untouched(
    tmp_path, capsys, net, train
):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my own work")
    assert main(["report", net, *train, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not empty and holds no earlier report" in err, err
    assert _contents(out) == {"notes.txt": b"my own work"}
    assert _beside(out) == []


@needs_pdflatex
def test_a_second_report_replaces_the_first_and_leaves_nothing_beside(tmp_path, capsys, net):
    out = tmp_path / "report"
    assert main(["report", net, "-o", str(out)]) == 0
    assert (out / ".backprop-report").exists()
    (out / "left_from_the_first.txt").write_text("gone after the second run")
    assert main(["report", net, *TRAIN, "-o", str(out)]) == 0
    assert capsys.readouterr().out.endswith(f"wrote {out / 'report.pdf'}\n")
    names = set(_contents(out))
    assert "left_from_the_first.txt" not in names  # replaced, not merged into
    assert {".backprop-report", "report.tex", "report.pdf", "loss.pdf"} <= names
    assert _beside(out) == []


def _failing_compile(error: BaseException):
    """pdflatex's step, which half-writes the PDF and then fails with ``error``."""

    def compile_pdf(tex_path: Path, engine=None, progress=None) -> Path:
        tex_path.with_suffix(".pdf").write_bytes(b"%PDF-1.5 half")
        raise error

    return compile_pdf


@needs_pdflatex
@pytest.mark.parametrize(
    "error, code, left",
    [
        (OSError(28, "No space left on device"), 2, []),
        (KeyboardInterrupt(), 130, []),  # Ctrl-C
        (pdflatex.LatexError("pdflatex failed: ! Emergency stop"), 1, [".report.failed"]),
    ],
    ids=["write error", "ctrl-c", "latex error"],
)
def test_a_run_failing_mid_write_keeps_the_earlier_report(
    tmp_path, capsys, monkeypatch, net, error, code, left
):
    out = tmp_path / "report"
    assert main(["report", net, "-o", str(out)]) == 0
    earlier = _contents(out)
    capsys.readouterr()
    monkeypatch.setattr(pdflatex, "compile_pdf", _failing_compile(error))
    assert main(["report", net, "-o", str(out)]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert _contents(out) == earlier
    # only a LaTeX failure keeps its build, as the dense report does, for the log it names
    assert _beside(out) == left
    if left:
        assert str(tmp_path / left[0]) in err


@needs_pdflatex
def test_the_written_report_tex_compiles_on_its_own_beside_its_figures(tmp_path, net):
    out = tmp_path / "report"
    assert main(["report", net, *TRAIN, "-o", str(out)]) == 0
    tex = (out / "report.tex").read_text()
    included = re.findall(r"\\includegraphics(?:\[[^]]*\])?\{([^}]+)\}", tex)
    assert {"receptive_field.pdf", "pool_gradient.pdf", "loss.pdf"} <= set(included)
    assert all((out / name).is_file() for name in included), included
    (out / "report.pdf").unlink()
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
        cwd=out, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:]
    assert (out / "report.pdf").stat().st_size > 10_000


def test_without_a_tex_engine_the_tex_and_its_figures_are_written_and_the_run_succeeds(
    tmp_path, capsys, monkeypatch, net
):
    monkeypatch.setattr(pdflatex, "find_engine", lambda preferred=None: None)
    out = tmp_path / "report"
    assert main(["report", net, "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out / 'report.tex'}\n{pdflatex.MISSING_ENGINE}\n"
    names = set(_contents(out))
    assert names == {".backprop-report", "report.tex", "receptive_field.pdf", "pool_gradient.pdf"}
    assert _beside(out) == []
