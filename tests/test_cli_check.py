"""``backprop check``: the table on stdout, exit 0 when kernel, JAX and FD agree, 1 on a
mismatch, 2 on bad input (one line on stderr)."""

import re
from pathlib import Path

import pytest

from numeric.generator import generate as generator
from reports.cli.main import main

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
        (["J = x/0"], "is undefined: a division by zero"),
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


# ---------------------------------------------------------------------------- --kernel FILE


def saved_kernel(capsys, tmp_path, *args, name="kernel.py") -> Path:
    """``backprop codegen ARGS -o FILE``: the file a user would check (and edit)."""
    path = tmp_path / name
    assert main(["codegen", *args, "-o", str(path)]) == 0
    capsys.readouterr()
    return path


def edited(path: Path, old: str, new: str, name: str) -> Path:
    """A copy of the kernel file with one line edited, the way a person's slip looks."""
    source = path.read_text()
    lines = [line for line in source.splitlines() if line.lstrip().startswith(old)]
    assert len(lines) == 1, f"no single line starting with {old!r}"
    out = path.with_name(name)
    out.write_text(source.replace(lines[0], lines[0].replace(old, new, 1)))
    return out


MLP_ARGS = ["mlp:4-3-2", "--activation", "tanh"]


@pytest.mark.parametrize(
    "args", [MLP_ARGS, ["chain:2", "--level", "matrix"], ["chain:1", "--target", "jax"]]
)
def test_a_saved_kernel_file_is_checked_and_named_in_the_report(capsys, tmp_path, args):
    spec_args = [a for a in args if a not in ("--target", "jax")]
    path = saved_kernel(capsys, tmp_path, *args)
    code, out, err = run(capsys, *spec_args, "--kernel", str(path))
    assert code == 0, out + err
    assert f"  kernel: {path}\n" in out
    assert out.rstrip().endswith("ok: kernel, JAX and FD agree")


@pytest.mark.parametrize(
    "args, old, new, broken, hint",
    [  # dZ2 without its 1/m: every gradient is m times too large
        (MLP_ARGS, "dZ2 = (A2 - Y) / m", "dZ2 = A2 - Y", {"W1", "b1", "W2", "b2"}, "1/m"),
        (
            MLP_ARGS,
            "dW2 = np.matmul(A1.T, dZ2",
            "dW2 = 2 * np.matmul(A1.T, dZ2",
            {"W2"},
            "off by ×2",
        ),
        (
            ["chain:2", "--level", "matrix"],
            "dw1 = np.vdot(X, dZ1)",
            "dw1 = -np.vdot(X, dZ1)",
            {"w1"},
            "sign",
        ),
    ],
)
def test_a_hand_broken_kernel_file_exits_1_and_the_table_says_where(
    capsys, tmp_path, args, old, new, broken, hint
):
    path = edited(saved_kernel(capsys, tmp_path, *args), old, new, "broken.py")
    code, out, err = run(capsys, *args, "--kernel", str(path))
    assert code == 1 and err == "", out + err
    rows = {m[1]: m[0] for m in re.finditer(r"^  (\w+) +\(.*$", out, re.MULTILINE)}
    assert broken <= set(rows) and len(rows) >= 2, out
    for name, row in rows.items():
        assert row.endswith("MISMATCH (JAX and FD)") == (name in broken), out
    assert hint in out and out.rstrip().splitlines()[-1].startswith("MISMATCH")


def test_a_kernel_file_whose_loss_is_always_nan_exits_1_not_2(capsys, tmp_path):
    """NaN where the model's loss is finite is the kernel's failure, not bad input."""
    path = saved_kernel(capsys, tmp_path, *MLP_ARGS)
    source = path.read_text().replace("return float(J)", "return float(J) * float('nan')")
    path.write_text(source)
    code, out, err = run(capsys, *MLP_ARGS, "--kernel", str(path))
    assert code == 1 and err == "", out + err
    assert "cost J: kernel nan, JAX " in out and "the kernel's loss() gives nan" in out


def test_a_kernel_file_for_other_parameters_exits_2_with_one_line(capsys, tmp_path):
    path = saved_kernel(capsys, tmp_path, *MLP_ARGS)
    code, out, err = run(capsys, "mlp:4-5-2", "--kernel", str(path))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"{path} is not a kernel for mlp:4-5-2: W1 is (4, 3) in the kernel" in err
    code, _, err = run(capsys, "chain:2", "--kernel", str(path))
    assert code == 2 and "its PARAMS are W1, b1, W2, b2; the model's are w1, b1" in err


def test_a_kernel_file_that_raises_exits_2_naming_its_line(capsys, tmp_path):
    saved = saved_kernel(capsys, tmp_path, *MLP_ARGS)
    path = edited(saved, "dZ2 = (A2 - Y) / m", "dZ2 = (A2 - Y) @ np.ones((3, 3)) / m", "r.py")
    lines = enumerate(path.read_text().splitlines(), start=1)
    line = next(k for k, text in lines if "np.ones((3, 3))" in text)
    code, out, err = run(capsys, *MLP_ARGS, "--kernel", str(path))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"{path}, line {line}, in loss_and_grads: ValueError: matmul" in err


@pytest.mark.parametrize(
    "text, message",
    [
        ("x = (\n", "line 1: SyntaxError"),
        ("import no_such_module_here\n", "ModuleNotFoundError: No module named"),
        ("PARAMS = {}\n", "is not a kernel module: it defines no forward(), loss()"),
        (
            "PARAMS = 3\ndef forward(p, X): pass\ndef loss(p, X, Y): pass\n"
            "def loss_and_grads(p, X, Y): pass\n",
            "PARAMS must map each parameter name",
        ),
        (None, "No such file or directory"),
    ],
)
def test_a_file_that_is_not_a_kernel_exits_2_with_one_line(capsys, tmp_path, text, message):
    path = tmp_path / "not_a_kernel.py"
    if text is not None:
        path.write_text(text)
    code, out, err = run(capsys, "chain:2", "--kernel", str(path))
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
