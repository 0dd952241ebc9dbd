"""Any scalar SymPy expression as a computation graph, and a safe parser for user text.

``from_expr(3*(a + b*c))`` gives Ng's graph: ``u = b c``, ``v = a + u``, ``J = 3 v``. Every
compound subexpression becomes a named node (shared ones once, so the graph forks where a
value is used twice); numbers and plain negation or division stay inside their node.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping

import sympy as sp
from sympy.core.function import AppliedUndef

from . import registry
from .errors import BackpropInputError
from .graph import Node
from .model import Model
from .ops import ActivationOp, Primitive

FUNCTIONS = {
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "tanh": sp.tanh,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "abs": sp.Abs,
    "erf": sp.erf,  # an exact GELU's; NumPy kernels call scipy.special.erf
}


class _ActivationCalls(Mapping):
    """Each elementwise activation of the registry as a function the parser calls, read
    live: a name registered later (``derive.register_activation``) parses too."""

    def _names(self) -> list[str]:
        acts = registry.ACTIVATIONS.items()
        return [name for name, act in acts if act.elementwise and name not in FUNCTIONS]

    def __getitem__(self, name: str):
        if name not in self._names():
            raise KeyError(name)
        return sp.Function(name, real=True)

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


ACTIVATION_CALLS = _ActivationCalls()
NODE_NAMES = ("u", "v", "p", "q", "r", "s", "t")
#: longest expression text parsed (a 3,000-term sum overflowed Python's parser)
MAX_CHARS = 5_000
#: largest magnitude of a number in an expression: it must fit a float64 kernel
MAX_NUMBER = 1e300
#: largest exponent of a power of a symbol (x**1000)
MAX_EXPONENT = 1_000


# ---------------------------------------------------------------------------- parsing


class ExpressionError(BackpropInputError):
    """Text that is not an expression this toolkit can differentiate."""


_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
    ast.BitXor: lambda a, b: a**b,  # x^2, as people write it
}


def parse_expression(text: str) -> tuple[str | None, sp.Expr]:
    """Parse ``"J = 3*(a + b*c)"`` (the name is optional) without ``eval``.

    >>> parse_expression("J = 3*(a + b*c)")
    ('J', 3*(a + b*c))
    """
    name, _, body = text.rpartition("=") if "=" in text else ("", "", text)
    name = name.strip() or None
    if name is not None and not name.isidentifier():
        raise ExpressionError(f"the name before '=' must be an identifier, got {name!r}")
    if len(text) > MAX_CHARS:
        raise ExpressionError(
            f"expression of {len(text):,} characters is too long (limit {MAX_CHARS:,}): "
            f"{text[:40]!r}..."
        )
    try:
        tree = parse_keeping_numbers(body.strip())
        with sp.evaluate(False):  # keep the user's structure: 3*(a + b*c) stays a product
            return name, _convert(tree.body)
    except SyntaxError as err:
        raise ExpressionError(f"cannot parse expression {body.strip()!r}: {err.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            f"expression {_short(body)} is nested too deeply to parse; split it up"
        ) from None


def parse_keeping_numbers(text: str) -> ast.Expression:
    """``ast.parse`` of an expression, each number keeping its text for messages (1e999,
    not the inf Python reads)."""
    tree = ast.parse(text, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.text = ast.get_source_segment(text, node)
    return tree


def _number_text(node: ast.Constant) -> str:
    return getattr(node, "text", None) or ast.unparse(node)


def _short(text: str) -> str:
    text = text.strip()
    return repr(text) if len(text) <= 60 else f"{text[:57]!r}..."


def _convert(node: ast.AST) -> sp.Expr:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return read_number(node)
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS or node.id in ACTIVATION_CALLS:
            raise ExpressionError(f"{node.id!r} is a function; call it, e.g. {node.id}(x)")
        return sp.Symbol(node.id, real=True)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _convert(node.left), _convert(node.right)
        if type(node.op) in (ast.Pow, ast.BitXor):
            check_power(left, right, node)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _convert(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        return _call(node.func.id, node.args)  # the name first: __import__("os") is no math
    raise ExpressionError(
        f"unsupported syntax {ast.unparse(node)!r}: use numbers, names, + - * / ** and "
        f"the functions {', '.join(sorted(FUNCTIONS) + sorted(ACTIVATION_CALLS))}"
        + (_MATRIX_HINT if _is_matrix_syntax(node) else "")
    )


#: the scalar parser's pointer to the matrix one, for ``@``, ``.T`` and the reductions
_MATRIX_HINT = (
    "; a cost over matrices (@, .T, sum, mean, rowsum) needs their shapes: "
    "derive.from_matrix_expr(text, shapes), given to the CLI in a model file"
)


def _is_matrix_syntax(node: ast.AST) -> bool:
    return (isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult)) or (
        isinstance(node, ast.Attribute) and node.attr == "T"
    )


def read_number(node: ast.Constant, error: type = ExpressionError) -> sp.Rational:
    """A number of the text, exactly as written; past :data:`MAX_NUMBER` no float kernel
    holds it, so it is refused with ``error`` (the matrix parser passes its own)."""
    if not abs(node.value) <= MAX_NUMBER:  # 1e999 is inf; NaN fails too
        raise error(f"number {_short(_number_text(node))} is too large (limit 1e300)")
    return sp.Rational(str(node.value))


def check_power(base: sp.Expr, exponent: sp.Expr, node: ast.AST, error=ExpressionError) -> None:
    """Refuse a number SymPy would spend minutes writing out (10**10**10) or that no float
    holds, before anything evaluates it: ``|exponent| * log10|base|`` says how many digits.
    A power of a symbol past :data:`MAX_EXPONENT` is refused too (its derivative's text)."""
    size = _magnitude(exponent)
    if size is None:
        return
    if not base.free_symbols:
        magnitude = _magnitude(base)
        if magnitude is None:
            return
        if magnitude not in (0.0, 1.0) and size * abs(math.log10(magnitude)) > 300:
            raise error(f"{_short(ast.unparse(node))} is too large a number (limit about 1e300)")
    elif size > MAX_EXPONENT:
        raise error(f"exponent in {_short(ast.unparse(node))} is too large (limit {MAX_EXPONENT})")


def _magnitude(expr: sp.Expr) -> float | None:
    """``|expr|`` of a number-only expression, or None when it has symbols or no value
    (``relu(0)`` stays unevaluated; a complex one is refused later, as a whole)."""
    if expr.free_symbols:
        return None
    try:
        return abs(complex(sp.N(expr, 15)))
    except (TypeError, ValueError):
        return None


def _call(name: str, args: list[ast.AST]) -> sp.Expr:
    fn = FUNCTIONS.get(name) or ACTIVATION_CALLS.get(name)
    if fn is None:
        known = ", ".join(sorted(FUNCTIONS) + sorted(ACTIVATION_CALLS))
        hint = _MATRIX_HINT if name in ("sum", "mean", "rowsum") else ""
        raise ExpressionError(f"unknown function {name!r}; known: {known}{hint}")
    if len(args) != 1:
        raise ExpressionError(f"{name} takes one argument, got {len(args)}")
    return fn(_convert(args[0]))


# ---------------------------------------------------------------------------- graph


def from_expr(expr, params=None, inputs=None, name: str | None = None) -> Model:
    """The computation graph of a scalar expression (a SymPy expression or text).

    ``params`` are the symbols to differentiate by (all of them by default); any other
    symbol is an input (a column of X in a generated kernel).

    >>> model = from_expr("J = 3*(a + b*c)")
    >>> [(node.name, node.expr) for node in model.nodes if not node.is_leaf]
    [('u', b*c), ('v', a + u), ('J', 3*v)]
    >>> model.derive().gradient("b", closed=True)
    3*c
    """
    source = expr.strip() if isinstance(expr, str) else None
    if isinstance(expr, str):
        parsed_name, expr = parse_expression(expr)
        name = name or parsed_name
    expr = sp.sympify(expr)
    if not isinstance(expr, sp.Expr) or not expr.free_symbols:
        raise ExpressionError(f"need an expression with at least one symbol, got {expr!r}")
    evaluated = expr.doit()
    if evaluated.has(sp.zoo, sp.nan, sp.oo, -sp.oo):  # x/0 is x*zoo to SymPy: no derivative
        raise ExpressionError(
            f"{source or str(expr)!r} is undefined: a division by zero or an infinity "
            f"(SymPy reads it as {evaluated})"
        )
    if evaluated.has(sp.I):  # sqrt(-1), log(-2): a complex cost has no real gradient
        raise ExpressionError(
            f"{source or str(expr)!r} is complex (SymPy reads it as {evaluated}); "
            "the cost must be real"
        )
    leaves = sorted(expr.free_symbols, key=lambda s: s.name)
    params, inputs = _split_leaves(leaves, params, inputs)
    builder = _GraphBuilder(_cost_name(name, leaves), {s.name for s in leaves})
    for symbol in leaves:
        builder.leaf(symbol, "param" if symbol in params else "input")
    if expr.is_Symbol:  # J = a: one node that copies its input
        expr = sp.Mul(1, expr, evaluate=False)
    cost = builder.node_for(expr, root=True)
    return Model("expr", "scalar", builder.nodes, cost, source=source)


def _cost_name(name: str | None, leaves) -> str:
    """``J`` unless the expression uses ``J`` itself; a name the user gave must be free."""
    taken = {s.name for s in leaves}
    if name is not None and name in taken:
        raise ExpressionError(
            f"the cost's name {name!r} is also a symbol of the expression; name the cost "
            f"otherwise, e.g. 'L = ...'"
        )
    return name or next(n for n in ("J", "L", "C", "E", "cost") if n not in taken)


def _split_leaves(leaves, params, inputs):
    by_name = {s.name: s for s in leaves}

    def resolve(items, what):
        out = []
        for item in items or []:
            key = item if isinstance(item, str) else getattr(item, "name", item)
            if key not in by_name:
                raise ExpressionError(
                    f"{what} {key!r} is not in the expression; it has {sorted(by_name)}"
                )
            out.append(by_name[key])
        return out

    params, inputs = resolve(params, "parameter"), resolve(inputs, "input")
    both = sorted(s.name for s in set(params) & set(inputs))
    if both:
        raise ExpressionError(f"{both[0]!r} is given as a parameter and as an input; pick one")
    if not params:
        params = [s for s in leaves if s not in inputs]
    if not params:
        raise ExpressionError("nothing to differentiate: every symbol is an input")
    return params, inputs


class _GraphBuilder:
    def __init__(self, root_name: str, taken: set[str]):
        self.root_name, self.taken = root_name, taken | {root_name}
        self.nodes: list[Node] = []
        self.by_expr: dict[sp.Expr, Node] = {}
        self.counter = 0

    def leaf(self, symbol: sp.Symbol, role: str) -> None:
        node = Node(symbol.name, role)
        self.nodes.append(node)
        self.by_expr[symbol] = node

    def fresh_name(self) -> str:
        while True:
            base = NODE_NAMES[self.counter % len(NODE_NAMES)]
            suffix = self.counter // len(NODE_NAMES)
            self.counter += 1
            name = base + (str(suffix) if suffix else "")
            if name not in self.taken and "d" + name not in self.taken:  # du is u's adjoint
                self.taken.add(name)
                return name

    def node_for(self, expr: sp.Expr, root: bool = False) -> Node:
        if expr in self.by_expr and not root:
            return self.by_expr[expr]
        args, parents = [], []
        for arg in expr.args:
            inner, arg_parents = self.operand(arg, expr)
            args.append(inner)
            parents += arg_parents
        name = self.root_name if root else self.fresh_name()
        node = self._make(name, expr, args, tuple(dict.fromkeys(parents)), root)
        self.nodes.append(node)
        self.by_expr.setdefault(expr, node)
        return node

    def operand(self, arg: sp.Expr, parent: sp.Expr) -> tuple[sp.Expr, list[Node]]:
        """An argument as it appears inside its parent node, and the nodes it reads.

        A number times something in a sum (``a - u``) and a reciprocal in a product (``a/u``)
        stay part of the parent's operation, as a person writes them."""
        if arg.is_Number:
            return arg, []
        if isinstance(parent, sp.Add) and isinstance(arg, sp.Mul):
            coeff, rest = arg.as_coeff_Mul()
            if coeff.is_Number and coeff != 1 and rest != 1:
                inner, parents = self.operand(rest, arg)
                return coeff * inner, parents
        if isinstance(parent, sp.Mul) and isinstance(arg, sp.Pow) and arg.exp == -1:
            inner, parents = self.operand(arg.base, arg)
            return 1 / inner, parents
        node = self.by_expr.get(arg) or self.node_for(arg)
        return node.symbol, [node]

    def _make(self, name, expr, args, parents, root) -> Node:
        role = "loss" if root else "hidden"
        if isinstance(expr, AppliedUndef) and expr.func.__name__ in ACTIVATION_CALLS:
            op = ActivationOp(expr.func.__name__, 0, [args[0]], [sp.Symbol(name, real=True)])
            return Node(name, role, op=op, parents=parents, expr=op.definition())
        body = expr.func(*args)
        return Node(name, role, op=Primitive.of(expr), parents=parents, expr=body)
