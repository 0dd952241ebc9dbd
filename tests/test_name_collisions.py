"""No name the toolkit generates (an adjoint ``dx``, a graph node ``u``, the cost ``J``, the
batch size ``m``, the kernel's ``X``, ``Y``, ``ones``, ``np`` and temporaries) can stand for a
user's symbol: each is renamed in the kernel or refused by name, never silently shared.
The oracle is SymPy's ``diff`` of the expression as parsed."""

import numpy as np
import pytest
import sympy as sp
from sympy.core.function import AppliedUndef

import derive
from derive import BackpropInputError, registry
from derive.expressions import parse_expression
from derive.graph import Node
from derive.model import Model
from derive.ops import Primitive
from numeric import codegen

GENERATED = [
    "dx", "du", "dv", "J", "L", "m", "ones", "np", "X", "Y", "params", "grads", "PARAMS",
    "loss", "forward", "_cse0", "_cse0_", "t", "u", "v", "x_pos", "x_max", "exp_x", "J_", "dJ",
]  # fmt: skip
TEMPLATES = ["J = x**2 + {n}**2 + x*{n}", "K = relu(x*{n}) + relu(x*{n})*{n} + exp(x - {n})"]


def _oracle(text: str) -> tuple[sp.Expr, list[sp.Symbol]]:
    """The expression with each activation call written out from its registry definition."""
    _, expr = parse_expression(text)
    expr = expr.doit().replace(
        lambda e: isinstance(e, AppliedUndef),
        lambda e: registry.ACTIVATIONS[e.func.__name__].scalar.xreplace({registry.x: e.args[0]}),
    )
    return expr, sorted(expr.free_symbols, key=lambda s: s.name)


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("name", GENERATED)
def test_a_user_symbol_named_like_generated_code_keeps_its_own_gradient(template, name):
    text = template.format(n=name)
    try:
        kernel = codegen(derive.from_expr(text).derive())
    except BackpropInputError as err:  # refusing is fine, if it names the symbol
        assert repr(name) in str(err)
        return
    expr, symbols = _oracle(text)
    values = dict(zip(symbols, np.random.default_rng(0).uniform(0.3, 1.2, len(symbols))))
    params = {s.name: np.array(v) for s, v in values.items()}
    cost, grads = kernel.loss_and_grads(params, np.zeros((3, 0)), np.zeros((3, 0)))
    assert cost == pytest.approx(float(expr.subs(values)), rel=1e-9)
    for symbol in symbols:
        want = float(sp.diff(expr, symbol).subs(values))
        assert grads[symbol.name] == pytest.approx(want, rel=1e-9), symbol.name


@pytest.mark.parametrize(
    "text, named",
    [("J = x**2 + dx**2", "'dx'"), ("J = J*x", "'J'"), ("J = a*da + a", "'da'")],
)
def test_a_collision_the_user_chose_is_refused_by_name(text, named):
    with pytest.raises(BackpropInputError, match=named):
        derive.from_expr(text)


def test_an_unnamed_cost_steps_aside_for_a_symbol_named_J():
    model = derive.from_expr("J*x")
    assert model.cost.name != "J"
    assert model.derive().gradient("J", expanded=True) == sp.Symbol("x", real=True)


def _hand_model(*names: str) -> Model:
    leaves = [Node(n, "param") for n in names]
    total = sp.Add(*[leaf.symbol for leaf in leaves])
    cost = Node("C", "loss", op=Primitive.of(total), parents=tuple(leaves), expr=total)
    return Model("expr", "scalar", [*leaves, cost], cost)


@pytest.mark.parametrize(
    "names, bad",
    [(("x", "dx"), "'dx'"), (("x", "x"), "'x'"), (("a\nb",), "'a\\\\nb'"), (('a"""',), 'a"""')],
)
def test_a_hand_built_model_with_clashing_or_bad_names_is_refused(names, bad):
    with pytest.raises(BackpropInputError, match=bad):
        _hand_model(*names)


@pytest.mark.parametrize("spec", ["logreg:3", "chain:3", "mlp:3-4-2", "mlp:2-3-1", "mlp:2-2-2"])
@pytest.mark.parametrize("level", ["scalar", "matrix"])
def test_no_builder_names_a_node_like_an_adjoint(spec, level):
    model = derive.build(spec, level=level)
    names = {node.name for node in model.nodes}
    adjoints = {step.adjoint.name for step in model.derive().steps if step.node is not model.cost}
    assert not names & adjoints
