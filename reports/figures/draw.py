"""The report's figures, drawn from its context: graph, layer graph, activations, V curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sympy as sp

from reports.latex.notation import family
from reports.latex.printer import format_number
from reports.latex.textbook import local_textbook
from reports.sections.context import ReportContext
from reports.sections.numbers import cost_function, fd_error_curve

from .graph import MAX_NODES_WITH_EDGE_LABELS, NodeText, graph_figure, should_hide_params


def _number(value: float) -> str:
    return f"${format_number(value, 3)}$"


def graph_texts(ctx: ReportContext, derivation) -> dict[str, NodeText]:
    """Symbol, op, value, gradient and fork count for each node of a derivation's graph."""
    model = derivation.model
    values = ctx.instance.values if ctx.instance is not None and model.level == "scalar" else None
    texts = {}
    for node in model.nodes:
        step = derivation._by_node.get(node)
        info = NodeText(
            ctx.symbol(derivation, node.name),
            op=None if node.is_leaf else node.label,
            fork=len(step.branches) if step is not None and step.is_fork else 0,
        )
        if values is not None:
            info.value = _number(values[node.name])
            if step is not None and node is not model.cost:
                info.grad = _number(values["d" + node.name])
        elif node.shape:
            dims = model.dims
            shape = r" \times ".join(sp.latex(sp.sympify(d).xreplace(dims)) for d in node.shape)
            info.value = f"${shape}$"
            if step is not None and node is not model.cost:
                info.grad = f"${shape}$"
        texts[node.name] = info
    return texts


def edge_labels(ctx: ReportContext, derivation) -> dict[tuple[str, str], str]:
    """(child, parent) -> the local derivative on that edge, textbook form."""
    printer = ctx.printer(derivation)
    labels = {}
    for step in derivation.steps:
        for branch in step.branches:
            local = local_textbook(branch, step.node)
            if local is not None:
                labels[(branch.child.name, step.node.name)] = printer.doprint(local)
    return labels


def make_figures(ctx: ReportContext, out_dir: Path, fmt: str = "pdf", say=None) -> dict:
    """Draw every figure the report uses into ``out_dir``; record them in ``ctx.figures``."""
    say = say or (lambda message: None)
    figures: dict = {}
    main = ctx.main
    say("drawing the computational graph")
    hide = should_hide_params(main.model)
    shown = len(main.model.nodes) - (len(main.model.params) if hide else 0)
    labels = edge_labels(ctx, main) if main.model.level == "scalar" else None
    fig = graph_figure(
        main.model,
        graph_texts(ctx, main),
        edge_labels=labels,
        hide_params=hide,
        legend=("forward value", "gradient")
        if main.model.level == "scalar"
        else ("shape", "shape of the gradient"),
    )
    figures["graph"], figures["graph_width"] = _save(fig, out_dir / f"graph.{fmt}")
    figures["graph_hides_params"] = hide
    drawn = sum((t.get_gid() or "").endswith(":edge") for t in fig.axes[0].texts)
    edges = sum(
        len(set(n.parents) - (set(main.model.params) if hide else set())) for n in main.model.nodes
    )
    figures["graph_has_edge_labels"] = (
        bool(labels) and shown <= MAX_NODES_WITH_EDGE_LABELS and drawn > 0
    )
    figures["graph_labels_every_edge"] = drawn == edges
    if ctx.matrix is not None and ctx.scalar is not None:
        fig = graph_figure(
            ctx.matrix.model,
            graph_texts(ctx, ctx.matrix),
            legend=("shape", "shape of the gradient"),
        )
        figures["layers"], figures["layers_width"] = _save(fig, out_dir / f"layers.{fmt}")
    hidden = (ctx.model.activation or "").split(",")  # "relu,tanh": one per hidden layer
    names = [a for a in (*hidden, ctx.model.output) if a]
    if names:
        say("plotting the activations")
        from .plots import plot_activations

        width = ctx.model.sizes[-1] if ctx.model.sizes else 2
        figures["activations"] = plot_activations(
            names, out_dir / f"activations.{fmt}", max(2, width)
        )
        figures["activation_names"] = list(dict.fromkeys(names))
    if ctx.instance is not None and ctx.scalar is not None:
        say("measuring finite-difference errors (the V curve)")
        from .plots import plot_v_curve

        param, curved = _v_curve_param(ctx)
        curves = fd_error_curve(ctx.scalar, ctx.instance, param)
        label = ctx.symbol(ctx.scalar, param)
        figures["vcurve"] = plot_v_curve(curves, out_dir / f"vcurve.{fmt}", label, ctx.dtype)
        figures["vcurve_param"] = label
        figures["vcurve_curved"] = curved
    elif (
        ctx.kernel is not None and hasattr(ctx.kernel, "loss_and_grads") and ctx.matrix is not None
    ):
        say("measuring finite-difference errors with the kernel (the V curve)")
        from reports.sections.numbers import kernel_error_curve

        from .plots import plot_v_curve

        try:
            curves, array, index = kernel_error_curve(ctx.kernel, ctx.matrix.model, ctx.seed)
        except Exception as err:  # a kernel that cannot run still leaves a useful report
            ctx.notes.append(f"The kernel could not be run for the V curve ({err}).")
        else:
            entry = ",".join(str(k + 1) for k in index)
            label = f"{ctx.symbol(ctx.matrix, array)}_{{{entry}}}"
            figures["vcurve"] = plot_v_curve(curves, out_dir / f"vcurve.{fmt}", label, ctx.dtype)
            figures["vcurve_param"] = label
            figures["vcurve_batch"] = True
    ctx.figures.update(figures)
    return figures


def _save(fig, path: Path) -> tuple[Path, float]:
    """Save a figure; return its path and its width in inches (LaTeX shows it at that size)."""
    import matplotlib.pyplot as plt

    width = fig.get_figwidth()
    fig.savefig(path)
    plt.close(fig)
    return path, width


def _v_curve_param(ctx: ReportContext) -> tuple[str, bool]:
    """The parameter the V curve varies, and whether the cost bends along it.

    The central difference errs by h² f'''/6 (truncation) plus rounding. Where the cost is
    linear or quadratic along a parameter (along every one of Ng's J = 3(a + bc)), f''' is
    zero and there is no V. So: among the first layer's parameters (a dead relu unit would
    show nothing), one whose third derivative at the example is not zero, with the largest
    gradient; else any parameter that bends; else, saying so, the largest gradient.
    """
    params = ctx.scalar.model.params
    first_families = list(dict.fromkeys(family(p) for p in params))[:2]
    first = [p for p in params if family(p) in first_families]
    run = cost_function(ctx.scalar.model)
    leaves = ctx.instance.leaves
    bends = {p.name: _third_derivative(run, leaves, p.name) != 0 for p in params}
    gradient = {p.name: abs(ctx.instance.adjoint(p.name)) for p in params}
    for pool in (first, params):
        live = [p.name for p in pool if bends[p.name] and gradient[p.name] > 0]
        if live:
            return max(live, key=gradient.get), True
    return max((p.name for p in params), key=gradient.get), False


def _third_derivative(run, leaves: dict, name: str, h: float = 0.05) -> float:
    """f''' along one leaf by the five-point difference; 0 when it is lost in rounding."""

    def f(t: float) -> float:
        env = {k: np.asarray(v) for k, v in leaves.items()}
        env[name] = np.asarray(leaves[name] + t)
        return float(run(env))

    values = [f(k * h) for k in (-2, -1, 0, 1, 2)]
    third = (values[4] - 2 * values[3] + 2 * values[1] - values[0]) / (2 * h**3)
    noise = 1e-9 * (1 + max(abs(v) for v in values)) / h**3
    return third if abs(third) > noise else 0.0
