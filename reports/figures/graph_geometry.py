"""The pieces of a graph picture as rectangles and polylines, in points: text sizes measured
with matplotlib's renderer, and the tests of whether two pieces meet."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


@lru_cache(maxsize=4096)
def measure(text: str, size: float, italic: bool = False) -> tuple[float, float]:
    """Width and height, in points, that matplotlib draws ``text`` at ``size`` points."""
    fig = Figure(dpi=72)
    renderer = FigureCanvasAgg(fig).get_renderer()
    artist = fig.text(0, 0, text, fontsize=size, style="italic" if italic else "normal")
    box = artist.get_window_extent(renderer=renderer)
    return box.width, box.height


@dataclass
class Label:
    """A text to draw: where its anchor is, how it is anchored, and what it belongs to."""

    text: str
    x: float
    y: float
    size: float
    color: str
    ha: str = "center"
    va: str = "center"
    owner: str = ""  # node name, or "child->parent" for an edge label
    kind: str = "label"  # label, value, grad, op, fork, edge
    italic: bool = False

    def rect(self) -> tuple[float, float, float, float]:
        w, h = measure(self.text, self.size, self.italic)
        x0 = {"left": self.x, "center": self.x - w / 2, "right": self.x - w}[self.ha]
        y0 = {"bottom": self.y, "center": self.y - h / 2, "top": self.y - h}[self.va]
        return x0, y0, x0 + w, y0 + h


@dataclass
class Plan:
    """A placed picture: node centres, circle radius, box half-sizes, edge polylines, texts."""

    pos: dict = field(default_factory=dict)  # node -> (x, y)
    radius: float = 10.0
    boxes: dict = field(default_factory=dict)  # leaf node -> (half width, half height)
    edges: dict = field(default_factory=dict)  # (child, parent) -> [(x, y), ...], tip last
    labels: list = field(default_factory=list)

    def node_rect(self, node) -> tuple[float, float, float, float]:
        x, y = self.pos[node]
        hw, hh = self.boxes.get(node, (self.radius, self.radius))
        return x - hw, y - hh, x + hw, y + hh

    def bounds(self, margin: float = 4.0) -> tuple[float, float, float, float]:
        rects = [self.node_rect(n) for n in self.pos] + [t.rect() for t in self.labels]
        xs = [r[0] for r in rects] + [r[2] for r in rects]
        ys = [r[1] for r in rects] + [r[3] for r in rects]
        for points in self.edges.values():
            xs += [p[0] for p in points]
            ys += [p[1] for p in points]
        return min(xs) - margin, max(xs) + margin, min(ys) - margin, max(ys) + margin


# ---------------------------------------------------------------------------- geometry


def overlaps(a, b, slack: float = 0.0) -> bool:
    return (
        a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack
    )


def segment_hits(rect, p, q) -> bool:
    """Whether segment pq passes through the rectangle (Liang-Barsky clipping)."""
    (x0, y0), (x1, y1) = p, q
    dx, dy = x1 - x0, y1 - y0
    lo, hi = 0.0, 1.0
    for d, start, low, high in ((dx, x0, rect[0], rect[2]), (dy, y0, rect[1], rect[3])):
        if d == 0:
            if not low < start < high:
                return False
            continue
        t0, t1 = sorted(((low - start) / d, (high - start) / d))
        lo, hi = max(lo, t0), min(hi, t1)
        if lo >= hi:
            return False
    return True


def polyline_hits(rect, points) -> bool:
    return any(segment_hits(rect, p, q) for p, q in zip(points, points[1:]))
