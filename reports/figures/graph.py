"""The computational graph as a picture: nodes in layers, values in blue, gradients in red.

Layout: every computed node gets a column by its longest path from the inputs, so a network
reads left to right (``x -> z1 -> a1 -> z2 -> a2 -> L``); a parameter or target sits just
left of the node that uses it, next to its siblings. A *fork*, a node whose gradient is the
sum of several branches, gets a thick orange ring and the number of branches that add.

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

VALUE_COLOR = "#1f5fa8"  # forward values
GRAD_COLOR = "#c0392b"  # adjoints (gradients)
FORK_COLOR = "#e67e22"
EDGE_COLOR = "#7f8c8d"
LOCAL_COLOR = "#2e7d32"  # local derivatives on the edges
FILL = {"input": "#eef2f5", "target": "#eef2f5", "param": "#fdf6d8", "loss": "#f9e3e0"}

#: scalar graphs with more nodes than this are drawn without their parameter nodes
MAX_NODES_WITH_PARAMS = 36
#: chains with more columns than this wrap onto two rows
WRAP_COLUMNS = 6
ROW_HEIGHT = 3.0
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


def _ranks(nodes, hidden) -> dict:
    """Column of each computed node: its longest path from the inputs."""
    rank = {}
    for node in nodes:  # topological order: parents first
        if node.role == "input":
            rank[node] = 0.0
        elif not node.is_leaf:
            before = [rank[p] for p in node.parents if p in rank]
            rank[node] = (max(before) if before else 0.0) + 1.0
    return rank


def layout(model, hidden: set, column_gap: float = 1.6) -> dict:
    """Node -> (x, y) in drawing units.

    Computed nodes (and inputs) stand in columns; a node's parameters sit just left of it,
    above and below when it is alone in its column (a chain), stacked otherwise; targets
    sit in a row under the loss.
    """
    nodes = [n for n in model.nodes if n not in hidden]
    rank = _ranks(nodes, hidden)
    columns: dict[float, list] = {}
    for node in nodes:
        if node in rank:
            columns.setdefault(rank[node], []).append(node)
    params: dict = {}
    targets: dict = {}
    for node in nodes:
        if node in rank:
            continue
        users = [c for c in nodes if node in c.parents]
        group = targets if node.role == "target" else params
        group.setdefault(users[0] if users else None, []).append(node)
    gap = 0.42  # between stacked parameters
    stacked = [v for u, v in params.items() if u is None or len(columns[rank[u]]) > 1]
    spacing = max([1.2] + [(len(v) - 1) * gap + 0.6 for v in stacked])
    pos = {}
    # a long chain (one node per column) wraps onto a second row, like a line of text
    wrap = len(columns) > WRAP_COLUMNS and all(len(c) == 1 for c in columns.values())
    half = -(-len(columns) // 2)
    for r, column in columns.items():
        top = (len(column) - 1) * spacing / 2
        x, y0 = r * column_gap, 0.0
        if wrap and r >= half:
            x, y0 = (r - half + 0.5) * column_gap, -ROW_HEIGHT
        for k, node in enumerate(column):
            pos[node] = (x, y0 + top - k * spacing)
    for user, leaves in params.items():
        ux, uy = pos.get(user, (0.0, 0.0))
        if user is not None and len(columns[rank[user]]) == 1 and len(leaves) <= 2:
            for leaf, dx in zip(leaves, (-0.4, 0.4) if len(leaves) == 2 else (-0.4,)):
                pos[leaf] = (ux + dx, uy + 0.95)  # above the node that uses them
            continue
        top = uy + (len(leaves) - 1) * gap / 2
        for k, leaf in enumerate(leaves):
            pos[leaf] = (ux - 0.75, top - k * gap)
    for user, leaves in targets.items():  # a row under the loss, below what is there
        ux, uy = pos.get(user, (0.0, 0.0))
        left = ux - column_gap * 0.45 - (len(leaves) - 1) * 0.55
        below = [y for x, y in pos.values() if left - 0.45 <= x <= ux + 0.3]
        row_y = min(uy - 0.8, min(below) - 0.95)
        for k, leaf in enumerate(reversed(leaves)):
            pos[leaf] = (ux - column_gap * 0.45 - k * 0.55, row_y)
    return pos


def should_hide_params(model) -> bool:
    """Leave the weights out of a scalar picture when they would crowd it: a big graph, or
    layers of several units each fed by several parameters (an MLP drawn neuron by neuron,
    whose weights the layer-level graph shows instead)."""
    if model.level != "scalar":
        return False
    if len(model.nodes) > MAX_NODES_WITH_PARAMS:
        return True
    rank = _ranks(model.nodes, set())
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
    if hide_params is None:
        hide_params = should_hide_params(model)
    hidden = set(model.params) if hide_params else set()
    shown = [n for n in model.nodes if n not in hidden]
    labels = edge_labels if edge_labels and len(shown) <= MAX_NODES_WITH_EDGE_LABELS else None
    clusters = any(len([p for p in n.parents if p.role == "param"]) > 2 for n in shown)
    gap = 2.6 if clusters and not hidden else 2.0 if labels else 1.6
    pos = layout(model, hidden, column_gap=gap)
    drawn = [n for n in model.nodes if n in pos]
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    x_lo, x_hi = min(xs) - 1.0, max(xs) + 0.7
    y_lo, y_hi = min(ys) - 0.75, max(ys) + 0.55
    unit = min(52.0, 6.3 * 72 / (x_hi - x_lo))  # points per drawing unit
    fig_w, fig_h = (x_hi - x_lo) * unit / 72, (y_hi - y_lo) * unit / 72
    if fig_h > 8.4:  # very tall: shrink everything
        unit *= 8.4 / fig_h
        fig_w, fig_h = (x_hi - x_lo) * unit / 72, 8.4
    fig = plt.figure(figsize=(fig_w, fig_h + 0.3))
    ax = fig.add_axes((0, 0.3 / (fig_h + 0.3), 1, fig_h / (fig_h + 0.3)))
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.axis("off")
    radius = 0.27
    fs = max(5.5, min(10.0, 0.33 * unit))  # node labels
    small = max(4.8, fs * 0.78)  # annotations
    shrink = radius * unit + 1.0

    for child in drawn:
        for parent in dict.fromkeys(child.parents):
            if parent not in pos:
                continue
            (x0, y0), (x1, y1) = pos[parent], pos[child]
            ax.add_patch(
                FancyArrowPatch(
                    (x0, y0),
                    (x1, y1),
                    arrowstyle="-|>",
                    mutation_scale=6,
                    color=EDGE_COLOR,
                    lw=0.6,
                    shrinkA=shrink,
                    shrinkB=shrink,
                    zorder=1,
                )
            )
            label = labels.get((child.name, parent.name)) if labels else None
            text = mathtext(label) if label else None
            if text:
                _edge_label(ax, text, (x0, y0), (x1, y1), parent, small)

    for node in drawn:
        x, y = pos[node]
        info = texts.get(node.name, NodeText(node.name))
        face = FILL.get(node.role, "white")
        edge = FORK_COLOR if info.fork else "#34495e"
        if node.is_leaf:
            half = radius * (0.85 if node.role == "param" else 0.95)
            ax.add_patch(
                FancyBboxPatch(
                    (x - half, y - half * 0.75),
                    2 * half,
                    1.5 * half,
                    boxstyle="round,pad=0.0,rounding_size=0.06",
                    fc=face,
                    ec=edge,
                    lw=0.7,
                    zorder=2,
                )
            )
        else:
            ax.add_patch(
                Circle((x, y), radius, fc=face, ec=edge, lw=2.0 if info.fork else 0.9, zorder=2)
            )
        label = mathtext(info.label) or info.label
        ax.text(x, y, label, ha="center", va="center", fontsize=fs, zorder=3)
        above = any(p.role == "param" and pos.get(p, (0, y))[1] > y + 0.5 for p in node.parents)
        if info.op and not node.is_leaf and not above:
            ax.text(
                x,
                y + radius + 0.03,
                info.op,
                ha="center",
                va="bottom",
                fontsize=small * 0.9,
                color="#555555",
                style="italic",
                zorder=3,
            )
        if info.fork:
            ax.text(
                x + radius + 0.03,
                y + radius * 0.5,
                f"$\\Sigma_{{{info.fork}}}$",
                fontsize=small,
                color=FORK_COLOR,
                ha="left",
                va="center",
                zorder=3,
            )
        users = [pos[c] for c in drawn if node in c.parents]
        right = bool(users) and users[0][0] < x - 0.1  # a parameter right of its user
        _annotate(ax, node, info, x, y, radius, small, right)

    _legend(fig, legend, any(t.fork for t in texts.values()), small + 1)
    fig.savefig(path)
    plt.close(fig)
    return path


def _edge_label(ax, text, start, end, parent, size) -> None:
    """The local derivative on an edge: at its middle, or near the parameter it leaves."""
    (x0, y0), (x1, y1) = start, end
    t = 0.5 if not parent.is_leaf or parent.role == "input" else 0.45
    x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    ax.text(
        x,
        y,
        text,
        fontsize=size,
        color=LOCAL_COLOR,
        ha="center",
        va="center",
        zorder=4,
        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.9),
    )


def _annotate(ax, node, info: NodeText, x, y, radius, size, right=False) -> None:
    """Value (blue) over gradient (red): beside a parameter, under anything else."""
    pairs = [(t, c) for t, c in ((info.value, VALUE_COLOR), (info.grad, GRAD_COLOR)) if t]
    if node.role == "param":
        for k, (text, color) in enumerate(pairs):
            dy = 0.0 if len(pairs) == 1 else (0.08 if k == 0 else -0.1)
            ax.text(
                x + radius + 0.04 if right else x - radius - 0.04,
                y + dy,
                text,
                ha="left" if right else "right",
                va="center",
                fontsize=size * 0.9,
                color=color,
                zorder=3,
            )
        return
    for k, (text, color) in enumerate(pairs):
        ax.text(
            x,
            y - radius - 0.03 - k * 0.17,
            text,
            ha="center",
            va="top",
            fontsize=size,
            color=color,
            zorder=3,
        )


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
                label=r"fork: $\Sigma_k$, the gradients of $k$ branches add",
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
