"""Where the pieces of a computational-graph picture go, in points, from the sizes of its texts.

Every text is measured with matplotlib's own renderer before anything is placed, so columns
stand as far apart as their widest text needs and the nodes of a column as far as their
annotations need. Edges run in lanes no text uses:

- an edge between columns leaves its node's right side and enters the next node's left side
  horizontally, past the texts under the nodes, and bends only in the free band between
  the two columns;
- a parameter sits in a row above the node it feeds, its value and gradient above it;
- targets sit in a row under the loss, whose own value stands to its right;
- a long chain wraps onto a second row like a line of text: the wrapping edge runs down,
  back along a free channel between the rows, and into the first node of the second row.
"""

from __future__ import annotations

from .graph_geometry import Label, Plan, measure, overlaps, polyline_hits

LABEL_PT = 10.0  # node symbols
SMALL_PT = 7.5  # values, gradients, edge labels
OP_PT = 6.8  # the operation over a node
RUN = 22.0  # shortest free band between two columns (room for a visible arrow)
GAP = 7.0  # between stacked cells, rows of boxes and their texts
PARAM_RISE = 24.0  # from a node's top to the bottom of its parameters' boxes
#: chains with more columns than this wrap onto two rows
WRAP_COLUMNS = 6


# ---------------------------------------------------------------------------- placement


def ranks(nodes) -> dict:
    """Column of each computed node and input: its longest path from the inputs."""
    rank = {}
    for node in nodes:  # topological order: parents first
        if node.role == "input":
            rank[node] = 0
        elif not node.is_leaf:
            before = [rank[p] for p in node.parents if p in rank]
            rank[node] = (max(before) if before else 0) + 1
    return rank


class _Placer:
    """Builds a :class:`Plan` for the shown nodes of a model (see the module docstring)."""

    def __init__(self, model, texts, hidden, edge_labels, colors):
        self.model = model
        self.texts = texts
        self.colors = colors  # value, grad, fork, op
        self.nodes = [n for n in model.nodes if n not in hidden]
        self.edge_labels = edge_labels or {}
        self.rank = ranks(self.nodes)
        self.columns: dict[int, list] = {}
        for node in self.nodes:
            if node in self.rank:
                self.columns.setdefault(self.rank[node], []).append(node)
        self.leaves: dict = {}  # user -> [params], [targets]
        for node in self.nodes:
            if node not in self.rank:
                users = [c for c in self.nodes if node in c.parents]
                user = users[0] if users else self.columns[0][0]
                self.leaves.setdefault(user, ([], []))[node.role == "target"].append(node)
        self.edge_labels = {k: v for k, v in self.edge_labels.items() if not self.crossed(*k)}
        self.plan = Plan()
        self.plan.radius = max(
            [9.0]
            + [
                max(measure(self.symbol(n), LABEL_PT)) / 2 + 2.5
                for n in self.nodes
                if not n.is_leaf
            ]
        )
        for node in self.nodes:
            if node.is_leaf:
                w, h = measure(self.symbol(node), LABEL_PT)
                self.plan.boxes[node] = (max(w / 2 + 3.5, 8.0), h / 2 + 2.5)

    def crossed(self, child_name: str, parent_name: str) -> bool:
        """Whether another edge between the same two columns crosses this one (a label
        there would sit on it): their ends come in opposite orders down the columns."""
        by_name = {n.name: n for n in self.nodes}
        child, parent = by_name.get(child_name), by_name.get(parent_name)
        if child not in self.rank or parent not in self.rank:
            return False
        before, after = self.columns[self.rank[parent]], self.columns[self.rank[child]]
        p, c = before.index(parent), after.index(child)
        return any(
            (before.index(q) - p) * (after.index(d) - c) < 0
            for d in after
            for q in d.parents
            if q in before
        )

    # -- what is written at a node

    def info(self, node):
        return self.texts[node.name]

    def symbol(self, node) -> str:
        return self.texts[node.name].label

    def annotations(self, node) -> list[tuple[str, str, str]]:
        info = self.info(node)
        pairs = [(info.value, self.colors[0], "value")]
        if node is not self.model.cost:
            pairs.append((info.grad, self.colors[1], "grad"))
        return [p for p in pairs if p[0]]

    def block(self, node) -> tuple[float, float]:
        """Width and height of the annotations of ``node`` stacked one over the other."""
        sizes = [measure(t, SMALL_PT) for t, _, _ in self.annotations(node)]
        return max([0.0] + [w for w, _ in sizes]), sum(h for _, h in sizes)

    def half(self, node) -> tuple[float, float]:
        return self.plan.boxes.get(node, (self.plan.radius, self.plan.radius))

    def row_of_boxes(self, leaves) -> tuple[list[float], float]:
        """Slot widths of a row of leaf boxes with their annotations, and the row's width."""
        slots = [max(2 * self.half(leaf)[0], self.block(leaf)[0]) for leaf in leaves]
        return slots, sum(slots) + GAP * (len(slots) - 1)

    def shows_op(self, node) -> bool:
        return bool(self.info(node).op) and not node.is_leaf and not self.params(node)

    def params(self, node) -> list:
        return self.leaves.get(node, ([], []))[0]

    def targets(self, node) -> list:
        return self.leaves.get(node, ([], []))[1]

    # -- the space a node's cell takes around its centre: left, right, up, down

    def cell(self, node) -> tuple[float, float, float, float]:
        hw, hh = self.half(node)
        width, height = self.block(node)
        left = right = max(hw, width / 2)
        up, down = hh, hh + 1.0 + height
        if node is self.model.cost:  # its value stands to its right
            left, right, down = hw, hw + 3.0 + width, hh
        if self.shows_op(node):
            w, h = measure(self.info(node).op, OP_PT, True)
            left, right, up = max(left, w / 2), max(right, w / 2), max(up, hh + 1.0 + h)
        if self.info(node).fork:
            w, h = measure(self.fork_text(node), SMALL_PT)
            right = max(right, self.fork_x(node) + w)
            up = max(up, hh + 1.0 + h)
        for leaves, sign in ((self.params(node), 1), (self.targets(node), -1)):
            if not leaves:
                continue
            _, total = self.row_of_boxes(leaves)
            reach = (
                hh
                + PARAM_RISE
                + 2 * max(self.half(x)[1] for x in leaves)
                + 1.0
                + max(self.block(x)[1] for x in leaves)
            )
            left, right = max(left, total / 2), max(right, total / 2)
            if sign > 0:
                up = max(up, reach)
            else:
                down = max(down, reach)
        return left, right, up, down

    def fork_text(self, node) -> str:
        return f"$\\Sigma_{{{self.info(node).fork}}}$"

    def fork_x(self, node) -> float:
        """Where the fork's sum sign starts, right of the node and of its operation."""
        op = measure(self.info(node).op, OP_PT, True)[0] / 2 if self.shows_op(node) else 0.0
        return max(self.half(node)[0], op) + 2.0

    # -- positions

    def place(self) -> Plan:
        cells = {n: self.cell(n) for n in self.rank}
        order = sorted(self.columns)
        wrap = len(order) > WRAP_COLUMNS and all(len(self.columns[r]) == 1 for r in order)
        half = -(-len(order) // 2)
        rows = [order[:half], order[half:]] if wrap else [order]
        self.cells, self.row_of = cells, {r: i for i, row in enumerate(rows) for r in row}
        pos = self.plan.pos
        for r in order:  # a column: cells stacked, centred on y = 0
            column, y, ys = self.columns[r], 0.0, []
            for k, node in enumerate(column):
                if k:
                    y -= cells[column[k - 1]][3] + cells[node][2] + GAP
                ys.append(y)
            for node, y in zip(column, ys):
                pos[node] = (0.0, y - sum(ys) / len(ys))
        for i, row in enumerate(rows):  # columns side by side, as far apart as they need
            x = 0.0
            for k, r in enumerate(row):
                left = max(cells[n][0] for n in self.columns[r])
                if k == 0:
                    x = left + (4 * GAP if i else 0.0)  # room for the wrapping edge's return
                else:
                    x += self.side(row[k - 1], 1) + self.run(row[k - 1], r) + left
                for node in self.columns[r]:
                    pos[node] = (x, pos[node][1])
        self.channel = None
        if wrap:
            bottom = min(pos[n][1] - cells[n][3] for r in rows[0] for n in self.columns[r])
            top = max(pos[n][1] + cells[n][2] for r in rows[1] for n in self.columns[r])
            height = 2 * GAP + self.wrap_label_height(rows)
            self.channel = bottom - height / 2
            for r in rows[1]:
                for node in self.columns[r]:
                    pos[node] = (pos[node][0], pos[node][1] + bottom - height - top)
        for node in self.rank:
            self.place_leaves(node)
            self.annotate(node)
        for child in self.nodes:
            for parent in dict.fromkeys(child.parents):
                if parent in pos:
                    self.plan.edges[(child, parent)] = self.route(child, parent)
        self.label_edges()
        return self.plan

    def side(self, r: int, sign: int) -> float:
        """How far column ``r`` reaches right (sign 1) or left (sign 0) of its centre."""
        return max(self.cells[n][0 if sign == 0 else 1] for n in self.columns[r])

    def labels_between(self, before, after) -> list[tuple[float, float]]:
        return [
            measure(self.edge_labels[(c.name, p.name)], SMALL_PT)
            for c in self.columns[after]
            for p in c.parents
            if p in self.columns[before] and (c.name, p.name) in self.edge_labels
        ]

    def run(self, before: int, after: int) -> float:
        sizes = self.labels_between(before, after)
        return max([RUN] + [w + 3 * GAP for w, _ in sizes])

    def wrap_label_height(self, rows) -> float:
        sizes = self.labels_between(rows[0][-1], rows[1][0])
        return max([0.0] + [h + 3.0 for _, h in sizes])

    def place_leaves(self, node) -> None:
        x, y = self.plan.pos[node]
        hh = self.half(node)[1]
        for leaves, sign in ((self.params(node), 1), (self.targets(node), -1)):
            if not leaves:
                continue
            slots, total = self.row_of_boxes(leaves)
            rise = hh + PARAM_RISE + max(self.half(leaf)[1] for leaf in leaves)
            left = x - total / 2
            for leaf, slot in zip(leaves, slots):
                self.plan.pos[leaf] = (left + slot / 2, y + sign * rise)
                left += slot + GAP
                self.annotate(leaf, sign)

    def annotate(self, node, sign: int = -1) -> None:
        """The node's symbol, its operation and fork sum above, values and gradients beside."""
        x, y = self.plan.pos[node]
        hw, hh = self.half(node)
        info, labels = self.info(node), self.plan.labels
        labels.append(Label(info.label, x, y, LABEL_PT, "black", owner=node.name))
        if self.shows_op(node):
            labels.append(
                Label(
                    info.op,
                    x,
                    y + hh + 1.0,
                    OP_PT,
                    self.colors[3],
                    va="bottom",
                    owner=node.name,
                    kind="op",
                    italic=True,
                )
            )
        if info.fork:
            labels.append(
                Label(
                    self.fork_text(node),
                    x + self.fork_x(node),
                    y + hh + 1.0,
                    SMALL_PT,
                    self.colors[2],
                    ha="left",
                    va="bottom",
                    owner=node.name,
                    kind="fork",
                )
            )
        lines = self.annotations(node)
        if node is self.model.cost:  # beside the last node, where no edge goes
            top = y + sum(measure(t, SMALL_PT)[1] for t, _, _ in lines) / 2
            for text, color, kind in lines:
                labels.append(
                    Label(
                        text,
                        x + hw + 3.0,
                        top,
                        SMALL_PT,
                        color,
                        ha="left",
                        va="top",
                        owner=node.name,
                        kind=kind,
                    )
                )
                top -= measure(text, SMALL_PT)[1]
            return
        edge = y + sign * (hh + 1.0)  # under a node (or above a parameter), value first
        for text, color, kind in lines if sign < 0 else lines[::-1]:
            labels.append(
                Label(
                    text,
                    x,
                    edge,
                    SMALL_PT,
                    color,
                    va="top" if sign < 0 else "bottom",
                    owner=node.name,
                    kind=kind,
                )
            )
            edge += sign * measure(text, SMALL_PT)[1]

    # -- edges

    def route(self, child, parent) -> list[tuple[float, float]]:
        """The polyline of an edge, from the parent's side to the tip at the child's side."""
        pos, radius = self.plan.pos, self.plan.radius
        (px, py), (cx, cy) = pos[parent], pos[child]
        phw, phh = self.half(parent)
        chw, _ = self.half(child)
        if parent not in self.rank:  # a leaf above or below its user: straight in
            start = (px, py - phh if py > cy else py + phh)
            dx, dy = start[0] - cx, start[1] - cy
            norm = (dx * dx + dy * dy) ** 0.5 or 1.0
            hw, hh = self.half(child)
            if child.is_leaf:  # a box: enter through its top or bottom
                return [start, (cx, cy + (hh if dy > 0 else -hh))]
            return [start, (cx + radius * dx / norm, cy + radius * dy / norm)]
        start, tip = (px + phw, py), (cx - chw, cy)
        pr, cr = self.rank[parent], self.rank[child]
        out = px + self.side(pr, 1) + 2.0
        into = cx - self.side(cr, 0) - 2.0
        if self.row_of[pr] != self.row_of[cr]:  # the wrapping edge: down, back, down, in
            back = into - 2 * GAP
            return [start, (out, py), (out, self.channel), (back, self.channel), (back, cy), tip]
        if abs(py - cy) < 0.01:
            return [start, tip]
        return [start, (out, py), (into, cy), tip]

    def free_segment(self, points) -> tuple[tuple, tuple]:
        """The part of an edge its label may sit on: the bend between columns, the channel."""
        if len(points) == 6:
            return points[2], points[3]
        if len(points) == 4:
            return points[1], points[2]
        return points[0], points[1]

    def label_edges(self) -> None:
        """Each local derivative on its edge, where it covers no other text, node or edge."""
        taken = [t.rect() for t in self.plan.labels] + [
            self.plan.node_rect(n) for n in self.plan.pos
        ]
        for (child, parent), points in self.plan.edges.items():
            text = self.edge_labels.get((child.name, parent.name))
            if not text:
                continue
            (x0, y0), (x1, y1) = self.free_segment(points)
            others = [p for key, p in self.plan.edges.items() if key != (child, parent)]
            chosen = None  # stays None when every place is taken: no label beats a wrong one
            for t in (0.5, 0.35, 0.65, 0.2, 0.8):
                label = Label(
                    text,
                    x0 + t * (x1 - x0),
                    y0 + t * (y1 - y0),
                    SMALL_PT,
                    self.colors[4],
                    owner=f"{child.name}->{parent.name}",
                    kind="edge",
                )
                box = _grow(label.rect(), 1.5)
                if not any(overlaps(box, r) for r in taken) and not any(
                    polyline_hits(box, p) for p in others
                ):
                    chosen = label
                    break
            if chosen is None:
                continue
            self.plan.labels.append(chosen)
            taken.append(_grow(chosen.rect(), 1.5))


def _grow(rect, by: float):
    return rect[0] - by, rect[1] - by, rect[2] + by, rect[3] + by


def place(model, texts, hidden, edge_labels, colors) -> Plan:
    """Lay out the shown nodes of ``model``; ``texts`` maps names to :class:`NodeText`,
    ``edge_labels`` ``(child, parent)`` names to mathtext; colors are value, gradient, fork,
    operation and edge-label colours."""
    return _Placer(model, texts, hidden, edge_labels, colors).place()
