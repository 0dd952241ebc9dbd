"""``backprop report net.py --train`` where ``model`` is a network on images or sequences: the
tensor report ends with the dense report's Learning section; a run the options or the data
refuse is one error line (no announcement before it), exit 2, and nothing written."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from numeric import training
from numeric.training import datasets, make
from reports.cli.main import main

CONVNET = """\
from derive import network
from derive.layers import Conv2D, Dense, Flatten, MaxPool2D

model = network((6, 6, 1), [Conv2D(2, 3, "relu"), MaxPool2D(2), Flatten(), Dense(2, "softmax")],
                "cce")
"""
ATTENTION = """\
from derive import network
from derive.layers import Dense, MeanOverTime, SelfAttention

model = network((4, 3), [SelfAttention(2), MeanOverTime(), Dense(1, "sigmoid")], "bce")
"""
RUN = ["--epochs", "3", "--lr", "0.01"]


def _file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _pdf_text(pdf) -> str:
    run = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    return " ".join(run.stdout.split())  # pdftotext breaks lines where the page does


@pytest.mark.skipif(
    shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
    reason="no pdflatex or no pdftotext (poppler-utils)",
)
def test_report_train_on_a_conv_net_ends_with_the_learning_section_of_the_run(tmp_path, capsys):
    net = _file(tmp_path, "tiny_convnet.py", CONVNET)
    # the same options through backprop train: its summary line is the run the report shows
    assert main(["train", net, *RUN, "-o", str(tmp_path / "run")]) == 0
    summary = capsys.readouterr().out
    losses = summary.split("; loss ")[1].split(",")[0]
    first, last = (float(x) for x in losses.split(" -> "))
    accuracy = summary.split("accuracy ")[1].split("%")[0]
    assert main(["report", net, "--train", *RUN, "-o", str(tmp_path / "report")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "training the network\n"
    pdf = tmp_path / "report" / "report.pdf"
    assert captured.out == f"wrote {pdf}\n"
    text = _pdf_text(pdf)
    assert "Convolution" in text and "Learning" in text.split("Convolution")[1]
    learning = text.split("Learning")[-1]
    assert "bar in noise (200 examples)" in learning
    assert "(Adam): 3 epochs of 7 batches of 32" in learning
    ended = learning.split("Over the run the mean cost went from ")[1]
    start, end = (float(part.split(" ")[0]) for part in ended.split(") to "))
    assert start == pytest.approx(first, rel=1e-2) and end == pytest.approx(last, rel=1e-2)
    assert f"the trained network classifies {accuracy}% of them right" in learning
    assert "accuracy" in learning  # the loss curve's caption: accuracy after each epoch
    assert "decision boundary" not in learning and "plane" not in learning  # images: no plane


def _csv(tmp_path, width, labels=(0, 1, 0, 1)):
    path = tmp_path / "data.csv"
    path.write_text("".join(f"{'0.5,' * width}{label}\n" for label in labels))
    return str(path)


@pytest.mark.parametrize(
    "model, args, message",
    [
        (CONVNET, lambda p: ["--data", "xor"], "xor has 2 input column(s), but network((6, 6, 1)"),
        (CONVNET, lambda p: ["--data", _csv(p, 35)], "data.csv has 35 input values per example"),
        (CONVNET, lambda p: ["--data", _csv(p, 36, (0, 2))], "data.csv, line 2: label 2 is out "
         "of range"),
        (CONVNET, lambda p: ["--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (ATTENTION, lambda p: [], "no generated data set fits network((4, 3), [SelfAttention("),
        ("mlp:2-3-1", lambda p: ["--data", "bars"], "bars has images (H, W, C) of 2 classes, "
         "but mlp:2-3-1 takes 2 input column(s)"),
        ("mlp:2-3-1", lambda p: ["--data", _csv(p, 3)], "data.csv has 3 input column(s), but "
         "mlp:2-3-1 takes 2"),
        ("mlp:3-2-1", lambda p: [], "no generated data set fits mlp:3-2-1 (3 input column(s)); "
         "give --data FILE.csv: a row per example, its 3 input values, then its class label"),
    ],
)  # fmt: skip
def test_a_refused_report_train_is_its_error_line_only(tmp_path, capsys, model, args, message):
    spec = model if model.startswith("mlp:") else _file(tmp_path, "net.py", model)
    out = tmp_path / "report"
    assert main(["report", spec, "--train", *args(tmp_path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("backprop: error: ") and message in err, err
    assert not out.exists()


def test_make_bars_is_the_images_data_for_makes_at_the_default_shape():
    data = make("bars", seed=3)
    assert data.name == "bars" and data.X.shape == (200, 8, 8, 1)
    assert data.labels.tolist() == [0, 1] * 100
    # class 1's brightest column outshines every row, class 0's brightest row every column
    rows, columns = data.X.mean(axis=(2, 3)).max(axis=1), data.X.mean(axis=(1, 3)).max(axis=1)
    assert np.array_equal(columns > rows, data.labels == 1)
    assert np.array_equal(make("bars", seed=3).X, data.X)
    assert not np.array_equal(make("bars", seed=4).X, data.X)
    assert make("xor").X.shape == (4, 2) and make("planar", seed=1).X.shape == (400, 2)
    with pytest.raises(datasets.UnknownNameError, match="known: xor, planar, circles, blobs, bars"):
        make("mnist")


def test_numeric_training_exports_the_data_functions_for_a_network():
    assert training.data_for is datasets.data_for and training.inputs_for is datasets.inputs_for
    assert {"data_for", "inputs_for", "make", "targets_for"} <= set(training.__all__)


@pytest.mark.parametrize(
    "model, make_out, message",
    [
        ("mlp:2-3-1", lambda out: (out.mkdir(), (out / "notes.txt").write_text("mine")),
         "is not empty and holds no earlier report"),
        (CONVNET, lambda out: out.write_text("mine"), "exists and is not a directory"),
    ],
)  # fmt: skip
def test_an_output_report_train_cannot_use_is_refused_before_training(
    tmp_path, capsys, model, make_out, message
):
    spec = model if model.startswith("mlp:") else _file(tmp_path, "net.py", model)
    out = tmp_path / "report"
    make_out(out)
    assert main(["report", spec, "--train", "--epochs", "1", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
