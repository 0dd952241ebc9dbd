"""The textbook LaTeX printer: notation, elementwise products, derivative artefacts, breaking."""

import re

import pytest
import sympy as sp
from sympy.printing.latex import latex

import derive
from reports.latex.equations import Row, align, break_expr, tex_width
from reports.latex.notation import get, matrix_names, symbol_table
from reports.latex.printer import (
    TextbookPrinter,
    activation_function,
    format_number,
    named_factor,
    plain_parens,
)


def printer_for(model, notation="ng", **settings):
    return TextbookPrinter(symbol_table(model, get(notation)), matrix_names(model), **settings)


@pytest.fixture(scope="module")
def matrix_default():
    model = derive.mlp([2, 4, 1], activation="tanh", output="sigmoid", loss="bce", level="matrix")
    return model.derive()


@pytest.fixture(scope="module")
def softmax_matrix():
    return derive.mlp([4, 5, 3], output="softmax", loss="cce", level="matrix").derive()


def test_elementwise_products_of_matrices_print_with_odot(matrix_default):
    p = printer_for(matrix_default.model)
    named = p.doprint(matrix_default.step("Z2").named)  # A2 * dA2 * (1 - A2)
    assert named.count(r"\odot") == 2
    assert "A^{[2]}" in named and "dA^{[2]}" in named


def test_scalar_products_are_juxtaposed_without_odot():
    d = derive.chain(2).derive()
    p = printer_for(d.model, "3b1b")
    assert r"\odot" not in p.doprint(d.step("z2").named)


def test_broadcast_rowsum_product_is_elementwise(softmax_matrix):
    p = printer_for(softmax_matrix.model)
    named = p.doprint(softmax_matrix.step("Z2").named)  # A*dA - A*rowsum(A*dA)
    assert r"\odot \operatorname{rowsum}" in named


def test_bias_gradient_prints_as_ones_transposed_times_dz(matrix_default):
    p = printer_for(matrix_default.model)
    assert p.doprint(matrix_default.gradient("b1")) == r"\mathbf{1}^{\top} dZ^{[1]}"


def test_transpose_of_layer_symbol_shares_one_superscript(matrix_default):
    p = printer_for(matrix_default.model)
    assert p.doprint(matrix_default.gradient("W2")) == r"A^{[1]\top} dZ^{[2]}"


def test_cost_prints_as_one_over_m_times_sums(matrix_default):
    p = printer_for(matrix_default.model)
    text = p.doprint(matrix_default.model.cost.expr)
    assert text.startswith(r"\frac{1}{m}") and text.count(r"\sum_{i,j}") == 2


def test_activation_derivative_prints_as_prime_without_subs_artefacts():
    z = sp.Symbol("z1", real=True)
    sigma = activation_function("sigmoid")
    p = TextbookPrinter({"z1": "z^{[1]}"})
    assert p.doprint(sigma(z).diff(z)) == r"\sigma'(z^{[1]})"
    # the form SymPy makes when the argument is not a bare symbol: Subs(Derivative(...))
    at_point = sigma(2 * z).diff(z)
    text = p.doprint(at_point)
    assert r"\left." not in text and r"\xi" not in text and r"\sigma'" in text
    # the plain SymPy printer would have left the artefact
    assert r"\left." in latex(at_point) or r"\xi" in latex(at_point)


def test_named_factor_is_a_partial_derivative_of_two_nodes():
    model = derive.chain(3)
    p = printer_for(model, "3b1b")
    text = p.doprint(named_factor(model.node("z3").symbol, model.node("w3").symbol))
    assert text == r"\frac{\partial z^{(3)}}{\partial w^{(3)}}"


def test_printer_agrees_with_sympy_latex_when_no_notation_applies():
    """An independent route: with no symbol table, only the parentheses, the thin space
    between two symbols and the order of terms and factors (w a + b) may differ."""
    d = derive.mlp([2, 3, 2], activation="tanh", output="softmax", loss="cce", level="scalar")
    d = d.derive()
    p = TextbookPrinter()

    def tokens(tex):
        return sorted(re.findall(r"\\[A-Za-z]+|[A-Za-z0-9]+|[^\s]", tex.replace(r"\,", "")))

    for step in d.steps[1:]:
        for expr in (step.named, step.value):
            assert tokens(p.doprint(expr)) == tokens(plain_parens(latex(expr)))


def test_products_print_weight_first_and_sums_bias_last():
    """The textbook order w a + b, with a thin space between two symbols (``b \\, du``)."""
    a1, w2, b2, du, b = sp.symbols("a1 w2 b2 du b", real=True)
    p = TextbookPrinter({"a1": "a^{(1)}", "w2": "w^{(2)}", "b2": "b^{(2)}"})
    assert p.doprint(a1 * w2 + b2) == r"w^{(2)} \, a^{(1)} + b^{(2)}"
    assert p.doprint(b * du) == r"b \, du"
    assert p.doprint(3 * b) == "3 b"


def test_values_print_as_numbers_with_negatives_in_parentheses():
    a, y = sp.symbols("a y", real=True)
    p = TextbookPrinter(values={"a": 0.62, "y": -1.0}, mul_symbol="dot")
    assert p.doprint(a * (1 - a) * (a - y)) == r"0.62 \cdot (1 - 0.62) \cdot (0.62 - (-1))"


@pytest.mark.parametrize(
    "value, text",
    [
        (0.1107, "0.1107"),
        (-2.5, "-2.5"),
        (0, "0"),
        (3.2156e-5, r"3.216 \cdot 10^{-5}"),
        (float("nan"), r"\text{n/a}"),
    ],
)
def test_numbers_are_written_as_a_person_would(value, text):
    assert format_number(value) == text


def test_plain_parentheses_only_where_nothing_tall_sits_inside():
    assert plain_parens(r"\left(1 - a\right)") == "(1 - a)"
    assert plain_parens(r"\left(\frac{1}{2}\right)") == r"\left(\frac{1}{2}\right)"
    assert plain_parens(r"\left[\sum_{i} x\right]") == r"\left[\sum_{i} x\right]"


# ---------------------------------------------------------------------------- notation


def test_ng_notation_uses_square_brackets_and_d_prefixed_adjoints():
    table = symbol_table(derive.mlp([2, 3, 1], level="scalar"), get("ng"))
    assert table["W1_1_2"] == "W^{[1]}_{12}"
    assert table["dz1_2"] == "dz^{[1]}_{2}"
    assert table["L"] == r"\mathcal{L}"


def test_3b1b_notation_indexes_weights_to_from_and_names_the_input_a0():
    table = symbol_table(derive.mlp([2, 3, 1], level="scalar"), get("3b1b"))
    assert table["W1_1_2"] == "w^{(1)}_{21}"  # from unit 1 to unit 2: w_{jk}, j in layer l
    assert table["x1"] == "a^{(0)}_{1}"
    assert table["dz2"] == r"\frac{\partial C_{0}}{\partial z^{(2)}}"


def test_default_notation_is_3b1b_for_chains_and_ng_otherwise():
    assert get(None, derive.chain(2)).name == "3b1b"
    assert get(None, derive.logistic_regression(2)).name == "ng"


def test_unknown_notation_is_a_clear_input_error():
    with pytest.raises(derive.BackpropInputError, match="known: 3b1b, ng"):
        get("feynman")


# ---------------------------------------------------------------------------- line breaking


def test_long_sum_breaks_into_lines_that_fit():
    terms = sp.symbols("w1:40")
    xs = sp.symbols("x1:40")
    expr = sp.Add(*[w * x for w, x in zip(terms, xs)])
    lines = break_expr(expr, TextbookPrinter(), budget=25)
    assert len(lines) > 2
    assert all(tex_width(line) <= 25 for line in lines)
    assert all(line.startswith("+ ") for line in lines[1:])


def test_product_around_a_long_sum_reopens_its_parenthesis_on_each_line():
    xs = sp.symbols("x1:30")
    expr = sp.Symbol("q") * sp.Add(*[sp.exp(x) / (1 + x) for x in xs])
    lines = break_expr(expr, TextbookPrinter(), budget=25)
    assert len(lines) > 1
    for line in lines:  # every line balances its own \left ... \right
        assert len(re.findall(r"\\left\b", line)) == len(re.findall(r"\\right\b", line))


def test_align_numbers_each_row_once():
    x = sp.Symbol("x")
    block = align([Row("y", [x + 1, x * 2], "eq:a"), Row("z", [x], "eq:b")], TextbookPrinter())
    assert block.count(r"\label") == 2
    assert block.startswith(r"\begin{align}") and block.endswith(r"\end{align}")
