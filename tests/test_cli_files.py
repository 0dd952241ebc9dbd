"""``backprop derive`` and ``backprop codegen`` with ``-o FILE`` and ``--dtype``."""

import numpy as np

from numeric.generator.kernel import load
from reports.cli.main import main


def test_derive_writes_the_derivation_it_prints_to_a_file(tmp_path, capsys):
    assert main(["derive", "chain:2"]) == 0
    printed = capsys.readouterr().out
    path = tmp_path / "chain2.txt"
    assert main(["derive", "chain:2", "-o", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err == f"wrote {path}\n"
    assert path.read_text(encoding="utf-8") == printed and "Backward pass" in printed


def test_codegen_dtype_is_the_dtype_integer_inputs_are_computed_in(tmp_path, capsys):
    path = tmp_path / "kernel.py"
    args = ["codegen", "mlp:4-3-2", "--output", "linear", "--loss", "mse", "--dtype", "float32"]
    assert main([*args, "-o", str(path)]) == 0
    module = load(path)
    rng = np.random.default_rng(0)
    params = {n: rng.standard_normal(s).astype(np.float32) for n, s in module.PARAMS.items()}
    pixels, Y = rng.integers(0, 256, (5, 4), dtype=np.uint8), rng.random((5, 2))
    J, grads = module.loss_and_grads(params, pixels, Y)
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}
    assert np.isclose(J, module.loss(params, pixels.astype(np.float32), Y), rtol=1e-6)


def test_a_directory_as_the_output_file_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["derive", "chain:1", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a directory; give a file name" in err
