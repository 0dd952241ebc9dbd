"""Bad input gets a ValueError that names the bad value and what is allowed; the CLI turns it
into one line on stderr and exit code 2."""

import re
import subprocess
import sys

import pytest

import derive
from derive import BackpropInputError, IncompatibleError, SpecError, UnknownNameError
from derive.spec import build
from reports.cli.main import main


@pytest.mark.parametrize("sizes", [[4, 0, 2], [4, -1, 2], [2], [], [2.5, 1], [True, 2]])
def test_bad_layer_sizes(sizes):
    with pytest.raises(SpecError, match="positive integer|at least 2"):
        derive.mlp(sizes)


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as err:
        derive.mlp([2, 2], activation="swish")
    assert "'swish'" in str(err.value)
    for name in ("relu", "sigmoid", "tanh", "softplus"):
        assert name in str(err.value)


def test_unknown_loss_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="'hinge'.*bce.*cce"):
        derive.chain(2, loss="hinge")


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(sizes=[3, 1], output="sigmoid", loss="cce"), "needs a softmax output"),
        (dict(sizes=[3, 2], output="softmax", loss="bce"), "needs a sigmoid output"),
        (dict(sizes=[3, 2], output="softmax", loss="cce_logits"), "needs a linear output"),
        (dict(sizes=[3, 1], output="softmax", loss="mse"), "at least 2 outputs"),
        (dict(sizes=[3, 1], output="linear", loss="cce_logits"), "at least 2 outputs"),
        (dict(sizes=[3, 3, 2], activation="softmax"), "only available as the output"),
    ],
)
def test_loss_that_does_not_fit_the_output(kwargs, pattern):
    with pytest.raises(IncompatibleError, match=pattern):
        derive.mlp(**kwargs)


def test_scalar_level_refuses_huge_networks():
    with pytest.raises(SpecError, match="use level='matrix'"):
        derive.mlp([784, 512, 10], level="scalar")


@pytest.mark.parametrize(
    "spec",
    ["mlp:4--2", "mlp:", "mlp:4-x-2", "logreg:2-3", "chain:", "foo:3", "", "mlp:0-2", "chain:0"],
)
def test_malformed_specs(spec):
    with pytest.raises(BackpropInputError):
        build(spec)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "a.b",
        "x[0]",
        "lambda: 1",
        "f(x)",
        "exp(1, 2)",
        "a +",
        "exp",
        "(a, b)",
        "a if b else c",
    ],
)
def test_expressions_are_parsed_never_evaluated(text):
    with pytest.raises(BackpropInputError):
        derive.from_expr(text)


def test_expression_parameter_must_be_in_the_expression():
    with pytest.raises(BackpropInputError, match="'z' is not in the expression"):
        derive.from_expr("a*b", params=["z"])


@pytest.mark.parametrize("text", ["J = x/0", "J = log(0)*x", "J = x*0/0"])
def test_undefined_expressions_are_refused_by_name(text):
    with pytest.raises(BackpropInputError, match=re.escape(repr(text)) + " is undefined"):
        derive.from_expr(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["derive", "mlp:4-0-2"],
        ["derive", "J = x/0"],
        ["derive", "mlp:3-1", "--loss", "cce"],
        ["derive", "mlp:3-2", "--activation", "swish"],
        ["derive", "nonsense:1"],
        ["derive", "a.b"],
        ["derive"],
        ["frobnicate"],
        ["derive", "logreg:3", "--activation", "tanh"],
        ["codegen", "logreg:3", "--dtype", "float16"],
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("backprop: error: ")
    assert "Traceback" not in err


def test_installed_cli_exits_2_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "reports.cli.main", "derive", "mlp:4-0-2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "backprop: error: layer size #1 must be a positive integer, got 0"


@pytest.mark.parametrize("command, first", [("derive", b"chain:100"), ("codegen", b'"""NumPy')])
def test_a_reader_that_leaves_early_gets_no_traceback(command, first):
    # backprop derive ... | head: the rest of the output goes nowhere, without a word; the
    # exit code says the output was cut (the chain:100 kernel, 90 kB, is more than a pipe holds)
    command = [sys.executable, "-m", "reports.cli.main", command, "chain:100"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(first)
    proc.stdout.close()
    assert proc.stderr.read() == b""
    assert proc.wait() == 141


def test_an_unknown_function_is_named_before_its_arguments_are_read():
    with pytest.raises(BackpropInputError, match="unknown function '__import__'; known: abs"):
        derive.from_expr('J = __import__("os")')


def _layers():
    from derive.layers import Dense, Dropout, LayerNorm, Residual

    return Dense, Dropout, LayerNorm, Residual


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda D, Dr, LN, R: D(0), "Dense units must be a positive integer, got 0"),
        (lambda D, Dr, LN, R: D(-3), "Dense units must be a positive integer, got -3"),
        (lambda D, Dr, LN, R: D(2.5), "Dense units must be a positive integer, got 2.5"),
        (lambda D, Dr, LN, R: D(True), "Dense units must be a positive integer, got True"),
        (lambda D, Dr, LN, R: D(4, "swish"), "unknown activation 'swish'; known: .*relu.*tanh"),
        (lambda D, Dr, LN, R: Dr(1.0), r"rate must be a number in \[0, 1\).*got 1.0"),
        (lambda D, Dr, LN, R: Dr(-0.1), r"rate must be a number in \[0, 1\).*got -0.1"),
        (lambda D, Dr, LN, R: Dr("half"), r"rate must be a number in \[0, 1\).*got 'half'"),
        (lambda D, Dr, LN, R: LN(0), "eps must be a positive finite number, got 0"),
        (lambda D, Dr, LN, R: LN(float("nan")), "eps must be a positive finite number, got nan"),
        (lambda D, Dr, LN, R: R(), "Residual needs at least one inner layer"),
        (lambda D, Dr, LN, R: R(D(3), "relu"), "unknown layer 'relu'; known: Dense, Residual"),
    ],
)
def test_bad_layers_are_refused_by_name(make, pattern):
    with pytest.raises(BackpropInputError, match=pattern):
        make(*_layers())


@pytest.mark.parametrize(
    "args, pattern",
    [
        ((3, ["Dense(4)"], "mse"), "unknown layer 'Dense\\(4\\)'; known: Dense, Residual"),
        ((3, [], "mse"), "at least one layer"),
        ((0, None, "mse"), "n_inputs must be a positive integer.*got 0"),
        ((3, None, "hinge"), "unknown loss 'hinge'; known: .*bce"),
        ((3, "residual", "mse"), "layers must be a list of layers, got 'residual'"),
    ],
)
def test_bad_networks_are_refused_by_name(args, pattern):
    Dense, _, _, Residual = _layers()
    n_inputs, layers, loss = args
    layers = [Dense(4), Residual(Dense(4))] if layers is None else layers
    with pytest.raises(BackpropInputError, match=pattern):
        derive.network(n_inputs, layers, loss)


def test_residual_whose_inner_layers_change_the_width_names_both_widths():
    Dense, _, _, Residual = _layers()
    with pytest.raises(BackpropInputError, match="input has 4 features.*give 6"):
        derive.network(3, [Dense(4), Residual(Dense(8), Dense(6))], "mse")


@pytest.mark.parametrize("decay", [-0.1, float("inf"), "0.1", True])
def test_weight_decay_must_be_a_number_at_least_zero(decay):
    Dense, _, _, _ = _layers()
    with pytest.raises(BackpropInputError, match="weight_decay must be a finite number >= 0"):
        derive.network(3, [Dense(2)], "mse", weight_decay=decay)
