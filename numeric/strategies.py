"""Hypothesis strategies for models, parameters and data; each usable alone, all composable.

- :func:`model_specs` draws :class:`ModelSpec` values (``logreg:N``, ``chain:L``,
  ``mlp:N0-...-NL`` with an activation, output and loss that fit together, as
  ``derive.registry`` says); :func:`model_for` builds the :class:`derive.Model` of one;
- :func:`arrays_for` draws a dict of finite arrays for given shapes (parameters, or anything);
  :func:`params_for` draws the parameters of a spec or a built model;
- :func:`data_for` draws a batch ``(X, Y)``; :func:`data_for_spec` and :func:`data_for_model`
  pick the target kind (one-hot, integer labels, 0/1, reals) and shapes the loss needs.

Example:
    >>> from hypothesis import given
    >>> @given(model_specs(kinds=("mlp",)))
    ... def test_spec_round_trips(spec):
    ...     assert spec.spec.startswith("mlp:")
    >>> test_spec_round_trips()
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from derive import registry
from derive.errors import IncompatibleError

KINDS = ("logreg", "chain", "mlp")
#: Hidden activations drawn by default (the perceptron's step and sign are left out: their
#: gradient is 0 almost everywhere, which makes dull examples).
ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus")
OUTPUTS = ("sigmoid", "softmax", "linear")
LOSSES = tuple(registry.LOSSES)

#: logistic regression is fixed to a sigmoid unit with binary cross-entropy.
LOGREG_HEAD = ("sigmoid", "bce")


@dataclass(frozen=True)
class ModelSpec:
    """A model as the CLI names it: ``kind`` and layer ``sizes`` (inputs first, outputs last).

    ``activation`` is the hidden activation (None when there is no hidden layer).

    >>> s = ModelSpec("mlp", (4, 3, 2), "tanh", "softmax", "cce")
    >>> s.spec, s.cli_args()
    ('mlp:4-3-2', ['mlp:4-3-2', '--activation', 'tanh', '--output', 'softmax', '--loss', 'cce'])
    >>> ModelSpec("chain", (1, 1, 1), "sigmoid", "sigmoid", "sse").spec
    'chain:2'
    """

    kind: str
    sizes: tuple[int, ...]
    activation: str | None
    output: str
    loss: str

    @property
    def spec(self) -> str:
        if self.kind == "logreg":
            return f"logreg:{self.sizes[0]}"
        if self.kind == "chain":
            return f"chain:{len(self.sizes) - 1}"
        return "mlp:" + "-".join(str(n) for n in self.sizes)

    @property
    def n_in(self) -> int:
        return self.sizes[0]

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    def cli_args(self) -> list[str]:
        """Arguments for ``backprop derive|codegen|check|report`` naming this model."""
        if self.kind == "logreg":
            return [self.spec]
        args = [self.spec]
        if self.activation is not None:
            args += ["--activation", self.activation]
        return args + ["--output", self.output, "--loss", self.loss]


def fits(output: str, loss: str, n_out: int) -> bool:
    """Whether ``loss`` can follow an ``output`` layer of ``n_out`` units (the registry's
    ``check_head`` decides: the output a loss needs, how many units it needs).

    >>> fits("softmax", "cce", 3), fits("sigmoid", "cce", 3), fits("linear", "bce_logits", 1)
    (True, False, True)
    """
    try:
        registry.check_head(registry.activation(output), registry.loss(loss), n_out)
    except IncompatibleError:
        return False
    return True


def heads(n_out: int, outputs=OUTPUTS, losses=LOSSES) -> st.SearchStrategy[tuple[str, str]]:
    """``(output, loss)`` pairs that fit ``n_out`` output units.

    >>> heads(1, losses=("cce",))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hypothesis.errors.InvalidArgument: no (output, loss) pair fits 1 output unit(s) ...
    """
    pairs = [(o, loss) for o in outputs for loss in losses if fits(o, loss, n_out)]
    if not pairs:
        raise InvalidArgument(
            f"no (output, loss) pair fits {n_out} output unit(s) with "
            f"outputs={tuple(outputs)}, losses={tuple(losses)}"
        )
    return st.sampled_from(pairs)


def _multi_only(outputs, losses) -> bool:
    """True when every allowed head needs at least two outputs."""
    return not any(fits(o, loss, 1) for o in outputs for loss in losses)


@st.composite
def model_specs(
    draw,
    kinds=KINDS,
    *,
    activations=ACTIVATIONS,
    outputs=OUTPUTS,
    losses=LOSSES,
    max_width: int = 5,
    max_hidden: int = 2,
    max_depth: int = 4,
) -> ModelSpec:
    """Model specs whose activation, output and loss fit together.

    ``max_width`` bounds every layer size, ``max_hidden`` the hidden layers of an MLP and
    ``max_depth`` the layers of a chain. Kinds no allowed head fits are left out.

    >>> from hypothesis import given
    >>> @given(model_specs(losses=("sparse_cce",)))
    ... def test(spec):
    ...     assert spec.kind == "mlp" and spec.output == "softmax" and spec.n_out >= 2
    >>> test()
    """
    usable = [k for k in kinds if _kind_usable(k, outputs, losses)]
    if not usable:
        raise InvalidArgument(
            f"no kind in {tuple(kinds)} fits outputs={tuple(outputs)}, losses={tuple(losses)}"
        )
    kind = draw(st.sampled_from(usable))
    if kind == "logreg":
        return ModelSpec(kind, (draw(st.integers(1, max_width)), 1), None, *LOGREG_HEAD)
    if kind == "chain":
        depth = draw(st.integers(1, max_depth))
        output, loss = draw(heads(1, outputs, losses))
        act = draw(st.sampled_from(activations)) if depth > 1 else None
        return ModelSpec(kind, (1,) * (depth + 1), act, output, loss)
    n_min = 2 if _multi_only(outputs, losses) else 1
    widths = draw(st.lists(st.integers(1, max_width), min_size=1, max_size=max_hidden + 1))
    n_out = draw(st.integers(n_min, max(n_min, max_width)))
    sizes = (*widths, n_out)
    output, loss = draw(heads(n_out, outputs, losses))
    act = draw(st.sampled_from(activations)) if len(sizes) > 2 else None
    return ModelSpec(kind, sizes, act, output, loss)


def hidden_activations() -> tuple[str, ...]:
    """Every registered activation a hidden layer can take, read when drawn (so a registered
    custom activation is drawn too), without step and sign (flat: dull examples)."""
    return tuple(
        name
        for name, act in registry.ACTIVATIONS.items()
        if not act.output_only and name not in ("step", "sign")
    )


LAYER_KINDS = ("Dense", "Residual", "LayerNorm", "Dropout")


@st.composite
def layer_stacks(
    draw, width: int, *, kinds=LAYER_KINDS, activations=None, max_layers: int = 3,
    max_width: int = 4, depth: int = 0,
) -> list:  # fmt: skip
    """A list of hidden layers (``derive.layers``) for an input of ``width`` features: Dense
    layers of any width, Residuals whose inner stack keeps ``width``, LayerNorms, Dropouts.

    >>> from hypothesis import given
    >>> @given(layer_stacks(3, kinds=("LayerNorm",)))
    ... def test(stack):
    ...     assert all(type(layer).__name__ == "LayerNorm" for layer in stack)
    >>> test()
    """
    from derive.layers import Dense, Dropout, LayerNorm, Residual

    activations = activations or hidden_activations()
    stack = []
    for _ in range(draw(st.integers(0, max_layers))):
        kind = draw(st.sampled_from([k for k in kinds if k != "Residual" or depth < 1]))
        if kind == "Dense":
            units = draw(st.integers(1, max_width))
            stack.append(Dense(units, draw(st.sampled_from(activations))))
            width = units
        elif kind == "LayerNorm":
            stack.append(LayerNorm(draw(st.sampled_from([1e-5, 1e-3, 0.1]))))
        elif kind == "Dropout":
            stack.append(Dropout(draw(st.sampled_from([0.0, 0.1, 0.25, 0.5]))))
        else:  # inner layers that end at the Residual's width
            inner = draw(
                layer_stacks(width, kinds=kinds, activations=activations, max_layers=2,
                             max_width=max_width, depth=depth + 1)
            )  # fmt: skip
            inner_width = _width_after(inner, width)
            if inner_width != width or not inner:
                inner.append(Dense(width, draw(st.sampled_from(activations))))
            stack.append(Residual(*inner))
    return stack


def _width_after(layers, width: int) -> int:
    for layer in layers:
        width = layer.width(width)
    return width


@st.composite
def networks(
    draw, *, kinds=LAYER_KINDS, activations=None, outputs=OUTPUTS, losses=LOSSES,
    max_layers: int = 3, max_width: int = 4, weight_decays=(0.0, 0.01),
):  # fmt: skip
    """``derive.network`` models: a random stack of hidden layers (:func:`layer_stacks`) and
    an output Dense layer whose activation and loss fit together (:func:`heads`).

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None)
    ... @given(networks(max_layers=2))
    ... def test(model):
    ...     assert model.kind == "network" and list(model.param_shapes())[-1].startswith("b")
    >>> test()
    """
    from derive.layers import Dense
    from derive.network import network

    n_in = draw(st.integers(1, max_width))
    hidden = draw(
        layer_stacks(n_in, kinds=kinds, activations=activations, max_layers=max_layers,
                     max_width=max_width)
    )  # fmt: skip
    n_min = 2 if _multi_only(outputs, losses) else 1
    n_out = draw(st.integers(n_min, max(n_min, max_width)))
    output, loss = draw(heads(n_out, outputs, losses))
    decay = draw(st.sampled_from(weight_decays))
    return network(n_in, [*hidden, Dense(n_out, output)], loss, weight_decay=decay)


def _kind_usable(kind: str, outputs, losses) -> bool:
    if kind == "logreg":
        return LOGREG_HEAD[0] in outputs and LOGREG_HEAD[1] in losses
    if kind == "chain":
        return not _multi_only(outputs, losses)
    if kind == "mlp":
        return any(fits(o, loss, 2) or fits(o, loss, 1) for o in outputs for loss in losses)
    raise InvalidArgument(f"unknown model kind {kind!r}; known: {KINDS}")


def finite_floats(dtype=np.float64, low: float = -2.0, high: float = 2.0):
    """Finite floats in [low, high], representable in ``dtype``."""
    width = np.dtype(dtype).itemsize * 8
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=width)


def arrays_for(shapes: dict[str, tuple[int, ...]], dtype=np.float64, elements=None):
    """Dicts ``name -> array`` of the given shapes, finite (default elements in [-2, 2]).

    >>> from hypothesis import given
    >>> @given(arrays_for({"W1": (3, 2), "b1": (2,), "b": ()}, dtype=np.float32))
    ... def test(p):
    ...     assert p["W1"].shape == (3, 2) and p["b"].shape == () and p["b1"].dtype == np.float32
    >>> test()
    """
    elements = finite_floats(dtype) if elements is None else elements
    return st.fixed_dictionaries(
        {name: hnp.arrays(dtype, tuple(shape), elements=elements) for name, shape in shapes.items()}
    )


def model_for(spec: ModelSpec, level: str | None = None):
    """The :class:`derive.Model` a spec names, laid out as the kernels take it (the matrix
    level for ``mlp`` and ``logreg`` unless ``level`` says otherwise).

    >>> model_for(ModelSpec("mlp", (4, 3, 2), "tanh", "softmax", "cce")).param_shapes()
    {'W1': (4, 3), 'b1': (3,), 'W2': (3, 2), 'b2': (2,)}
    """
    from derive.spec import build

    if spec.kind == "logreg":
        return build(spec.spec, level=level, for_kernels=True)
    return build(spec.spec, spec.activation, spec.output, spec.loss, level, for_kernels=True)


def params_for(spec_or_model, dtype=np.float64, elements=None):
    """Parameters of a :class:`ModelSpec` or a built model: ``arrays_for`` of its shapes.

    >>> from hypothesis import given
    >>> @given(params_for(ModelSpec("logreg", (3, 1), None, "sigmoid", "bce")))
    ... def test(p):
    ...     assert p["w"].shape == (3,) and p["b"].shape == ()
    >>> test()
    """
    model = model_for(spec_or_model) if isinstance(spec_or_model, ModelSpec) else spec_or_model
    return arrays_for(model.param_shapes(), dtype=dtype, elements=elements)


TARGETS = ("real", "unit", "binary", "onehot", "labels")


def _targets(m: int, n_out: int, kind: str, dtype, vector: bool):
    if kind == "labels":
        return hnp.arrays(np.int64, (m,), elements=st.integers(0, n_out - 1))
    shape = (m,) if vector else (m, n_out)
    if kind == "real":
        return hnp.arrays(dtype, shape, elements=finite_floats(dtype))
    if kind == "unit":
        return hnp.arrays(dtype, shape, elements=finite_floats(dtype, 0.0, 1.0))
    if kind == "binary":
        return hnp.arrays(dtype, shape, elements=st.sampled_from([0.0, 1.0]))
    if kind == "onehot":
        labels = hnp.arrays(np.int64, (m,), elements=st.integers(0, n_out - 1))
        return labels.map(lambda y: np.eye(n_out, dtype=dtype)[y])
    raise InvalidArgument(f"targets must be one of {TARGETS}, got {kind!r}")


@st.composite
def data_for(
    draw,
    n_in: int,
    n_out: int,
    m=None,
    targets: str = "real",
    dtype=np.float64,
    y_vector: bool = False,
    x_elements=None,
):
    """A batch ``(X, Y)``: ``X (m, n_in)`` finite, ``Y`` as ``targets`` says.

    ``targets``: "real", "unit" (in [0, 1]), "binary" (0/1), "onehot" (rows of the identity,
    ``(m, n_out)``) or "labels" (integers in ``[0, n_out)``, shape ``(m,)``). ``m`` is an int
    or a strategy (default 1..8). ``y_vector=True`` gives ``Y (m,)`` for one output unit.

    >>> from hypothesis import given
    >>> @given(data_for(3, 4, m=5, targets="onehot"))
    ... def test(xy):
    ...     X, Y = xy
    ...     assert X.shape == (5, 3) and Y.shape == (5, 4) and (Y.sum(axis=1) == 1).all()
    >>> test()
    """
    if y_vector and n_out != 1:
        raise InvalidArgument(f"y_vector=True needs one output unit, got n_out={n_out}")
    m = draw(
        st.integers(1, 8) if m is None else m if isinstance(m, st.SearchStrategy) else st.just(m)
    )
    x_elements = finite_floats(dtype, -3.0, 3.0) if x_elements is None else x_elements
    X = draw(hnp.arrays(dtype, (m, n_in), elements=x_elements))
    Y = draw(_targets(m, n_out, targets, dtype, y_vector))
    return X, Y


#: The registry's word for what a row of Y holds -> the ``targets`` of :func:`data_for`.
_TARGETS_OF = {"real": "real", "binary": "binary", "one_hot": "onehot", "labels": "labels"}


def targets_for(spec: ModelSpec) -> str:
    """The kind of targets a spec's loss takes (as ``derive.registry`` defines the loss).

    >>> targets_for(ModelSpec("mlp", (2, 3), None, "softmax", "sparse_cce"))
    'labels'
    """
    return _TARGETS_OF[registry.loss(spec.loss).targets]


def data_for_spec(spec: ModelSpec, m=None, dtype=np.float64):
    """``data_for`` with the shapes of the data contract: logistic regression ``Y (m,)``.

    >>> from hypothesis import given
    >>> @given(data_for_spec(ModelSpec("logreg", (3, 1), None, "sigmoid", "bce"), m=4))
    ... def test(xy):
    ...     assert xy[0].shape == (4, 3) and xy[1].shape == (4,)
    >>> test()
    """
    return data_for(
        spec.n_in,
        spec.n_out,
        m=m,
        targets=targets_for(spec),
        dtype=dtype,
        y_vector=spec.kind == "logreg",
    )


def data_for_model(model, m=None, dtype=np.float64, x_elements=None):
    """A batch ``(X, Y)`` for a built model (any kind, expressions too: ``X`` holds their
    inputs as columns and ``Y`` is ``(m, 0)``), shaped as
    :func:`numeric.verification.data_shapes` says and with the targets its loss takes.

    >>> from hypothesis import given
    >>> import derive
    >>> model = derive.from_expr("J = (w*x + b - y)**2", inputs=["x", "y"])
    >>> @given(data_for_model(model, m=3))
    ... def test(xy):
    ...     assert xy[0].shape == (3, 2) and xy[1].shape == (3, 0)
    >>> test()
    """
    from .verification.run import data_shapes, target_kind

    def draw(m_: int):
        (_, n_in), kind = data_shapes(model, m_)["X"], target_kind(model)
        targets = "real" if kind == "none" else _TARGETS_OF[kind]
        vector = model.real_target_vector
        return data_for(n_in, model.n_outputs, m_, targets, dtype, vector, x_elements)

    sizes = (
        st.integers(1, 8) if m is None else m if isinstance(m, st.SearchStrategy) else st.just(m)
    )
    return sizes.flatmap(draw)
