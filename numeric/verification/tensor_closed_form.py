"""The closed-form route for a tensor network: the derivation itself, evaluated.

Every value here is one of SymPy's expressions evaluated entry by entry
(:func:`numeric.verification.tensor_evaluate.evaluate`) at the network's sizes: the forward
pass from each op's index-level definition (:mod:`derive.tensor_ops`, the registry's
activations, softmax and loss), the backward pass as one reverse sweep of the *named* rules
SymPy derived from those definitions (``dK`` = cross-correlation of the input with ``dZ``,
``dX`` = full convolution of ``dZ_full`` with the flipped kernel, ``db = Σ dZ``, the pool's
``R ⊙ dZ[⌊q/s⌋, ⌊r/s⌋]``, flatten's reshape, attention's products and the softmax row rule
``P ⊙ (dP − rowsum(dP ⊙ P))``, ``dZ = dA ⊙ g'(Z)``, the head's ``d loss / d Z``). A max
pool's ``R`` is SymPy's derivative of ``Max`` over each window (:func:`max_derivative`).

It shares nothing with the generated kernel (no im2col, no printed code). The only steps
written by hand are layout: the zero padding of ``padding="same"`` and its adjoint, a crop;
``dZ_full``, which the named ``dX`` reads, built as its definition says (``dZ`` dilated by the
stride, padded by ``k - 1``); and the batch mean of the cost. Everything is float64.

A registry rule is evaluated in a stable form SymPy rewrites it into, the same value in real
arithmetic: its logs and sigmoid-like ratios in log space (the loss read in the logits ``Z``,
so ``cce``'s ``log softmax`` is ``z - log Σ exp z``), and a row that only its differences
matter to (softmax, log-sum-exp: SymPy proves it) lowered by its maximum. Logits 1e3 apart
give finite values, as they do in the kernel and JAX.

>>> from derive.layers import Dense
>>> from derive.tensor_layers import Conv2D, Flatten
>>> from derive.tensor_network import tensor_network
>>> from numeric.tensor_strategies import sample_batch
>>> net = tensor_network((4, 4, 1), [Conv2D(2, 3, "tanh"), Flatten(), Dense(2, "softmax")], "cce")
>>> J, grads = closed_form_loss_and_grads(net, *sample_batch(net, 2, seed=0))
>>> {name: g.shape for name, g in grads.items()}
{'W1': (3, 3, 1, 2), 'b1': (2,), 'W3': (8, 2), 'b3': (2,)}
"""

from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp
from sympy.codegen.numpy_nodes import logaddexp

from derive import tensor_ops as T
from derive.layers import Dense, Dropout
from derive.ops import m as batch_size
from derive.registry import a, activation, loss, x, z
from derive.rules import activation_vjp, elementwise_derivative, head_vjp, l, out
from derive.tensor_layers import AvgPool2D, Conv2D, Flatten, MaxPool2D, MeanOverTime, SelfAttention

from .tensor_evaluate import evaluate

CHUNK = 8  # examples per sweep: the evaluator's arrays grow with the batch


def closed_form_loss_and_grads(net, params, X, Y, masks=None):
    """The mean cost and every parameter's gradient of ``net`` (a TensorNetwork), from the
    derivation evaluated (float64 NumPy arrays).

    The cost is a mean of per-example losses, so the sweep runs over :data:`CHUNK` examples
    at a time (its memory bounded whatever the batch), each part over the whole batch's size.
    """
    X, Y = (np.asarray(values, dtype=np.float64) for values in (X, Y))
    cost, grads = 0.0, {}
    for lo in range(0, len(X), CHUNK):
        rows = slice(lo, lo + CHUNK)
        part = None if masks is None else {name: mask[rows] for name, mask in masks.items()}
        part_cost, part_grads = _sweep(net, params, X[rows], Y[rows], part, len(X))
        cost += part_cost
        for name, value in part_grads.items():
            grads[name] = grads[name] + value if name in grads else value
    return cost, {name: grads[name] for name in net.param_shapes()}


def _sweep(net, params, X, Y, masks, total: int):
    """The forward pass, then the reverse sweep, over the rows of ``X``."""
    sweep = _Sweep(net, params, masks, len(X))
    A = X
    for stage in net.stages:
        A = sweep.forward(stage, A)
    cost = sweep.head(net.stages[-1], Y, total)
    dA = None
    for stage in reversed(net.stages):
        dA = sweep.backward(stage, dA)
    return cost, sweep.grads


def _free(target: sp.Indexed, shape) -> list:
    """``[(index, size), ...]`` for a rule's target entry and the array it fills."""
    return list(zip(target.indices, shape))


def _named(rule: T.Rule, operand: str, arrays: dict, sizes: dict, shape) -> np.ndarray:
    """One named backward rule of ``rule`` evaluated into an array of ``shape``."""
    form = rule.named[operand]
    return evaluate(form.expr(), arrays, sizes, _free(form.target, shape))


def _defined(rule: T.Rule, arrays: dict, sizes: dict, shape) -> np.ndarray:
    lhs, rhs = rule.definition.lhs, rule.definition.rhs
    if all(ix.is_Symbol for ix in lhs.indices):
        return evaluate(rhs, arrays, sizes, _free(lhs, shape))
    # an index mapping (flatten's Z[n, (h W + w) C + c] = X[n, h, w, c]): each entry of the
    # right-hand side, over the input's indices, goes where the left-hand side puts it
    (source,) = rhs.atoms(sp.Indexed)
    free = _free(source, arrays[source.base.label.name].shape)
    values = evaluate(rhs, arrays, sizes, free)
    where = tuple(evaluate(ix, {}, sizes, free).astype(np.int64) for ix in lhs.indices)
    out = np.zeros(shape)
    out[where] = values
    return out


def _elementwise(expr: sp.Expr, symbols: dict) -> np.ndarray:
    """A scalar expression in ``symbols`` (symbol -> array, all of one shape) at every entry."""
    shape = next(iter(symbols.values())).shape
    axes = sp.symbols(f"e0:{len(shape)}", integer=True, nonnegative=True)
    entry = {sym: sp.IndexedBase(f"v{k}")[axes] for k, sym in enumerate(symbols)}
    arrays = {f"v{k}": value for k, value in enumerate(symbols.values())}
    return evaluate(_log_space(expr).xreplace(entry), arrays, {}, list(zip(axes, shape)))


def _rows(expr: sp.Expr, arrays: dict, row_index, shape) -> np.ndarray:
    """A registry rule over one row (``a[l]``, ``Sum(.., (j, 0, n - 1))``) on arrays whose
    last axis is the row: every entry gets the leading (example) indices. The rule is
    evaluated in log space, on its shift-invariant rows lowered by their maximum."""
    expr = _log_space(expr)
    for name in _shift_invariant(expr):
        arrays = arrays | {name: arrays[name] - np.max(arrays[name], axis=-1, keepdims=True)}
    lead = sp.symbols(f"e0:{len(shape) - 1}", integer=True, nonnegative=True)
    on_rows = expr.replace(
        lambda f: isinstance(f, sp.Indexed), lambda f: f.base[(*lead, *f.indices)]
    )
    free = list(zip(lead, shape[:-1]))
    if row_index is not None:
        free.append((row_index, shape[-1]))
    return evaluate(on_rows, arrays, {sp.Symbol("n", integer=True, positive=True): shape[-1]},
                    free)  # fmt: skip


class _Sweep:
    """The forward values each stage keeps for its backward rule, and the gradients found."""

    def __init__(self, net, params, masks, m):
        self.net, self.m = net, m
        self.params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        self.masks = masks
        self.kept: dict[int, dict] = {}
        self.grads: dict[str, np.ndarray] = {}

    # -- forward ----------------------------------------------------------------------------

    def forward(self, stage, A):
        """The stage's output, by its layer's entry in :data:`_FORWARD`."""
        keep = self.kept[stage.k] = {"in": A}
        return _entry(_FORWARD, stage.layer)(self, stage, keep, A)

    def _conv_forward(self, stage, keep, A):
        k, layer = stage.k, stage.layer
        (top, bottom), (left, right) = layer.pads(stage.inputs)
        keep["in"] = np.pad(A, ((0, 0), (top, bottom), (left, right), (0, 0)))
        arrays = {"X": keep["in"], "K": self.params[f"W{k}"], "b": self.params[f"b{k}"]}
        sizes = self._conv_sizes(stage, keep["in"])
        keep["Z"] = _defined(T.convolution(), arrays, sizes, (self.m, *stage.outputs))
        return self._activate(keep, layer.activation)

    def _pool_forward(self, stage, keep, A):  # a max or an average: R holds the difference
        keep["R"] = self._pool_weights(stage, A)
        sizes = {T.s: stage.layer.size, batch_size: self.m}
        return _defined(T.pooling(), {"X": A, "R": keep["R"]}, sizes, (self.m, *stage.outputs))

    def _flatten_forward(self, stage, keep, A):
        H, W, C = stage.inputs
        sizes = {T.H: H, T.W: W, T.C_in: C, batch_size: self.m}
        return _defined(T.flatten(), {"X": A}, sizes, (self.m, *stage.outputs))

    def _mean_forward(self, stage, keep, A):
        sizes = {T.T: stage.inputs[0], batch_size: self.m}
        return _defined(T.mean_over_time(), {"X": A}, sizes, (self.m, *stage.outputs))

    def _dense_forward(self, stage, keep, A):
        k, layer = stage.k, stage.layer
        arrays = {"A": A, "B": self.params[f"W{k}"], "b": self.params[f"b{k}"]}
        sizes = {T.d: stage.inputs[0], T.d_k: layer.units}
        keep["Z"] = _defined(T.product("dense"), arrays, sizes, (self.m, layer.units))
        return self._activate(keep, layer.activation)

    def _dropout_forward(self, stage, keep, A):
        keep["M"], sizes = self._mask(stage), self._dropout_sizes(stage)
        rule = T.dropout(len(stage.inputs) + 1)
        return _defined(rule, {"A": A, "M": keep["M"]}, sizes, A.shape)

    def _activate(self, keep, name):
        act = activation(name)
        if act.elementwise:
            keep["A"] = _elementwise(act.scalar, {x: keep["Z"]})
        else:
            keep["A"] = _rows(act.definition, {"z": keep["Z"]}, _row_index(act.definition),
                              keep["Z"].shape)  # fmt: skip
        return keep["A"]

    def _pool_weights(self, stage, A):
        """``R``: ``1/s²`` for an average; for a max, SymPy's ``d max(window) / d x_l`` at each
        window (the windows a pool of stride = size reads; the cropped rows get 0).

        At a tie (relu's zeros, a blank background) ``max`` has no derivative: each tied
        entry's step is taken as 1 (a subgradient) and the first of them in row-major order
        keeps it, the choice JAX and the kernels make."""
        s, (ho, wo, c) = stage.layer.size, stage.outputs
        if isinstance(stage.layer, AvgPool2D):
            return np.full(A.shape, 1.0 / (s * s))
        blocks = A[:, : ho * s, : wo * s].reshape(self.m, ho, s, wo, s, c)
        values = [blocks[:, :, i, :, j, :] for i in range(s) for j in range(s)]
        window = sp.symbols(f"x0:{s * s}", real=True)
        R = np.zeros(A.shape)
        R_blocks = np.zeros(blocks.shape)
        unclaimed = np.ones(values[0].shape)
        for position, slope in enumerate(T.max_derivative(s)):
            i, j = divmod(position, s)
            slope = slope.replace(sp.Heaviside, lambda arg, *_: sp.Heaviside(arg, 1))
            first = _elementwise(slope, dict(zip(window, values))) * unclaimed
            R_blocks[:, :, i, :, j, :] = first
            unclaimed -= first
        R[:, : ho * s, : wo * s] = R_blocks.reshape(self.m, ho * s, wo * s, c)
        return R

    def _attention_forward(self, stage, keep, A):
        k, dk, (length, width) = stage.k, stage.layer.d_k, stage.inputs
        sizes = {T.d: width, T.d_k: dk, T.T: length}
        for part in ("q", "k", "v"):
            arrays = {"A": A, "B": self.params[f"W{part}{k}"]}
            keep[part] = _defined(T.product("weights"), arrays, sizes, (self.m, length, dk))
        scores = {"A": keep["q"], "B": keep["k"]}
        keep["S"] = _defined(T.product("scores"), scores, sizes, (self.m, length, length))
        softmax = activation("softmax").definition
        keep["P"] = _rows(softmax, {"z": keep["S"]}, _row_index(softmax), keep["S"].shape)
        mix = {"A": keep["P"], "B": keep["v"]}
        return _defined(T.product("mix"), mix, sizes | {T.d: dk}, (self.m, length, dk))

    def _mask(self, stage):
        keep = 1 - stage.layer.rate
        if self.masks is None:  # no masks: evaluation mode, the identity
            return np.full((self.m, *stage.inputs), keep)
        return np.asarray(self.masks[f"M{stage.k}"], dtype=np.float64)

    def _dropout_sizes(self, stage):
        sizes = {T.keep: 1 - stage.layer.rate, batch_size: self.m}
        names = sp.symbols(f"N1:{len(stage.inputs) + 1}", integer=True, positive=True)
        return sizes | dict(zip(names, stage.inputs))

    def _conv_sizes(self, stage, padded):
        layer = stage.layer
        kh, kw = layer.kernel
        return {T.k_h: kh, T.k_w: kw, T.C_in: stage.inputs[2], T.C_out: layer.filters,
                T.H: padded.shape[1], T.W: padded.shape[2], T.H_out: stage.outputs[0],
                T.W_out: stage.outputs[1], T.s: layer.stride, batch_size: self.m}  # fmt: skip

    # -- cost and backward ------------------------------------------------------------------

    def head(self, last, Y, total: int):
        """These rows' share of the mean cost; ``dZ`` of the output layer (the registry's head
        rule over the batch size ``total``) kept for its backward step."""
        A, Z = self.kept[last.k]["A"], self.kept[last.k]["Z"]
        losses = _of_logits(loss(self.net.loss).definition, activation(self.net.output))
        per_example = _rows(losses, {"z": Z, "y": Y}, None, A.shape)
        rule = head_vjp(self.net.output, self.net.loss)
        self.kept[last.k]["dZ"] = _rows(rule, {"a": A, "y": Y, "z": Z}, l, A.shape) / total
        return float(np.sum(per_example)) / total

    def backward(self, stage, dA):
        """The stage's parameter gradients (into ``self.grads``) and its input's adjoint, by its
        layer's entry in :data:`_BACKWARD`."""
        return _entry(_BACKWARD, stage.layer)(self, stage, self.kept[stage.k], dA)

    def _into_z(self, stage, keep, dA):
        """``dZ`` of a layer with an activation: the head's for the output layer, else
        ``dA ⊙ g'(Z)``."""
        if "dZ" in keep:
            return keep["dZ"]
        slope = elementwise_derivative(stage.layer.activation)
        return dA * _elementwise(slope, {x: keep["Z"], out: keep["A"]})

    def _conv_backward(self, stage, keep, dA):
        k, layer, padded = stage.k, stage.layer, keep["in"]
        dZ = self._into_z(stage, keep, dA)
        rule, sizes = T.convolution(), self._conv_sizes(stage, padded)
        W = self.params[f"W{k}"]
        self.grads[f"W{k}"] = _named(rule, "K", {"X": padded, "dZ": dZ}, sizes, W.shape)
        self.grads[f"b{k}"] = _named(rule, "b", {"dZ": dZ}, sizes, (layer.filters,))
        (kh, kw), s = layer.kernel, layer.stride
        _, H, Wd, _ = padded.shape
        dZ_full = np.zeros((self.m, H + kh - 1, Wd + kw - 1, layer.filters))
        dZ_full[:, kh - 1 :: s, kw - 1 :: s][:, : dZ.shape[1], : dZ.shape[2]] = dZ
        dX = _named(rule, "X", {"K": W, "dZ_full": dZ_full}, sizes, padded.shape)
        (top, _), (left, _) = layer.pads(stage.inputs)
        height, width = stage.inputs[:2]
        return dX[:, top : top + height, left : left + width]  # the padding's adjoint: a crop

    def _dense_backward(self, stage, keep, dA):
        k, layer = stage.k, stage.layer
        dZ = self._into_z(stage, keep, dA)
        rule, W = T.product("dense"), self.params[f"W{k}"]
        sizes = {T.d: stage.inputs[0], T.d_k: layer.units, batch_size: self.m}
        self.grads[f"W{k}"] = _named(rule, "B", {"A": keep["in"], "dZ": dZ}, sizes, W.shape)
        self.grads[f"b{k}"] = _named(rule, "b", {"dZ": dZ}, sizes, (layer.units,))
        return _named(rule, "A", {"B": W, "dZ": dZ}, sizes, keep["in"].shape)

    def _pool_backward(self, stage, keep, dA):
        sizes = {T.s: stage.layer.size}
        return _named(T.pooling(), "X", {"R": keep["R"], "dZ": dA}, sizes, keep["in"].shape)

    def _flatten_backward(self, stage, keep, dA):
        sizes = {T.W: stage.inputs[1], T.C_in: stage.inputs[2]}
        return _named(T.flatten(), "X", {"dZ": dA}, sizes, keep["in"].shape)

    def _mean_backward(self, stage, keep, dA):
        sizes = {T.T: stage.inputs[0]}
        return _named(T.mean_over_time(), "X", {"dZ": dA}, sizes, keep["in"].shape)

    def _dropout_backward(self, stage, keep, dA):
        rule, sizes = T.dropout(len(stage.inputs) + 1), self._dropout_sizes(stage)
        return _named(rule, "A", {"M": keep["M"], "dZ": dA}, sizes, keep["in"].shape)

    def _attention_backward(self, stage, keep, dO):
        k, dk, (length, width) = stage.k, stage.layer.d_k, stage.inputs
        sizes = {T.d: width, T.d_k: dk, T.T: length, batch_size: self.m}
        mix, scores, weights = (T.product(kind) for kind in ("mix", "scores", "weights"))
        dP = _named(mix, "A", {"B": keep["v"], "dZ": dO}, sizes | {T.d: dk}, keep["P"].shape)
        adjoints = {"v": _named(mix, "B", {"A": keep["P"], "dZ": dO}, sizes | {T.d: dk},
                                keep["v"].shape)}  # fmt: skip
        dS = _rows(activation_vjp("softmax"), {"a": keep["P"], "da": dP}, l, dP.shape)
        for part, operand in (("q", "A"), ("k", "B")):
            arrays = {"A": keep["q"], "B": keep["k"], "dZ": dS}
            adjoints[part] = _named(scores, operand, arrays, sizes, keep[part].shape)
        dX = 0.0
        for part in ("q", "k", "v"):  # X feeds Q, K and V: its adjoint sums the three branches
            W = self.params[f"W{part}{k}"]
            arrays = {"A": keep["in"], "B": W, "dZ": adjoints[part]}
            self.grads[f"W{part}{k}"] = _named(weights, "B", arrays, sizes, W.shape)
            dX = dX + _named(weights, "A", arrays, sizes, keep["in"].shape)
        return dX


#: each layer type's forward step and backward step (an AvgPool2D is a MaxPool2D with other
#: weights R): a new layer type is one entry in each
_FORWARD = {Conv2D: _Sweep._conv_forward, MaxPool2D: _Sweep._pool_forward,
            Flatten: _Sweep._flatten_forward, MeanOverTime: _Sweep._mean_forward,
            SelfAttention: _Sweep._attention_forward, Dense: _Sweep._dense_forward,
            Dropout: _Sweep._dropout_forward}  # fmt: skip
_BACKWARD = {Conv2D: _Sweep._conv_backward, MaxPool2D: _Sweep._pool_backward,
             Flatten: _Sweep._flatten_backward, MeanOverTime: _Sweep._mean_backward,
             SelfAttention: _Sweep._attention_backward, Dense: _Sweep._dense_backward,
             Dropout: _Sweep._dropout_backward}  # fmt: skip


def _entry(table: dict, layer):
    """The entry of ``layer``'s type in ``table`` (a subclass of a known layer is that layer),
    or one error naming the layer and the types the table knows."""
    for cls in type(layer).__mro__:
        if cls in table:
            return table[cls]
    known = ", ".join(sorted(cls.__name__ for cls in table))
    raise NotImplementedError(f"no closed-form route for layer {layer!r}; known: {known}")


def _row_index(definition: sp.Expr):
    """The row position a registry definition is written at (``j`` in ``exp(z[j]) / Σ``)."""
    summed = {lim[0] for s in definition.atoms(sp.Sum) for lim in s.limits}
    free = {ix for f in definition.atoms(sp.Indexed) for ix in f.indices} - summed
    (index,) = free
    return index


# -- stable forms: the same values, rewritten by SymPy so that no step leaves the floats ------

_u = sp.Wild("u")


@cache
def _log_space(expr: sp.Expr) -> sp.Expr:
    """``expr`` with its logs and sigmoid-like ratios written in log space, each rewrite an
    identity SymPy applies: a log of a positive product or quotient expanded (``log
    softmax = z - log Σ exp z``, ``log σ(z) = -log(1 + exp(-z))``), ``log(1 + exp(u))`` as
    ``logaddexp(0, u)`` (NumPy's, finite at ``u = 1e3``) and ``(1 + exp(u))^-k`` as ``exp(-k
    logaddexp(0, u))``: no ``log 0``, ``0 · log 0`` or ``inf / inf`` where the value is finite.

    >>> _log_space(activation("sigmoid").scalar)
    exp(-logaddexp(0, -x))
    """
    # expand_log splits a log only where SymPy's assumptions say every factor is positive
    expr = expr.replace(sp.log, lambda arg: sp.expand_log(sp.log(sp.together(arg))))
    expr = expr.replace(sp.log(1 + sp.exp(_u)), logaddexp(0, _u))
    expr = expr.replace(_softplus_power, lambda e: sp.exp(-_softplus_power(e)))
    return sp.powsimp(expr)


def _softplus_power(e) -> sp.Expr | None:
    """``k logaddexp(0, u)`` for ``e = (1 + exp(u))^-k``, else None."""
    if not (isinstance(e, sp.Pow) and e.exp.is_negative):
        return None
    match = e.base.match(1 + sp.exp(_u))
    return None if match is None else -e.exp * logaddexp(0, match[_u])


@cache
def _shift_invariant(expr: sp.Expr) -> tuple[str, ...]:
    """The rows that ``expr`` reads in a ``Σ exp`` and whose entries can all be lowered by
    one amount without changing its value, as SymPy proves (softmax and log-sum-exp see only
    the differences within a row). Lowered by their maximum, every such exponent is at most
    0 and the sum at least 1: no overflow, no log 0."""
    summed = {f.base.label.name for s in expr.atoms(sp.Sum) if isinstance(s.function, sp.exp)
              for f in s.function.atoms(sp.Indexed)}  # fmt: skip
    shift = sp.Symbol("shift", real=True)

    def lowered(name):
        return expr.replace(
            lambda e: isinstance(e, sp.Indexed) and e.base.label.name == name,
            lambda e: e - shift,
        )

    return tuple(name for name in sorted(summed) if sp.simplify(lowered(name) - expr) == 0)


@cache
def _of_logits(per_example: sp.Expr, output) -> sp.Expr:
    """A loss of the output row ``a`` as a function of the row ``z`` it is computed from:
    each ``a[k]`` the output activation's definition at ``k`` (so that :func:`_log_space`
    writes a log of a softmax or sigmoid in ``z``)."""
    if output.elementwise:
        at = lambda k: output.scalar.xreplace({x: z[k]})  # noqa: E731
    else:  # its own summation indices renamed apart from the loss's
        row, definition = _row_index(output.definition), output.definition
        bound = {lim[0] for s in definition.atoms(sp.Sum) for lim in s.limits}
        definition = definition.xreplace(
            {v: sp.Symbol(f"{v.name}_out", integer=True, nonnegative=True) for v in bound}
        )
        at = lambda k: definition.xreplace({row: k})  # noqa: E731
    return per_example.replace(
        lambda e: isinstance(e, sp.Indexed) and e.base == a, lambda e: at(*e.indices)
    )


__all__ = ["closed_form_loss_and_grads"]
