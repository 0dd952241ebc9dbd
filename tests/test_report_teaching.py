"""The report as a teacher hands it out (issue 14): notation that fits the model, one term
order, no trivial or doubled steps, a worked example along a live path, a V curve whose
caption says what it shows, the substitution that makes a cancellation visible, and plots
kept with their section. Read from the .tex (no TeX needed) unless marked."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy as sp

import derive
from derive.spec import build
from reports.cli.plain import render
from reports.document import DEFAULT_OPTIONS, DEFAULT_SPEC, write_report
from reports.sections.context import build_context
from reports.sections.numbers import worked_instance

ROOT = Path(__file__).resolve().parents[1]
NG = "J = 3*(a + b*c)"


def _tex(spec, options, tmp_path_factory, pdf=False):
    out = tmp_path_factory.mktemp("r") / "report"
    result = write_report(build(spec, **options), out, compile_pdf=pdf)
    return result, result.tex.read_text()


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    return _tex(NG, {}, tmp_path_factory)[1]


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    return _tex(DEFAULT_SPEC, DEFAULT_OPTIONS, tmp_path_factory)[1]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return _tex("chain:3", {}, tmp_path_factory)[1]


@pytest.fixture(scope="module")
def softmax(tmp_path_factory):
    return _tex("mlp:4-5-3", {"output": "softmax", "loss": "cce"}, tmp_path_factory)[1]


def _pdf_text(spec, options, tmp_path_factory) -> str:
    result, _ = _tex(spec, options, tmp_path_factory, pdf=True)
    return subprocess.run(
        ["pdftotext", "-layout", str(result.pdf), "-"], capture_output=True, text=True
    ).stdout


def _section(tex: str, title: str) -> str:
    start = tex.index(f"\\section{{{title}}}")
    end = tex.find("\\section{", start + 1)
    return tex[start : end if end > 0 else None]


# ---------------------------------------------------------------------------- item 2


def test_an_expression_is_described_as_an_expression_with_no_batch(ng):
    notation = _section(ng, "Notation")
    for network_word in ("bias", "hidden value", "pre-activation", "layer", "example"):
        assert network_word not in notation, network_word
    assert notation.count("input of the expression") == 3  # a, b and c
    assert "output of the expression, $J = 3 v$" in notation
    forward = _section(ng, "Forward pass")
    assert "\\sum_{i=1}^{m}" not in forward and "batch" not in forward


def test_notation_tables_speak_plain_english(default, chain):
    for tex in (default, chain):
        notation = _section(tex, "Notation")
        assert "one examples" not in notation
        batch = [line for line in notation.splitlines() if "one row per example" in line]
        assert batch and not any("one example" in line for line in batch)


# ---------------------------------------------------------------------------- item 6


def test_weighted_sums_read_w_a_plus_b_in_latex_terminal_and_kernel_comments(chain):
    model = derive.chain(3)
    for k in (1, 2, 3):  # independent check of what the formula is
        z, w, b = (model.node(f"{n}{k}").symbol for n in "zwb")
        before = model.node("x").symbol if k == 1 else model.node(f"a{k - 1}").symbol
        assert sp.expand(model.node(f"z{k}").expr - (w * before + b)) == 0
    forward = _section(chain, "Forward pass")
    assert "z^{(1)} &= w^{(1)} \\, a^{(0)} + b^{(1)}" in forward
    assert "z^{(2)} &= w^{(2)} \\, a^{(1)} + b^{(2)}" in forward
    terminal = render(model.derive())
    assert "z1 = w1*x + b1" in terminal and "z2 = w2*a1 + b2" in terminal
    pytest.importorskip("numeric.generator.generate")
    from numeric import codegen

    source = codegen(model.derive()).source
    assert "# z2 = w2*a1 + b2" in source and "# z1 = w1*x + b1" in source


# ---------------------------------------------------------------------------- item 5


def test_no_trivial_or_doubled_steps_and_symbols_stand_apart(ng, default, softmax):
    assert "b \\, du" in ng and "bdu" not in ng.replace(" ", "")
    for tex in (ng, default, softmax):
        assert not re.search(r"= (\S+) (=|\\approx) \1 (\\label|\\\\)", tex), "x = 3 = 3"
        assert not re.search(r"\(\(-[0-9.]+\) ?\)", tex)  # tanh((-1.5))
        assert "#  (*@" not in tex  # an empty comment before an equation number
    assert "= c 3 " not in ng and "= b 3 " not in ng and "= 3 c" in ng  # not "c 3 = 3 c"


# ---------------------------------------------------------------------------- item 4


def test_worked_example_follows_a_unit_that_carries_gradient(softmax):
    backward = softmax[softmax.index("\\subsection*{Backward}") :]
    backward = backward[: backward.index("\\end{align*}")]
    rows = [r for r in backward.split("\\\\") if "&" in r]
    finals = [re.split(r"\\approx|=", r)[-1].strip() for r in rows]
    assert finals and "0" not in finals, finals  # no dead relu unit: every adjoint nonzero
    assert "\\text{for}\\: (" not in softmax  # no condition printed with its number
    assert "0 \\cdot \\log" not in softmax  # a zero target is put in, not multiplied out


def test_the_followed_hidden_unit_is_live_by_the_forward_values():
    """Independent of the printer: the unit the worked example shows has z > 0."""
    model = derive.mlp([4, 5, 3], output="softmax", loss="cce", level="scalar")
    ctx = build_context(model)
    ctx.instance = worked_instance(ctx.scalar, seed=0)
    from reports.sections.worked_example import live_path

    steps = ctx.scalar.needed_steps()
    shown, _ = live_path(model, steps, lambda s: s.node, ctx.instance.values, "d")
    hidden = [s.node.name for s in shown if s.node.name.startswith("z1_")]
    assert hidden and all(ctx.instance.leaves.get(h, ctx.instance.values[h]) > 0 for h in hidden)


# ---------------------------------------------------------------------------- item 3


def test_v_curve_caption_says_what_the_plot_shows(ng, default):
    expanded = build(NG).cost_expression()
    assert sp.Poly(sp.expand(expanded)).total_degree() == 2  # no third derivative anywhere
    caption = _section(ng, "Plots")
    assert "falls like $h^2$" not in caption and "no truncation error" in caption
    assert "falls like $h^2$" in _section(default, "Plots")


def test_v_curve_parameter_bends_by_sympy():
    """The default report's V-curve parameter has a nonzero third derivative (SymPy)."""
    from reports.figures.draw import _v_curve_param

    model = build(DEFAULT_SPEC, **DEFAULT_OPTIONS)
    ctx = build_context(model)
    ctx.instance = worked_instance(ctx.scalar, seed=0)
    name, curved = _v_curve_param(ctx)
    assert curved
    scalar = ctx.scalar.model
    expanded = scalar.cost_expression()
    theta = scalar.node(name).symbol
    leaves = {scalar.node(k).symbol: v for k, v in ctx.instance.leaves.items()}
    third = float(sp.diff(expanded, theta, 3).xreplace(leaves))
    assert abs(third) > 1e-6


# ---------------------------------------------------------------------------- item 7


def test_the_cancellation_of_sigmoid_and_cross_entropy_is_shown(default):
    a, y = sp.symbols("a y", positive=True)
    bce = -y * sp.log(a) - (1 - y) * sp.log(1 - a)
    assert sp.simplify(sp.diff(bce, a) - (a - y) / (a * (1 - a))) == 0  # what goes in
    row = default[default.index("dz^{[2]} &=") :]
    row = row[: row.index("db^{[2]}")]
    written = "\\frac{a^{[2]} - y}{a^{[2]} (1 - a^{[2]})}"
    assert written in row and row.index(written) < row.index("= a^{[2]} - y")


# ---------------------------------------------------------------------------- items 8, 9


def test_plots_are_placed_with_their_section(default):
    plots = default[default.index("\\setbox0") :]
    assert plots.index("\\ifdim") < plots.index("\\section{Plots}")
    assert "\\begin{figure}[htbp]" not in _section(default, "Plots")


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext not installed")
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_plots_heading_and_both_plots_share_the_last_page(tmp_path_factory):
    text = _pdf_text(DEFAULT_SPEC, DEFAULT_OPTIONS, tmp_path_factory)
    last = text.rstrip("\f").split("\f")[-1]
    assert "Plots" in last and "Figure 3:" in last and "Figure 4:" in last


def test_readme_claims_no_page_count():
    assert not re.search(r"\b\d+ pages\b", (ROOT / "README.md").read_text())


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext not installed")
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_chain_notation_table_ends_on_its_first_page(tmp_path_factory):
    text = _pdf_text("chain:3", {}, tmp_path_factory)
    first, second = text.split("\f")[:2]
    assert "elementwise (Hadamard) product" in first and "Meaning" not in second
