"""The report's content and how it is written (no TeX needed; see test_report_compile.py)."""

import os
import re
from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp

import derive
from reports import document
from reports.document import DEFAULT_OPTIONS, DEFAULT_SPEC, default_model, write_report
from reports.latex import pdflatex as tex
from reports.sections.back_matter import listing_section
from reports.sections.context import build_context
from reports.sections.numbers import expanded_gradients, verification_checks, worked_instance
from reports.sections.verification import verification_section

TITLES = [
    "Notation",
    "Forward pass",
    "Computational graph",
    "Local derivatives",
    "Chain rule",
    "Vectorized matrix form",
    "Worked example",
    "Verification",
    "Generated NumPy kernel",
    "Plots",
]


def tex_of(model, tmp_path, name="r", **kw):
    result = write_report(model, tmp_path / name, compile_pdf=False, **kw)
    return result, result.tex.read_text()


@pytest.fixture(scope="module")
def chain_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("chain") / "report"
    result = write_report(derive.chain(3), out, compile_pdf=False)
    return result, result.tex.read_text()


@pytest.fixture(scope="module")
def softmax_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("softmax") / "report"
    model = derive.mlp([4, 5, 3], output="softmax", loss="cce", level="scalar")
    result = write_report(model, out, compile_pdf=False)
    return result, result.tex.read_text()


def test_default_network_is_ngs_planar_classifier():
    model = default_model()
    assert (DEFAULT_SPEC, model.sizes) == ("mlp:2-4-1", (2, 4, 1))
    assert (model.activation, model.output, model.loss) == ("tanh", "sigmoid", "bce")
    assert DEFAULT_OPTIONS == {"activation": "tanh", "output": "sigmoid", "loss": "bce"}


def test_report_has_every_section_in_order(chain_report):
    _, text = chain_report
    found = re.findall(r"\\section\{([^}]*)\}", text)
    assert found == TITLES


def test_header_names_model_versions_dtype_and_seed(chain_report):
    _, text = chain_report
    head = text.split(r"\section")[0]
    for word in ("chain:3", "SymPy", "NumPy", "float64", "seed 0", "3Blue1Brown"):
        assert word in head


def test_forward_pass_numbers_every_computed_node_and_ends_in_the_mean_cost(chain_report):
    _, text = chain_report
    model = derive.chain(3)
    for node in model.nodes:
        if not node.is_leaf:
            assert f"\\label{{eq:s:{node.name}}}" in text
    assert r"C &= \frac{1}{m} \sum_{k=0}^{m - 1} C_{k}" in text


def test_3b1b_chain_rule_reads_like_the_video(chain_report):
    """∂C0/∂w(3) = ∂z/∂w ∂a/∂z ∂C0/∂a = a(2) σ'(z(3)) 2(a(3) - y)."""
    _, text = chain_report
    row = text[text.index(r"\label{eq:grad:w3}") - 400 : text.index(r"\label{eq:grad:w3}") + 600]
    assert (
        r"\frac{\partial z^{(3)}}{\partial w^{(3)}} \frac{\partial a^{(3)}}{\partial z^{(3)}} "
        r"\frac{\partial C_{0}}{\partial a^{(3)}}" in row
    )
    assert r"a^{(2)} \sigma'(z^{(3)}) 2 (a^{(3)} - y)" in row


def test_no_formula_carries_sympy_derivative_artefacts(chain_report, softmax_report):
    for _, text in (chain_report, softmax_report):
        assert r"\xi" not in text
        assert r"\left. \frac{d}" not in text and r"\frac{d}{d" not in text
        assert r"\operatorname{sigmoid}" not in text


def test_fork_steps_write_out_one_term_per_branch(softmax_report):
    _, text = softmax_report
    d = derive.mlp([4, 5, 3], output="softmax", loss="cce", level="scalar").derive()
    forks = [s for s in d.needed_steps() if s.is_fork]
    assert forks
    step = forks[0]
    start = text.index(f"\\label{{eq:s:d{step.node.name}}}")
    first_line = text[text.rindex("\n", 0, start) : start]  # lhs = sum of named factors
    named = first_line.split("&=")[1]
    assert named.count(r"\partial") == 2 * len(step.branches)


def test_big_network_is_reported_at_the_matrix_level_only(tmp_path):
    _, text = tex_of(derive.mlp([784, 512, 10]), tmp_path)
    assert "matrix level only" in text
    assert r"\label{eq:m:dW1}" in text and "eq:s:" not in text
    assert "784 \\times 512" in text


def test_matrix_form_checks_every_gradient_shape(chain_report):
    _, text = chain_report
    shape_table = text[text.index("Shape check") :]
    shape_table = shape_table[: shape_table.index(r"\end{longtable}")]
    assert shape_table.count(r"\checkmark") == len(
        derive.chain(3, level="matrix").derive().needed_steps()
    )


def test_worked_example_gradients_agree_with_the_closed_form_in_inputs_and_params():
    for model in (derive.chain(3), derive.mlp([2, 3, 2], output="softmax", level="scalar")):
        d = model.derive()
        instance = worked_instance(d, seed=3)
        expanded = expanded_gradients(d, instance)
        for p in model.params:
            assert instance.adjoint(p.name) == pytest.approx(expanded[p.name], abs=1e-12)


def test_verification_against_jax_and_finite_differences_passes_for_a_right_derivation():
    d = derive.logistic_regression(3).derive()
    checks = verification_checks(d, worked_instance(d, seed=1))
    assert checks.ok
    assert checks.routes == ["closed form", "JAX", "finite differences"]
    assert [row.array for row in checks.rows] == ["w", "b"]


def test_verification_catches_a_wrong_kernel():
    d = derive.logistic_regression(2).derive()
    instance = worked_instance(d, seed=0)

    def loss_and_grads(params, X, Y):
        return 0.0, {"w": np.zeros(2), "b": np.array(0.5)}  # wrong on purpose

    kernel = SimpleNamespace(module=SimpleNamespace(loss_and_grads=loss_and_grads))
    checks = verification_checks(d, instance, kernel)
    assert "kernel" in checks.routes and not checks.ok


def test_listing_ties_each_kernel_line_to_its_equation():
    ctx = build_context(derive.mlp([2, 3, 1], activation="tanh"))
    line = SimpleNamespace
    kernel = SimpleNamespace(
        source="def loss_and_grads(params, X, Y):\n    Z1 = X @ W1 + b1\n    dW1 = X.T @ dZ1\n",
        lines=[line(line=2, node="Z1", kind="forward"), line(line=3, node="dW1", kind="gradient")],
    )
    ctx.kernel = kernel
    text = listing_section(ctx)
    assert r"\eqref{eq:m:Z1}" in text and r"\eqref{eq:m:dW1}" in text
    assert r"\begin{lstlisting}" in text


def test_a_verification_result_from_numeric_renders_as_its_table():
    ctx = build_context(derive.logistic_regression(2))
    ctx.verification = SimpleNamespace(
        rows=[{"param": "w", "kernel_vs_jax": 1e-17, "kernel_vs_fd": 2e-10, "ok": True}]
    )
    text = verification_section(ctx)
    assert "kernel\\_vs\\_jax" in text and r"\checkmark" in text


# ---------------------------------------------------------------------------- writing


def test_no_tex_engine_says_in_one_line_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr(tex, "find_engine", lambda preferred=None: None)
    result = write_report(derive.logistic_regression(2), tmp_path / "r")
    assert result.pdf is None and result.tex.exists()
    assert "\n" not in result.message and "apt install texlive-latex-recommended" in result.message


def test_figures_are_vector_files_beside_the_tex(chain_report):
    result, text = chain_report
    names = {p.name for p in result.figures}
    assert {"graph.pdf", "activations.pdf", "vcurve.pdf"} <= names
    for path in result.figures:
        assert path.read_bytes()[:5] == b"%PDF-"
        assert path.stem in text


def test_a_failed_run_leaves_the_earlier_report_intact(tmp_path, monkeypatch):
    out = tmp_path / "r"
    write_report(derive.logistic_regression(2), out, compile_pdf=False)
    before = (out / "report.tex").read_text()

    def broken(ctx):
        raise RuntimeError("boom")

    monkeypatch.setattr(document, "SECTIONS", (broken,))
    with pytest.raises(RuntimeError, match="boom"):
        write_report(derive.chain(2), out, compile_pdf=False)
    assert (out / "report.tex").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no build left behind


def test_rewriting_a_report_replaces_it(tmp_path):
    out = tmp_path / "r"
    write_report(derive.logistic_regression(2), out, compile_pdf=False)
    write_report(derive.chain(1), out, compile_pdf=False)
    assert "chain:1" in (out / "report.tex").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_refuses_to_replace_a_directory_that_is_not_a_report(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(derive.BackpropInputError, match="not empty"):
        write_report(derive.chain(1), tmp_path, compile_pdf=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_output_under_a_file_is_a_clear_input_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(derive.BackpropInputError, match="cannot write|not a directory"):
        write_report(derive.chain(1), tmp_path / "file" / "report", compile_pdf=False)


def test_unwritable_output_directory_is_a_clear_input_error(tmp_path):
    target = "/proc/backprop-report" if os.geteuid() == 0 else None
    if target is None:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "report"
    try:
        with pytest.raises(derive.BackpropInputError, match="cannot write"):
            write_report(derive.chain(1), target, compile_pdf=False)
    finally:
        if target != "/proc/backprop-report":
            (tmp_path / "locked").chmod(0o700)


def test_bad_dtype_is_a_clear_input_error(tmp_path):
    with pytest.raises(derive.BackpropInputError, match="float64 or float32"):
        write_report(derive.chain(1), tmp_path / "r", dtype="float16", compile_pdf=False)


def test_progress_reports_the_long_steps(tmp_path):
    said = []
    write_report(derive.chain(1), tmp_path / "r", compile_pdf=False, progress=said.append)
    assert any("deriving" in m for m in said) and any("graph" in m for m in said)


def test_summary_names_what_was_written(tmp_path):
    result = write_report(derive.chain(1), tmp_path / "r", compile_pdf=False)
    assert str(result.tex) in result.summary()


def test_seed_changes_the_worked_example(tmp_path):
    _, a = tex_of(derive.chain(1), tmp_path, "a", seed=0)
    _, b = tex_of(derive.chain(1), tmp_path, "b", seed=1)
    assert a != b and "seed 1" in b


def test_cost_mean_matches_batch_cost_of_matrix_level():
    """The scalar loss averaged over examples is the matrix-level cost (independent route)."""
    scalar = derive.chain(1)
    matrix = derive.chain(1, level="matrix")
    assert str(sp.simplify(matrix.cost.expr)).count("total") == 1
    assert scalar.cost.role == matrix.cost.role == "loss"


@pytest.mark.parametrize(
    "spec, options",
    [
        ("mlp:3-4-2", {"activation": "elu", "output": "linear", "loss": "huber"}),
        ("mlp:3-4-2", {"activation": "leaky_relu", "output": "linear", "loss": "mse"}),
        ("mlp:3-4-3", {"activation": "sigmoid", "output": "linear", "loss": "cce_logits"}),
        ("mlp:3-4-3", {"activation": "tanh", "output": "softmax", "loss": "sparse_cce"}),
        ("mlp:2-2-1", {"activation": "step"}),
        ("J = 3*(a + b*c)", {}),
    ],
)
def test_every_kind_of_model_gets_a_report_whose_gradients_check_out(spec, options, tmp_path):
    from derive.spec import build

    result, text = tex_of(build(spec, **options), tmp_path)
    assert r"\section{Chain rule}" in text
    assert "All routes agree." in text


def test_generated_kernel_is_listed_and_checked_when_codegen_is_there(tmp_path):
    pytest.importorskip("numeric.generator.generate")
    result, text = tex_of(default_model(level="matrix"), tmp_path)
    assert r"\begin{lstlisting}" in text and r"\eqref{eq:m:dZ2}" in text
    verification = text[text.index(r"\section{Verification}") :]
    assert "kernel" in verification[:3000] and "All routes agree." in verification
