"""The perceptron rule trains one layer: a run on a deeper network is refused by the check
``numeric.train`` makes itself (``check_optimizer``), before the CLI announces the run, so
the refusal is its one error line, exit 2, and nothing is written."""

from __future__ import annotations

import numpy as np
import pytest

import derive
from derive.errors import BackpropInputError
from derive.optimizers import Adam, Perceptron
from numeric import codegen, train
from numeric.training import check_optimizer
from reports.cli.main import main

CONVNET = """\
from derive import network
from derive.layers import Conv2D, Dense, Flatten, MaxPool2D

model = network((6, 6, 1), [Conv2D(2, 3, "relu"), MaxPool2D(2), Flatten(), Dense(2, "softmax")],
                "cce")
"""


@pytest.mark.parametrize("command", ["train", "report"])
@pytest.mark.parametrize("model", ["mlp:2-3-1", "convnet"])
def test_the_perceptron_on_a_deeper_network_is_one_error_line(tmp_path, capsys, command, model):
    if model == "convnet":
        model = tmp_path / "tiny_convnet.py"
        model.write_text(CONVNET)
    out = tmp_path / "out"
    train_flag = ["--train"] if command == "report" else []
    args = [command, str(model), *train_flag, "--optimizer", "perceptron", "--epochs", "1"]
    assert main([*args, "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("backprop: error: the perceptron rule trains one layer")
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "tiny_convnet.py") == []


def test_train_refuses_what_the_pre_check_refuses_with_the_same_message():
    model = derive.mlp([2, 3, 1], activation="step", output="step", loss="mae")
    kernel = codegen(model.derive())
    with pytest.raises(BackpropInputError) as checked:
        check_optimizer(Perceptron(), model.param_shapes(), model)
    X, Y = np.zeros((4, 2)), np.zeros((4, 1))
    with pytest.raises(BackpropInputError) as trained:
        train(kernel, kernel.random_params(), X, Y, Perceptron(), progress=False)
    assert str(trained.value) == str(checked.value)
    assert "W1 (2, 3), b1 (3,), W2 (3, 1), b2 (1,)" in str(checked.value)


def test_the_pre_check_passes_one_layer_and_any_network_for_a_gradient_rule():
    unit = derive.mlp([2, 1], activation="step", output="step", loss="mae")
    check_optimizer(Perceptron(), unit.param_shapes(), unit)
    deep = derive.mlp([2, 3, 1], activation="tanh")
    check_optimizer(Adam(), deep.param_shapes(), deep)
    with pytest.raises(BackpropInputError, match="step output, but mlp:2-1 has sigmoid"):
        check_optimizer(Perceptron(), derive.mlp([2, 1]).param_shapes(), derive.mlp([2, 1]))


@pytest.mark.parametrize("command", ["train", "report"])
def test_the_perceptron_on_logreg_names_the_spec_that_is_the_perceptron(tmp_path, capsys, command):
    out = tmp_path / "out"
    train_flag = ["--train"] if command == "report" else []
    args = [command, "logreg:2", *train_flag, "--optimizer", "perceptron", "-o", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "logreg:2 is sigmoid + bce" in err and "mlp:2-1" in err
    assert not out.exists()
    # the spec it names trains
    assert main(["train", "mlp:2-1", "--optimizer", "perceptron", "--epochs", "1",
                 "--data", "blobs", "-o", str(out)]) == 0  # fmt: skip
