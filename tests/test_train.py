"""numeric.train: batches, history, the perceptron's lesson, learning XOR and the flower."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import derive
from derive.errors import BackpropInputError
from derive.optimizers import SGD, Adam, Perceptron
from numeric import codegen, train
from numeric.training import load_csv, make, targets_for
from numeric.training.datasets import best_line_accuracy


class Recorder:
    """A kernel of one scalar parameter whose gradient is preallocated; it records the rows
    of every batch it is given (X holds the row numbers)."""

    params = {"w": ()}
    derivation = None

    def __init__(self):
        self.batches = []
        self.grad = {"w": np.array(1.0)}

    def loss_and_grads(self, params, X, Y):
        self.batches.append(X[:, 0].astype(int).tolist())
        return 0.5, self.grad

    def forward(self, params, X):
        return np.zeros((len(X), 1))


def _rows(m):
    return np.arange(m, dtype=float)[:, None], np.full((m, 1), 0.3)


def test_every_epoch_visits_each_row_once_in_a_new_order_with_a_short_last_batch():
    kernel = Recorder()
    X, Y = _rows(10)
    run = train(kernel, {"w": np.array(0.0)}, X, Y, SGD(lr=0.1), epochs=3, batch_size=4,
                seed=1, progress=False)  # fmt: skip
    assert [len(b) for b in kernel.batches] == [4, 4, 2] * 3
    epochs = [sum(kernel.batches[i : i + 3], []) for i in (0, 3, 6)]
    assert all(sorted(e) == list(range(10)) for e in epochs)
    assert len({tuple(e) for e in epochs}) == 3
    assert run.history.step_loss.shape == (9,) and run.history.epoch_loss == [0.5] * 3
    assert run.history.accuracy == []  # 0.3 is no class
    assert float(run.params["w"]) == pytest.approx(-0.1 * 9)


def test_the_same_seed_gives_the_same_batches():
    orders = []
    for _ in range(2):
        kernel = Recorder()
        train(kernel, {"w": np.array(0.0)}, *_rows(7), SGD(), epochs=2, batch_size=3, seed=4,
              progress=False)  # fmt: skip
        orders.append(kernel.batches)
    assert orders[0] == orders[1]


def test_the_loop_allocates_nothing_of_a_parameters_size():
    class Big(Recorder):
        params = {"w": (400_000,)}

        def __init__(self):
            super().__init__()
            self.grad = {"w": np.ones(400_000)}

    kernel = Big()
    params = {"w": np.zeros(400_000)}
    X, Y = _rows(64)
    train(kernel, params, X, Y, Adam(), epochs=1, batch_size=8, progress=False)
    tracemalloc.start()
    train(kernel, params, X, Y, Adam(), epochs=3, batch_size=8, progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Adam's two moments and one work slice are made once per call: 2 x 3.2 MB + 256 kB
    assert peak < 2 * params["w"].nbytes + 600_000


def test_progress_bar_on_a_terminal_only():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    from numeric.training.history import Progress

    shown, hidden = Terminal(), io.StringIO()
    for stream in (shown, hidden):
        bar = Progress(2, 3, stream=stream)
        for step in range(6):
            bar.step(step // 3, 0.25)
        bar.close()
    assert "epoch 2/2 [" in shown.getvalue() and "loss 0.25" in shown.getvalue()
    assert hidden.getvalue() == ""


def _fit(spec_sizes, activation, data_name, rule, epochs, batch_size, seed=0):
    model = derive.mlp(spec_sizes, activation=activation)
    kernel = codegen(model.derive())
    data = make(data_name, seed=seed)
    return train(kernel, kernel.random_params(seed=seed), data.X, targets_for(model, data),
                 rule, epochs=epochs, batch_size=batch_size, seed=seed, progress=False)  # fmt: skip


def test_a_tanh_mlp_with_adam_learns_xor():
    run = _fit([2, 4, 1], "tanh", "xor", Adam(lr=0.05), epochs=300, batch_size=4)
    assert run.history.accuracy[-1] >= 0.9
    assert run.history.epoch_loss[-1] < 0.1 * run.history.epoch_loss[0]


def test_a_tanh_mlp_with_adam_learns_the_planar_flower():
    run = _fit([2, 4, 1], "tanh", "planar", Adam(lr=0.05), epochs=150, batch_size=32)
    assert run.history.accuracy[-1] >= 0.9


def test_accuracy_of_integer_labels():
    model = derive.mlp([2, 8, 2], activation="tanh", loss="sparse_cce")
    kernel = codegen(model.derive())
    data = make("circles")
    Y = targets_for(model, data)
    assert Y.dtype.kind == "i"
    run = train(kernel, kernel.random_params(), data.X, Y, Adam(lr=0.05), epochs=100,
                batch_size=20, progress=False)  # fmt: skip
    assert run.history.accuracy[-1] >= 0.9


# -- the perceptron


def _perceptron(data_name, epochs):
    model = derive.mlp([2, 1], activation="step", output="step", loss="mae")
    kernel = codegen(model.derive())
    data = make(data_name)
    params = {name: np.zeros(shape) for name, shape in kernel.params.items()}
    run = train(kernel, params, data.X, targets_for(model, data), Perceptron(), epochs=epochs,
                batch_size=1, progress=False)  # fmt: skip
    return run, kernel, data


def test_the_perceptron_converges_on_separable_blobs():
    run, kernel, data = _perceptron("blobs", 50)
    assert run.history.converged_epoch is not None
    assert run.history.accuracy[-1] == 1.0
    assert kernel.loss(run.params, data.X, data.labels[:, None].astype(float)) == 0


def test_the_perceptron_never_converges_on_xor_because_no_line_separates_it():
    run, _, data = _perceptron("xor", 500)
    assert run.history.converged_epoch is None
    assert max(run.history.accuracy) <= 0.75
    # the oracle: over many lines w.x + b = 0, none puts more than 3 of the 4 points right
    angles = np.linspace(0, 2 * np.pi, 721)
    normals = np.c_[np.cos(angles), np.sin(angles)]  # (lines, 2)
    offsets = np.linspace(-2, 2, 161)[:, None, None]
    predicted = data.X @ normals.T + offsets > 0  # (offsets, points, angles)
    right = (predicted == data.labels[:, None]).sum(axis=1)
    assert right.max() == 3


def _rosenblatt(X, Y, W, b, lr, epochs, batch_size, seed):
    """The oracle: Rosenblatt's rule example by example and unit by unit, the batch's
    changes added up with the weights held, in numeric.train's documented batch order."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for lo in range(0, len(X), batch_size):
            dW, db = np.zeros_like(W), np.zeros_like(b)
            for r in order[lo : lo + batch_size]:
                for j in range(W.shape[1]):
                    fired = 1.0 if sum(X[r, i] * W[i, j] for i in range(len(W))) + b[j] > 0 else 0.0
                    for i in range(len(W)):
                        dW[i, j] += (Y[r, j] - fired) * X[r, i]
                    db[j] += Y[r, j] - fired
            W += lr * dW
            b += lr * db
    return W, b


@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_the_perceptron_follows_rosenblatts_rule_written_out(batch_size):
    """Three inputs, two step units, 10 examples (batches of 4: the last holds 2), 6 epochs."""
    model = derive.mlp([3, 2], activation="step", output="step", loss="mae")
    kernel = codegen(model.derive())
    rng = np.random.default_rng(11)
    X = rng.standard_normal((10, 3))
    Y = (rng.random((10, 2)) < 0.5).astype(float)
    start = kernel.random_params(seed=2)
    params = {k: v.copy() for k, v in start.items()}
    run = train(kernel, params, X, Y, Perceptron(lr=0.5), epochs=6, batch_size=batch_size,
                seed=3, progress=False)  # fmt: skip
    W, b = _rosenblatt(X, Y, start["W1"].copy(), start["b1"].copy(), 0.5, 6, batch_size, 3)
    assert not np.allclose(W, start["W1"])  # it did learn something
    np.testing.assert_allclose(run.params["W1"], W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(run.params["b1"], b, rtol=1e-12, atol=1e-12)


def test_the_perceptron_step_allocates_nothing_of_a_parameters_size():
    """The memory a step takes at its peak, from one forward call to the next."""
    model = derive.mlp([200_000, 1], activation="step", output="step", loss="mae")
    kernel = codegen(model.derive())

    class Watched:
        params, derivation = kernel.params, kernel.derivation
        peaks = []

        def forward(self, params, X):
            current, peak = tracemalloc.get_traced_memory()
            self.peaks.append(peak - current)
            tracemalloc.reset_peak()
            return kernel.forward(params, X)

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 200_000)), np.array([[0.0], [1.0]] * 3)
    params = kernel.random_params()
    tracemalloc.start()
    train(Watched(), params, X, Y, Perceptron(), epochs=2, batch_size=1, progress=False,
          measure_accuracy=False)  # fmt: skip
    tracemalloc.stop()
    steps = Watched.peaks[2:]  # from the second step on (the first made the arrays)
    assert len(steps) == 10 and max(steps) < params["W1"].nbytes / 20, steps


def test_the_perceptron_refuses_a_network_of_two_layers():
    model = derive.mlp([2, 3, 1], activation="step", output="step", loss="mae")
    kernel = codegen(model.derive())
    with pytest.raises(BackpropInputError, match="one layer"):
        train(kernel, kernel.random_params(), *_rows(4), Perceptron(), progress=False)


def test_the_perceptron_refuses_a_sigmoid_output():
    model = derive.mlp([2, 1], activation="tanh")
    kernel = codegen(model.derive())
    with pytest.raises(BackpropInputError, match="--output step"):
        train(kernel, kernel.random_params(), *_rows(4), Perceptron(), progress=False)


# -- bad input


@pytest.mark.parametrize(
    "change, match",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"Y": np.zeros((3, 1))}, "same number of rows"),
        ({"params": {"w": np.zeros(2)}}, r"parameter w has shape \(2,\)"),
        ({"params": {"w": np.array(1)}}, "must be a float array"),
    ],
)
def test_bad_arguments_are_named(change, match):
    args = dict(params={"w": np.array(0.0)}, X=_rows(4)[0], Y=_rows(4)[1], epochs=1,
                batch_size=2, seed=0)  # fmt: skip
    args.update(change)
    with pytest.raises(BackpropInputError, match=match):
        train(Recorder(), optimizer=SGD(), progress=False, **args)


def test_an_optimizer_that_is_no_rule_is_a_type_error():
    with pytest.raises(TypeError, match="derive.optimizers"):
        train(Recorder(), {"w": np.array(0.0)}, *_rows(2), optimizer="adam")


# -- data


def test_generated_blobs_are_separated_by_the_diagonal_with_a_gap():
    data = make("blobs", seed=3)
    side = data.X.sum(axis=1) / np.sqrt(2) * np.where(data.labels == 1, 1, -1)
    assert side.min() >= 0.5


def test_planar_flower_has_two_balanced_classes_on_petals():
    data = make("planar", seed=2)
    assert data.X.shape == (400, 2) and np.bincount(data.labels).tolist() == [200, 200]
    assert np.abs(data.X).max() <= 4 * 1.5


@pytest.mark.parametrize(
    "text, match",
    [
        ("a,b,y\n1,2,0\n1,2\n", r"line 3: 2 fields where the rows above have 3"),
        ("1,2,0\n1,x,1\n", r"line 2: 'x' in column 2 is not a number"),
        ("a,b,y\n1,2,0\n\n1,nan,1\n", r"line 4: 'nan' in column 2 \(b\) is not a finite number"),
        ("1,2,0\n1,2,0.5\n", r"line 2: label '0.5' is not a whole number"),
        ("a,b,y\n", "no data rows"),
        ("y\n1\n", "at least one input column"),
    ],
)
def test_a_bad_csv_names_the_line(tmp_path, text, match):
    path = tmp_path / "data.csv"
    path.write_text(text)
    with pytest.raises(BackpropInputError, match=match):
        load_csv(path)


def test_a_label_out_of_range_names_its_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x1,x2,label\n0,1,1\n1,1,2\n")
    model = derive.mlp([2, 3, 1], activation="tanh")
    with pytest.raises(BackpropInputError, match=r"data.csv, line 3: label 2 is out of range"):
        targets_for(model, load_csv(path))
    three = derive.mlp([2, 3, 3], activation="tanh")
    assert targets_for(three, load_csv(path)).tolist() == [[0, 1, 0], [0, 0, 1]]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.integers(0, 1)),
                min_size=2, max_size=8))  # fmt: skip
def test_best_line_accuracy_is_at_least_any_line_of_a_grid(points):
    X = np.array([p[:2] for p in points], dtype=float)
    labels = np.array([p[2] for p in points])
    best = best_line_accuracy(X, labels)
    angles = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    offsets = np.linspace(-5, 5, 81)[:, None, None]
    predicted = X @ np.c_[np.cos(angles), np.sin(angles)].T + offsets > 0
    grid_best = (predicted == labels[:, None]).sum(axis=1).max() / len(X)
    assert grid_best <= best <= 1
    if len(set(labels.tolist())) == 1:
        assert best == 1


def test_best_line_accuracy_of_xor_and_blobs():
    assert best_line_accuracy(make("xor").X, make("xor").labels) == 0.75
    assert best_line_accuracy(make("blobs").X, make("blobs").labels) == 1.0


def test_a_model_with_dropout_gets_fresh_keep_masks_every_step():
    from derive.layers import Dense, Dropout

    model = derive.network(
        2, [Dense(8, activation="tanh"), Dropout(0.25), Dense(1, activation="sigmoid")], "bce"
    )
    kernel = codegen(model.derive())
    (mask_name,) = [node.name for node in model.by_role("mask")]
    seen = []

    class Watching:
        params, derivation = kernel.params, kernel.derivation
        forward = staticmethod(kernel.forward)

        def loss_and_grads(self, params, X, Y, masks=None):
            seen.append((len(X), masks[mask_name].copy()))
            return kernel.loss_and_grads(params, X, Y, masks=masks)

    data = make("planar")
    run = train(Watching(), kernel.random_params(), data.X, targets_for(model, data),
                Adam(lr=0.05), epochs=60, batch_size=48, progress=False)  # fmt: skip
    assert [rows for rows, _ in seen[:9]] == [48] * 8 + [16]  # 400 = 8 x 48 + 16
    assert all(mask.shape == (rows, 8) and set(np.unique(mask)) <= {0, 1} for rows, mask in seen)
    kept = np.concatenate([mask.ravel() for _, mask in seen])
    assert abs(kept.mean() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / kept.size)
    assert not np.array_equal(seen[0][1], seen[1][1])
    assert run.history.accuracy[-1] >= 0.85  # evaluated without masks: the identity


def test_a_dropout_kernel_loaded_from_a_file_is_refused_not_trained_without_dropout(tmp_path):
    """A saved kernel has no model to draw masks from: training it would silently switch
    dropout off (its masks=None is the identity), so train says what to pass instead."""
    from derive.errors import BackpropInputError
    from derive.layers import Dense, Dropout
    from numeric.generator.kernel import Kernel

    model = derive.network(
        2, [Dense(4, activation="tanh"), Dropout(0.5), Dense(1, "sigmoid")], "bce"
    )
    saved = Kernel.from_file(codegen(model.derive()).save(tmp_path / "kernel.py"))
    data = make("xor")
    with pytest.raises(BackpropInputError, match="dropout masks"):
        train(saved, saved.random_params(), data.X, targets_for(model, data), SGD(), epochs=1,
              progress=False)  # fmt: skip
    plain = derive.network(2, [Dense(4, activation="tanh"), Dense(1, "sigmoid")], "bce")
    saved = Kernel.from_file(codegen(plain.derive()).save(tmp_path / "plain.py"))
    run = train(saved, saved.random_params(), data.X, targets_for(plain, data), SGD(), epochs=2,
                progress=False)  # fmt: skip
    assert len(run.history.epoch_loss) == 2


@pytest.mark.parametrize("kept", [False, True])
def test_training_writes_the_gradients_into_the_same_arrays_unless_memory_is_kept(
    monkeypatch, kept
):
    """Where glibc cannot keep freed memory, the loop hands the kernel one dict of gradient
    arrays (out=) for every step (fresh ones each step would fault their pages back in);
    where it keeps it, new arrays are as cheap and warmer. Either way the run is the one a
    kernel without out= takes, step for step."""
    monkeypatch.setattr("numeric.training.loop.keep_freed_memory", lambda: kept)
    model = derive.mlp([2, 8, 1], "tanh", "sigmoid", "bce")
    kernel = codegen(model.derive())
    outs = []

    class Plain:  # the same kernel, with the signature of one that cannot write into out
        params, derivation = kernel.params, kernel.derivation
        forward = staticmethod(kernel.forward)

        def loss_and_grads(self, params, X, Y):
            return kernel.loss_and_grads(params, X, Y)

    class Watching(Plain):
        def loss_and_grads(self, params, X, Y, out=None):
            outs.append(out)
            return kernel.loss_and_grads(params, X, Y, out=out)

    data = make("planar")
    Y = targets_for(model, data)
    options = dict(epochs=3, batch_size=64, seed=1, progress=False)
    runs = [train(k, kernel.random_params(seed=5), data.X, Y, Adam(lr=0.05), **options)
            for k in (Plain(), Watching())]  # fmt: skip
    assert len(outs) == 3 * 7
    if kept:
        assert all(out is None for out in outs)
    else:
        assert all(out is outs[0] for out in outs) and set(outs[0]) == set(kernel.params)
    for name, value in runs[0].params.items():
        np.testing.assert_array_equal(runs[1].params[name], value, err_msg=name)
    np.testing.assert_array_equal(runs[1].history.step_loss, runs[0].history.step_loss)
