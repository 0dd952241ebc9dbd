"""The tensor-network check on the seed course's convnet: it passes, in float64 and float32;
a kernel with a wrong gradient fails it on every route; a bad model file is one line and
exit 2. (The closed-form route on random networks: tests/test_tensor_closed_form.py.)"""

import types
from pathlib import Path

import pytest

from numeric.generator.tensor_kernel import tensor_codegen
from numeric.verification.tensor_check import check_tensor_network, load_model, main

EXAMPLE = Path(__file__).parent.parent / "examples" / "mnist_convnet.py"


@pytest.fixture(scope="module")
def convnet():
    return load_model(str(EXAMPLE))


def test_the_example_is_the_keras_convnet(convnet):
    assert convnet.param_shapes() == {
        "W1": (3, 3, 1, 32), "b1": (32,), "W3": (3, 3, 32, 64), "b3": (64,),
        "W7": (5 * 5 * 64, 10), "b7": (10,),
    }  # fmt: skip
    assert [stage.outputs for stage in convnet.stages][:4] == [
        (26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64)
    ]  # fmt: skip


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_convnet_passes_its_check(convnet, dtype):
    result = check_tensor_network(convnet, dtype, batch=2)
    assert result.ok, result.report()
    assert [row.name for row in result.rows] == list(convnet.param_shapes())


def test_a_wrong_gradient_fails_the_check(convnet):
    source = tensor_codegen(convnet).replace("db3 = dZ3.sum(", "db3 = 2 * dZ3.sum(")
    wrong = types.ModuleType("wrong")
    exec(compile(source, "<wrong>", "exec"), wrong.__dict__)
    result = check_tensor_network(convnet, batch=2, kernel=wrong)
    assert not result.ok
    assert [row.name for row in result.rows if not row.ok] == ["b3"]
    assert result.disagreeing("b3") == {"JAX", "FD", "closed form"}
    assert "MISMATCH (JAX, FD, closed form)" in result.report()


def test_the_command_line_exits_0_on_the_example_and_2_on_a_bad_file(tmp_path, capsys):
    assert main([str(EXAMPLE), "--batch", "1"]) == 0
    assert "OK: the kernel agrees" in capsys.readouterr().out
    empty = tmp_path / "net.py"
    empty.write_text("x = 1\n")
    assert main([str(empty)]) == 2
    assert "defines no 'model'" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.py")]) == 2


def test_backprop_check_codegen_and_report_take_the_convnet_file(tmp_path, capsys):
    from reports.cli.main import main as backprop

    assert backprop(["check", str(EXAMPLE), "--batch", "1"]) == 0
    assert "OK: the kernel agrees" in capsys.readouterr().out
    assert backprop(["codegen", str(EXAMPLE), "--target", "jax"]) == 0
    assert "import jax.numpy as jnp" in capsys.readouterr().out
    assert backprop(["derive", str(EXAMPLE)]) == 0  # each layer's rules: test_cli_derive_tensor
    assert "Layer 1, Conv2D(32, 3, 'relu')" in capsys.readouterr().out


def test_backprop_codegen_of_a_tensor_network_takes_dtype(capsys):
    from reports.cli.main import main as backprop

    for dtype in ("float32", "float64"):
        assert backprop(["codegen", str(EXAMPLE), "--dtype", dtype]) == 0
        assert f"X.astype(np.{dtype})" in capsys.readouterr().out


def test_backprop_check_takes_a_saved_tensor_kernel_and_fails_a_wrong_one(tmp_path, capsys):
    from reports.cli.main import main as backprop

    saved = tmp_path / "kernel.py"
    assert backprop(["codegen", str(EXAMPLE), "-o", str(saved)]) == 0
    source = saved.read_text()
    assert source.count("    db1 = dZ1.sum(") == 1
    capsys.readouterr()
    assert backprop(["check", str(EXAMPLE), "--batch", "1", "--kernel", str(saved)]) == 0
    saved.write_text(source.replace("    db1 = dZ1.sum(", "    db1 = -dZ1.sum("))
    capsys.readouterr()
    assert backprop(["check", str(EXAMPLE), "--batch", "1", "--kernel", str(saved)]) == 1
    wrong = [line for line in capsys.readouterr().out.splitlines() if "MISMATCH (" in line]
    assert len(wrong) == 1 and wrong[0].split()[0] == "b1", wrong
    assert wrong[0].endswith("MISMATCH (JAX, FD, closed form)")
