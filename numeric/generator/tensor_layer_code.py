"""Each layer type's lines in a tensor kernel, kept in one place: :data:`EMITTERS` maps a
layer type to its forward and backward emitters, as :data:`derive.tensor_network.LAYER_RULES`
maps it to its shape, parameters and derivations. An emitter prints the layer's definition
and the rules SymPy derived from it (:mod:`derive.tensor_ops`) through
:class:`numeric.generator.tensor_printer.ContractionPrinter`; adding a layer type adds one
entry to each table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from derive import tensor_ops as T
from derive.index_calculus import Contraction
from derive.layers import Dense, Dropout
from derive.registry import x
from derive.rules import activation_vjp, elementwise_derivative, out
from derive.tensor_layers import AvgPool2D, Conv2D, Flatten, MaxPool2D, MeanOverTime, SelfAttention
from derive.tensor_network import layer_rule

from .tensor_printer import row_rule, upsampled, var


class LayerCode:
    """The emitters, as methods of :class:`numeric.generator.tensor_kernel.TensorKernelWriter`:
    they append to its ``fwd`` lines, read its ``target`` and ``model``, and print through its
    ``printer``, ``_printer(...)``, ``_activate(...)`` and ``_positions(...)``."""

    def _gradient(self, printer, rule, param: str, shape: tuple) -> str:
        """The code of ``param``'s gradient (of ``shape``) by ``rule``, computed in the
        caller's array of it where the target writes into one (a NumPy kernel's ``out=``)."""
        return self.target.into_out(param, shape, printer.code(rule, shape))

    def _activation_backward(self, stage, emit) -> None:
        """``dZ`` from ``dA`` through the activation (the output layer's comes from the head)."""
        k, name = stage.k, stage.layer.activation
        if stage is self.model.stages[-1]:
            return
        if name == "linear":
            emit(f"dZ{k} = dA{k}")
            return
        slope = elementwise_derivative(name).xreplace({x: var(f"Z{k}"), out: var(f"A{k}")})
        if _is_indicator(slope):  # 1 where a condition holds, else 0: times the condition itself
            code = f"dA{k} * ({self.printer.doprint(slope.args[0].cond)})"
        else:
            code = f"dA{k} * {self.printer.parenthesize(slope, 50)}"
        emit(f"dZ{k} = {code}  # dZ = dA ⊙ {name}'(Z)")

    # -- Conv2D ------------------------------------------------------------------------------

    def _conv_forward(self, stage, src) -> None:
        k, layer, xp = stage.k, stage.layer, self.target.xp
        (top, bottom), (left, right) = layer.pads(stage.inputs)
        if top + bottom + left + right:
            self.fwd.append(
                f"{src}_pad = {xp}.pad({src}, ((0, 0), ({top}, {bottom}), ({left}, {right}), "
                "(0, 0)))  # padding 'same'"
            )
            src += "_pad"
        (rule,) = _rules(stage)
        printer = self._printer({"X": src, "K": f"W{k}", "b": f"b{k}"}, self._conv_sizes(stage))
        code = printer.code(_definition_sum(rule.definition), ("m", *stage.outputs))
        self.fwd += printer.setup
        self.conv_cols[k] = printer.windows
        self.fwd.append(
            f"Z{k} = {code}  # Z[n,h,w,o] = Σ_ijc {src}[n, s h + i, s w + j, c] W{k}[i,j,c,o]"
        )
        self.fwd.append(f"Z{k} += b{k}")
        self._activate(k, layer.activation)

    def _conv_sizes(self, stage) -> dict:
        layer = stage.layer
        (top, bottom), (left, right) = layer.pads(stage.inputs)
        kh, kw = layer.kernel
        return {T.k_h: kh, T.k_w: kw, T.C_in: stage.inputs[2], T.C_out: layer.filters,
                T.H: stage.inputs[0] + top + bottom, T.W: stage.inputs[1] + left + right,
                T.H_out: stage.outputs[0], T.W_out: stage.outputs[1],
                T.s: layer.stride}  # fmt: skip

    def _conv_backward(self, stage, src, first, emit) -> None:
        k, layer, xp = stage.k, stage.layer, self.target.xp
        self._activation_backward(stage, emit)
        sizes = self._conv_sizes(stage)
        (top, bottom), (left, right) = layer.pads(stage.inputs)
        padded = top + bottom + left + right
        x_name = f"{src}_pad" if padded else src
        (conv,) = _rules(stage)
        rule = conv.named
        printer = self._printer(
            {"X": x_name, "K": f"W{k}", "dZ": f"dZ{k}", "dZ_full": f"dZ{k}_full"}, sizes
        )
        printer.windows = dict(self.conv_cols[k])  # the forward pass's im2col, reused
        dW = self._gradient(printer, rule["K"], f"W{k}", stage.params[f"W{k}"])
        emit(f"dW{k} = {dW}  # dW = {src} ⋆ dZ")
        db = self._gradient(printer, rule["b"], f"b{k}", stage.params[f"b{k}"])
        emit(f"db{k} = {db}  # db = Σ_nhw dZ")
        if first:
            return
        kh, kw = layer.kernel
        s, (ho, wo, c) = layer.stride, (*stage.outputs[:2], stage.inputs[2])
        # dX, the full convolution of dZ with the flipped kernel, computed as its transpose:
        # each window's share dZ Wᵀ (one matrix product), added back where the window reads
        share, _ = T.as_window_scatter(conv.derived["X"])
        printer.names["dX_cols"] = f"dZ{k}_cols"
        code = printer.code(share, ("m", ho, wo, kh, kw, c))
        emit(f"d{x_name}_cols = {code}  # dX_cols[n,h,w,i,j,c] = Σ_o dZ[n,h,w,o] W[i,j,c,o]")
        target = f"d{x_name}"
        emit(f"{target} = {xp}.zeros((m, {sizes[T.H]}, {sizes[T.W]}, {c}), dtype=X.dtype)")
        rows = f"i:i + {s * (ho - 1) + 1}" + (f":{s}" if s > 1 else "")
        cols = f"j:j + {s * (wo - 1) + 1}" + (f":{s}" if s > 1 else "")
        emit(self._positions(kh, kw) + "  # kernel positions; all pixels at once")
        emit(
            "    "
            + self.target.add_at(target, f"[:, {rows}, {cols}]", f"d{x_name}_cols[:, :, :, i, j]")
        )

        if padded:
            emit(
                f"dA{k - 1} = {target}[:, {top}:{top + stage.inputs[0]}, "
                f"{left}:{left + stage.inputs[1]}]  # the padding's adjoint: a crop"
            )

    # -- MaxPool2D, AvgPool2D ----------------------------------------------------------------

    def _pool_forward(self, stage, src, comment: str) -> str:
        """``A = <the pool's definition>``, the windows a reshape into blocks (stride = size);
        the name of those blocks returned. A map the size does not divide is cropped to whole
        windows (Keras): the definition reads no row past ``H_o s``."""
        (rule,) = _rules(stage)
        size, (ho, wo, c) = stage.layer.size, stage.outputs
        whole = stage.inputs[:2] == (ho * size, wo * size)
        printer = self._printer({"X": src if whole else f"{src}[:, :{ho * size}, :{wo * size}]"},
                                {T.s: size})  # fmt: skip
        printer.tiles = True
        code = printer.code(*_reduction(rule.definition, ("m", ho, wo, c)))
        self.fwd += printer.setup
        self.fwd.append(f"A{stage.k} = {code}  # A[n,h,w,c] = {comment}")
        (blocks,) = printer.windows.values()
        return blocks

    def _avg_pool_forward(self, stage, src) -> None:
        self._pool_forward(stage, src, f"Σ_ij {src}[n, s h + i, s w + j, c] / s²")

    def _max_pool_forward(self, stage, src) -> None:
        k, size, xp = stage.k, stage.layer.size, self.target.xp
        blocks = self._pool_forward(stage, src, f"max_ij {src}[n, s h + i, s w + j, c]")
        emit = self.fwd.append
        # R: 1 at the first largest entry of each window in row-major order (JAX's choice)
        emit(f"R{k} = {xp}.zeros({blocks}.shape, dtype=bool)")
        emit(f"unclaimed = {xp}.ones(A{k}.shape, dtype=bool)")
        emit(self._positions(size, size) + "  # window positions; all pixels at once")
        emit(f"    first = ({blocks}[:, :, i, :, j, :] == A{k}) & unclaimed")
        emit("    " + self.target.set_at(f"R{k}", "[:, :, i, :, j, :]", "first"))
        emit("    unclaimed &= ~first")

    def _max_pool_backward(self, stage, src, first, emit) -> None:
        self._pool_backward(stage, emit, _pool_rule(stage))

    def _avg_pool_backward(self, stage, src, first, emit) -> None:
        self._pool_backward(stage, emit, _pool_rule(stage))

    def _pool_backward(self, stage, emit, rule: Contraction) -> None:
        k, size, xp = stage.k, stage.layer.size, self.target.xp
        ho, wo, c = stage.outputs
        code = upsampled(rule, {"R": f"R{k}", "dZ": f"dA{k}"}, {T.s: size})
        blocks = f"({ho}, {size}, {wo}, {size})"
        if not rule.body.has(T.R):  # one value per window: the same for each of its entries
            code = f"{xp}.broadcast_to({code}, (m, *{blocks}, {c}))"
        whole = f"({code}).reshape(m, {ho * size}, {wo * size}, {c})"
        comment = f"  # dX = R ⊙ dZ[⌊y/{size}⌋, ⌊x/{size}⌋]"
        if stage.inputs[:2] == (ho * size, wo * size):
            emit(f"dA{k - 1} = {whole}{comment}")
            return
        emit(f"dA{k - 1} = {xp}.zeros((m, *{stage.inputs}), dtype=X.dtype)  # cropped rows: 0")
        emit(self.target.set_at(f"dA{k - 1}", f"[:, :{ho * size}, :{wo * size}]", whole) + comment)

    # -- Flatten, MeanOverTime, Dropout: no parameters -----------------------------------------

    def _flatten_forward(self, stage, src) -> None:
        (rule,) = _rules(stage)
        height, width, channels = stage.inputs
        printer = self._printer({"X": src}, {T.H: height, T.W: width, T.C_in: channels})
        code = printer.code(_definition_sum(rule.definition), ("m", *stage.outputs))
        self.fwd.append(f"A{stage.k} = {code}  # A[n, (h W + w) C + c] = {src}[n, h, w, c]")

    def _mean_forward(self, stage, src) -> None:
        (rule,) = _rules(stage)
        length, width = stage.inputs
        printer = self._printer({"X": src}, {T.T: length, T.d: width})
        code = printer.code(_definition_sum(rule.definition), ("m", width))
        self.fwd.append(f"A{stage.k} = {code}  # Z[n, e] = Σ_t {src}[n, t, e] / T")

    def _reshape_backward(self, stage, src, first, emit) -> None:
        """Flatten's and MeanOverTime's ``dX``: their derived rule, printed as it stands."""
        k, shape = stage.k, stage.inputs
        (rule,) = _rules(stage)
        rule = rule.named["X"]
        sizes = {T.H: shape[0], T.W: shape[-2] if len(shape) == 3 else 1, T.C_in: shape[-1],
                 T.T: shape[0], T.d: shape[-1]}  # fmt: skip
        code = self._printer({"dZ": f"dA{k}"}, sizes).code(rule, ("m", *shape))
        emit(f"dA{k - 1} = {code}  # {type(stage.layer).__name__}: {rule.target} = {rule.expr()}")

    def _dropout_forward(self, stage, src) -> None:
        k = stage.k
        (rule,) = _rules(stage)
        printer = self._printer({"A": src, "M": f"M{k}"}, {T.keep: 1 - stage.layer.rate})
        code = printer.code(_definition_sum(rule.definition), ("m", *stage.inputs))
        self.fwd.append(f"A{k} = {code}  # inverted dropout")

    def _dropout_backward(self, stage, src, first, emit) -> None:
        k = stage.k
        (rule,) = _rules(stage)
        printer = self._printer({"M": f"M{k}", "dZ": f"dA{k}"}, {T.keep: 1 - stage.layer.rate})
        code = printer.code(rule.named["A"], ("m", *stage.inputs))
        emit(f"dA{k - 1} = {code}  # dA = M ⊙ dZ / keep")

    # -- Dense ---------------------------------------------------------------------------------

    def _dense_forward(self, stage, src) -> None:
        k, units = stage.k, stage.layer.units
        (rule,) = _rules(stage)
        printer = self._printer({"A": src, "B": f"W{k}"}, {T.d: stage.inputs[0], T.d_k: units})
        code = printer.code(_definition_sum(rule.definition), ("m", units))
        self.fwd.append(f"Z{k} = {code}  # Z{k} = {src} W{k} + b{k}")
        self.fwd.append(f"Z{k} += b{k}")
        self._activate(k, stage.layer.activation)

    def _dense_backward(self, stage, src, first, emit) -> None:
        k, units = stage.k, stage.layer.units
        self._activation_backward(stage, emit)
        (rule,) = _rules(stage)
        rule = rule.named
        printer = self._printer(
            {"A": src, "B": f"W{k}", "dZ": f"dZ{k}"}, {T.d: stage.inputs[0], T.d_k: units}
        )
        dW = self._gradient(printer, rule["B"], f"W{k}", stage.params[f"W{k}"])
        emit(f"dW{k} = {dW}  # dW = Aᵀ dZ")
        db = self._gradient(printer, rule["b"], f"b{k}", stage.params[f"b{k}"])
        emit(f"db{k} = {db}  # db = Σ_n dZ")
        if not first:
            emit(f"dA{k - 1} = {printer.code(rule['A'], ('m', *stage.inputs))}  # dA = dZ Wᵀ")

    # -- SelfAttention -------------------------------------------------------------------------

    def _attention_forward(self, stage, src) -> None:
        k, dk = stage.k, stage.layer.d_k
        length, width = stage.inputs
        emit = self.fwd.append
        sizes = {T.d: width, T.d_k: dk, T.T: length}
        weights, scores, mix = (rule.definition for rule in _rules(stage))
        for part in ("q", "k", "v"):
            printer = self._printer({"A": src, "B": f"W{part}{k}"}, sizes)
            code = printer.code(_definition_sum(weights), ("m", length, dk))
            emit(f"{part.upper()}{k} = {code}  # {part.upper()} = X W{part}")
        printer = self._printer({"A": f"Q{k}", "B": f"K{k}"}, sizes)
        code = printer.code(_definition_sum(scores), ("m", length, length))
        emit(f"S{k} = {code}  # S = Q Kᵀ / √d_k")
        self.fwd += self._row_activation("softmax", f"S{k}", f"P{k}")
        printer = self._printer({"A": f"P{k}", "B": f"V{k}"}, sizes)
        emit(f"A{k} = {printer.code(_definition_sum(mix), ('m', length, dk))}  # P V")

    def _attention_backward(self, stage, src, first, emit) -> None:
        k, dk = stage.k, stage.layer.d_k
        length, width = stage.inputs
        sizes = {T.d: width, T.d_k: dk, T.T: length}
        weights, scores, mix = (rule.named for rule in _rules(stage))
        p = self._printer({"A": f"P{k}", "B": f"V{k}", "dZ": f"dA{k}"}, sizes | {T.d: dk})
        emit(f"dP{k} = {p.code(mix['A'], ('m', length, length))}  # dP = dO Vᵀ")
        emit(f"dV{k} = {p.code(mix['B'], ('m', length, dk))}  # dV = Pᵀ dO")
        rule = row_rule(activation_vjp("softmax"), {"a": var(f"P{k}"), "da": var(f"dP{k}")}, length)
        emit(f"dS{k} = {self.printer.doprint(rule)}  # dS = P ⊙ (dP - rowsum(dP ⊙ P))")
        p = self._printer({"A": f"Q{k}", "B": f"K{k}", "dZ": f"dS{k}"}, sizes)
        emit(f"dQ{k} = {p.code(scores['A'], ('m', length, dk))}  # dQ = dS K / √d_k")
        emit(f"dK{k} = {p.code(scores['B'], ('m', length, dk))}  # dK = dSᵀ Q / √d_k")
        branches = []
        for part in ("q", "k", "v"):
            big = part.upper()
            p = self._printer({"A": src, "B": f"W{part}{k}", "dZ": f"d{big}{k}"}, sizes)
            dW = self._gradient(p, weights["B"], f"W{part}{k}", (width, dk))
            emit(f"dW{part}{k} = {dW}  # dW{part} = Xᵀ d{big}")
            branches.append(p.code(weights["A"], ("m", length, width)))
        if not first:
            emit(f"dA{k - 1} = {' + '.join(branches)}  # three branches: dQ Wqᵀ + dK Wkᵀ + dV Wvᵀ")


@dataclass(frozen=True)
class Emitter:
    """How one layer type prints: ``forward(writer, stage, src)`` appends its forward lines;
    ``backward(writer, stage, src, first, emit)`` emits its gradients, ``dA`` of its input last
    (skipped for the first layer: X needs none)."""

    forward: Callable
    backward: Callable


W = LayerCode
EMITTERS: dict[type, Emitter] = {
    Conv2D: Emitter(W._conv_forward, W._conv_backward),
    MaxPool2D: Emitter(W._max_pool_forward, W._max_pool_backward),
    AvgPool2D: Emitter(W._avg_pool_forward, W._avg_pool_backward),
    Flatten: Emitter(W._flatten_forward, W._reshape_backward),
    SelfAttention: Emitter(W._attention_forward, W._attention_backward),
    MeanOverTime: Emitter(W._mean_forward, W._reshape_backward),
    Dense: Emitter(W._dense_forward, W._dense_backward),
    Dropout: Emitter(W._dropout_forward, W._dropout_backward),
}
del W


def emitter(layer) -> Emitter:
    """The :class:`Emitter` of ``layer``'s type. Every layer type a tensor network takes has
    one (the two tables list the same types):

    >>> from derive.tensor_network import LAYER_RULES
    >>> list(EMITTERS) == list(LAYER_RULES)
    True
    """
    for cls in type(layer).__mro__:  # a subclass of a known layer prints as that layer
        if cls in EMITTERS:
            return EMITTERS[cls]
    raise NotImplementedError(f"no tensor kernel code for {layer!r}: add it to EMITTERS")


def _rules(stage) -> list:
    """The layer's derivations (:mod:`derive.tensor_ops`), from its entry in LAYER_RULES."""
    return list(layer_rule(stage.layer).rules(stage).values())


def _pool_rule(stage) -> Contraction:
    (rule,) = _rules(stage)
    return rule.named["X"]


def _is_indicator(expr) -> bool:
    """``Piecewise((1, cond), (0, True))``: relu's slope, a step's."""
    return (
        isinstance(expr, sp.Piecewise)
        and len(expr.args) == 2
        and expr.args[0].expr == 1
        and expr.args[1].expr == 0
        and expr.args[1].cond == sp.true
    )


def _reduction(definition: sp.Eq, shape) -> tuple:
    """``(contraction, shape, reduce)`` for :meth:`ContractionPrinter.code`: a definition's
    max over a window (:class:`derive.tensor_ops.Maximum`) is reduced by ``"max"``, a sum
    (:func:`_definition_sum`) by ``"sum"``."""
    (total,) = definition.rhs.find(T.Maximum) or [None]
    if total is None:
        return _definition_sum(definition), shape, "sum"
    if total != definition.rhs:
        raise NotImplementedError(f"a max inside an expression: {definition}")
    return Contraction(definition.lhs, total.function, total.limits), shape, "max"


def _definition_sum(definition: sp.Eq) -> Contraction:
    """The contraction part of a definition (``Σ X K`` of ``Z = Σ X K + b``), its coefficient
    kept in the body (``Σ Q K / √d_k``, ``Σ X / T``); without a sum, the product itself
    (``A M / keep``)."""
    if not definition.rhs.has(sp.Sum):
        return Contraction(definition.lhs, definition.rhs)
    (term,) = [arg for arg in sp.Add.make_args(definition.rhs) if arg.has(sp.Sum)]
    (total,) = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
    coefficient = term / total
    return Contraction(definition.lhs, total.function * coefficient, total.limits)


__all__ = ["EMITTERS", "Emitter", "LayerCode", "emitter"]
