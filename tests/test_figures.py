"""Figures: the graph picture, the activation plots and the finite-difference V curve."""

import numpy as np
import pytest

import derive
from reports.figures.draw import graph_texts
from reports.figures.graph import NodeText, draw_graph, layout, mathtext
from reports.figures.plots import activation_curves, plot_activations, plot_v_curve
from reports.sections.context import build_context
from reports.sections.numbers import fd_error_curve, worked_instance

SMOOTH = ["linear", "sigmoid", "tanh", "softplus"]
KINKED = ["relu", "leaky_relu", "elu"]


@pytest.mark.parametrize("name", SMOOTH + KINKED)
def test_plotted_derivative_matches_the_slope_of_the_plotted_function(name):
    z, g, dg, _ = activation_curves(name)
    slope = np.gradient(g, z)
    away = np.abs(z) > 0.05  # the kink of relu and friends
    assert np.allclose(dg[away], slope[away], atol=1e-3)


def test_softmax_plot_uses_the_diagonal_of_its_jacobian():
    z, a, da, text = activation_curves("softmax", width=3)
    assert np.allclose(a, np.exp(z) / (np.exp(z) + 2))
    assert np.allclose(da, np.gradient(a, z), atol=1e-3)
    assert "a_{1}" in text


def test_flat_activations_plot_without_crashing(tmp_path):
    path = plot_activations(["step", "sign"], tmp_path / "flat.pdf")
    assert path.read_bytes()[:5] == b"%PDF-"


def test_v_curve_falls_then_rises():
    d = derive.chain(2).derive()
    instance = worked_instance(d, seed=0)
    steps = np.logspace(-13, 0, 27)
    for dtype in ("float64", "float32"):
        h, err = fd_error_curve(d, instance, "w1", dtypes=(dtype,), steps=steps)[dtype]
        finite = np.where(np.isfinite(err) & (err > 0), err, np.inf)
        best = int(np.argmin(finite))
        assert 0 < best < len(h) - 1
        assert err[-1] > 10 * finite[best]  # truncation error at h = 1
        assert np.nanmax(err[:best]) > 10 * finite[best]  # rounding error at tiny h
    f64 = fd_error_curve(d, instance, "w1", dtypes=("float64", "float32"), steps=steps)
    assert np.nanmin(f64["float64"][1]) < np.nanmin(f64["float32"][1])


def test_v_curve_figure_is_vector(tmp_path):
    steps = np.logspace(-8, 0, 9)
    curves = {"float64": (steps, steps**2 + 1e-16 / steps)}
    path = plot_v_curve(curves, tmp_path / "v.svg", "w^{[1]}_{11}")
    assert b"<svg" in path.read_bytes()[:400]


def test_layout_puts_every_node_right_of_its_computed_parents():
    model = derive.mlp([3, 4, 2], output="softmax", level="scalar")
    pos = layout(model, set())
    for node in model.nodes:
        for parent in node.parents:
            if not parent.is_leaf:
                assert pos[parent][0] < pos[node][0]


def test_graph_marks_forks_with_their_number_of_branches():
    model = derive.mlp([2, 3, 2], output="softmax", level="scalar")
    ctx = build_context(model)
    texts = graph_texts(ctx, ctx.scalar)
    for step in ctx.scalar.steps:
        assert texts[step.node.name].fork == (len(step.branches) if step.is_fork else 0)
    assert any(t.fork for t in texts.values())


def test_graph_figure_is_a_vector_pdf_without_raster_images(tmp_path):
    model = derive.chain(2)
    texts = {n.name: NodeText(n.name, value="$0.5$", grad="$-0.1$") for n in model.nodes}
    path = draw_graph(model, texts, tmp_path / "g.pdf")
    data = path.read_bytes()
    assert data[:5] == b"%PDF-" and b"/Subtype /Image" not in data


def test_labels_matplotlib_cannot_render_fall_back_to_none():
    assert mathtext(r"\operatorname{ReLU}'(z)") == r"$\mathrm{ReLU}'(z)$"
    assert mathtext(r"\begin{cases} 1 \end{cases}") is None


@pytest.mark.parametrize("with_accuracy", [False, True])
def test_the_loss_curves_legend_covers_no_part_of_the_plot(tmp_path, monkeypatch, with_accuracy):
    """The legend sits outside the axes, so no curve can run under it, and stays on the page."""
    from numeric.training.history import History
    from reports.figures import learning

    history = History(steps_per_epoch=4, examples=40)
    for epoch in range(30):
        for _ in range(4):
            history.add_step(np.exp(-epoch / 5), rows=10)
        history.end_epoch(min(1.0, epoch / 20) if with_accuracy else None)
    figures = []
    save = learning._save
    monkeypatch.setattr(learning, "_save", lambda fig, path: figures.append(fig) or save(fig, path))
    learning.loss_curve(history, tmp_path / "loss")
    (fig,) = figures
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # the figure is closed once saved
    legend = fig.axes[0].get_legend().get_window_extent(renderer)
    for axis in fig.axes:
        plot_area = axis.get_window_extent(renderer)
        assert legend.y0 >= plot_area.y1 - 1, "the legend overlaps the plot area"
    page = fig.bbox
    assert page.x0 <= legend.x0 and legend.x1 <= page.x1 and legend.y1 <= page.y1
    assert len(fig.axes[0].get_legend().get_texts()) == (3 if with_accuracy else 2)
