"""``backprop check``: the table on stdout, exit 0 when kernel, JAX and FD agree, 1 on a
mismatch, 2 on bad input (one line on stderr)."""

import pytest

from numeric import generator
from reports.cli import main

from .test_verify import with_gradient

pytest.importorskip("jax")


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "args",
    [
        ["logreg:3"],
        ["chain:3"],
        ["chain:3", "--level", "matrix", "--activation", "tanh", "--loss", "huber"],
        ["mlp:4-5-3", "--activation", "tanh", "--output", "softmax", "--loss", "cce"],
        ["J = 3*(a + b*c)"],
        ["mlp:3-4-2", "--activation", "relu", "--dtype", "float32", "--batch", "5"],
    ],
)
def test_right_kernels_exit_0_with_a_row_per_parameter(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 0, out + err
    assert out.startswith(f"backprop check {args[0]} (")
    assert "JAX abs" in out and "FD rel" in out and "verdict" in out
    assert out.rstrip().endswith("ok: kernel, JAX and FD agree")


def test_the_options_reach_the_check(capsys):
    _, out, _ = run(capsys, "logreg:2", "--dtype", "float32", "--batch", "3", "--seed", "7")
    assert "float32, batch 3, seed 7" in out
    _, other, _ = run(capsys, "logreg:2", "--dtype", "float32", "--batch", "3", "--seed", "8")
    cost = [line for line in out.splitlines() if "cost J" in line]
    assert cost != [line for line in other.splitlines() if "cost J" in line]


@pytest.mark.parametrize("expr", ["2 * g", "-g", "g * m"])
def test_a_wrong_kernel_exits_1_and_says_where(capsys, monkeypatch, expr):
    right = generator.codegen

    def broken_codegen(derivation, target="numpy"):
        return with_gradient(right(derivation, target), "W2", expr)

    monkeypatch.setattr(generator, "codegen", broken_codegen)
    code, out, err = run(capsys, "mlp:4-3-2", "--activation", "tanh")
    assert code == 1, out + err
    w2 = next(line for line in out.splitlines() if line.startswith("  W2 "))
    assert w2.endswith("MISMATCH (JAX and FD)")
    assert "W2: JAX disagrees" in out and "W2: FD disagrees" in out
    assert out.rstrip().splitlines()[-1].startswith("MISMATCH")


@pytest.mark.parametrize(
    "args, message",
    [
        (["logreg:3", "--batch", "0"], "--batch must be a positive integer"),
        (["mlp:4-x-2"], "bad size 'x'"),
        (["logreg:3", "--dtype", "float16"], "invalid choice"),
        (["logreg:3", "--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        (["J = log(-a**2 - 1)"], "is not finite at any of 8 random draws"),
        (["J = x/0"], "divides by zero"),
        (["logreg:3", "--batch", str(10**13)], "out of memory"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_generated_kernel_that_raises_is_a_bug_shown_with_its_traceback(monkeypatch):
    """Not bad input: the exception reaches the caller (exit 1 and a traceback from the
    console script), never turned into a misleading one-liner."""
    right = generator.codegen

    def matmul_codegen(derivation, target="numpy"):
        kernel = right(derivation, target)
        kernel.source = kernel.source.replace("X * w1", "X @ w1")
        return kernel

    monkeypatch.setattr(generator, "codegen", matmul_codegen)
    with pytest.raises(ValueError, match="matmul"):
        main(["check", "chain:2", "--level", "matrix"])
