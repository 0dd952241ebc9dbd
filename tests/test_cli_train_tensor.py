"""``backprop train net.py`` where ``model`` is a network on images or sequences: the
generated ``bars`` images, or a CSV of examples flattened in C order, then their label."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import derive
from numeric.training.datasets import Data, data_for, inputs_for
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
TEN_CLASSES = """\
from derive import network
from derive.layers import Conv2D, Dense, Flatten

model = network((5, 5, 1), [Conv2D(2, 3, "relu"), Flatten(), Dense(10, "softmax")], "cce")
"""


def _file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _train(tmp_path, *args, out="run"):
    return main(["train", *args, "-o", str(tmp_path / out)])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("backprop: error: "), err
    return err


def _forward(params, X):
    """CONVNET's forward pass written out here, apart from the generated kernel: a valid
    3x3 cross-correlation as a sum over window positions, relu, a 2x2 max pool, the map
    flattened in (h, w, c) order, softmax."""
    windows = sliding_window_view(X, (3, 3), axis=(1, 2))  # (m, 4, 4, C, 3, 3)
    Z = np.einsum("mhwcij,ijco->mhwo", windows, params["W1"]) + params["b1"]
    A = np.maximum(Z, 0)
    m, h, w, c = A.shape
    pooled = A.reshape(m, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    logits = pooled.reshape(m, -1) @ params["W4"] + params["b4"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _bar_images(rows: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Bars drawn here, apart from the data set: a row of twos or a column of twos."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    X = 0.05 * rng.standard_normal((rows, 6, 6, 1))
    for image, label, place in zip(X, labels, rng.integers(0, 6, rows)):
        image[(slice(None), place) if label else place] += 2.0
    return X, labels


def test_a_conv_net_model_file_learns_the_bars_and_writes_the_outputs(tmp_path, capsys):
    net = _file(tmp_path, "convnet.py", CONVNET)
    assert _train(tmp_path, net, "--data", "bars", "--lr", "0.02", "--epochs", "15") == 0
    summary = capsys.readouterr().out
    assert "on bars (200 examples)" in summary and "15 epochs of 7 batches" in summary
    out = tmp_path / "run"
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    # no decision boundary: an image has no plane of two inputs to colour
    assert names == {"loss.pdf", "loss.png", "params.npz", "history.csv", "summary.txt"}
    rows = np.loadtxt(out / "history.csv", delimiter=",", skiprows=1)
    first, last = (rows[rows[:, 1] == e, 2].mean() for e in (1, 15))
    assert last < 0.5 * first
    params = dict(np.load(out / "params.npz"))
    shapes = {k: v.shape for k, v in params.items()}
    assert shapes == {"W1": (3, 3, 1, 2), "b1": (2,), "W4": (8, 2), "b4": (2,)}
    # the trained parameters classify bars the network never saw, by a forward pass of our own
    X, labels = _bar_images(100)
    assert (_forward(params, X).argmax(axis=1) == labels).mean() >= 0.9


def test_an_image_network_trains_on_bars_by_default(tmp_path, capsys):
    net = _file(tmp_path, "convnet.py", CONVNET)
    assert _train(tmp_path, net, "--epochs", "1") == 0
    assert "on bars (200 examples)" in capsys.readouterr().out


def test_bars_are_images_of_the_networks_shape_with_a_bar_of_their_class():
    net = derive.network((5, 7, 2), [derive.layers.Flatten(), derive.layers.Dense(1, "sigmoid")],
                         "bce")  # fmt: skip
    data = data_for(net, "bars", seed=3)
    assert data.X.shape == (200, 5, 7, 2) and set(data.labels.tolist()) == {0, 1}
    # the brightest full row is brighter than any column for class 0, and the other way round
    rows, columns = data.X.mean(axis=(2, 3)).max(axis=1), data.X.mean(axis=(1, 3)).max(axis=1)
    assert np.array_equal(columns > rows, data.labels == 1)
    assert np.array_equal(data_for(net, "bars", seed=3).X, data.X)
    assert not np.array_equal(data_for(net, "bars", seed=4).X, data.X)


def test_a_csv_of_flattened_images_trains(tmp_path, capsys):
    X, labels = _bar_images(120)
    flat = X.reshape(len(X), -1)
    lines = [",".join(map(repr, row.tolist())) + f",{label}" for row, label in zip(flat, labels)]
    data = tmp_path / "images.csv"
    data.write_text("\n".join(lines) + "\n")
    net = _file(tmp_path, "convnet.py", CONVNET)
    assert _train(tmp_path, net, "--data", str(data), "--lr", "0.02", "--epochs", "15") == 0
    summary = capsys.readouterr().out
    assert "on images.csv (120 examples)" in summary
    assert float(summary.split("accuracy ")[1].split("%")[0]) >= 90


def test_csv_rows_are_shaped_in_c_order():
    net = derive.network((2, 3, 2), [derive.layers.Flatten(), derive.layers.Dense(1, "sigmoid")],
                         "bce")  # fmt: skip
    values = np.arange(24.0).reshape(2, 12)
    X = inputs_for(net, Data(values, np.array([0, 1]), "mine.csv")).X
    # column j of a row is pixel (j // (W C), (j // C) % W, j % C)
    for j in range(12):
        assert X[1, j // 6, (j // 2) % 3, j % 2] == values[1, j]


def test_an_attention_network_trains_on_a_csv_of_flattened_sequences(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 12))
    labels = (X[:, 0] > 0).astype(int)
    lines = [",".join(f"x{j}" for j in range(12)) + ",label"] + [
        ",".join(map(repr, row.tolist())) + f",{label}" for row, label in zip(X, labels)
    ]
    data = tmp_path / "sequences.csv"
    data.write_text("\n".join(lines) + "\n")
    net = _file(tmp_path, "attention.py", ATTENTION)
    assert _train(tmp_path, net, "--data", str(data), "--epochs", "3") == 0
    assert "on sequences.csv (40 examples)" in capsys.readouterr().out
    assert np.load(tmp_path / "run" / "params.npz")["Wq1"].shape == (3, 2)


def _csv(tmp_path, width, rows=4, nan_at=None):
    lines = []
    for i in range(rows):
        values = [f"{0.1 * (i + j)}" for j in range(width)]
        if i == nan_at:
            values[2] = "nan"
        lines.append(",".join(values) + f",{i % 2}")
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(
    "model, data, message",
    [
        (CONVNET, lambda p: _csv(p, 35), "data.csv has 35 input values per example, but "
         "network((6, 6, 1), [Conv2D("),
        (CONVNET, lambda p: _csv(p, 35), "takes 36: one input of shape (6, 6, 1), flattened "
         "in C order"),
        (CONVNET, lambda p: _csv(p, 36, nan_at=2), "data.csv, line 3: 'nan' in column 3 is not "
         "a finite number"),
        (CONVNET, lambda p: "planar", "planar has 2 input column(s), but network((6, 6, 1)"),
        (CONVNET, lambda p: "xor", "takes images (6, 6, 1) with 2 output(s); the data that fit "
         "it: bars, FILE.csv"),
        (ATTENTION, lambda p: "bars", "bars has images (H, W, C) of 2 classes, but network((4, 3)"),
        (ATTENTION, lambda p: "bars", "takes sequences (4, 3) with 1 output(s); the data that "
         "fit it: FILE.csv"),
        (ATTENTION, lambda p: None, "no generated data set fits network((4, 3), [SelfAttention("),
        (ATTENTION, lambda p: None, "(sequences (4, 3) with 1 output(s)); give --data FILE.csv: "
         "a row per example, its 12 input values flattened in C order, then its class label"),
        (TEN_CLASSES, lambda p: "bars", "takes images (5, 5, 1) with 10 output(s); the data "
         "that fit it: FILE.csv"),
        (ATTENTION, lambda p: "mnist", "unknown data set 'mnist'; known: xor, planar, circles, "
         "blobs, bars, FILE.csv"),
        ("mlp:2-3-1", lambda p: "bars", "bars has images (H, W, C) of 2 classes, but mlp:2-3-1 "
         "takes 2 input column(s); the data that fit it: xor, planar, circles, blobs, FILE.csv"),
    ],
)  # fmt: skip
def test_data_that_does_not_fit_the_network_is_one_line_and_exit_2(
    tmp_path, capsys, model, data, message
):
    spec = model if model.startswith("mlp:") else _file(tmp_path, "net.py", model)
    name = data(tmp_path)
    args = [spec] if name is None else [spec, "--data", name]
    assert _train(tmp_path, *args, "--epochs", "1") == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_label_the_network_has_no_output_for_names_its_line(tmp_path, capsys):
    path = tmp_path / "labels.csv"
    path.write_text("".join(f"{'0.5,' * 12}{label}\n" for label in (0, 1, 2)))
    net = _file(tmp_path, "attention.py", ATTENTION)
    assert _train(tmp_path, net, "--data", str(path)) == 2
    assert "labels.csv, line 3: label 2 is out of range" in _one_line_error(capsys)
