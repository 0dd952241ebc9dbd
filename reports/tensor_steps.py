"""A tensor network's reverse sweep, layer by layer, in the layer's own array names.

Every rule here is one of :mod:`derive.tensor_ops`'s, derived once by SymPy from the op's
index-level definition, or the registry's (an activation's derivative, the output's fused
loss rule, softmax's row rule). This module only puts each rule in place: it renames the
rule's arrays to the layer's (``K`` of the convolution of layer 3 is ``W3``, its input ``X``
is ``A2``) and says which sizes the layer gives the rule's symbols. The printers read it:
``backprop derive`` prints it as text (:mod:`reports.cli.tensor_plain`), and the LaTeX report
(:mod:`reports.tensor_report`) takes its softmax row rule from here.

>>> from derive import network
>>> from derive.layers import Conv2D, Dense, Flatten
>>> net = network((4, 4, 1), [Conv2D(2, 3, "relu"), Flatten(), Dense(3, "softmax")], "cce")
>>> [layer.stage.k for layer in reverse_sweep(net)]
[3, 2, 1]
>>> reverse_sweep(net)[2].steps[1].derived.target
dW1[p, q, r, v]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from derive import tensor_ops as T
from derive.index_calculus import Contraction
from derive.layers import Dense, Dropout
from derive.ops import m
from derive.registry import a, x
from derive.rules import activation_vjp, elementwise_derivative, head_vjp, l, out
from derive.tensor_layers import AvgPool2D, Conv2D, Flatten, MaxPool2D, MeanOverTime, SelfAttention


@dataclass(frozen=True)
class Step:
    """One gradient: as SymPy derived it, its named form (``None`` when the derived rule
    already is the form a textbook prints), and the textbook's words for it."""

    derived: object  # a Contraction, or an Eq for an elementwise step
    named: object  # None when the derived rule is the named form already
    words: str = ""


@dataclass(frozen=True)
class LayerSteps:
    """One layer of the sweep: its forward definitions (an Eq, or a tuple of Eqs of one
    entry: the same value written several ways), the sizes its rules are read at, and its
    backward steps in the order the sweep takes them."""

    stage: object
    definitions: list
    sizes: dict
    steps: list
    notes: list = field(default_factory=list)


def reverse_sweep(net) -> list[LayerSteps]:
    """Every layer of ``net`` (a TensorNetwork), from the cost back to the input."""
    stages = net.stages
    return [_layer(net, stage, first=stage is stages[0]) for stage in reversed(stages)]


def softmax_rows(p: str = "P", dp: str = "dP") -> sp.Expr:
    """Softmax's row rule, ``dS_l = P_l dP_l - P_l Σ_j P_j dP_j``, that is
    ``P ⊙ (dP − rowsum(dP ⊙ P))``, derived by the registry from softmax's definition."""
    from derive.rules import da

    return activation_vjp("softmax").xreplace(
        {a: sp.IndexedBase(p, real=True), da: sp.IndexedBase(dp, real=True)}
    )


_row_length = sp.Symbol("n", integer=True, positive=True)  # the registry's row width


def rename(obj, names: dict):
    """``obj`` (an expression, an Eq or a Contraction) with its arrays renamed: ``names``
    maps a rule's array to the layer's, and a gradient ``dK`` follows ``K``."""
    if isinstance(obj, Contraction):
        support = tuple((rename(e, names), lo, hi) for e, lo, hi in obj.support)
        return Contraction(rename(obj.target, names), rename(obj.body, names), obj.limits, support)
    return obj.replace(
        lambda e: isinstance(e, sp.Indexed) and _new_name(e.base.label.name, names),
        lambda e: sp.IndexedBase(_new_name(e.base.label.name, names), real=True)[e.indices],
    )


def _new_name(name: str, names: dict) -> str | None:
    if name in names:
        return names[name]
    if name.startswith("d") and name[1:] in names:
        return "d" + names[name[1:]]
    return None


def _layer(net, stage, first: bool) -> LayerSteps:
    """The layer's steps, by its type's entry in :data:`_LAYERS` (a subclass of a known layer
    is that layer; AvgPool2D is found before the MaxPool2D it subclasses)."""
    src = "X" if stage.k == 1 else f"A{stage.k - 1}"
    for cls in type(stage.layer).__mro__:
        if cls in _LAYERS:
            return _LAYERS[cls](net, stage, src, first)
    known = ", ".join(sorted(cls.__name__ for cls in _LAYERS))
    raise ValueError(f"no backward rule for layer {stage.layer!r}; known: {known}")


def _rule_steps(rule, names, order, words) -> list[Step]:
    """The rule's gradients of the operands in ``order`` (one letter each), renamed."""
    return [
        Step(rename(rule.derived[op], names), _named(rule, op, names), words[op]) for op in order
    ]


def _named(rule, op: str, names: dict):
    same = rule.named[op] is rule.derived[op]
    return None if same else rename(rule.named[op], names)


def _definitions(rule, names) -> list:
    return [rename(rule.definition, names)]


# -- activations and the cost ----------------------------------------------------------------


def _into_z(net, stage) -> list[Step]:
    """``dZ`` of a layer with an activation: the output's rule with the loss, or ``dA ⊙ g'``."""
    if stage is net.stages[-1]:
        return [_head_step(net, stage)]
    return _activation_step(stage.k, stage.layer.activation)


def _activation_step(k: int, name: str) -> list[Step]:
    """``dZ = dA ⊙ g'(Z)``, ``g'`` SymPy's derivative of the registry's definition."""
    if name == "linear":
        return []
    z, a_k = sp.Symbol(f"Z{k}", real=True), sp.Symbol(f"A{k}", real=True)
    slope = elementwise_derivative(name).xreplace({x: z, out: a_k})
    eq = sp.Eq(sp.Symbol(f"dZ{k}"), sp.Symbol(f"dA{k}") * slope, evaluate=False)
    return [Step(eq, None, f"dZ = dA ⊙ {name}'(Z)")]


def _head_step(net, stage) -> Step:
    """``dZ`` of the output layer: the registry's rule for its activation with the loss,
    over the mean's ``m`` examples."""
    k, width = stage.k, stage.outputs[0]
    grad = head_vjp(net.output, net.loss)
    grad = grad.replace(
        lambda e: isinstance(e, sp.Indexed) and e.base.label.name in ("a", "y"),
        lambda e: sp.Symbol(f"A{k}" if e.base.label.name == "a" else "Y", real=True),
    ).xreplace({_row_length: width})
    eq = sp.Eq(sp.Symbol(f"dZ{k}"), sp.factor(grad / m), evaluate=False)
    return Step(eq, None, f"{net.output} output with {net.loss} loss, the mean over m examples")


# -- the layers ------------------------------------------------------------------------------

_CONV_WORDS = {
    "K": "dW = cross-correlation of the input with dZ",
    "b": "db = Σ dZ over examples and positions",
    "X": "dX = full convolution of dZ (dilated by s, padded by k - 1: dZ_full) "
    "with the flipped kernel",
}


def _conv(net, stage, src, first) -> LayerSteps:
    k, layer = stage.k, stage.layer
    names = {"X": src, "K": f"W{k}", "b": f"b{k}", "Z": f"Z{k}", "dZ": f"dZ{k}",
             "dZ_full": f"dZ{k}_full"}  # fmt: skip
    rule = T.convolution()
    steps = _into_z(net, stage) + _rule_steps(rule, names, "Kb" if first else "KbX", _CONV_WORDS)
    (top, bottom), (left, right) = layer.pads(stage.inputs)
    (kh, kw), (ho, wo, _) = layer.kernel, stage.outputs
    sizes = {T.k_h: kh, T.k_w: kw, T.s: layer.stride, T.C_in: stage.inputs[2],
             T.C_out: layer.filters, T.H: stage.inputs[0] + top + bottom,
             T.W: stage.inputs[1] + left + right, T.H_out: ho, T.W_out: wo}  # fmt: skip
    notes = []
    if top + bottom + left + right:
        notes.append(
            f"padding 'same': {src} is read with zeros around it ({top}, {bottom} rows, "
            f"{left}, {right} columns); its gradient is cropped back"
        )
    return LayerSteps(stage, _definitions(rule, names), sizes, steps, notes)


_DENSE_WORDS = {"B": "dW = Aᵀ dZ", "b": "db = Σ_n dZ", "A": "dA = dZ Wᵀ"}


def _dense(net, stage, src, first) -> LayerSteps:
    """A Dense layer's widths are its numbers (``Σ_{e<1600}``): the rule's ``d`` and ``d_k``
    are names of its own, which a reader of ``Dense(10)`` has no use for."""
    k = stage.k
    names = {"A": src, "B": f"W{k}", "b": f"b{k}", "Z": f"Z{k}", "dZ": f"dZ{k}"}
    rule = T.product("dense")
    steps = _into_z(net, stage) + _rule_steps(rule, names, "Bb" if first else "BbA", _DENSE_WORDS)
    widths = {T.d: stage.inputs[0], T.d_k: stage.layer.units}
    steps = [Step(at_sizes(st.derived, widths), at_sizes(st.named, widths), st.words)
             for st in steps]  # fmt: skip
    definitions = [at_sizes(eq, widths) for eq in _definitions(rule, names)]
    return LayerSteps(stage, definitions, {}, steps)


def at_sizes(obj, sizes: dict):
    """``obj`` (an expression, an Eq, a Contraction or None) with ``sizes`` put in."""
    if obj is None:
        return None
    if isinstance(obj, Contraction):
        at = lambda e: sp.sympify(e).xreplace(sizes)  # noqa: E731
        limits = tuple((ix, at(lo), at(hi)) for ix, lo, hi in obj.limits)
        support = tuple((at(e), at(lo), at(hi)) for e, lo, hi in obj.support)
        return Contraction(at(obj.target), at(obj.body), limits, support)
    return obj.xreplace(sizes)


def _average_pool(net, stage, src, first) -> LayerSteps:
    rule, names = T.average_pooling(), _pool_names(stage, src)
    words = "dX = dZ / s² upsampled: each entry has one window, h = ⌊q/s⌋"
    return _pool(stage, first, rule, names, _definitions(rule, names), words, [])


def _max_pool(net, stage, src, first) -> LayerSteps:
    k, size = stage.k, stage.layer.size
    rule, names = T.max_pooling(), _pool_names(stage, src)
    window = T.max_derivative(size)[0]
    notes = [
        f"R{k} = ∂max/∂{src} in each window, so that max = Σ R{k} ⊙ {src} there: 1 at the "
        f"window's arg-max, else 0; ties go to the first, as in JAX. "
        f"SymPy: ∂max(x0, ..., x{size * size - 1})/∂x0 = {window}"
    ]
    words = "dX = R ⊙ dZ upsampled: each entry has one window, h = ⌊q/s⌋"
    # the max, as the sum with R that the backward rule differentiates, then as defined
    definitions = [(_definitions(T.pooling(), names)[0], _definitions(rule, names)[0])]
    return _pool(stage, first, rule, names, definitions, words, notes)


def _pool_names(stage, src) -> dict:
    k = stage.k
    return {"X": src, "R": f"R{k}", "Z": f"A{k}", "dZ": f"dA{k}"}


def _pool(stage, first, rule, names, definitions, words, notes) -> LayerSteps:
    """What the two pools share: the upsampled backward step, the sizes, the crop's note."""
    derived, named = rule.derived["X"], rule.named["X"]
    steps = [] if first else [Step(rename(derived, names), rename(named, names), words)]
    size, (ho, wo, channels) = stage.layer.size, stage.outputs
    sizes = {T.s: size, T.H: stage.inputs[0], T.W: stage.inputs[1], T.H_out: ho, T.W_out: wo,
             T.C_in: channels}  # fmt: skip
    if stage.inputs[:2] != (ho * size, wo * size):
        notes = [*notes, "the map is cropped to whole windows, as Keras does: the rest gets 0"]
    return LayerSteps(stage, definitions, sizes, steps, notes)


def _flatten(net, stage, src, first) -> LayerSteps:
    H, W, C = stage.inputs
    words = "the adjoint of a reshape is the reshape back"
    return _reshape(stage, src, first, T.flatten(), {T.H: H, T.W: W, T.C_in: C}, words)


def _mean_over_time(net, stage, src, first) -> LayerSteps:
    length, width = stage.inputs
    words = "each position gets an equal share"
    return _reshape(stage, src, first, T.mean_over_time(), {T.T: length, T.d: width}, words)


def _reshape(stage, src, first, rule, sizes, words) -> LayerSteps:
    """A layer with no parameters that moves or averages entries: one step, back to ``X``."""
    k = stage.k
    names = {"X": src, "Z": f"A{k}", "dZ": f"dA{k}"}
    steps = _rule_steps(rule, names, "" if first else "X", {"X": words})
    return LayerSteps(stage, _definitions(rule, names), sizes, steps)


def _dropout(net, stage, src, first) -> LayerSteps:
    k = stage.k
    names = {"A": src, "M": f"M{k}", "Z": f"A{k}", "dZ": f"dA{k}"}
    rule = T.dropout(len(stage.inputs) + 1)
    steps = _rule_steps(rule, names, "" if first else "A", {"A": "dA = M ⊙ dZ / kappa"})
    sizes = {T.keep: sp.nsimplify(1 - stage.layer.rate)}
    notes = [f"M{k} is the 0/1 keep mask, kappa the keep probability"]
    return LayerSteps(stage, _definitions(rule, names), sizes, steps, notes)


def _attention(net, stage, src, first) -> LayerSteps:
    """Q, K, V = X Wq, X Wk, X Wv; S = Q Kᵀ/√d_k; P = softmax(S) by rows; O = P V."""
    k, (length, width) = stage.k, stage.inputs
    parts = {part: {"A": src, "B": f"W{part.lower()}{k}", "Z": f"{part}{k}", "dZ": f"d{part}{k}"}
             for part in "QKV"}  # fmt: skip
    scores = {"A": f"Q{k}", "B": f"K{k}", "Z": f"S{k}", "dZ": f"dS{k}"}
    mix = {"A": f"P{k}", "B": f"V{k}", "Z": f"A{k}", "dZ": f"dA{k}"}
    weights_rule, scores_rule, mix_rule = (T.product(kind) for kind in ("weights", "scores", "mix"))
    definitions = [rename(weights_rule.definition, parts[part]) for part in "QKV"]
    definitions += [rename(scores_rule.definition, scores), rename(mix_rule.definition, mix)]
    row = softmax_rows(f"P{k}", f"dP{k}").xreplace({_row_length: T.T})
    rows = sp.Eq(sp.IndexedBase(f"dS{k}")[l], row, evaluate=False)
    steps = _rule_steps(mix_rule, mix, "AB", {"A": "dP = dO Vᵀ", "B": "dV = Pᵀ dO"})
    steps.append(Step(rows, None, "dS = P ⊙ (dP − rowsum(dP ⊙ P)), row by row"))
    words = {"A": "dQ = dS K / √d_k", "B": "dK = dSᵀ Q / √d_k"}
    steps += _rule_steps(scores_rule, scores, "AB", words)
    for part in "QKV":
        words = {"B": f"dW{part.lower()} = Xᵀ d{part}"}
        steps += _rule_steps(weights_rule, parts[part], "B", words)
    if not first:
        steps.append(_three_branches(weights_rule.derived["A"], parts))
    sizes = {T.T: length, T.d: width, T.d_k: stage.layer.d_k}
    notes = [f"P{k} = softmax(S{k}) over each row (the registry's softmax)"]
    return LayerSteps(stage, definitions, sizes, steps, notes)


def _three_branches(rule: Contraction, parts: dict) -> Step:
    """X feeds Q, K and V: its gradient is the sum of the three branches' (a fork)."""
    branches = [rename(rule, names) for names in parts.values()]
    total = Contraction(branches[0].target, sp.Add(*[b.body for b in branches]), rule.limits)
    return Step(total, None, "three branches add: dQ Wqᵀ + dK Wkᵀ + dV Wvᵀ")


#: each layer type's steps, ``(net, stage, src, first) -> LayerSteps``: a new layer type is
#: one entry
_LAYERS = {Conv2D: _conv, Dense: _dense, AvgPool2D: _average_pool, MaxPool2D: _max_pool,
           Flatten: _flatten, MeanOverTime: _mean_over_time, Dropout: _dropout,
           SelfAttention: _attention}  # fmt: skip

__all__ = ["LayerSteps", "Step", "at_sizes", "rename", "reverse_sweep", "softmax_rows"]
