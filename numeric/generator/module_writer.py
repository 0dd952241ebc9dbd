"""The kernel module as text: its docstring, the imports and ``PARAMS`` literal, the helpers
the printers used, and the three functions (``forward``, ``loss``, ``loss_and_grads``), each
made of the statements it needs, with the memory-reuse plan and shared values applied.
"""

from __future__ import annotations

import copy
import textwrap

import sympy as sp

from derive.ops import m as BATCH

from . import out_arrays
from .data_lines import DataLines, group_parameters
from .kernel import FUNCTIONS, Kernel, KernelLine
from .kernel_forms import plain_product, shape_of
from .memory_reuse import reuse_plan
from .printers import WIDTH, KernelPrinter, wrap_statement
from .shared_values import common_subexpressions, share_softplus, temp_ranks
from .statements import Names, binding, deps_of, identifiers, live


class ModuleWriter:
    """Lays a Program out as a module: header, PARAMS, helpers, the three functions."""

    def __init__(self, program, printer_class, dtype: str = "float64"):
        self.p = program
        self.model = program.model
        self.names = program.names
        self.printer_class = printer_class
        self.np = printer_class.module
        self.helpers: set[str] = set()
        self.imports: set[str] = set()  # beyond the target's, as the printers used them
        self.data = DataLines(program, self.np, dtype)
        self.ranks = program.ranks
        # a NumPy kernel can write its gradients into the caller's arrays (out_arrays)
        self.writes_out = printer_class.target == "numpy"
        self._gradient_of = _gradient_of(program.gradient_outputs, self.names)
        self.gradient_arrays = {
            name: self.names.fresh("d" + name)
            for name, grad in program.gradient_outputs
            if isinstance(grad, dict)
        }

    # -- one function

    def _function_statements(self, function: str, names: Names):
        """The statements ``function`` needs, in order, and what it returns."""
        p = self.p
        statements = [copy.copy(s) for s in p.forward_statements]
        if function == "loss_and_grads":
            statements += [copy.copy(s) for s in p.backward_statements]
        for s in statements:
            s.deps = deps_of(s.expr, self.names)
            s.provides = frozenset({self.names(s.target)})
        returns, extra = self._returns(function)
        needed = set().union(*(identifiers(code) for _, code, _ in returns))
        kept = live(statements + extra, needed)
        share_softplus(kept)
        kept = common_subexpressions(kept, p, names)
        needed |= set().union(*(s.deps for s in kept))
        return live(self.data.bindings(), needed) + kept, returns

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
                extra.append(binding(ident, code, name, comment=comment, deps=deps))
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
        if self.writes_out:
            grads = f"gradients_into({out_arrays.TARGET}, {grads})"
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
        if p.model.real_target_vector and len(idents) == 1:
            return idents[0]
        if len(idents) == 1:
            return f"{idents[0]}[:, None]"
        return f"{self.np}.stack([{', '.join(idents)}], axis=1)"

    # -- text

    def _print_function(self, function: str, printer: KernelPrinter) -> list:
        names = self.names.scope()
        statements, returns = self._function_statements(function, names)
        ranks = {**self.ranks, **temp_ranks(statements, self.ranks)}
        # products read as the chain rule: adjoint first, then weights (dz2 * w2, w2 * a1);
        # a matrix level keeps the order of its products (X w1 is X * w1 for a 0-d w1)
        lead = [names(s.target) for s in self.p.backward_statements]
        if not self.p.matrix:
            lead += [names(node.name) for node in self.model.params]
        shapes = self._shapes()
        for s in statements:  # shared temporaries, in order: one may read another
            if s.kind == "shared":
                shapes[names(s.target)] = shape_of(s.expr, lambda a: shapes.get(names.of(a), ()))
        settings = {"names": names.map, "ranks": ranks, "shapes": shapes, "lead": tuple(lead)}
        local = self.printer_class(settings)
        adjoints = {names(st.target) for st in self.p.backward_statements}
        outs = reuse_plan(statements, returns, self._shapes(), names, prefer=adjoints)
        body, section = [], None
        for s in group_parameters(statements):
            if function == "loss_and_grads" and s.kind != "data":
                wanted = "backward" if s.kind in ("adjoint", "gradient") else "forward"
                if wanted != section:
                    body.append((f"    # {wanted} pass", None, "section"))
                    section = wanted
            plan = outs.get(id(s), (None, True))
            if function == "loss_and_grads" and self.writes_out:
                plan = self._into_out(s, names, local) or plan
            for text, kind in self._statement_lines(s, local, names, plan, adjoints):
                body.append((text, s.node, kind))
        self.helpers |= local.helpers_used
        self.imports |= local.imports_used
        signature = _signature(function) + (", masks=None" if self.data.masks else "")
        doc = _DOCS[function] + (_MASKS_DOC if self.data.masks else "")
        if function == "loss_and_grads" and self.writes_out:
            signature += ", out=None"
            doc = doc.rstrip() + out_arrays.DOC
            first = next((i for i, (_, _, kind) in enumerate(body) if kind != "data"), len(body))
            body.insert(first, (f"    {out_arrays.FIRST_LINE}", None, "data"))
        return printer.function(function, signature, doc, body, returns)

    def _into_out(self, s, names, local) -> tuple[str, bool] | None:
        """The plan writing a parameter's gradient straight into the caller's array, when
        ``s`` computes one as a matrix product (plus a term added in place); the others
        are copied there on return."""
        param = self._gradient_of.get(names(s.target)) if s.code is None else None
        if param is None or not (plain_product(s.expr) or local.bias_in_place(s.expr)):
            return None
        return (out_arrays.into(param), True)

    def _statement_lines(self, s, local, names, plan, adjoints) -> list[tuple[str, str]]:
        """The lines of one statement, as (text, kind), with its memory-reuse ``plan``."""
        out, operand, *rest = plan
        scratch = rest[0] if rest else ()  # dead arrays a factor may be computed in
        if s.code is not None:
            return [(text, s.kind) for text in wrap_statement(f"{s.target} = ", s.code, s.equation)]
        lhs, equation = names(s.target), s.equation
        split = local.bias_in_place(s.expr, out)
        code = split[0] if split else local.doprint_into(s.expr, out)
        if out is not None and not operand and f"out={out}" in code:
            equation += f", in {out}'s memory"  # say why an unrelated name is written
        if split:  # Z1 = X @ W1, then Z1 += b1: no second array for the sum
            lines = wrap_statement(f"{lhs} = ", code, equation)
            what = "bias" if s.expr.has(sp.OneMatrix) else split[1]  # or a residual's branch
            lines += wrap_statement(f"{lhs} += ", split[1], f"{what} added in place")
            return [(text, s.kind) for text in lines]
        factor = None
        if scratch and {out, lhs} <= adjoints:  # dZ1 = dA1 * dA1/dZ1
            name = names.fresh(f"{out}_{lhs}")
            factor = local.factor_into(s.expr, out, scratch, name)
            if not factor:
                names.taken.discard(name)  # the name is free again
        if not factor:
            return [(text, s.kind) for text in wrap_statement(f"{lhs} = ", code, equation)]
        # the factor in the memory of an array nothing reads afterwards: no temporaries
        expr, factor_code, home, code = factor
        about = f"{out}/{lhs} = {self.p.equation.doprint(expr)}, in {home}'s memory"
        lines = [(text, "factor") for text in wrap_statement(f"{name} = ", factor_code, about)]
        return lines + [(text, s.kind) for text in wrap_statement(f"{lhs} = ", code, equation)]

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
            for piece in text.split("\n"):  # a docstring is one entry of several lines
                lines.append((piece, node, kind, function))

        for text in self._module_doc():
            add(text)
        add("")
        for text in (*printer.imports, *sorted(self.imports)):  # SciPy's erf after NumPy
            add(text)
        add("")
        add(f"PARAMS = {self._params_literal()}")
        for helper in sorted(self.helpers):
            add("")
            add("")
            for text in printer.helper_source(helper).splitlines():
                add(text, helper, "helper")
        if self.writes_out:
            add("")
            add("")
            for text in out_arrays.HELPER.format(np=self.np).splitlines():
                add(text, "gradients_into", "helper")
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
        parts = model.choices("hidden layers")
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
        """``X``'s or ``Y``'s shape for the module docstring, from the model's contract."""
        model = self.model
        if array == "Y" and not model.targets:
            return None
        shape = str(model.data_shapes()[array]).replace("'", "")
        return shape + " integer labels" if array == "Y" and model.labels else shape


_DOCS = {
    "forward": "Network output for the inputs X (one row per example).",
    "loss": "Mean cost over the batch.",
    "loss_and_grads": "Mean cost over the batch and its gradient for every parameter, by backprop.",
}


#: what a kernel with dropout layers says about its ``masks`` argument
_MASKS_DOC = (
    "\n\n    masks: each dropout layer's 0/1 keep mask by name, shaped like its input;"
    "\n    None (evaluation): every dropout layer is the identity.\n    "
)


def _gradient_of(gradient_outputs, names) -> dict[str, str]:
    """Adjoint identifier -> the parameter it is the gradient of (when one only)."""
    found: dict[str, list[str]] = {}
    for name, grad in gradient_outputs:
        if isinstance(grad, str):
            found.setdefault(names(grad), []).append(name)
    return {ident: params[0] for ident, params in found.items() if len(params) == 1}


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
