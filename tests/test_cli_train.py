"""backprop train, and the Learning section of backprop report --train."""

from __future__ import annotations

import argparse
import types

import numpy as np
import pytest

import derive
from derive.optimizers import Adam, Perceptron
from numeric.training import make
from reports.cli.main import main
from reports.training import run_training


def _train(tmp_path, *args, out="run"):
    return main(["train", *args, "-o", str(tmp_path / out)])


def test_train_writes_curve_boundary_params_history_and_summary(tmp_path, capsys):
    code = _train(tmp_path, "mlp:2-4-1", "--activation", "tanh", "--data", "xor", "--lr",
                  "0.05", "--epochs", "300", "--batch-size", "4")  # fmt: skip
    assert code == 0
    out = tmp_path / "run"
    names = {p.name for p in out.iterdir()}
    assert {"loss.pdf", "loss.png", "boundary.pdf", "boundary.png", "params.npz"} <= names
    summary = capsys.readouterr().out.strip()
    assert len(summary.splitlines()) == 1 and "accuracy 100.0%" in summary
    assert (out / "summary.txt").read_text().strip() in summary
    params = np.load(out / "params.npz")
    assert {k: params[k].shape for k in params} == {
        "W1": (2, 4), "b1": (4,), "W2": (4, 1), "b2": (1,),
    }  # fmt: skip
    history = (out / "history.csv").read_text().splitlines()
    assert history[0] == "step,epoch,loss" and len(history) == 1 + 300


def test_the_perceptron_on_xor_says_it_never_converged_and_why(tmp_path, capsys):
    assert _train(tmp_path, "mlp:2-1", "--optimizer", "perceptron", "--data", "xor",
                  "--epochs", "50", "--batch-size", "1") == 0  # fmt: skip
    summary = capsys.readouterr().out
    assert "never converged" in summary and "no line separates xor" in summary
    assert "75% right" in summary


def test_the_perceptron_on_blobs_converges(tmp_path, capsys):
    assert _train(tmp_path, "mlp:2-1", "--optimizer", "perceptron", "--data", "blobs",
                  "--batch-size", "1", "--epochs", "30") == 0  # fmt: skip
    assert "converged in epoch" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "mnist"], "unknown data set 'mnist'; known: xor, planar, circles, blobs"),
        (["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
        (["--lr", "-1"], "adam lr must be a positive number, got -1.0"),
        (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--seed", "-2"], "--seed must be a non-negative integer"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert _train(tmp_path, "mlp:2-3-1", *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_bad_csv_is_one_line_naming_its_line(tmp_path, capsys):
    data = tmp_path / "mine.csv"
    data.write_text("x1,x2,label\n0,0,0\n1,1,1\n2,2,3\n")
    assert _train(tmp_path, "mlp:2-3-1", "--data", str(data)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mine.csv, line 4: label 3 is out of range" in err


def test_a_csv_of_the_users_own_data_trains(tmp_path, capsys):
    X, labels = make("circles").X, make("circles").labels
    rows = "\n".join(f"{a},{b},{c}" for (a, b), c in zip(X, labels))
    (tmp_path / "rings.csv").write_text("u,v,ring\n" + rows + "\n")
    assert _train(tmp_path, "mlp:2-8-2", "--activation", "tanh", "--data",
                  str(tmp_path / "rings.csv"), "--lr", "0.05", "--epochs", "60") == 0  # fmt: skip
    assert "rings.csv (200 examples)" in capsys.readouterr().out


def test_model_with_other_inputs_than_the_data_is_refused(tmp_path, capsys):
    assert _train(tmp_path, "mlp:3-2-1", "--data", "xor") == 2
    assert "xor has 2 input column(s), but mlp:3-2-1 takes 3" in capsys.readouterr().err


def test_a_failed_write_leaves_the_earlier_run_and_no_temporary_files(tmp_path, monkeypatch):
    args = ["mlp:2-3-1", "--data", "xor", "--epochs", "2"]
    assert _train(tmp_path, *args) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}

    def broken(self, directory):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("reports.training.TrainingRun.draw", broken)
    assert _train(tmp_path, *args, "--seed", "3") == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_second_run_replaces_the_first_and_a_report_folder_is_not_a_run(tmp_path, capsys):
    args = ["mlp:2-3-1", "--data", "xor", "--epochs", "1"]
    assert _train(tmp_path, *args) == 0
    assert (tmp_path / "run" / ".backprop-training").read_text() == "written by backprop train\n"
    assert _train(tmp_path, *args, "--epochs", "2") == 0
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 1 + 2
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / ".backprop-report").write_text("written by backprop report\n")
    (tmp_path / "rep" / "report.tex").write_text("mine")
    assert _train(tmp_path, *args, out="rep") == 2
    assert "holds no earlier training run" in capsys.readouterr().err
    assert (tmp_path / "rep" / "report.tex").read_text() == "mine"


def test_train_will_not_replace_a_directory_it_did_not_write(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    assert _train(tmp_path, "mlp:2-3-1", "--data", "xor") == 2
    assert "holds no earlier training run" in capsys.readouterr().err


# -- the report's Learning section


def _report_tex(tmp_path, model, training):
    from reports.document import write_report

    write_report(model, tmp_path / "report", training=training, compile_pdf=False)
    return (tmp_path / "report" / "report.tex").read_text()


def test_report_learning_section_prints_adam_from_its_definition(tmp_path):
    model = derive.mlp([2, 2, 1], activation="tanh", output="sigmoid", loss="bce")
    run = run_training(model, make("xor"), Adam(lr=0.05), 20, 4, 0, progress=False)
    tex = _report_tex(tmp_path, model, run)
    learning = tex.split("\\section{Learning}")[1].split("\\section{")[0]
    assert r"m &\leftarrow \beta_1 m + \left(1 - \beta_1\right) g" in learning
    assert r"\hat{m} &= \frac{m}{1 - \beta_1^{t}}" in learning
    assert r"\theta &\leftarrow \theta - \eta \frac{\hat{m}}{\epsilon + \sqrt{\hat{v}}}" in learning
    assert "loss.pdf" in learning and "boundary.pdf" in learning
    assert "No line separates these classes" in learning
    assert (tmp_path / "report" / "boundary.pdf").exists()


def test_report_says_why_the_perceptron_never_learns_xor(tmp_path):
    model = derive.mlp([2, 1], activation="step", output="step", loss="mae")
    run = run_training(model, make("xor"), Perceptron(), 30, 1, 0, progress=False)
    tex = _report_tex(tmp_path, model, run)
    learning = tex.split("\\section{Learning}")[1]
    assert r"\theta &\leftarrow \theta + \eta e" in learning
    assert r"e = X^{\top} (Y - \hat{Y})$ for the weights" in learning  # the loop's sums
    assert "gradient of $0$" in learning and "no line separates the classes" in learning
    assert "has not converged" in learning


def test_no_learning_section_without_train():
    from reports.sections.learning import learning_section
    from reports.sections.order import SECTIONS

    assert learning_section in SECTIONS
    assert learning_section(types.SimpleNamespace(training=None)) == ""


def test_report_train_flag_reaches_the_training_options():
    from reports.cli import report_command

    parser = argparse.ArgumentParser()
    report_command.add_arguments(parser)
    args = parser.parse_args(["mlp:2-4-1", "--train", "--data", "xor", "--optimizer", "sgd"])
    assert args.train and args.data == "xor" and args.optimizer == "sgd" and args.seed == 0


def test_train_takes_a_model_file_with_dropout(tmp_path, capsys):
    net = tmp_path / "net.py"
    net.write_text(
        "import derive\nfrom derive.layers import Dense, Dropout\n\n"
        "model = derive.network(2, [Dense(8, activation='tanh'), Dropout(0.2), "
        "Dense(1, activation='sigmoid')], 'bce')\n"
    )
    assert _train(tmp_path, str(net), "--data", "circles", "--lr", "0.05", "--epochs",
                  "60") == 0  # fmt: skip
    summary = capsys.readouterr().out
    assert "Dropout(0.2)" in summary and "on circles (200 examples)" in summary
    accuracy = float(summary.split("accuracy ")[1].split("%")[0])
    assert accuracy >= 90


def test_the_perceptron_takes_a_model_file_and_per_layer_activations_reach_train(tmp_path, capsys):
    net = tmp_path / "unit.py"
    net.write_text("import derive\n\nmodel = derive.mlp([2, 1], activation='step', "
                   "output='step', loss='mae')\n")  # fmt: skip
    assert _train(tmp_path, str(net), "--optimizer", "perceptron", "--data", "blobs",
                  "--batch-size", "1", "--epochs", "20", out="a") == 0  # fmt: skip
    assert "converged in epoch" in capsys.readouterr().out
    assert _train(tmp_path, "mlp:2-4-4-1", "--activation", "relu,tanh", "--data", "xor",
                  "--lr", "0.05", "--epochs", "200", "--batch-size", "4", out="b") == 0  # fmt: skip
    params = np.load(tmp_path / "b" / "params.npz")
    assert sorted(params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
