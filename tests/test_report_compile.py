"""The five reports of the issue compile with pdflatex: no errors, nothing off the page.

Each report is built for real in its own temporary directory (they run in parallel under
pytest-xdist). Skipped, with the reason, on a machine without pdflatex or pdftotext.
"""

import shutil
import subprocess

import pytest

import derive
from derive.spec import build
from reports.document import DEFAULT_OPTIONS, DEFAULT_SPEC, write_report
from reports.latex import pdflatex as tex

from .test_report import TITLES  # every section, in order

needs_tex = pytest.mark.skipif(
    shutil.which("pdflatex") is None, reason="pdflatex not installed (texlive-latex-recommended)"
)
needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="pdftotext not installed (poppler-utils)"
)

CASES = {
    "logreg:3": ("logreg:3", {}),
    "chain:3": ("chain:3", {}),
    "mlp:2-3-1": ("mlp:2-3-1", {}),
    "mlp:4-5-3 softmax cce": ("mlp:4-5-3", {"output": "softmax", "loss": "cce"}),
    "default": (DEFAULT_SPEC, DEFAULT_OPTIONS),
}


@needs_tex
@needs_pdftotext
@pytest.mark.parametrize("case", list(CASES))
def test_report_compiles_cleanly_and_shows_every_section(case, tmp_path):
    spec, options = CASES[case]
    result = write_report(build(spec, **options), tmp_path / "report")
    assert result.pdf is not None and result.pdf.exists(), result.message
    log = (tmp_path / "report" / "report.log").read_text(errors="replace")
    assert tex.problems(log, max_overfull_pt=1.0) == []
    text = subprocess.run(
        ["pdftotext", "-layout", str(result.pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for title in TITLES:
        assert title in text, f"section {title!r} missing from {case}"
    assert "All routes agree." in text


@needs_tex
def test_latex_error_keeps_the_earlier_report_and_names_the_failed_build(tmp_path, monkeypatch):
    out = tmp_path / "report"
    write_report(derive.logistic_regression(1), out, compile_pdf=False)
    from reports import document

    monkeypatch.setattr(document, "SECTIONS", (lambda ctx: r"\undefinedcommand",))
    with pytest.raises(tex.LatexError, match="Undefined control sequence"):
        write_report(derive.chain(1), out)
    assert "logreg:1" in (out / "report.tex").read_text()
