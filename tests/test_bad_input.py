"""Bad input gets a ValueError that names the bad value and what is allowed; the CLI turns it
into one line on stderr and exit code 2."""

import re
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import derive
import numeric
from derive import BackpropInputError, IncompatibleError, SpecError, UnknownNameError
from derive.layers import Dense, Dropout, LayerNorm, Residual
from derive.spec import build
from numeric.gradcheck import GradcheckInputError
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


@pytest.mark.parametrize("text", ["J = sum(X @ W)", "J = mean(a)", "J = a @ b", "J = a.T * b"])
def test_matrix_syntax_in_a_scalar_expression_points_to_from_matrix_expr(text, capsys):
    with pytest.raises(BackpropInputError, match=r"needs their shapes: derive.from_matrix_expr"):
        derive.from_expr(text)
    assert main(["derive", text]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "from_matrix_expr" in err


@pytest.mark.parametrize("text", ["J = foo(a)", "J = a[1]"])
def test_other_unknown_syntax_gets_no_matrix_hint(text):
    with pytest.raises(BackpropInputError) as raised:
        derive.from_expr(text)
    assert "from_matrix_expr" not in str(raised.value)


def test_an_unknown_function_is_named_before_its_arguments_are_read():
    with pytest.raises(BackpropInputError, match="unknown function '__import__'; known: abs"):
        derive.from_expr('J = __import__("os")')


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: Dense(0), "Dense units must be a positive integer, got 0"),
        (lambda: Dense(-3), "Dense units must be a positive integer, got -3"),
        (lambda: Dense(2.5), "Dense units must be a positive integer, got 2.5"),
        (lambda: Dense(True), "Dense units must be a positive integer, got True"),
        (lambda: Dense(4, "swish"), "unknown activation 'swish'; known: .*relu.*tanh"),
        (lambda: Dropout(1.0), r"rate must be a number in \[0, 1\).*got 1.0"),
        (lambda: Dropout(-0.1), r"rate must be a number in \[0, 1\).*got -0.1"),
        (lambda: Dropout("half"), r"rate must be a number in \[0, 1\).*got 'half'"),
        (lambda: LayerNorm(0), "eps must be a positive finite number, got 0"),
        (lambda: LayerNorm(float("nan")), "eps must be a positive finite number, got nan"),
        (lambda: Residual(), "Residual needs at least one inner layer"),
        (lambda: Residual(Dense(3), "relu"), "unknown layer 'relu'; known: Dense, Residual"),
    ],
)
def test_bad_layers_are_refused_by_name(make, pattern):
    with pytest.raises(BackpropInputError, match=pattern):
        make()


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
    n_inputs, layers, loss = args
    layers = [Dense(4), Residual(Dense(4))] if layers is None else layers
    with pytest.raises(BackpropInputError, match=pattern):
        derive.network(n_inputs, layers, loss)


def test_residual_whose_inner_layers_change_the_width_names_both_widths():
    with pytest.raises(BackpropInputError, match="input has 4 features.*give 6"):
        derive.network(3, [Dense(4), Residual(Dense(8), Dense(6))], "mse")


@pytest.mark.parametrize("decay", [-0.1, float("inf"), "0.1", True])
def test_weight_decay_must_be_a_number_at_least_zero(decay):
    with pytest.raises(BackpropInputError, match="weight_decay must be a finite number >= 0"):
        derive.network(3, [Dense(2)], "mse", weight_decay=decay)


# ---------------------------------------------------------------------------- the table
# One row per bad input: (what is given, the exception, a piece of the message that names the
# bad value). A row's input is a CLI argv (exit 2, one line on stderr, no traceback) or a
# callable of the Python API (the named exception, a one-line message). Add rows here.

_SUM_3000 = "J = " + " + ".join(f"x{i}" for i in range(3000))
_MLP = derive.build("mlp:3-2", for_kernels=True)
_KERNEL = numeric.codegen(_MLP.derive())
_PARAMS = _KERNEL.random_params()


def _grad_check(**kwargs):
    params = kwargs.pop("params", {"w": np.array([1.0, 2.0])})
    loss = kwargs.pop("loss", lambda p: float(np.sum(p["w"] ** 2)))
    grad = kwargs.pop("grad", lambda p: {"w": 2 * p["w"]})
    return lambda: numeric.check_gradients(loss, grad, params, **kwargs)


CLI = BackpropInputError  # a CLI row exits 2 with this error's one line


def _XW(rows, cols):
    return {"X": ("m", 3), "W": (rows, cols)}


ROWS = [
    # model specs
    (["derive", "mlp:²-3"], CLI, "'²'"),
    (["derive", "mlp:٣-٢"], CLI, "'٣'"),
    (["derive", "mlp:3.5-2"], CLI, "'3.5'"),
    (["derive", "mlp:-3-2"], CLI, "''"),
    (["derive", "mlp:3-2-"], CLI, "''"),
    (["derive", "mlp:4-0-2"], CLI, "got 0"),
    (["derive", "logreg:0"], CLI, "got 0"),
    (["derive", "logreg:2-3"], CLI, "'logreg:2-3'"),
    (["derive", "chain:0"], CLI, "got 0"),
    (["derive", "chain:2000"], CLI, "2000 layers"),
    (["codegen", "chain:2000"], CLI, "2000 layers"),
    (["check", "chain:101"], CLI, "101 layers"),
    (["derive", "mpl:3-2"], CLI, "'mpl' (did you mean 'mlp'?)"),
    (["derive", "nonsense:1"], CLI, "'nonsense'"),
    (["derive", "mlp:784-512-10", "--level", "scalar"], CLI, "407050 parameters"),
    # expressions
    (["derive", "J = 1e999*x"], CLI, "'1e999'"),
    (["derive", "J = 10**10**10*x"], CLI, "10 ** 10 ** 10"),
    (["derive", "J = 2**2000*x"], CLI, "2 ** 2000"),
    (["derive", "J = x**100000"], CLI, "x ** 100000"),
    (["derive", "J = " + "9" * 400 + "*x"], CLI, "99999"),
    (["derive", "J = sqrt(-1)*x"], CLI, "'J = sqrt(-1)*x' is complex"),
    (["derive", "J = log(-2)*x"], CLI, "'J = log(-2)*x' is complex"),
    (["derive", _SUM_3000], CLI, "too long (limit 5,000)"),
    (["derive", "J = x**2 + dx**2"], CLI, "'dx'"),
    (["derive", "J = J*x"], CLI, "'J'"),
    (["derive", "J = u*du"], CLI, "'du'"),
    (["derive", "J = x/0"], CLI, "'J = x/0' is undefined"),
    (["derive", "J = log(0)*x"], CLI, "'J = log(0)*x' is undefined"),
    (["derive", "J = 3"], CLI, "at least one symbol"),
    (["derive", "2 = x"], CLI, "'2'"),
    (["derive", "J = x @ y"], CLI, "'x @ y'"),
    (["derive", "J = x % 2"], CLI, "'x % 2'"),
    (["derive", "J = x // 2"], CLI, "'x // 2'"),
    (["derive", "J = x < y"], CLI, "'x < y'"),
    (["derive", "J = 'text'*x"], CLI, "'text'"),
    (["derive", "J = 1j*x"], CLI, "1j"),
    (["derive", "J = True*x"], CLI, "True"),
    (["derive", "J = x.real"], CLI, "'x.real'"),
    (["derive", "J = exp(x=1)"], CLI, "'J = exp(x'"),
    (["derive", "J = [x]"], CLI, "'[x]'"),
    (["derive", "J = {x}"], CLI, "'{x}'"),
    (["derive", "J = not x"], CLI, "'not x'"),
    (["derive", "J = swish(x)"], CLI, "'swish'"),
    (["derive", "J = exp(x, 2)"], CLI, "exp takes one argument"),
    (["derive", "J = exp"], CLI, "'exp' is a function"),
    (["derive", "J = x +"], CLI, "'x +'"),
    (["derive", "J = __import__('os')"], CLI, "'__import__'"),
    # options
    (["derive", "mlp:3-2", "--activation", "rleu"], CLI, "'rleu' (did you mean 'relu'?)"),
    (["derive", "mlp:3-2", "--activaton", "relu"], CLI, "'--activation'"),
    (["derive", "mlp:3-2", "--loss", "bec"], CLI, "'bec' (did you mean 'bce'?)"),
    (["derive", "mlp:3-2", "--output", "softmx"], CLI, "'softmax'"),
    (["derive", "mlp:3-2", "--activation", ""], CLI, "--activation '' is empty"),
    (["derive", "mlp:3-2", "--loss", " "], CLI, "--loss ' ' is empty"),
    (["derive", "mlp:3-2", "-o", ""], CLI, "-o '' is empty"),
    (["codegen", "mlp:3-2", "-o", ""], CLI, "-o '' is empty"),
    (["codegen", "mlp:3-2", "-o", "/no/such/dir/k.py"], CLI, "'/no/such/dir'"),
    (["codegen", "mlp:3-2", "--target", "torch"], CLI, "'torch'"),
    (["check", "mlp:3-2", "--dtype", "flaot32"], CLI, "(did you mean 'float32'?)"),
    (["dervie", "mlp:3-2"], CLI, "(did you mean 'derive'?)"),
    (["check", "mlp:3-2", "--batch", "0"], CLI, "got 0"),
    (["check", "mlp:3-2", "--batch", "ten"], CLI, "'ten'"),
    (["check", "mlp:3-2", "--seed", "-1"], CLI, "got -1"),
    (["check", "mlp:99999999-1"], CLI, "mlp:99999999-1"),
    (["check", "mlp:3-2", "--batch", "100000000"], CLI, "batch of 100000000"),
    (["check", "mlp:3-2", "--kernel", "/no/such/kernel.py"], CLI, "/no/such/kernel.py"),
    (["check", "mlp:3-2", "--kernel", "/"], CLI, "'/' is a directory"),
    (["derive", "logreg:3", "--loss", "mse"], CLI, "--loss"),
    (["report", "--seed", "-2"], CLI, "got -2"),
    (["report", "mlp:3-2", "--notation", "feynman"], CLI, "'feynman'"),
    # issue 11: activation lists, model files
    (["derive", "mlp:3-4-2", "--activation", "relu,tanh"], CLI, "2 activations (relu,tanh)"),
    (["derive", "mlp:3-4-4-2", "--activation", "relu,rleu"], CLI, "'rleu'"),
    (["derive", "/no/such/net.py"], CLI, "'/no/such/net.py' does not exist"),
    (["check", "/tmp"], CLI, "'/tmp'"),
    # the Python API
    (lambda: numeric.codegen("mlp:3-2"), TypeError, "'mlp:3-2'"),
    (lambda: numeric.codegen(42), TypeError, "int"),
    (lambda: numeric.verify("mlp:3-2"), TypeError, "'mlp:3-2'"),
    (
        lambda: _KERNEL.loss_and_grads(_PARAMS, [[1.0, 2.0, 3.0]], np.zeros((1, 2))),
        TypeError,
        "np.asarray(X)",
    ),
    (
        lambda: _KERNEL.loss_and_grads(_PARAMS, np.ones((4, 3)), np.zeros((4, 3))),
        CLI,
        "Y has shape (4, 3)",
    ),
    (lambda: _KERNEL.forward(_PARAMS, np.ones((4, 5))), CLI, "X has shape (4, 5)"),
    (lambda: derive.from_expr("x*y", params=["x"], inputs=["x"]), CLI, "'x' is given as"),
    (lambda: derive.from_expr("x*y", params=["z"]), CLI, "'z'"),
    (lambda: derive.from_expr(sp.Symbol("a\nb", real=True) * 2), CLI, "'a\\nb'"),
    (lambda: derive.from_expr(sp.Symbol('a"""', real=True) * 2), CLI, '\'a"""\''),
    (lambda: derive.from_expr(sp.Symbol("a\\b", real=True) * 2), CLI, "a\\\\b"),
    (lambda: derive.mlp([3, 2], activation=5), TypeError, "5"),
    (lambda: derive.mlp([3, 2], activation=["relu"]), CLI, "no hidden layer to take it"),
    (lambda: derive.chain(2, activation="swish"), CLI, "'swish'"),
    (lambda: derive.build("mlp:3-2", level="vector"), CLI, "'vector'"),
    (lambda: derive.mlp([3, 4, 2], activation=["relu", "tanh"]), CLI, "2 activations"),
    (lambda: derive.register_activation("relu", "x"), CLI, "'relu': it is a built-in"),
    (lambda: derive.register_activation("W1", "x"), CLI, "'W1': it collides"),
    (lambda: derive.register_activation("dz", "x"), CLI, "'dz': it collides"),
    (lambda: derive.register_activation("my act", "x"), CLI, "'my act'"),
    (lambda: derive.register_activation("twist", "x*w"), CLI, "it also has w"),
    (lambda: derive.register_activation("root", "sqrt(x)"), CLI, "'root' must be a finite real"),
    (lambda: derive.register_loss("my_loss", "(a - y)**2", reduction="max"), CLI, "'max'"),
    (lambda: derive.from_matrix_expr("sum(X @ W)", _XW(2, 2)), CLI, "X (m, 3) @ W (2, 2)"),
    (lambda: derive.from_matrix_expr("X @ W", _XW(3, 2)), CLI, "must be a scalar"),
    (lambda: derive.from_matrix_expr("sum(gamma(X @ W))", _XW(3, 2)), CLI, "'gamma'; known: sum"),
    (lambda: derive.from_matrix_expr("sum(X @ V)", _XW(3, 2)), CLI, "unknown symbol 'V'"),
    (lambda: derive.from_matrix_expr("sum(X @ W)", _XW(3, "k")), CLI, "bad size 'k'"),
    (lambda: derive.from_matrix_expr("sum(X @ W)", _XW(3, 2), ["Q"]), CLI, "'Q'"),
    (_grad_check(rtol=float("nan")), GradcheckInputError, "rtol"),
    (_grad_check(atol=float("nan")), GradcheckInputError, "atol"),
    (_grad_check(rtol=-1e-3), GradcheckInputError, "-0.001"),
    (_grad_check(rtol="1e-3"), TypeError, "'1e-3'"),
    (_grad_check(loss=lambda p: "0.5"), TypeError, "str"),
    (_grad_check(loss=lambda p: None), TypeError, "NoneType"),
    (_grad_check(mode="quick"), GradcheckInputError, "'quick'"),
    (_grad_check(params={"w": np.array([1, 2])}), GradcheckInputError, "int64"),
    (_grad_check(params={"w": np.array([1.0, np.inf])}), GradcheckInputError, "index (1,)"),
]


def _row_id(row) -> str:
    given = row[0]
    text = " ".join(given) if isinstance(given, list) else f"api:{row[2]}"
    return text[:60]


@pytest.mark.parametrize("given, error, named", ROWS, ids=[_row_id(r) for r in ROWS])
def test_each_bad_input_is_refused_in_one_line_naming_it(given, error, named, capsys):
    if isinstance(given, list):
        assert main(given) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("backprop: error: "), err
        assert "Traceback" not in err and named in err, err
        return
    with pytest.raises(error) as info:
        given()
    message = str(info.value)
    assert "\n" not in message.strip() and named in message, message


def test_the_table_holds_at_least_80_bad_inputs():
    assert len(ROWS) >= 80
