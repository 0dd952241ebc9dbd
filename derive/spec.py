"""Model spec strings, as the CLI takes them: ``logreg:3``, ``chain:4``, ``mlp:784-512-10``,
or an expression such as ``"J = 3*(a + b*c)"``."""

from __future__ import annotations

import re

from . import builders
from .errors import IncompatibleError, SpecError, did_you_mean
from .expressions import from_expr
from .model import Model

FORMS = "logreg:N, chain:L, mlp:N0-N1-...-NL, or an expression such as 'J = 3*(a + b*c)'"
_KIND = re.compile(r"^\s*([A-Za-z_]+)\s*:(.*)$")


def parse_sizes(text: str, spec: str) -> list[int]:
    """``"784-512-10"`` -> ``[784, 512, 10]``, naming the bad part when there is one."""
    parts = text.strip().split("-")
    sizes = []
    for part in parts:
        if not re.fullmatch(r"[0-9]+", part.strip()):  # isdigit() takes ² and ٣
            raise SpecError(
                f"bad size {part.strip()!r} in spec {spec!r}: sizes are positive "
                "integers joined by '-', e.g. mlp:4-3-2"
            )
        sizes.append(int(part))
    return sizes


def build(
    spec: str,
    activation: str | None = None,
    output: str | None = None,
    loss: str | None = None,
    level: str | None = None,
    for_kernels: bool = False,
) -> Model:
    """Build the model a spec names.

    ``level=None`` picks: the matrix level for ``mlp`` (and for ``logreg`` when the model is
    for kernels, where one matrix product beats a line per feature), the scalar level
    otherwise.

    >>> build("mlp:4-3-2", activation="tanh").spec
    'mlp:4-3-2'
    >>> build("chain:2").level
    'scalar'
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"empty model spec; expected {FORMS}")
    for flag, value in (("activation", activation), ("output", output), ("loss", loss)):
        if isinstance(value, str) and not value.strip():
            raise SpecError(f"--{flag} {value!r} is empty; give a name, or leave it out")
    match = _KIND.match(spec)
    if match is None:
        _no_options(spec, "an expression", activation=activation, output=output, loss=loss)
        if level not in (None, "scalar"):
            raise IncompatibleError("an expression has only the scalar level")
        return from_expr(spec)
    kind, rest = match.group(1).lower(), match.group(2)
    if kind == "logreg":
        (n,) = _exactly(parse_sizes(rest, spec), 1, spec)
        _no_options(
            spec,
            "logreg (sigmoid + bce; use mlp:N-1 for others)",
            activation=activation,
            loss=loss,
            output=output if output != "sigmoid" else None,
        )
        return builders.logistic_regression(n, level or ("matrix" if for_kernels else "scalar"))
    if kind == "chain":
        (depth,) = _exactly(parse_sizes(rest, spec), 1, spec)
        return builders.chain(
            depth, activation or "sigmoid", loss or "sse", output, level or "scalar"
        )
    if kind == "mlp":
        return builders.mlp(
            parse_sizes(rest, spec), activation or "relu", output, loss, level or "matrix"
        )
    hint = did_you_mean(kind, ("logreg", "chain", "mlp"))
    raise SpecError(f"unknown model kind {kind!r}{hint} in spec {spec!r}; expected {FORMS}")


def _exactly(values: list[int], count: int, spec: str) -> list[int]:
    if len(values) != count:
        raise SpecError(f"spec {spec!r} takes {count} number, got {len(values)}; expected {FORMS}")
    return values


def _no_options(spec: str, what: str, **options) -> None:
    given = [f"--{k}" for k, v in options.items() if v is not None]
    if given:
        raise IncompatibleError(f"{', '.join(given)} does not apply to {what}")
