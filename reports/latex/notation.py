"""Symbol tables: how each node of a model is written in Ng's or 3Blue1Brown's notation.

A node name says what the node is: ``z1_2`` is unit 2 of layer 1 before its activation,
``W1_1_2`` the weight from unit 1 of layer 0 to unit 2 of layer 1, ``dZ2`` the adjoint of
``Z2``. A :class:`Notation` turns those names into LaTeX, one consistent convention per
document:

=============  ==========================  ==================================
               Andrew Ng                   3Blue1Brown
=============  ==========================  ==================================
layer          ``z^{[1]}_2``               ``z^{(1)}_2``
weight         ``W^{[1]}_{12}`` (from-to)  ``w^{(1)}_{21}`` (to-from)
input          ``x_1``                     ``a^{(0)}_1``
example loss   ``\\mathcal{L}``             ``C_0``
batch cost     ``J``                       ``C``
adjoint        ``dz^{[1]}_2``              ``\\partial C_0 / \\partial z^{(1)}_2``
=============  ==========================  ==================================

>>> from derive import chain
>>> table = symbol_table(chain(2), get("3b1b"))
>>> table["w2"], table["L"], table["da1"]
('w^{(2)}', 'C_{0}', '\\\\frac{\\\\partial C_{0}}{\\\\partial a^{(1)}}')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sympy.printing.latex import latex as _sympy_latex

from derive.errors import BackpropInputError

_NAME = re.compile(r"^(?P<letter>[A-Za-z])(?P<digits>\d*)(?P<units>(?:_\d+)*)$")
MATRIX_LETTERS = {"X", "Y", "W", "Z", "A"}


@dataclass(frozen=True)
class Parsed:
    """What a node name says: its letter, its layer (or None) and its unit indices."""

    letter: str
    layer: int | None
    units: tuple[int, ...]


def parse(name: str, kind: str, level: str) -> Parsed | None:
    """Read a builder's node name; None for names the builders do not make (expressions).

    >>> parse("W1_1_2", "mlp", "scalar")
    Parsed(letter='W', layer=1, units=(1, 2))
    >>> parse("w2", "logreg", "scalar")
    Parsed(letter='w', layer=None, units=(2,))
    """
    if kind not in ("mlp", "chain", "logreg"):
        return None
    match = _NAME.match(name)
    if match is None:
        return None
    letter, digits = match["letter"], match["digits"]
    units = tuple(int(u) for u in match["units"].split("_")[1:])
    if letter in ("L", "J") and not digits and not units:
        return Parsed(letter, None, ())
    if letter in "xy" or (kind == "logreg" and letter == "w" and level == "scalar"):
        if units:
            return None
        return Parsed(letter, None, (int(digits),) if digits else ())
    if letter not in "WbzaXYZAw":
        return None
    return Parsed(letter, int(digits) if digits else None, units)


def _indices(units: tuple[int, ...]) -> str:
    if not units:
        return ""
    sep = "," if any(u > 9 for u in units) else ""
    return "_{" + sep.join(map(str, units)) + "}"


@dataclass(frozen=True)
class Notation:
    """One convention for every symbol of a report."""

    name: str
    title: str
    open: str  # layer bracket: "[" (Ng) or "(" (3Blue1Brown)
    close: str
    example_loss: str  # the loss of one example
    batch_cost: str  # the mean over the batch
    input_is_activation: bool  # 3Blue1Brown writes the input as a^{(0)}
    weights_to_from: bool  # 3Blue1Brown's w_{jk}: j in layer l, k in layer l-1
    partial_adjoints: bool  # 3Blue1Brown writes the adjoint as a partial derivative
    example_index: str  # "i" (Ng, superscript (i)) or "k" (3Blue1Brown, subscript)

    def layer(self, number: int) -> str:
        return f"^{{{self.open}{number}{self.close}}}"

    def node(self, parsed: Parsed, kind: str) -> str:
        """LaTeX for a parsed node name of a builder model."""
        letter, layer, units = parsed.letter, parsed.layer, parsed.units
        if letter == "L":
            return self.example_loss
        if letter == "J":
            return self.batch_cost
        if letter in "xX" and self.input_is_activation and kind != "logreg":
            return ("a" if letter == "x" else "A") + self.layer(0) + _indices(units)
        if letter in "xy":
            return letter + _indices(units)
        if letter in "XY":
            return letter
        if layer is None:  # logistic regression: w_i, b, z, a, and the matrices w, Z, A
            return letter + _indices(units)
        if letter == "W" and not units:  # a weight matrix
            return "W" + self.layer(layer)
        if letter == "W":
            units = units[::-1] if self.weights_to_from else units
            return ("w" if self.weights_to_from else "W") + self.layer(layer) + _indices(units)
        if letter == "w":  # a chain's one weight per layer
            return "w" + self.layer(layer)
        return letter + self.layer(layer) + _indices(units)

    def adjoint(self, of: str, cost: str) -> str:
        """The adjoint of a node whose LaTeX is ``of``; ``cost`` is the differentiated cost."""
        if self.partial_adjoints:
            return rf"\frac{{\partial {cost}}}{{\partial {of}}}"
        return "d" + of

    def per_example(self, letter: str) -> str:
        """The loss of example number ``letter`` (i or k) in the mean over the batch."""
        if self.name == "ng":
            return rf"{self.example_loss}^{{({letter})}}"
        return rf"C_{{{letter}}}"


NG = Notation(
    name="ng",
    title="Andrew Ng (deeplearning.ai)",
    open="[",
    close="]",
    example_loss=r"\mathcal{L}",
    batch_cost="J",
    input_is_activation=False,
    weights_to_from=False,
    partial_adjoints=False,
    example_index="i",
)
THREE_B1B = Notation(
    name="3b1b",
    title="3Blue1Brown (Neural networks, chapter 4)",
    open="(",
    close=")",
    example_loss="C_{0}",
    batch_cost="C",
    input_is_activation=True,
    weights_to_from=True,
    partial_adjoints=True,
    example_index="k",
)
NOTATIONS = {NG.name: NG, THREE_B1B.name: THREE_B1B}


def get(name: str | Notation | None, model=None) -> Notation:
    """A notation by name; None picks 3Blue1Brown for chains and Ng for everything else."""
    if isinstance(name, Notation):
        return name
    if name is None:
        return THREE_B1B if model is not None and model.kind == "chain" else NG
    if name not in NOTATIONS:
        raise BackpropInputError(
            f"unknown notation {name!r}; known: {', '.join(sorted(NOTATIONS))}"
        )
    return NOTATIONS[name]


def symbol_table(model, notation: Notation) -> dict[str, str]:
    """Node name -> LaTeX, for every node of ``model`` and every adjoint (``d`` + name)."""
    table: dict[str, str] = {}
    for node in model.nodes:
        parsed = parse(node.name, model.kind, model.level)
        if node.latex:
            table[node.name] = node.latex
        elif parsed is not None:
            table[node.name] = notation.node(parsed, model.kind)
        else:
            table[node.name] = _sympy_latex(node.symbol)
    cost = table[model.cost.name]
    for node in model.nodes:
        if node is not model.cost:
            table["d" + node.name] = notation.adjoint(table[node.name], cost)
    return table


def matrix_names(model) -> set[str]:
    """Names that stand for whole matrices in elementwise formulas (nodes and adjoints)."""
    names = {node.name for node in model.nodes if node.shape}
    return names | {"d" + name for name in names}


def family(node) -> str:
    """The array a node belongs to: ``W1`` for ``W1_1_2``, ``z1`` for ``z1_2``, ``X`` for ``x3``.

    Nodes of one family play the same part, so a long table can show one or two of them.
    """
    if node.tensor is not None:
        return node.tensor[0]
    return re.sub(r"(_\d+)+$", "", node.name)
