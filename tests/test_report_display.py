"""Jupyter display of models and derivations (``_repr_latex_`` / ``_repr_markdown_``)."""

import derive
from reports.display import install, show


def test_model_and_derivation_display_as_latex_and_markdown():
    install()
    model = derive.logistic_regression(2)
    derivation = model.derive()
    assert model._repr_latex_().startswith("$$\\begin{aligned}")
    assert "**logreg:2" in model._repr_markdown_()
    latex = derivation._repr_latex_()
    assert "dz &= " in latex and "a - y" in latex  # the simplified step is shown


def test_show_picks_a_notation():
    d = derive.chain(1).derive()
    assert r"\frac{\partial C_{0}}{\partial z^{(1)}}" in show(d, "3b1b")._repr_latex_()
    assert "dz^{[1]}" in show(d, "ng")._repr_latex_()


def test_big_networks_display_matrix_level_in_a_few_lines():
    install()
    text = derive.mlp([784, 512, 10]).derive()._repr_markdown_()
    assert "dW^{[1]}" in text and text.count("\\\\") < 30
