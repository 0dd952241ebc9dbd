"""Everything a report's sections share: the derivations, the notation, printers, numbers.

A report shows a model at two levels when it can: the *scalar* level (one node per neuron
and weight: the chain-rule steps, the graph, the worked example) and the *matrix* level
(one node per layer: the vectorized form and its shapes). :func:`build_context` derives
whichever levels make sense for the model it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import derive
from derive.builders import SCALAR_LIMIT
from reports.latex import notation as notation_mod
from reports.latex.notation import Notation, matrix_names, symbol_table
from reports.latex.printer import TextbookPrinter

#: networks with more parameters than this get no scalar-level sections (too long to read)
SCALAR_REPORT_LIMIT = 120


@dataclass
class ReportContext:
    """What the sections of one report are written from."""

    model: derive.Model  # the model as given
    notation: Notation
    scalar: derive.Derivation | None
    matrix: derive.Derivation | None
    dtype: str = "float64"
    seed: int = 0
    kernel: object | None = None
    verification: object | None = None
    instance: object | None = None  # numbers.Instance at the scalar level
    checks: object | None = None  # numbers.Checks
    training: object | None = None  # reports.training.TrainingRun, for the Learning section
    figures: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # why a level or a section is missing
    _names: dict[str, dict[str, str]] = field(default_factory=dict)

    # -- which derivation shows what

    @property
    def main(self) -> derive.Derivation:
        """The derivation the step-by-step sections use: scalar when there is one."""
        return self.scalar or self.matrix

    def names(self, derivation) -> dict[str, str]:
        level = derivation.model.level
        if level not in self._names:
            self._names[level] = symbol_table(derivation.model, self.notation)
        return self._names[level]

    def printer(self, derivation, **settings) -> TextbookPrinter:
        model = derivation.model
        return TextbookPrinter(self.names(derivation), matrix_names(model), **settings)

    def value_printer(self, derivation) -> TextbookPrinter:
        """Prints node symbols as the worked example's numbers, with explicit ``\\cdot``."""
        values = self.instance.values if self.instance is not None else {}
        return self.printer(derivation, values=values, mul_symbol="dot")

    def symbol(self, derivation, name: str) -> str:
        return self.names(derivation).get(name, name)

    @staticmethod
    def label(derivation, name: str) -> str:
        """Equation label of a node's forward equation (``name``) or backward step (``d`` +)."""
        return f"eq:{derivation.model.level[0]}:{name}"

    def equation_label(self, name: str, level: str | None = None) -> str | None:
        """The label a kernel line about ``name`` (``Z1``, ``dW2``) refers to, if any;
        ``level`` is the level of the derivation the kernel was generated from."""
        order = (self.scalar, self.matrix) if level == "scalar" else (self.matrix, self.scalar)
        for derivation in order:
            if derivation is None:
                continue
            base = name[1:] if name.startswith("d") else name
            try:
                derivation.model.node(base)
            except KeyError:
                continue
            return self.label(derivation, name)
        return None


def counterpart(model: derive.Model, level: str) -> derive.Model | None:
    """The same network built at the other level, or None when there is no such thing."""
    if model.level == level:
        return model
    if model.kind == "logreg":
        return derive.logistic_regression(model.sizes[0], level=level)
    if model.kind == "chain":
        hidden = model.activation or model.output
        return derive.chain(len(model.sizes) - 1, hidden, model.loss, model.output, level=level)
    if model.kind == "mlp":
        return derive.mlp(
            list(model.sizes),
            activation=model.activation or "relu",
            output=model.output,
            loss=model.loss,
            level=level,
        )
    return None


def n_params(model: derive.Model) -> int:
    total = 0
    for shape in model.param_shapes().values():
        count = 1
        for d in shape:
            count *= d
        total += count
    return total


def build_context(
    model: derive.Model,
    notation: str | Notation | None = None,
    *,
    dtype: str = "float64",
    seed: int = 0,
    kernel=None,
    verification=None,
    progress=None,
) -> ReportContext:
    """Derive the model at the levels the report shows, and gather what sections need."""
    say = progress or (lambda message: None)
    chosen = notation_mod.get(notation, model)
    size = n_params(model)
    notes = []
    scalar_model = None
    if model.kind in ("logreg", "chain", "mlp") and size > min(SCALAR_REPORT_LIMIT, SCALAR_LIMIT):
        notes.append(
            f"The network has {size:,} parameters, so this report works at the matrix level "
            f"only: the neuron-by-neuron (scalar) derivation is shown for networks of up to "
            f"{SCALAR_REPORT_LIMIT} parameters."
        )
    elif model.level == "scalar":
        scalar_model = model
    else:
        scalar_model = counterpart(model, "scalar")
    matrix_model = counterpart(model, "matrix") if model.kind != "expr" else None
    scalar = matrix = None
    if scalar_model is not None:
        say(f"deriving {scalar_model.spec} at the scalar level ({len(scalar_model.nodes)} nodes)")
        scalar = scalar_model.derive()
    if matrix_model is not None:
        say(f"deriving {matrix_model.spec} at the matrix level")
        matrix = matrix_model.derive()
    return ReportContext(
        model=model,
        notation=chosen,
        scalar=scalar,
        matrix=matrix,
        dtype=dtype,
        seed=seed,
        kernel=kernel,
        verification=verification,
        notes=notes,
    )
