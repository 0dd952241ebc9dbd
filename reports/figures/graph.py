"""The computational graph as a picture: nodes in layers, values in blue, gradients in red.

Every computed node gets a column by its longest path from the inputs, so a network reads
left to right (``x -> z1 -> a1 -> z2 -> a2 -> L``); parameters stand in a row above the node
they feed, targets in a row under the loss (:mod:`.graph_layout` places everything from the
measured sizes of its texts, so no edge crosses a node and no text covers another or an
edge). A *fork*, a node whose gradient is the sum of several branches, gets a thick orange
ring and the number of branches that add.

Only matplotlib (Agg backend) is used, and the figure is saved as vector PDF or SVG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.mathtext import MathTextParser  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from .graph_layout import SMALL_PT, measure, place, ranks  # noqa: E402

VALUE_COLOR = "#1f5fa8"  # forward values
GRAD_COLOR = "#c0392b"  # adjoints (gradients)
FORK_COLOR = "#e67e22"
EDGE_COLOR = "#7f8c8d"
LOCAL_COLOR = "#2e7d32"  # local derivatives on the edges
FILL = {"input": "#eef2f5", "target": "#eef2f5", "param": "#fdf6d8", "loss": "#f9e3e0"}

#: scalar graphs with more nodes than this are drawn without their parameter nodes
MAX_NODES_WITH_PARAMS = 36
#: graphs with more drawn nodes than this get no edge labels
MAX_NODES_WITH_EDGE_LABELS = 18


@dataclass
class NodeText:
    """What to write at a node: its symbol, and up to two annotations under it."""

    label: str
    value: str | None = None
    grad: str | None = None
    op: str | None = None
    fork: int = 0  # number of branches that add at this node (0: not a fork)


def mathtext(tex: str) -> str | None:
    """``tex`` in the subset of LaTeX matplotlib renders, or None when it cannot."""
    text = (
        tex.replace(r"\operatorname", r"\mathrm")
        .replace(r"\text", r"\mathrm")
        .replace(r"\left.", "")
        .replace(r"\right.", "")
    )
    if r"\begin" in text:
        return None
    try:
        _PARSER.parse(f"${text}$")
    except (ValueError, RuntimeError):
        return None
    return f"${text}$"


_PARSER = MathTextParser("path")


# ---------------------------------------------------------------------------- layout


def layout(model, hidden: set, texts: dict | None = None) -> dict:
    """Node -> (x, y) in points: computed nodes in columns, parameters above their user."""
    return place(model, _texts(model, texts or {}), hidden, {}, _COLORS).pos


def should_hide_params(model) -> bool:
    """Leave the weights out of a scalar picture when they would crowd it: a big graph, or
    layers of several units each fed by several parameters (an MLP drawn neuron by neuron,
    whose weights the layer-level graph shows instead)."""
    if model.level != "scalar":
        return False
    if len(model.nodes) > MAX_NODES_WITH_PARAMS:
        return True
    rank = ranks(model.nodes)
    width: dict = {}
    for node in model.nodes:
        if node in rank:
            width[rank[node]] = width.get(rank[node], 0) + 1
    return any(
        width[rank[node]] > 1 and sum(p.role == "param" for p in node.parents) > 2
        for node in model.nodes
        if node in rank and not node.is_leaf
    )


# ---------------------------------------------------------------------------- drawing

#: the largest picture, in points; bigger ones are scaled down whole (texts too)
MAX_WIDTH, MAX_HEIGHT = 6.3 * 72, 8.4 * 72
LEGEND = 16.0  # points under the graph for the legend
_COLORS = (VALUE_COLOR, GRAD_COLOR, FORK_COLOR, "#555555", LOCAL_COLOR)


def _texts(model, texts: dict[str, NodeText]) -> dict[str, NodeText]:
    """Every node's texts, with labels in the LaTeX subset matplotlib renders."""
    out = {}
    for node in model.nodes:
        info = texts.get(node.name, NodeText(node.name))
        out[node.name] = NodeText(
            mathtext(info.label) or info.label, info.value, info.grad, info.op, info.fork
        )
    return out


def graph_figure(
    model,
    texts: dict[str, NodeText],
    *,
    edge_labels: dict[tuple[str, str], str] | None = None,
    hide_params: bool | None = None,
    legend: tuple[str, str] = ("forward value", "gradient"),
):
    """``model``'s graph as a matplotlib figure (see :func:`draw_graph`).

    Every drawn piece carries a ``gid`` saying what it is: ``node:NAME``, ``edge:CHILD:PARENT``
    and ``text:OWNER:KIND`` (OWNER a node name or ``CHILD->PARENT`` for an edge label).
    """
    if hide_params is None:
        hide_params = should_hide_params(model)
    hidden = set(model.params) if hide_params else set()
    shown = [n for n in model.nodes if n not in hidden]
    labels = {}
    if edge_labels and len(shown) <= MAX_NODES_WITH_EDGE_LABELS:
        labels = {k: mathtext(v) for k, v in edge_labels.items() if mathtext(v)}
    plan = place(model, _texts(model, texts), hidden, labels, _COLORS)
    x_lo, x_hi, y_lo, y_hi = plan.bounds()
    forks = {n for n in plan.pos if texts.get(n.name) and texts[n.name].fork}
    spare = _legend_width(legend, bool(forks)) - (x_hi - x_lo)
    if spare > 0:  # a narrow graph: widen the page to its legend
        x_lo, x_hi = x_lo - spare / 2, x_hi + spare / 2
    width, height = x_hi - x_lo, y_hi - y_lo + LEGEND
    scale = min(1.0, MAX_WIDTH / width, MAX_HEIGHT / height)
    fig = plt.figure(figsize=(width * scale / 72, height * scale / 72))
    ax = fig.add_axes((0, LEGEND / height, 1, 1 - LEGEND / height))
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.axis("off")
    for (child, parent), points in plan.edges.items():
        ax.add_patch(
            FancyArrowPatch(
                path=MplPath(points),
                arrowstyle="-|>",
                mutation_scale=7 * scale,
                color=EDGE_COLOR,
                lw=0.6 * scale,
                zorder=1,
                gid=f"edge:{child.name}:{parent.name}",
            )
        )
    for node, (x, y) in plan.pos.items():
        face = FILL.get(node.role, "white")
        edge = FORK_COLOR if node in forks else "#34495e"
        if node in plan.boxes:
            hw, hh = plan.boxes[node]
            patch = FancyBboxPatch(
                (x - hw, y - hh),
                2 * hw,
                2 * hh,
                boxstyle="round,pad=0.0,rounding_size=2.5",
                fc=face,
                ec=edge,
                lw=0.7 * scale,
            )
        else:
            patch = Circle(
                (x, y), plan.radius, fc=face, ec=edge, lw=(2.0 if node in forks else 0.9) * scale
            )
        patch.set(zorder=2, gid=f"node:{node.name}")
        ax.add_patch(patch)
    for label in plan.labels:
        extra = {}
        if label.kind == "edge":
            extra["bbox"] = dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.9)
        ax.text(
            label.x,
            label.y,
            label.text,
            ha=label.ha,
            va=label.va,
            color=label.color,
            fontsize=label.size * scale,
            style="italic" if label.italic else "normal",
            zorder=4 if label.kind == "edge" else 3,
            gid=f"text:{label.owner}:{label.kind}",
            **extra,
        )
    _legend(fig, legend, bool(forks), (SMALL_PT + 1) * scale)
    return fig


def draw_graph(
    model,
    texts: dict[str, NodeText],
    path: Path,
    *,
    edge_labels: dict[tuple[str, str], str] | None = None,
    hide_params: bool | None = None,
    legend: tuple[str, str] = ("forward value", "gradient"),
) -> Path:
    """Draw ``model``'s graph to ``path`` (PDF or SVG, by suffix); return the path.

    ``texts`` maps node names to what to write at them; ``edge_labels`` maps
    ``(child, parent)`` names to the local derivative on that edge (LaTeX).
    """
    fig = graph_figure(
        model, texts, edge_labels=edge_labels, hide_params=hide_params, legend=legend
    )
    fig.savefig(path)
    plt.close(fig)
    return path


_FORK_LEGEND = r"fork: $\Sigma_k$, the gradients of $k$ branches add"


def _legend_width(legend, forks: bool) -> float:
    """Points the legend takes at full size: each entry's marker and text, and the gaps."""
    size = SMALL_PT + 1
    entries = list(legend) + ([_FORK_LEGEND] if forks else [])
    return sum(measure(e, size)[0] + 2.3 * size for e in entries) + 1.4 * size * len(entries)


def _legend(fig, legend, forks: bool, size) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], ls="none", marker="s", color=VALUE_COLOR, label=legend[0]),
        Line2D([], [], ls="none", marker="s", color=GRAD_COLOR, label=legend[1]),
    ]
    if forks:
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="o",
                mfc="white",
                mec=FORK_COLOR,
                mew=2,
                label=_FORK_LEGEND,
            )
        )
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=len(handles),
        frameon=False,
        fontsize=size,
        handletextpad=0.3,
        columnspacing=1.4,
        borderaxespad=0.1,
    )
