"""``backprop derive|codegen|check|report net.py``: a file that defines ``model``."""

import re
from pathlib import Path

import pytest

import derive
from reports.cli.main import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_FILES = [
    path
    for path in (EXAMPLES / "custom_activation.py", EXAMPLES / "residual_net.py")
    if path.exists()
]


@pytest.fixture(autouse=True)
def scoped():
    with derive.scoped_registry():  # a model file's registrations stay in its test
        yield


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("backprop: error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_files_derive_codegen_and_check(path, capsys, tmp_path):
    assert main(["derive", str(path)]) == 0
    assert "Backward pass" in capsys.readouterr().out
    for target in ("numpy", "jax"):
        out = tmp_path / f"{target}.py"
        assert main(["codegen", str(path), "--target", target, "-o", str(out)]) == 0
        # a network with dropout layers takes their keep masks too (masks=None: evaluation),
        # and a NumPy kernel arrays to write its gradients into (out=None: new ones)
        signature = r"def loss_and_grads\(params, X, Y(, masks=None)?" + (
            r", out=None\):" if target == "numpy" else r"\):"
        )
        assert re.search(signature, out.read_text())
    assert main(["check", str(path), "--batch", "4"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("ok: kernel, JAX and FD agree")


def test_custom_activation_example_uses_its_registered_activation(capsys):
    assert main(["derive", str(EXAMPLES / "custom_activation.py")]) == 0
    out = capsys.readouterr().out
    assert "swish" in out.splitlines()[0]
    assert "A1 = Z1/(1 + exp(-Z1))" in out


def test_a_model_file_brings_its_own_network(tmp_path, capsys):
    path = tmp_path / "net.py"
    path.write_text("import derive\nmodel = derive.mlp([2, 3, 1], activation='tanh')\n")
    assert main(["derive", str(path)]) == 0
    assert "tanh hidden" in capsys.readouterr().out


def test_a_model_file_imports_its_neighbours(tmp_path, capsys):
    (tmp_path / "sizes_of_net.py").write_text("SIZES = [2, 3, 1]\n")
    path = tmp_path / "net.py"
    path.write_text("import derive\nfrom sizes_of_net import SIZES\nmodel = derive.mlp(SIZES)\n")
    assert main(["derive", str(path)]) == 0
    assert "mlp:2-3-1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "source, pattern",
    [
        ("import derive\n\nx = 1\nmodel = derive.mlp([3, 2], 'swosh')\n", r"line 4: .*'swosh'"),
        ("def f():\n    return 1 / 0\n\nmodel = f()\n", r"line 2: ZeroDivisionError"),
        ("x = 1\n", r"defines no 'model'"),
        ("model = 3\n", r"must be a derive.Model .* got int"),
        ("def f(:\n", r"line 1: SyntaxError"),
        ("import sys\nsys.exit(0)\nmodel = None\n", r"exited \(code 0\)"),
        ("raise ValueError('first\\nsecond')\nmodel = None\n", r"line 1: ValueError: first$"),
    ],
)
def test_a_bad_model_file_is_one_line_naming_file_and_line(tmp_path, capsys, source, pattern):
    path = tmp_path / "net.py"
    path.write_text(source)
    for command in ("derive", "check"):
        err = _one_line_error(capsys, [command, str(path)])
        assert str(path) in err
        assert re.search(pattern, err.rstrip("\n")), err


def test_a_missing_model_file_and_options_that_do_not_apply(tmp_path, capsys):
    assert "does not exist" in _one_line_error(capsys, ["derive", str(tmp_path / "no.py")])
    path = tmp_path / "net.py"
    path.write_text("import derive\nmodel = derive.mlp([2, 1])\n")
    err = _one_line_error(capsys, ["derive", str(path), "--activation", "tanh"])
    assert "--activation does not apply to a model file" in err


def test_a_file_that_surely_defines_no_model_is_refused_before_it_runs(tmp_path, capsys):
    """A script (a training run, say) with no global ``model`` is not run to find that out:
    the marker file it would write is not written. A ``model`` local to a function is not
    the file's."""
    marker = tmp_path / "ran.txt"
    path = tmp_path / "script.py"
    path.write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
        "def show(model):\n    for model in [model]:\n        print(model)\n"
        "class Holder:\n    model = None\n"
    )
    err = _one_line_error(capsys, ["derive", str(path)])
    assert "defines no 'model'" in err and str(path) in err
    assert not marker.exists()


@pytest.mark.parametrize(
    "source",
    [
        "import derive\nmodel, other = derive.mlp([2, 1]), 0\n",
        "import derive\nfor model in [derive.mlp([2, 1])]:\n    pass\n",
        "import derive\ndef make():\n    global model\n    model = derive.mlp([2, 1])\nmake()\n",
        "import derive\nglobals()['model'] = derive.mlp([2, 1])\n",
        "import derive\n[model := derive.mlp([2, 1])]\n",
        "from helper_net import model\n",
        "from helper_net import *\n",
        "import derive\nfrom contextlib import nullcontext\n"
        "with nullcontext(derive.mlp([2, 1])) as model:\n    pass\n",
    ],
    ids=["unpacked", "for", "global", "globals", "walrus", "import", "star", "with"],
)
def test_every_way_of_binding_model_runs_the_file(tmp_path, capsys, source):
    (tmp_path / "helper_net.py").write_text("import derive\nmodel = derive.mlp([2, 1])\n")
    path = tmp_path / "net.py"
    path.write_text(source)
    assert main(["derive", str(path)]) == 0, capsys.readouterr().err
    assert "mlp:2-1" in capsys.readouterr().out
