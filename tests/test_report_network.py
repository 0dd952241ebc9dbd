"""A report of a derive.network model shows each layer's backward step like a dense layer's."""

import re

import pytest

import derive
from derive.layers import Dense, Dropout, LayerNorm, Residual
from reports.document import write_report


@pytest.fixture(scope="module")
def network_report(tmp_path_factory):
    model = derive.network(
        4,
        [
            Dense(6, "tanh"),
            Residual(Dense(6, "relu")),
            LayerNorm(),
            Dropout(0.2),
            Dense(3, "softmax"),
        ],
        "cce",
        weight_decay=0.01,
    )
    result = write_report(model, tmp_path_factory.mktemp("net") / "r", compile_pdf=False)
    return model, result.tex.read_text()


def equation(tex: str, label: str) -> str:
    """The lines of the align row labelled ``label`` and its continuation lines."""
    match = re.search(
        rf"\n([^\n]*\\label{{eq:m:{label}}}[^\n]*(?:\n *&\\quad[^\n]*|\n *&=[^\n]*)*)", tex
    )
    assert match is not None, f"no equation eq:m:{label}"
    return match.group(1)


def test_every_parameter_and_every_layer_node_has_its_backward_step(network_report):
    model, tex = network_report
    for name in model.param_shapes():
        equation(tex, "d" + name)
    for name in ("A1", "R1", "N3", "A3", "A4"):  # residual input, sum, layer norm, dropout
        equation(tex, "d" + name)
    assert "The kernel agrees with JAX and with finite differences." in tex


def test_the_residual_fork_shows_both_branches(network_report):
    _, tex = network_report
    line = equation(tex, "dA1")
    assert r"\frac{\partial R_{1}}{\partial A^{[1]}}" in line
    assert r"\frac{\partial Z^{[2]}}{\partial A^{[1]}}" in line
    assert "dR_{1} + dZ^{[2]} W^{[2]\\top}" in line


def test_layer_norm_dropout_and_weight_decay_steps_read_as_the_textbook(network_report):
    _, tex = network_report
    norm = equation(tex, "dR1")  # the layer norm reads R1
    assert r"\sigma^{[3]}" in norm and norm.count(r"\operatorname{rowsum}") == 2
    assert r"M^{[4]}" in equation(tex, "dA3") and r"\frac{5}{4}" in equation(tex, "dA3")
    assert r"\frac{1}{100} W^{[5]}" in equation(tex, "dW5")
    assert r"\odot" in equation(tex, "dgamma3")


def test_the_residual_example_is_a_model_file_the_cli_checks(capsys):
    from reports.cli.main import main as backprop
    from reports.cli.model_file import load_model

    model = load_model("examples/residual_net.py")
    assert model.kind == "network" and [n.name for n in model.by_role("mask")] == ["M4", "M8"]
    assert backprop(["check", "examples/residual_net.py"]) == 0
    assert "ok: kernel, JAX and FD agree" in capsys.readouterr().out
