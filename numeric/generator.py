"""The kernel generator: :func:`codegen` prints a Derivation as a vectorized NumPy (or JAX)
kernel module. The package exports the function as ``numeric.codegen``; this module (not
named ``codegen``, so that name is never both) holds it and the :class:`Program` it prints.

The kernel is the Derivation read aloud: one line per forward node (``Z1 = X @ W1 + b1``),
one line per backward step (``dZ2 = (A2 - Y) / m``, ``dW2 = A1.T @ dZ2``), each with the
formula it implements in a comment. Nothing here knows an activation or a loss by name; a
new registry entry reaches the kernels through the expressions the Derivation holds. What
codegen adds is what a careful person adds when writing the same code by hand:

* stable forms of the formulas (:mod:`numeric.stable`): a sigmoid that never overflows,
  ``log(sigmoid(z))`` as ``-softplus(-z)``, max-shifted softmax and log-sum-exp;
* common subexpressions computed once (``Z1 > 0`` for ReLU forward and backward, the
  shifted ``exp`` shared by a softmax and its log-sum-exp);
* each function computing only what it returns (``loss`` skips the softmax itself when the
  cross-entropy needs only its log);
* at the scalar level, every node a batch vector, every gradient the batch mean of its
  per-example value.

>>> import derive
>>> kernel = codegen(derive.mlp([4, 3, 2], activation="tanh").derive())
>>> [line.strip() for line in kernel.source.splitlines() if line.strip().startswith("dW2 =")]
['dW2 = A1.T @ dZ2  # dW2 = A1ᵀ dZ2']
"""

from __future__ import annotations

import builtins
import copy
import keyword
import re
import textwrap
from dataclasses import dataclass

import sympy as sp
from sympy.core.relational import Relational
from sympy.simplify.cse_main import tree_cse

from derive import registry
from derive.errors import BackpropInputError
from derive.ops import m as BATCH
from derive.ops import rowsum, total

from .kernel import Kernel, KernelLine
from .printers import (
    PRINTERS,
    WIDTH,
    EquationPrinter,
    KernelPrinter,
    batch_mean,
    elementwise_form,
    wrap_statement,
    zeros_like,
)
from .stable import clamp_branches, maximum, rowmax, sigmoid, softplus, stabilize

ONES = sp.MatrixSymbol("ones", 1, BATCH)  # the row of ones of 1ᵀ dZ, as a vector (m,)

TARGETS = tuple(PRINTERS)
FUNCTIONS = ("forward", "loss", "loss_and_grads")

# Identifiers a kernel uses for itself; graph names that collide get a trailing underscore.
_RESERVED = {
    "np", "jnp", "jax", "params", "X", "Y", "m", "J", "PARAMS", "sigmoid", "softplus",
    "forward", "loss", "loss_and_grads", "grads", "ones",
}  # fmt: skip


def codegen(derivation, target: str = "numpy") -> Kernel:
    """Print the kernel module of a Derivation for ``target`` (``"numpy"`` or ``"jax"``).

    >>> import derive, numpy as np
    >>> kernel = codegen(derive.chain(2).derive())
    >>> kernel.params
    {'w1': (), 'b1': (), 'w2': (), 'b2': ()}
    >>> J, grads = kernel.loss_and_grads(kernel.random_params(), np.ones((4, 1)), np.zeros((4, 1)))
    >>> grads["w2"].shape, grads["w2"].dtype
    ((), dtype('float64'))
    """
    if target not in PRINTERS:
        raise BackpropInputError(f"unknown codegen target {target!r}; known: {', '.join(TARGETS)}")
    return Program(derivation).render(PRINTERS[target])


# ---------------------------------------------------------------------------- statements


@dataclass
class Statement:
    """One assignment of a kernel function.

    ``expr`` is what is computed (SymPy, already in stable form), or None for a line given as
    ``code`` (unpacking parameters, reading columns of X). ``node`` is the forward node or
    backward step the line implements; ``equation`` the formula for its comment.
    """

    target: str
    expr: sp.Basic | None
    node: str
    kind: str
    equation: str = ""
    code: str | None = None
    provides: frozenset[str] = frozenset()
    deps: frozenset[str] = frozenset()


def _is_matrix(expr) -> bool:
    return isinstance(expr, sp.MatrixExpr)


def _symbols(expr) -> set:
    """The arrays and numbers an expression reads (not the sizes inside matrix shapes)."""
    if expr is None:
        return set()
    if _is_matrix(expr):
        return set(expr.atoms(sp.MatrixSymbol))
    return set(expr.free_symbols)


class Names:
    """SymPy names -> Python identifiers, unique, never a keyword, builtin or reserved name."""

    def __init__(self):
        self.map: dict[str, str] = {}
        self.taken: set[str] = set(_RESERVED)

    def __call__(self, name: str) -> str:
        if name not in self.map:
            self.map[name] = self.fresh(name)
        return self.map[name]

    def fresh(self, wanted: str) -> str:
        ident = re.sub(r"\W", "_", wanted) or "t"
        if ident[0].isdigit():
            ident = f"_{ident}"
        while keyword.iskeyword(ident) or hasattr(builtins, ident) or ident in self.taken:
            ident += "_"
        self.taken.add(ident)
        return ident

    def of(self, symbol) -> str:
        return "m" if symbol == BATCH else self(symbol.name)

    def scope(self) -> Names:
        """A copy for one function: its shared temporaries get names there, not globally."""
        inner = Names()
        inner.map, inner.taken = dict(self.map), set(self.taken)
        return inner


# ---------------------------------------------------------------------------- the program


class Program:
    """Every statement a kernel may need, built from a Derivation, before printing."""

    def __init__(self, derivation):
        self.derivation = derivation
        self.model = model = derivation.model
        self.matrix = model.level == "matrix"
        self.names = Names()
        for special in ("X", "Y", "ones"):  # the data arrays keep their names
            self.names.map[special] = special
        self.equation = EquationPrinter()
        self.dims = {k: sp.Integer(v) for k, v in model.dims.items()}
        self.ranks = {n.name: len(n.array_shape) for n in model.nodes if n.array_shape is not None}
        self.ranks.update({"d" + name: rank for name, rank in list(self.ranks.items())})
        self.labels = bool(model.loss) and registry.loss(model.loss).targets == "labels"
        self.definitions = {
            node.symbol: self._prep(node.expr)
            for node in model.nodes
            if not node.is_leaf and node is not model.cost and not _is_matrix(node.expr)
        }
        self.batch_names = self._batch_names()
        # the kernel calls the mean cost J; at the scalar level it is the mean of the cost node
        self.cost_name = model.cost.name if self.matrix else "#mean cost"
        self.names.map[self.cost_name] = "J"
        self.forward_statements = self._forward()
        self.backward_statements = self._backward()
        self.gradient_outputs = self._gradients()

    # -- reading the Derivation

    def _prep(self, expr):
        if _is_matrix(expr):  # 1ᵀ dZ as ones @ dZ: a matrix-vector product beats dZ.sum(axis=0)
            return expr.replace(
                lambda e: isinstance(e, sp.MatMul) and _sums_matrix_rows(e, self.ranks),
                lambda e: e.func(*[ONES if isinstance(a, sp.OneMatrix) else a for a in e.args]),
            )
        return sp.sympify(expr).xreplace(self.dims)

    def _stable(self, expr, rank: int | None = None):
        """``expr`` as the kernel computes it; ``rank`` is the number of axes of its array."""
        if _is_matrix(expr):
            elementwise = elementwise_form(expr, self.ranks, rank)  # 0-d weights of a chain
            if elementwise is None:
                return self._prep(expr)
            expr = elementwise
        return clamp_branches(fold_piecewise(stabilize(self._prep(expr), self.definitions)))

    def _eq(self, expr) -> str:
        return self.equation.doprint(expr)

    def _batch_names(self) -> set[str]:
        """Scalar level: names whose values differ between examples (batch vectors)."""
        data = set()
        for node in self.model.nodes:
            if node.role in ("input", "target") or any(p.name in data for p in node.parents):
                data.add(node.name)
        if self.model.cost.name in data:
            data |= {
                step.adjoint.name
                for step in self.derivation.steps
                if step.node is not self.model.cost
            }
        return data

    def _is_batch(self, expr) -> bool:
        return any(s.name in self.batch_names for s in _symbols(expr) if s != BATCH)

    def _forward(self) -> list[Statement]:
        out = []
        for node in self.model.nodes:
            if node.is_leaf or node is self.model.cost:
                continue
            out.append(
                Statement(
                    node.name,
                    self._stable(node.expr, self.ranks.get(node.name)),
                    node.name,
                    "forward",
                    f"{node.name} = {self._eq(node.expr)}",
                )
            )
        cost = self.model.cost
        equation = f"{cost.name} = {self._eq(cost.expr)}"
        if self.matrix:
            out.append(Statement(cost.name, self._stable(cost.expr), cost.name, "cost", equation))
        else:
            out.append(Statement(cost.name, self._stable(cost.expr), cost.name, "loss", equation))
            mean = batch_mean(cost.symbol) if self._is_batch(cost.symbol) else cost.symbol
            out.append(
                Statement(
                    self.cost_name,
                    mean,
                    cost.name,
                    "cost",
                    f"J = mean({cost.name}) over the batch",
                )
            )
        return out

    def _backward(self) -> list[Statement]:
        out, constants = [], {}
        for step in self.derivation.needed_steps():
            node, name = step.node, step.adjoint.name
            kind = "gradient" if node.role == "param" else "adjoint"
            expr = self._stable(step.value, self.ranks.get(name))
            equation = f"{name} = {self._eq(step.value)}"
            if not _is_matrix(expr):
                expr = expr.xreplace(constants)
                if self.matrix and not expr.free_symbols - {BATCH}:  # flat activation: 0
                    expr = zeros_like(node.symbol) + expr
                elif not self.matrix and node.role == "param":
                    expr = batch_mean(expr) if self._is_batch(expr) else expr
                    equation = f"{name} = mean({self._eq(step.value)}) over the batch"
                elif not self.matrix and expr.is_Number:
                    constants[step.adjoint] = expr  # e.g. 0 through a step activation
            out.append(Statement(name, expr, node.name, kind, equation))
        return out

    def _gradients(self) -> list[tuple[str, str]]:
        """(parameter array, adjoint name or element names) for the returned dict."""
        steps = {s.node.name: s.adjoint.name for s in self.derivation.needed_steps()}
        out = []
        for name, shape in self.model.param_shapes().items():
            if self.matrix or not shape:  # the parameter is one node
                out.append((name, steps.get(name)))
            else:
                elements = {}
                for node in self.model.params:
                    if node.tensor is not None and node.tensor[0] == name:
                        elements[node.tensor[1]] = steps.get(node.name)
                out.append((name, elements))
        return out

    # -- data layout (DESIGN.md contract)

    def _targets_are_vector(self) -> bool:
        """Y holds one real target per example as ``(m,)`` (logistic regression's contract),
        not a column ``(m, 1)``. Integer labels are one-hot encoded first, never a vector."""
        if self.labels or len(self.model.targets) > 1 and not self.matrix:
            return False
        shapes = getattr(self.model, "data_shapes", None)  # a contract method, if derive has one
        if callable(shapes):
            return len(shapes()["Y"]) == 1
        if self.matrix:
            targets = self.model.targets
            return bool(targets) and len(targets[0].array_shape) == 1
        return self.model.kind == "logreg"

    def _n_outputs(self) -> int:
        if self.matrix:
            (target,) = self.model.targets
            return int(sp.sympify(target.shape[1]).xreplace(self.model.dims))
        return len(self.model.targets)

    # -- rendering

    def render(self, printer_class: type[KernelPrinter]) -> Kernel:
        writer = _Writer(self, printer_class)
        return writer.kernel()


# ---------------------------------------------------------------------------- printing


class _Writer:
    """Lays a Program out as a module: header, PARAMS, helpers, the three functions."""

    def __init__(self, program: Program, printer_class):
        self.p = program
        self.model = program.model
        self.names = program.names
        self.printer_class = printer_class
        self.np = printer_class.module
        self.helpers: set[str] = set()
        self.ranks = self._ranks()
        self.gradient_arrays = {
            name: self.names.fresh("d" + name)
            for name, grad in program.gradient_outputs
            if isinstance(grad, dict)
        }

    # -- names and ranks

    def _ranks(self) -> dict[str, int]:
        if not self.p.matrix:
            return {}
        ranks = {}
        for node in self.model.nodes:
            if node.array_shape is not None:
                ranks[node.name] = len(node.array_shape)
                ranks["d" + node.name] = len(node.array_shape)
        return ranks

    def _deps(self, expr, names: Names | None = None) -> frozenset[str]:
        names = names or self.names
        return frozenset(names.of(s) for s in _symbols(expr))

    # -- bindings: parameters, data columns, batch size

    def _bindings(self) -> list[Statement]:
        """Parameters, targets in the inputs' dtype, elements and columns, batch size."""
        np_, model, out = self.np, self.model, []
        shapes = model.param_shapes()
        for name in shapes:
            ident = self.names(name)
            out.append(_binding(ident, f'params["{name}"]', name))
        if model.targets:
            if self.p.labels:
                code = f"{np_}.eye({self.p._n_outputs()}, dtype=X.dtype)[Y]"
                comment = "one-hot rows of the integer labels"
            else:
                code, comment = f"{np_}.asarray(Y, dtype=X.dtype)", "targets in the inputs' dtype"
            out.append(_binding("Y", code, "Y", comment=comment))
        if not self.p.matrix:
            out += self._element_bindings(shapes)
            out += self._column_bindings("X", model.inputs, vector=False)
            out += self._column_bindings("Y", model.targets, self.p._targets_are_vector())
        out.append(_binding("m", "X.shape[0]", "m", comment="batch size"))
        code = f"{np_}.ones(m, dtype=X.dtype)"
        out.append(
            _binding("ones", code, "ones", comment="the 1 of 1ᵀ dZ (sum over examples)", deps={"m"})
        )
        return out

    def _element_bindings(self, shapes) -> list[Statement]:
        """Scalar level: unpack each parameter array into its elements, a row per line."""
        out = []
        for name, shape in shapes.items():
            if not shape:
                continue
            grid = {}
            for node in self.model.params:
                if node.tensor is not None and node.tensor[0] == name:
                    grid[node.tensor[1]] = self.names(node.name)
            rows = sorted({index[:-1] for index in grid})
            for row in rows:
                cells = [grid.get((*row, k)) for k in range(shape[-1])]
                source = f"{self.names(name)}[{', '.join(map(str, row))}]" if row else name
                out += self._unpack(cells, source, name, single=f"{source}[{{k}}]")
        return out

    def _column_bindings(self, array: str, nodes, vector: bool) -> list[Statement]:
        """Scalar level: one batch vector per input (a column of X) or target (of Y)."""
        cells: dict[int, str] = {}
        for position, node in enumerate(nodes):
            if node.tensor is None:  # an expression's inputs: X's columns, in order
                cells[position] = self.names(node.name)
            elif node.tensor[0] == array:
                cells[node.tensor[1][0]] = self.names(node.name)
        if not cells:
            return []
        if vector:
            ((_, ident),) = cells.items()
            return [_binding(ident, array, array, deps={array})]
        row = [cells.get(k) for k in range(max(cells) + 1)]
        return self._unpack(row, f"{array}.T", array, single=f"{array}[:, {{k}}]")

    def _unpack(self, cells: list, source: str, node: str, single: str) -> list[Statement]:
        """``a, b, c = source`` in chunks that fit a line (``_`` for unused slots)."""
        base = source.split("[")[0].split(".")[0]
        if len(cells) == 1:
            return [_binding(cells[0], single.format(k=0), node, deps={base})]
        out, start = [], 0
        while start < len(cells):
            stop = start
            while stop < len(cells):
                lhs = ", ".join(c or "_" for c in cells[start : stop + 1])
                if stop > start and len(lhs) + len(source) + 20 > WIDTH:
                    break
                stop += 1
            chunk = cells[start:stop]
            whole = start == 0 and stop == len(cells)
            rhs = source if whole else f"{source}[{start}:{stop}]"
            lhs = ", ".join(c or "_" for c in chunk)
            if len(chunk) == 1:
                lhs = f"({lhs},)"
            out.append(_binding(lhs, rhs, node, provides={c for c in chunk if c}, deps={base}))
            start = stop
        return out

    # -- one function

    def _function_statements(self, function: str, names: Names):
        """The statements ``function`` needs, in order, and what it returns."""
        p = self.p
        statements = [copy.copy(s) for s in p.forward_statements]
        if function == "loss_and_grads":
            statements += [copy.copy(s) for s in p.backward_statements]
        for s in statements:
            s.deps = self._deps(s.expr)
            s.provides = frozenset({self.names(s.target)})
        returns, extra = self._returns(function)
        needed = set().union(*(_identifiers(code) for _, code, _ in returns))
        kept = _live(statements + extra, needed)
        _share_softplus(kept)
        kept = _common_subexpressions(kept, self, names)
        needed |= set().union(*(s.deps for s in kept))
        return _live(self._bindings(), needed) + kept, returns

    def _returns(self, function: str):
        """[(name, code, is_float)] and any statements building the returned values."""
        p, np_ = self.p, self.np
        if function == "loss":
            return [("J", "J", True)], []
        if function == "forward":
            return [("output", self._output_code(), False)], []
        extra, entries = [], []
        for name, grad in p.gradient_outputs:
            shape = self.model.param_shapes()[name]
            if isinstance(grad, dict):
                ident = self.gradient_arrays[name]
                code, deps = self._array_code(grad, shape)
                comment = f"d{name}: the entries above as one array"
                extra.append(_binding(ident, code, name, comment=comment, deps=deps))
                extra[-1].kind = "gradient"
                entries.append(f'"{name}": {ident}')
            elif grad is None:
                entries.append(f'"{name}": {np_}.zeros_like({self.names(name)})')
            elif not shape:
                dtype = "" if p.matrix else ", dtype=X.dtype"
                entries.append(f'"{name}": {np_}.asarray({self.names(grad)}{dtype})')
            else:
                entries.append(f'"{name}": {self.names(grad)}')
        grads = "{" + ", ".join(entries) + "}"
        return [("J", "J", True), ("grads", grads, False)], extra

    def _array_code(self, elements: dict, shape) -> tuple[str, set[str]]:
        deps = set()

        def cell(index):
            grad = elements.get(index)
            if grad is None:
                return "0"
            deps.add(self.names(grad))
            return self.names(grad)

        def nested(prefix):
            if len(prefix) == len(shape) - 1:
                return "[" + ", ".join(cell((*prefix, k)) for k in range(shape[-1])) + "]"
            return "[" + ", ".join(nested((*prefix, k)) for k in range(shape[len(prefix)])) + "]"

        return f"{self.np}.array({nested(())}, dtype=X.dtype)", deps

    def _output_code(self) -> str:
        p, model = self.p, self.model
        outputs = [n for n in model.nodes if n.role == "output"]
        if p.matrix:
            return self.names(outputs[0].name)
        if not outputs:  # an expression: its value for each example
            cost = self.names(model.cost.name)
            if p._is_batch(model.cost.symbol):
                return cost
            return f"{self.np}.full(X.shape[0], {cost}, dtype=X.dtype)"
        idents = [self.names(n.name) for n in outputs]
        if p._targets_are_vector() and len(idents) == 1:
            return idents[0]
        if len(idents) == 1:
            return f"{idents[0]}[:, None]"
        return f"{self.np}.stack([{', '.join(idents)}], axis=1)"

    # -- text

    def _print_function(self, function: str, printer: KernelPrinter) -> list:
        names = self.names.scope()
        statements, returns = self._function_statements(function, names)
        ranks = {**self.ranks, **_temp_ranks(statements, self.ranks)}
        # products read as the chain rule: adjoint first, then weights (dz2 * w2, w2 * a1);
        # a matrix level keeps the order of its products (X w1 is X * w1 for a 0-d w1)
        lead = [names(s.target) for s in self.p.backward_statements]
        if not self.p.matrix:
            lead += [names(node.name) for node in self.model.params]
        local = self.printer_class({"names": names.map, "ranks": ranks, "lead": tuple(lead)})
        adjoints = {names(st.target) for st in self.p.backward_statements}
        outs = _reuse_plan(statements, returns, self._shapes(), names, prefer=adjoints)
        body, section = [], None
        for s in _group_parameters(statements):
            if function == "loss_and_grads" and s.kind != "data":
                wanted = "backward" if s.kind in ("adjoint", "gradient") else "forward"
                if wanted != section:
                    body.append((f"    # {wanted} pass", None, "section"))
                    section = wanted
            out, operand = outs.get(id(s), (None, True))
            code = s.code if s.code is not None else local.doprint_into(s.expr, out)
            lhs = s.target if s.code is not None else names(s.target)
            equation = s.equation
            if out is not None and not operand and code != local.doprint(s.expr):
                equation += f", in {out}'s memory"  # say why an unrelated name is written
            split = local.bias_in_place(s.expr) if out is None and s.code is None else None
            if split:  # Z1 = X @ W1, then Z1 += b1: no second array for the sum
                product, bias = split
                lines = wrap_statement(f"{lhs} = ", product, equation)
                lines += wrap_statement(f"{lhs} += ", bias, "bias added in place")
            else:
                lines = wrap_statement(f"{lhs} = ", code, equation)
            for text in lines:
                body.append((text, s.node, s.kind))
        self.helpers |= local.helpers_used
        return printer.function(function, _signature(function), _DOCS[function], body, returns)

    def _shapes(self) -> dict[str, tuple]:
        """Array shapes by identifier (symbolic sizes), for reusing memory safely."""
        shapes: dict[str, tuple] = {"m": (), "ones": (BATCH,)}
        if self.p.matrix:
            for node in self.model.nodes:
                if node.array_shape is not None:
                    shape = tuple(sp.sympify(d).xreplace(self.model.dims) for d in node.array_shape)
                    shapes[self.names(node.name)] = shape
                    shapes[self.names("d" + node.name)] = shape
        else:
            for name in self.p.batch_names:
                shapes[self.names(name)] = (BATCH,)
        return shapes

    def kernel(self) -> Kernel:
        printer = self.printer_class({"names": dict(self.names.map)})
        functions = {f: self._print_function(f, printer) for f in FUNCTIONS}
        lines: list[tuple[str, str | None, str, str]] = []

        def add(text, node=None, kind="module", function=""):
            lines.append((text, node, kind, function))

        for text in self._module_doc():
            add(text)
        add("")
        for text in printer.imports:
            add(text)
        add("")
        add(f"PARAMS = {self._params_literal()}")
        for helper in sorted(self.helpers):
            add("")
            add("")
            for text in printer.helper_source(helper).splitlines():
                add(text, helper, "helper")
        for function in FUNCTIONS:
            add("")
            add("")
            for text, node, kind in functions[function]:
                add(text, node, kind, function)
        source = "\n".join(text.rstrip() for text, *_ in lines) + "\n"
        mapping = [
            KernelLine(number, node, kind, function)
            for number, (text, node, kind, function) in enumerate(lines, start=1)
            if node is not None and text.strip() and not text.lstrip().startswith("#")
        ]
        return Kernel(
            source,
            _first_lines(mapping),
            self.model.param_shapes(),
            self.printer_class.target,
            self.p.derivation,
            name=self.model.spec,
        )

    def _params_literal(self) -> str:
        shapes = self.model.param_shapes()
        text = "{" + ", ".join(f'"{k}": {v!r}' for k, v in shapes.items()) + "}"
        if len(text) + 9 <= WIDTH:
            return text
        return "{\n" + "".join(f'    "{k}": {v!r},\n' for k, v in shapes.items()) + "}"

    def _module_doc(self) -> list[str]:
        model, p = self.model, self.p
        what = {"numpy": "NumPy", "jax": "JAX (jax.numpy, jax.jit)"}[self.printer_class.target]
        parts = []
        if model.activation and model.kind != "logreg":
            parts.append(f"{model.activation} hidden layers")
        if model.output:
            parts.append(f"{model.output} output")
        if model.loss:
            parts.append(f"{model.loss} loss")
        about = f" ({', '.join(parts)})" if parts else ""
        x_shape = self._data_shape("X")
        y_shape = self._data_shape("Y")
        title = f'"""{what} kernel for {model.spec}{about}, {model.level} level.'
        doc = [
            *textwrap.wrap(title, WIDTH),
            "",
            "Generated by backprop-toolkit from the Derivation: each line implements one forward",
            "node or one backward step, named in its comment. Rows of X are examples.",
            "",
            f"    X {x_shape}" + (f", Y {y_shape}" if y_shape else ""),
        ]
        if not p.matrix:
            doc.append("    every node is a batch vector (one entry per example)")
        doc.append('"""')
        return doc

    def _data_shape(self, array: str) -> str | None:
        model, p = self.model, self.p
        if array == "X":
            n = (
                len(model.inputs)
                if not p.matrix
                else int(sp.sympify(model.inputs[0].shape[1]).xreplace(model.dims))
            )
            return f"(m, {n})"
        if not model.targets:
            return None
        if p.labels:
            return "(m,) integer labels"
        if p._targets_are_vector():
            return "(m,)"
        return f"(m, {p._n_outputs()})"


def fold_piecewise(expr: sp.Expr) -> sp.Expr:
    """Lift each Piecewise to the top of its elementwise expression (``dA1 * [Z1 > 0]`` is
    ``np.where(Z1 > 0, dA1, 0)``), but never out of a sum over entries: a condition holds
    entry by entry, a sum does not."""
    reductions = [
        e for e in sp.preorder_traversal(expr) if isinstance(e, (rowsum, total, batch_mean))
    ]
    if not reductions:
        return sp.piecewise_fold(expr)
    outer = reductions[0]
    inner = outer.func(fold_piecewise(outer.args[0]))
    stand_in = sp.Dummy("reduction", real=True)
    return fold_piecewise(expr.xreplace({outer: stand_in})).xreplace({stand_in: inner})


def _binding(lhs: str, code: str, node: str, comment: str = "", provides=None, deps=()):
    """A line given as code: unpacking parameters, reading columns, converting targets."""
    provides = frozenset(provides if provides is not None else {lhs})
    return Statement(lhs, None, node, "data", comment, code=code, provides=provides,
                     deps=frozenset(deps))  # fmt: skip


def _shape_of(expr, shapes: dict[str, tuple], names: Names) -> tuple | None:
    """The NumPy shape of an elementwise expression (broadcasting), None if unknown."""
    if isinstance(expr, (sp.Symbol, sp.MatrixSymbol)):
        return () if expr == BATCH else shapes.get(names.of(expr), ())
    if expr.is_Atom or isinstance(expr, (total, batch_mean)):
        return ()
    if isinstance(expr, (rowsum, rowmax)):
        inner = _shape_of(expr.args[0], shapes, names)
        return None if inner is None else (inner[:1] + (1,) if len(inner) == 2 else inner)
    if isinstance(expr, sp.MatrixExpr) or not expr.args:
        return None
    out: tuple = ()
    for arg in expr.args:
        shape = _shape_of(arg, shapes, names) if isinstance(arg, sp.Basic) else ()
        if shape is None:
            return None
        out = _broadcast(out, shape)
        if out is None:
            return None
    return out


def _broadcast(a: tuple, b: tuple) -> tuple | None:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(out)


def _reuse_plan(statements, returns, shapes, names, prefer=frozenset()) -> dict:
    """For each statement, an array its result may be written into (``out=``), as
    ``(name, is_operand)``; fewer live arrays keep a deep net's working set in cache and
    spare the allocator fresh pages (each a page fault).

    * an elementwise result may overwrite one of its own operands that nothing reads
      afterwards (``np.tanh(Z1, out=Z1)``, ``np.multiply(dA1, ..., out=dA1)``);
    * a matrix product may take the memory of an array of its shape that is no longer
      needed (the backward ``dA1 = dZ2 @ W2.T`` into ``A1``, once ``dW2`` has read it).

    Only arrays made in this function are reused, never the caller's (X, Y, params).
    """
    returned = set().union(*(_identifiers(code) for _, code, _ in returns))
    last_use: dict[str, int] = {}
    for i, s in enumerate(statements):
        for dep in s.deps:
            last_use[dep] = i
    home_of: dict[str, str] = {}  # identifier -> the array it lives in (its first name)
    members: dict[str, list[str]] = {}  # array -> every identifier living in it
    shapes = dict(shapes)
    plan: dict = {}

    def free(home: str, i: int, here: bool) -> bool:
        """Nothing reads the array after statement i (or after i - 1)."""
        limit = i if here else i - 1
        return all(last_use.get(n, -1) <= limit and n not in returned for n in members[home])

    for i, s in enumerate(statements):
        if s.code is not None or s.expr is None:
            continue
        target = names(s.target)
        if isinstance(s.expr, (sp.Symbol, sp.MatrixSymbol)):  # an alias: A2 = Z2
            source = names.of(s.expr)
            if source in home_of:
                home_of[target] = home_of[source]
                members[home_of[source]].append(target)
            continue
        matrix = _is_matrix(s.expr)
        shape = shapes.get(target) if matrix else _shape_of(s.expr, shapes, names)
        if not shape or isinstance(s.expr, (Relational, sp.logic.boolalg.Boolean)):
            continue
        choice = None
        if not matrix:
            operands = _direct_operands(s.expr)  # an adjoint's memory first: dA1 in dZ1
            for sym in sorted(operands, key=lambda o: names.of(o) not in prefer):
                home = home_of.get(names.of(sym))
                if home and shapes.get(home) == shape and free(home, i, here=True):
                    choice = (names.of(sym), True)
                    break
        elif _product_into(s.expr):
            for home in members:
                if shapes.get(home) == shape and free(home, i, here=False):
                    choice = (members[home][-1], False)
                    break
        if choice is not None:
            plan[id(s)] = choice
            home_of[target] = home_of[choice[0]]
            members[home_of[target]].append(target)
        elif not matrix or _fresh_matrix(s.expr):
            home_of[target], members[target], shapes[target] = target, [target], shape
    return plan


def _product_into(expr) -> bool:
    """A matrix product the printers can write into a given array (``A @ B``, ``A @ B + b``)."""
    if isinstance(expr, sp.MatAdd):
        return len(expr.args) == 2 and any(_product_into(a) for a in expr.args)
    if isinstance(expr, sp.MatMul):
        coeff, matrices = expr.as_coeff_matrices()
        return (
            coeff == 1
            and len(matrices) == 2
            and not any(isinstance(m, sp.OneMatrix) for m in matrices)
        )
    return False


def _sums_matrix_rows(expr: sp.MatMul, ranks: dict[str, int]) -> bool:
    """``1ᵀ dZ`` with ``dZ`` a matrix (a vector's sum is just ``dZ.sum()``)."""
    matrices = expr.as_coeff_matrices()[1]
    if len(matrices) != 2 or not isinstance(matrices[0], sp.OneMatrix):
        return False
    ones, operand = matrices
    return (
        ones.shape[0] == 1
        and isinstance(operand, sp.MatrixSymbol)
        and (ranks.get(operand.name, 2) > 1)
    )


def _share_softplus(statements: list[Statement]) -> None:
    """Where a function needs softplus(u) anyway, write sigmoid(u) as exp(u - softplus(u)):
    the same value (its exponent is log sigmoid(u) <= 0, so it never overflows), and the
    softplus is computed once. A softplus layer's derivative then reuses its output."""
    elementwise = [s for s in statements if s.expr is not None and not _is_matrix(s.expr)]
    arguments = set()
    for s in elementwise:
        arguments |= {f.args[0] for f in s.expr.atoms(softplus)}
    arguments |= {-u for u in arguments}
    for s in elementwise:
        s.expr = s.expr.replace(
            lambda e: isinstance(e, sigmoid) and e.args[0] in arguments,
            lambda e: sp.exp(e.args[0] - softplus(e.args[0])),
        )


def _direct_operands(expr) -> list[sp.Symbol]:
    """Arrays that are themselves operands of the top operation (``dA1`` in
    ``dA1 * (1 - A1**2)``, ``Z1`` in ``tanh(Z1)``): the ones an ``out=`` may overwrite."""
    if isinstance(expr, sp.Piecewise):
        args = [expr.args[0].expr]
    elif isinstance(expr, sp.Mul):
        args = list(expr.args)
    elif isinstance(expr, (sp.Add, sp.Function)):
        args = list(expr.args)
    else:
        args = []
    return [a for a in args if isinstance(a, sp.Symbol) and a != BATCH]


def _fresh_matrix(expr) -> bool:
    """A matrix statement that makes a new array (not ``1 b``, which is ``b`` itself)."""
    if isinstance(expr, sp.MatAdd):
        return True
    if isinstance(expr, sp.MatMul):
        matrices = expr.as_coeff_matrices()[1]
        return not isinstance(matrices[0], sp.OneMatrix) or matrices[0].shape[1] != 1
    return False


def _group_parameters(statements: list[Statement]) -> list[Statement]:
    """``W1, b1, W2, b2 = params["W1"], ...`` in lines that fit, instead of one per array."""
    params = [s for s in statements if s.code is not None and s.code.startswith("params[")]
    if len(params) < 2:
        return statements

    def fits(group) -> bool:
        text = ", ".join(t.target for t in group) + " = " + ", ".join(t.code for t in group)
        return len(text) + 4 <= WIDTH

    size = len(params)  # the largest even chunk that fits: W1, b1, W2, b2 stay in pairs
    while size > 1 and not all(fits(params[k : k + size]) for k in range(0, len(params), size)):
        size -= 2 if size > 2 and size % 2 == 0 else 1
    groups = [params[k : k + size] for k in range(0, len(params), size)]
    merged = [
        _binding(", ".join(t.target for t in g), ", ".join(t.code for t in g), "params")
        for g in groups
    ]
    rest = [s for s in statements if s not in params]
    return merged + rest


def _live(statements: list[Statement], needed: set[str]) -> list[Statement]:
    """The statements whose results are needed, directly or through later statements."""
    needed, kept = set(needed), []
    for s in reversed(statements):
        if s.provides & needed:
            kept.append(s)
            needed |= s.deps
    return kept[::-1]


def _identifiers(code: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", code))


_DOCS = {
    "forward": "Network output for the inputs X (one row per example).",
    "loss": "Mean cost over the batch.",
    "loss_and_grads": "Mean cost over the batch and its gradient for every parameter, by backprop.",
}


def _signature(function: str) -> str:
    return "params, X" if function == "forward" else "params, X, Y"


def _first_lines(mapping: list[KernelLine]) -> list[KernelLine]:
    """Keep the first line of each wrapped statement."""
    out, last = [], None
    for entry in mapping:
        key = (entry.node, entry.kind, entry.function)
        if key != last or entry.kind == "data":
            out.append(entry)
        last = key
    return out


# ---------------------------------------------------------------------------- shared values


def _temp_ranks(statements, ranks) -> dict[str, int]:
    out = {}
    for s in statements:
        if s.kind == "shared":
            out[s.target] = max((ranks.get(sym.name, 0) for sym in _symbols(s.expr)), default=0)
            ranks = {**ranks, **out}
    return out


def _common_subexpressions(statements: list[Statement], writer, names: Names) -> list[Statement]:
    """Compute repeated work once: ``Z1 > 0`` for ReLU's forward and backward, the shifted
    ``exp`` of a softmax and its log-sum-exp. Cheap repeats (``1/m``, ``-Y``) stay inline."""
    p = writer.p
    elementwise = [s for s in statements if s.expr is not None and not _is_matrix(s.expr)]
    if not elementwise:
        return statements
    # repeated subtrees only (SymPy's opt_cse would also split products and sums apart)
    temps, reduced = tree_cse(
        [s.expr for s in elementwise], sp.numbered_symbols("_cse", real=True), {}, "none"
    )
    temp_symbols = {t for t, _ in temps}

    def is_array(symbol) -> bool:
        if symbol in temp_symbols:
            return True
        return symbol != BATCH if p.matrix else symbol.name in p.batch_names

    def worth_a_name(value) -> bool:
        """Repeated array work: not a bare array scaled by numbers (``-Y``, ``Y/m``)."""
        if not any(is_array(s) for s in value.free_symbols):
            return False
        arrays = [f for f in sp.Mul.make_args(value) if any(map(is_array, f.free_symbols))]
        if len(arrays) == 1 and isinstance(arrays[0], sp.Symbol):
            return False
        if isinstance(value, sp.Pow):  # 1/s: dividing by s costs what multiplying does
            return not (isinstance(value.base, sp.Symbol) and value.exp.is_Number)
        return True

    # name E rather than -E or 1/E (SymPy finds -max(u) in every u - max(u))
    scaled = {}
    for k, (t, v) in enumerate(temps):
        plain = sp.Symbol(f"{t.name}_", real=True)
        if isinstance(v, sp.Mul):
            coeff, rest = v.as_coeff_Mul()
            if coeff != 1 and coeff.is_Number and rest.free_symbols:
                temps[k] = (plain, rest)
                scaled[t] = coeff * plain
        elif isinstance(v, sp.Pow) and v.exp.is_Number and not v.base.is_Symbol:
            temps[k] = (plain, v.base)
            scaled[t] = plain**v.exp
    if scaled:
        temps = [(t, v.xreplace(scaled)) for t, v in temps]
        reduced = [r.xreplace(scaled) for r in reduced]
        temp_symbols = {t for t, _ in temps}

    inline = {t: v for t, v in temps if not worth_a_name(v)}
    kept = [(t, v) for t, v in temps if t not in inline]
    for _ in range(len(temps)):  # resolve chains of inlined temporaries
        inline = {t: v.xreplace(inline) for t, v in inline.items()}
    kept = [(t, v.xreplace(inline)) for t, v in kept]
    reduced = [r.xreplace(inline) for r in reduced]

    # a temporary that is a whole statement, first used there, takes the statement's name
    renames = {}
    for k, (s, r) in enumerate(zip(elementwise, reduced)):
        if r in dict(kept) and r not in renames:
            first = next(i for i, other in enumerate(reduced) if other.has(r))
            if first == k:
                renames[r] = sp.Symbol(s.target, real=True)
    values = dict(kept)
    for s, r in zip(elementwise, reduced):
        own = renames.get(r)
        s.expr = (
            values[r].xreplace(renames)
            if own is not None and own.name == s.target
            else (r.xreplace(renames))
        )
    kept = [(t, v.xreplace(renames)) for t, v in kept if t not in renames]

    # name the rest after what they hold, and place each just before its first use
    as_names: dict = {}
    shared, full, written_out = {}, {}, {}
    for t, v in kept:
        full[t] = v.xreplace(full)  # written out, for naming: exp(Z2 - rowmax(Z2))
        v = v.xreplace(as_names)
        ident = names.fresh(_temp_name(v, names))
        names.map[ident] = ident
        as_names[t] = sp.Symbol(ident, real=True)
        shared[ident] = Statement(ident, v, "", "shared", provides=frozenset({ident}))
        written_out[ident] = full[t]
    for st in shared.values():
        st.deps = writer._deps(st.expr, names)
    for s in elementwise:
        s.expr = s.expr.xreplace(as_names)
        s.deps = writer._deps(s.expr, names)

    out, placed = [], set()

    def place(user: Statement, statement: Statement):
        for dep in sorted(statement.deps):
            if dep in shared and dep not in placed:
                placed.add(dep)
                place(user, shared[dep])
                shared[dep].node = user.node
                out.append(shared[dep])

    for s in statements:
        place(s, s)
        out.append(s)
    for temp in shared.values():
        users = [s.target for s in out if temp.target in s.deps and s is not temp]
        temp.equation = _temp_comment(written_out[temp.target], users)
    return out


def _short(expr, names: Names) -> str:
    """A short name for what an expression is: its own name if it has one, else its array."""
    if isinstance(expr, sp.Symbol):
        return names.of(expr)
    if isinstance(expr, sp.Add) and len(expr.args) == 2:  # u - max(u): named after u
        shift = [
            a
            for a in expr.args
            if isinstance(-a, (rowmax, maximum))
            or ((-a).is_Symbol and names.of(-a).endswith("_max"))
        ]
        if shift:
            return _short(expr - shift[0], names)
    named = _temp_name(expr, names)
    if named != "t":
        return named
    symbols = [s for s in sp.preorder_traversal(expr) if isinstance(s, sp.Symbol) and s != BATCH]
    return names.of(symbols[0]) if symbols else "t"


def _common_prefix(names: list[str]) -> str:
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix.rstrip("_") or names[0]


def _temp_name(expr, names: Names) -> str:
    if isinstance(expr, rowmax):
        return f"{_short(expr.args[0], names)}_max"
    if isinstance(expr, maximum):
        return f"{_common_prefix([_short(a, names) for a in expr.args])}_max"
    if isinstance(expr, Relational) and expr.rhs == 0:
        word = {">": "pos", ">=": "nonneg", "<": "neg", "<=": "nonpos"}.get(expr.rel_op, "mask")
        return f"{_short(expr.lhs, names)}_{word}"
    if isinstance(expr, Relational) and expr.rhs.is_Integer:
        word = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}.get(expr.rel_op, "mask")
        return f"{_short(expr.lhs, names)}_{word}_{int(expr.rhs)}".replace("-", "minus")
    if isinstance(expr, sp.Add) and all(isinstance(a, (sp.Symbol, sp.exp)) for a in expr.args):
        return f"sum_{_common_prefix([_short(a, names) for a in expr.args])}"
    if isinstance(expr, sp.Add) and any(isinstance(a, sp.log) for a in expr.args):
        shifts = [names.of(s) for s in expr.free_symbols if names.of(s).endswith("_max")]
        base = shifts[0].removesuffix("_max") if shifts else _short(expr, names)
        return f"{base}_lse"  # log-sum-exp
    if isinstance(expr, sp.Add) and len(expr.args) == 2:
        positive = [a for a in expr.args if not a.could_extract_minus_sign()]
        negative = [-a for a in expr.args if a.could_extract_minus_sign()]
        if len(positive) == len(negative) == 1:
            return f"{_short(positive[0], names)}_minus_{_short(negative[0], names)}"
    if isinstance(expr, sp.Function):
        name = type(expr).__name__.lower()
        name = {"rowsum": "sum", "abs": "abs"}.get(name, name)
        return f"{name}_{_short(expr.args[0], names)}"
    return "t"


def _temp_comment(value, users: list[str]) -> str:
    """Why a temporary exists: a stability shift, or work several lines share."""
    users = list(dict.fromkeys(u for u in users if u))
    if isinstance(value, (rowmax, maximum)):
        return "largest entry of each row: exp of the shifted values cannot overflow"
    if isinstance(value, sp.exp) and value.args[0].has(rowmax, maximum):
        shifted = EquationPrinter().doprint(value)
        return f"{shifted} <= 1: no overflow; " + (
            f"shared by {', '.join(users)}" if len(users) > 1 else f"used by {users[0]}"
        )
    if len(users) > 1:
        return f"shared by {', '.join(users)}"
    return f"used twice by {users[0]}" if users else ""


__all__ = ["TARGETS", "Kernel", "KernelLine", "Program", "codegen"]
