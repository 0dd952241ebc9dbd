"""The graph pictures do not mislead: measured on the drawn matplotlib figure, no edge passes
through a node it does not join, and no text covers another text, an edge or a node.

The geometry is read back from what matplotlib draws (patch and text extents from the
renderer, the arrows' paths in display coordinates), not from the layout's own plan.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import derive
from derive.spec import build
from reports.document import DEFAULT_OPTIONS, DEFAULT_SPEC
from reports.figures.draw import edge_labels, graph_texts
from reports.figures.graph import graph_figure, should_hide_params
from reports.sections.context import build_context
from reports.sections.numbers import worked_instance

#: every model the report tests write a report for (tests/test_report*.py), and the issue's
SPECS = [
    (DEFAULT_SPEC, DEFAULT_OPTIONS),
    ("chain:1", {}),
    ("chain:2", {}),
    ("chain:3", {}),
    ("chain:5", {}),
    ("logreg:1", {}),
    ("logreg:2", {}),
    ("logreg:3", {}),
    ("J = 3*(a + b*c)", {}),
    ("mlp:2-3-1", {}),
    ("mlp:2-3-1", {"activation": "tanh"}),
    ("mlp:2-2-1", {"activation": "step"}),
    ("mlp:4-5-3", {"output": "softmax", "loss": "cce"}),
    ("mlp:2-3-2", {"output": "softmax"}),
    ("mlp:3-4-2", {"activation": "elu", "output": "linear", "loss": "huber"}),
    ("mlp:3-4-3", {"activation": "tanh", "output": "softmax", "loss": "sparse_cce"}),
    ("mlp:784-512-10", {}),
]


def _figures(spec, options):
    """The report's graph figures of a spec: the main graph, and the layer graph if any."""
    ctx = build_context(build(spec, **options))
    main = ctx.main
    if main.model.level == "scalar":
        ctx.instance = worked_instance(main, seed=0)
    yield graph_figure(
        main.model,
        graph_texts(ctx, main),
        edge_labels=edge_labels(ctx, main) if main.model.level == "scalar" else None,
        hide_params=should_hide_params(main.model),
    )
    if ctx.matrix is not None and ctx.scalar is not None:
        yield graph_figure(ctx.matrix.model, graph_texts(ctx, ctx.matrix))


def _pieces(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    nodes, edges, texts = {}, {}, []
    for artist in fig.axes[0].get_children():
        gid = artist.get_gid() or ""
        if gid.startswith("node:"):
            nodes[gid[5:]] = artist.get_window_extent(renderer)
        elif gid.startswith("edge:"):
            path = artist.get_transform().transform_path(artist.get_path())
            edges[tuple(gid.split(":")[1:])] = path.to_polygons(closed_only=False)
        elif gid.startswith("text:"):
            owner, kind = gid[5:].rsplit(":", 1)
            box = artist.get_window_extent(renderer)
            if artist.get_bbox_patch() is not None:
                box = artist.get_bbox_patch().get_window_extent(renderer)
            texts.append((owner, kind, box, artist.get_text()))
    return nodes, edges, texts


def _hits(box, polygons, slack=0.5) -> bool:
    """Whether a polyline passes through a box: sample each segment every half pixel."""
    x0, y0, x1, y1 = box.x0 + slack, box.y0 + slack, box.x1 - slack, box.y1 - slack
    for poly in polygons:
        for p, q in zip(poly[:-1], poly[1:]):
            n = int(np.hypot(*(q - p)) * 2) + 2
            t = np.linspace(0, 1, n)[:, None]
            pts = p + t * (q - p)
            inside = (pts[:, 0] > x0) & (pts[:, 0] < x1) & (pts[:, 1] > y0) & (pts[:, 1] < y1)
            if inside.any():
                return True
    return False


def _overlap(a, b, slack=0.5) -> bool:
    return (
        a.x0 < b.x1 - slack and b.x0 < a.x1 - slack and a.y0 < b.y1 - slack and b.y0 < a.y1 - slack
    )


@pytest.mark.parametrize("spec, options", SPECS, ids=[f"{s} {o}" for s, o in SPECS])
def test_no_edge_crosses_a_node_and_no_text_covers_anything(spec, options):
    for fig in _figures(spec, options):
        try:
            nodes, edges, texts = _pieces(fig)
            assert nodes and edges and texts
            canvas = fig.bbox
            problems = []
            for (child, parent), polygons in edges.items():
                for name, box in nodes.items():
                    if name not in (child, parent) and _hits(box, polygons):
                        problems.append(f"edge {parent}->{child} crosses node {name}")
            for k, (owner, kind, box, text) in enumerate(texts):
                if not (canvas.x0 <= box.x0 and box.x1 <= canvas.x1 and canvas.y0 <= box.y0):
                    problems.append(f"{text!r} ({owner}) leaves the figure")
                for _, _, other, other_text in texts[k + 1 :]:
                    if _overlap(box, other):
                        problems.append(f"{text!r} ({owner}) overlaps {other_text!r}")
                for (child, parent), polygons in edges.items():
                    own = kind == "edge" and owner == f"{child}->{parent}"
                    if not own and _hits(box, polygons):
                        problems.append(f"{text!r} ({owner}) lies on edge {parent}->{child}")
                for name, node in nodes.items():
                    if not (kind == "label" and name == owner) and _overlap(box, node):
                        problems.append(f"{text!r} ({owner}) covers node {name}")
            assert not problems, "\n".join(problems)
        finally:
            plt.close(fig)


def test_the_checker_sees_an_edge_through_a_node_and_overlapping_texts():
    """The geometry test can fail: a straight edge drawn through a middle node, and two
    texts drawn on top of each other, are both reported."""
    fig = plt.figure(figsize=(3, 1))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 3)
    ax.set_ylim(0, 1)
    from matplotlib.patches import Circle, FancyArrowPatch

    for k in range(3):
        ax.add_patch(Circle((0.5 + k, 0.5), 0.1, gid=f"node:n{k}"))
    ax.add_patch(FancyArrowPatch((0.6, 0.5), (2.4, 0.5), arrowstyle="-|>", gid="edge:n2:n0"))
    ax.text(1.0, 0.2, "0.828", gid="text:n1:value")
    ax.text(1.05, 0.2, "1.05", gid="text:n2:value")
    nodes, edges, texts = _pieces(fig)
    assert _hits(nodes["n1"], edges[("n2", "n0")])
    assert _overlap(texts[0][2], texts[1][2])
    plt.close(fig)


def test_a_long_chain_wraps_without_its_wrapping_edge_crossing_a_node():
    model = derive.chain(4)
    fig = graph_figure(model, {})
    nodes, edges, _ = _pieces(fig)
    rows = {round(b.y0) for name, b in nodes.items() if name[0] in "za"}
    assert len(rows) == 2  # it did wrap
    plt.close(fig)
