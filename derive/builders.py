"""Builders for the classic systems: logistic regression, 3Blue1Brown chains, MLPs.

Every builder describes a network as layer sizes plus an activation per layer, then lays it
out as a graph at one of two levels:

* ``scalar``: a node per neuron and per weight (``z1_2 = W1_1_2 x1 + W1_2_2 x2 + b1_2``), what
  a teacher writes out and what the chain-rule steps and graph pictures come from;
* ``matrix``: a node per layer, matrices of symbolic size (``Z1 = X W1 + 1 b1``), so that the
  derivation costs the same whatever the widths.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import OneMatrix

from . import registry
from .errors import BackpropInputError, IncompatibleError, SpecError
from .graph import Node
from .model import Model
from .ops import ActivationOp, CostOp, DenseOp, LossOp, Primitive, RowActivationOp, m

SCALAR_LIMIT = 20_000  # parameters; beyond this the scalar graph is too big to be useful
CHAIN_LIMIT = 100  # layers: a check of chain:100 already takes minutes (JAX compiles each)
LEVELS = ("scalar", "matrix")


@dataclass(frozen=True)
class Network:
    """What to build: ``sizes[0]`` inputs, then one activation per layer."""

    kind: str
    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str

    @property
    def n_params(self) -> int:
        return sum((a + 1) * b for a, b in zip(self.sizes, self.sizes[1:]))


# ---------------------------------------------------------------------------- public builders


def logistic_regression(n_features: int, level: str = "scalar") -> Model:
    """``z = wᵀx + b``, ``a = σ(z)``, binary cross-entropy.

    >>> logistic_regression(2).derive().gradient("w1", closed=True)
    x1*(a - y)
    """
    n = _size(n_features, "number of features")
    return _build(Network("logreg", (n, 1), ("sigmoid",), "bce"), level)


def chain(
    layers: int,
    activation: str = "sigmoid",
    loss: str = "sse",
    output: str | None = None,
    level: str = "scalar",
) -> Model:
    """One neuron per layer, as in 3Blue1Brown: ``z(L) = w(L) a(L-1) + b(L)``.

    >>> chain(1).derive().gradient("w1", closed=True)
    2*a1*x*(1 - a1)*(a1 - y)
    """
    depth = _size(layers, "number of layers")
    if depth > CHAIN_LIMIT:
        raise SpecError(
            f"a chain of {depth} layers is too deep (limit {CHAIN_LIMIT}): its graph, kernel "
            "and checks grow with every layer; use mlp: for a deep network"
        )
    acts = (activation,) * (depth - 1) + (output or activation,)
    return _build(Network("chain", (1,) * (depth + 1), acts, loss), level)


def mlp(
    sizes,
    activation="relu",
    output: str | None = None,
    loss: str | None = None,
    level: str = "matrix",
) -> Model:
    """A multilayer perceptron with layer sizes ``[n0, n1, ..., nL]``.

    ``activation`` is one name for every hidden layer, or one per hidden layer (a list, or
    names joined by commas as on the command line: ``"relu,tanh"``). The output activation
    defaults to sigmoid for one output and softmax for more; the loss to the one that fits
    it (binary or categorical cross-entropy, MSE for a linear output).

    >>> mlp([4, 3, 2]).derive().gradient("W2")
    A1.T*dZ2
    >>> mlp([4, 3, 3, 2], activation=["relu", "tanh"]).activation
    'relu,tanh'
    """
    sizes = tuple(_size(s, f"layer size #{k}") for k, s in enumerate(_as_list(sizes)))
    if len(sizes) < 2:
        raise SpecError(
            f"an MLP needs at least 2 layer sizes (inputs and outputs), got {list(sizes)}"
        )
    hidden = hidden_activations(activation, len(sizes) - 2)
    output = output or ("sigmoid" if sizes[-1] == 1 else "softmax")
    loss = loss or default_loss(output)
    return _build(Network("mlp", sizes, hidden + (output,), loss), level)


def hidden_activations(activation, n_hidden: int) -> tuple[str, ...]:
    """One activation per hidden layer from one name, a list, or names joined by commas."""
    names = activation.split(",") if isinstance(activation, str) else activation
    if isinstance(names, str | bytes) or not hasattr(names, "__iter__"):
        raise TypeError(f"activation must be a name or a list of names, got {activation!r}")
    names = [name.strip() if isinstance(name, str) else name for name in names]
    for name in names:  # a bad name is an error even when no layer is hidden
        registry.activation(name)
    if n_hidden == 0 and not isinstance(activation, str):  # a list asks for hidden layers
        raise SpecError(
            f"activation={activation!r} has no hidden layer to take it (an MLP of 2 sizes has "
            "none); leave it out"
        )
    if len(names) == 1:
        return tuple(names) * n_hidden
    if len(names) != n_hidden:
        raise SpecError(
            f"{len(names)} activations ({','.join(map(str, names))}) for {n_hidden} hidden "
            f"layer{'s' if n_hidden != 1 else ''}: give one name, or one per hidden layer"
        )
    return tuple(names)


def default_loss(output: str) -> str:
    """The loss that goes with an output activation by default."""
    return {"sigmoid": "bce", "softmax": "cce"}.get(output, "mse")


# ---------------------------------------------------------------------------- checks


def _size(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | sp.Integer) or int(value) < 1:
        raise SpecError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _as_list(sizes) -> list:
    if isinstance(sizes, str | bytes) or not hasattr(sizes, "__iter__"):
        raise SpecError(f"sizes must be a list of positive integers, got {sizes!r}")
    return list(sizes)


def _check(net: Network, level: str) -> None:
    if level not in LEVELS:
        raise BackpropInputError(f"unknown level {level!r}; known: {', '.join(LEVELS)}")
    for k, name in enumerate(net.activations):
        act = registry.activation(name)
        if act.output_only and k < len(net.activations) - 1:
            raise IncompatibleError(f"{name} is only available as the output activation")
    registry.check_head(
        registry.activation(net.activations[-1]), registry.loss(net.loss), net.sizes[-1]
    )
    if level == "scalar" and net.n_params > SCALAR_LIMIT:
        raise SpecError(
            f"{net.n_params} parameters is too many for the scalar level (limit {SCALAR_LIMIT}); "
            "use level='matrix'"
        )


def _build(net: Network, level: str) -> Model:
    _check(net, level)
    build = _scalar_graph if level == "scalar" else _matrix_graph
    nodes, cost, dims = build(net)
    return Model(
        net.kind, level, nodes, cost, net.sizes, _hidden(net), net.activations[-1], net.loss, dims
    )


def _hidden(net: Network) -> str | None:
    """The hidden activation, or the hidden activations joined by commas when they differ."""
    hidden = net.activations[:-1]
    return ",".join(hidden) if len(set(hidden)) > 1 else (hidden or [None])[0]


# ---------------------------------------------------------------------------- scalar level


class _Names:
    """Node names in the notation of each classic: ``w1`` (Ng's logistic regression),
    ``w2`` (3Blue1Brown's chain, by layer), ``W2_1_3`` (an MLP, layer_from_to)."""

    def __init__(self, net: Network):
        self.kind, self.sizes = net.kind, net.sizes

    def _suffix(self, width: int, k: int) -> str:
        return f"_{k + 1}" if width > 1 else ""

    def x(self, i):
        return ("x", ("X", (i,))) if self.sizes[0] == 1 else (f"x{i + 1}", ("X", (i,)))

    def y(self, j):
        return ("y", ("Y", (j,))) if self.sizes[-1] == 1 else (f"y{j + 1}", ("Y", (j,)))

    def weight(self, layer, i, j):
        if self.kind == "logreg":
            return f"w{i + 1}", ("w", (i,))
        if self.kind == "chain":
            return f"w{layer}", None
        return f"W{layer}_{i + 1}_{j + 1}", (f"W{layer}", (i, j))

    def bias(self, layer, j):
        if self.kind == "logreg":
            return "b", None
        if self.kind == "chain":
            return f"b{layer}", None
        return f"b{layer}{self._suffix(self.sizes[layer], j)}", (f"b{layer}", (j,))

    def unit(self, letter, layer, j):
        if self.kind == "logreg":
            return letter
        return f"{letter}{layer}{self._suffix(self.sizes[layer], j)}"


def _scalar_graph(net: Network):
    names = _Names(net)
    nodes: list[Node] = []

    def add(name, role, **kw) -> Node:
        name, tensor = name if isinstance(name, tuple) else (name, None)
        node = Node(name, role, tensor=tensor, **kw)
        nodes.append(node)
        return node

    prev = [add(names.x(i), "input") for i in range(net.sizes[0])]
    for layer, (width, act) in enumerate(zip(net.sizes[1:], net.activations), start=1):
        zs = []
        for j in range(width):
            weights = [add(names.weight(layer, i, j), "param") for i in range(len(prev))]
            bias = add(names.bias(layer, j), "param")
            expr = sp.Add(*[w.symbol * p.symbol for w, p in zip(weights, prev)], bias.symbol)
            parents = (*weights, *prev, bias)
            zs.append(
                add(
                    names.unit("z", layer, j),
                    "hidden",
                    op=Primitive("+"),
                    parents=parents,
                    expr=expr,
                )
            )
        outs = [sp.Symbol(names.unit("a", layer, j), real=True) for j in range(width)]
        role = "output" if layer == len(net.sizes) - 1 else "hidden"
        prev = []
        for j in range(width):
            op = ActivationOp(act, j, [z.symbol for z in zs], outs)
            parents = tuple(zs) if not registry.activation(act).elementwise else (zs[j],)
            prev.append(add(outs[j].name, role, op=op, parents=parents, expr=op.definition()))
    targets = [add(names.y(j), "target") for j in range(net.sizes[-1])]
    op = LossOp(net.loss, [a.symbol for a in prev], [t.symbol for t in targets])
    cost = add("L", "loss", op=op, parents=(*prev, *targets), expr=op.definition())
    return nodes, cost, {}


# ---------------------------------------------------------------------------- matrix level


def _matrix_names(net: Network, layer: int, dims: list) -> dict:
    """Names and NumPy shapes per DESIGN.md: logistic regression has ``w (n,)``, ``b`` scalar;
    a chain has scalar ``w1, b1``; an MLP has ``W1 (n0, n1)`` and ``b1 (n1,)``."""
    if net.kind == "logreg":
        return dict(w="w", b="b", tag="", w_shape=(dims[0],), b_shape=(), row_shape=(m,))
    if net.kind == "chain":
        return dict(
            w=f"w{layer}", b=f"b{layer}", tag=str(layer), w_shape=(), b_shape=(), row_shape=None
        )
    return dict(
        w=f"W{layer}",
        b=f"b{layer}",
        tag=str(layer),
        w_shape=None,
        b_shape=(dims[layer],),
        row_shape=None,
    )


def _matrix_graph(net: Network):
    """``Z_l = A_{l-1} W_l + 1 b_l``, ``A_l = g(Z_l)``, ``J = mean of the row losses``."""
    dims = [sp.Symbol(f"n{k}", integer=True, positive=True) for k in range(len(net.sizes))]
    prev = Node("X", "input", shape=(m, dims[0]))
    nodes: list[Node] = [prev]
    for layer, act in enumerate(net.activations, start=1):
        names = _matrix_names(net, layer, dims)
        rows = names["row_shape"]
        w = Node(
            names["w"], "param", shape=(dims[layer - 1], dims[layer]), array_shape=names["w_shape"]
        )
        b = Node(names["b"], "param", shape=(1, dims[layer]), array_shape=names["b_shape"])
        z = Node(
            f"Z{names['tag']}",
            "hidden",
            op=DenseOp(),
            parents=(prev, w, b),
            expr=prev.matrix * w.matrix + OneMatrix(m, 1) * b.matrix,
            shape=(m, dims[layer]),
            array_shape=rows,
        )
        op = RowActivationOp(act, dims[layer])
        role = "output" if layer == len(net.activations) else "hidden"
        prev = Node(
            f"A{names['tag']}",
            role,
            op=op,
            parents=(z,),
            expr=op.definition(z.symbol),
            shape=(m, dims[layer]),
            array_shape=rows,
        )
        nodes += [w, b, z, prev]
    rows = _matrix_names(net, 1, dims)["row_shape"]
    target = Node("Y", "target", shape=(m, dims[-1]), array_shape=rows)
    op = CostOp(net.loss, sp.Integer(net.sizes[-1]))
    cost = Node(
        "J", "loss", op=op, parents=(prev, target), expr=op.definition(prev.symbol, target.symbol)
    )
    nodes += [target, cost]
    return nodes, cost, dict(zip(dims, net.sizes))
