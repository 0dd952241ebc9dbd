"""``backprop derive net.py`` on a tensor network: the layers, then each layer's backward
rules in reverse-sweep order. The printed rules are parsed back and compared, entry by entry
at small sizes, with SymPy's ``diff`` of each op's definition written out here in full."""

import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from reports.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
CONVNET = ROOT / "examples" / "mnist_convnet.py"

# A small net: a conv, a strided conv (whose input gradient is printed), a pool, flatten, dense.
SMALL = """
from derive import network
from derive.layers import Conv2D, Dense, Flatten, MaxPool2D

model = network((5, 5, 2), [Conv2D(3, 2, "tanh"), Conv2D(2, 2, stride=2), MaxPool2D(1),
                            Flatten(), Dense(2, "softmax")], "cce")
"""
# conv 1: 5×5×2 → 4×4×3; conv 2 (stride 2): 4×4×3 → 2×2×2; pool 1: 2×2×2; flatten: 8.


def _derive(capsys, path) -> str:
    assert main(["derive", str(path)]) == 0
    return capsys.readouterr().out


@pytest.fixture
def small(tmp_path, capsys) -> str:
    path = tmp_path / "small_net.py"
    path.write_text(SMALL)
    return _derive(capsys, path)


def _block(out: str, k: int) -> str:
    """The text of layer ``k``'s part of the backward pass."""
    match = re.search(rf"^Layer {k}, .*?(?=^Layer |\Z)", out, re.M | re.S)
    assert match, f"no layer {k} in\n{out}"
    return match[0]


def _rule_line(block: str, target: str) -> str:
    (line,) = [ln.strip() for ln in block.splitlines() if ln.strip().startswith(f"{target}[")]
    return line


def _named_line(block: str, target: str) -> str:
    """The named form printed (``= ...``) under the rule for ``target``, with its target."""
    lines = [ln.strip() for ln in block.splitlines()]
    (k,) = [i for i, ln in enumerate(lines) if ln.startswith(f"{target}[")]
    assert lines[k + 1].startswith("= "), lines[k + 1]
    return lines[k].split(" = ", 1)[0] + " " + lines[k + 1]


def _parse(line: str, arrays: dict):
    """``target[idx] = Σ_{i<hi, ...} body  [lo ≤ e ≤ hi]...`` into SymPy pieces."""
    match = re.fullmatch(r"(\w+)\[(.*?)\] = (?:Σ_\{(.*?)\} )?(.*?)((?:  \[[^\]]*\])*)", line)
    assert match, line
    names = dict(arrays)
    indices = [sp.Symbol(s.strip()) for s in match[2].split(",")]
    limits = []
    for part in (match[3] or "").split(", ") if match[3] else []:
        index, bound = part.split("<")
        limits.append((sp.Symbol(index), parse_expr(bound)))
    body = parse_expr(match[4], local_dict=names)
    support = [
        tuple(parse_expr(side, local_dict=names) for side in cond.split(" ≤ "))
        for cond in re.findall(r"\[([^\]]*)\]", match[5])
    ]
    return indices, limits, body, support


def _value(parsed, entry: tuple, sizes: dict) -> sp.Expr:
    """The printed rule at one entry: its sum spelled out at ``sizes``."""
    indices, limits, body, support = parsed
    fixed = {sp.Symbol(name): value for name, value in sizes.items()}
    fixed.update(dict(zip(indices, entry)))
    ranges = [range(int(bound.subs(fixed))) for _, bound in limits]
    total = sp.Integer(0)
    for point in itertools.product(*ranges):
        at = fixed | {index: v for (index, _), v in zip(limits, point)}
        if all(lo.subs(at) <= e.subs(at) <= hi.subs(at) for lo, e, hi in support):
            total += body.subs(at)
    return total


def _conv_cost(X, K, b, dZ, m, size, kernel, s, c_in, c_out):
    """``L = Σ dZ[n,h,w,o] Z[n,h,w,o]`` with ``Z = Σ_{i,j,c} X[n,s h+i,s w+j,c] K[i,j,c,o] + b[o]``,
    every sum written out."""
    out = (size - kernel) // s + 1
    total = 0
    for n, h, w, o in itertools.product(range(m), range(out), range(out), range(c_out)):
        z = b[o] + sum(
            X[n, s * h + i, s * w + j, c] * K[i, j, c, o]
            for i, j, c in itertools.product(range(kernel), range(kernel), range(c_in))
        )
        total += dZ[n, h, w, o] * z
    return total, out


def test_derive_prints_the_layers_then_the_sweep_from_the_cost_back(small):
    lines = small.splitlines()
    for shapes in ("(5, 5, 2) -> (4, 4, 3)", "(4, 4, 3) -> (2, 2, 2)", "(2, 2, 2) -> (8,)"):
        assert any(shapes in line for line in lines), shapes
    assert any("W1 (2, 2, 2, 3), b1 (3,)" in line for line in lines)
    assert any("W5 (8, 2), b5 (2,)" in line for line in lines)
    headers = [int(h) for h in re.findall(r"^Layer (\d+), ", small, re.M)]
    assert headers == [5, 4, 3, 2, 1]
    assert "dX[" not in small  # the input needs no gradient
    assert "dZ5 = (A5 - Y)/m" in _block(small, 5)  # softmax with cce, over the batch


@pytest.mark.parametrize("k, inputs, size, s, c_in, c_out", [(1, "X", 5, 1, 2, 3),
                                                             (2, "A1", 4, 2, 3, 2)])  # fmt: skip
def test_conv_gradients_as_printed_equal_sympy_diff_of_the_definition(
    small, k, inputs, size, s, c_in, c_out
):
    X, K, b, dZ = (sp.IndexedBase(name) for name in ("X", "K", "b", "dZ"))
    m, kernel = 1, 2
    cost, out = _conv_cost(X, K, b, dZ, m, size, kernel, s, c_in, c_out)
    arrays = {inputs: X, f"W{k}": K, f"b{k}": b, f"dZ{k}": dZ}
    sizes = {"m": m, "k_h": kernel, "k_w": kernel, "s": s, "C_in": c_in, "C_out": c_out,
             "H": size, "W": size, "H_o": out, "W_o": out}  # fmt: skip
    block = _block(small, k)
    dK = _parse(_rule_line(block, f"dW{k}"), arrays)
    for entry in itertools.product(range(kernel), range(kernel), range(c_in), range(c_out)):
        assert sp.expand(_value(dK, entry, sizes) - sp.diff(cost, K[entry])) == 0
    db = _parse(_rule_line(block, f"db{k}"), arrays)
    for o in range(c_out):
        assert sp.expand(_value(db, (o,), sizes) - sp.diff(cost, b[o])) == 0
    if k == 1:
        return
    dX = _parse(_rule_line(block, f"d{inputs}"), arrays)
    full = _parse(_named_line(block, f"d{inputs}"), arrays | {f"dZ{k}_full": sp.IndexedBase("F")})
    for entry in itertools.product(range(m), range(size), range(size), range(c_in)):
        expected = sp.diff(cost, X[entry])
        assert sp.expand(_value(dX, entry, sizes) - expected) == 0
        named = _value(full, entry, sizes).replace(
            lambda e: isinstance(e, sp.Indexed) and e.base.label.name == "F",
            lambda e: _dilated_padded(dZ, e.indices, kernel, s, out),
        )
        assert sp.expand(named - expected) == 0, entry


def _dilated_padded(dZ, index, kernel, s, out):
    """``dZ_full``: dZ with ``s - 1`` zeros between entries and ``kernel - 1`` around."""
    n, y, x, o = index
    y, x = y - (kernel - 1), x - (kernel - 1)
    if y % s or x % s or not (0 <= y // s < out and 0 <= x // s < out):
        return 0
    return dZ[n, y // s, x // s, o]


def test_dense_gradients_as_printed_equal_sympy_diff(small):
    A, W, b, dZ = (sp.IndexedBase(name) for name in ("A", "W", "b", "dZ"))
    m, d, units = 2, 8, 2
    cost = sum(
        dZ[n, k] * (b[k] + sum(A[n, e] * W[e, k] for e in range(d)))
        for n, k in itertools.product(range(m), range(units))
    )
    arrays = {"A4": A, "W5": W, "b5": b, "dZ5": dZ}
    sizes = {"m": m, "d": d, "d_k": units}
    block = _block(small, 5)
    dW, dA = (_parse(_rule_line(block, name), arrays) for name in ("dW5", "dA4"))
    for p, q in itertools.product(range(d), range(units)):
        assert sp.expand(_value(dW, (p, q), sizes) - sp.diff(cost, W[p, q])) == 0
    for p, q in itertools.product(range(m), range(d)):
        assert sp.expand(_value(dA, (p, q), sizes) - sp.diff(cost, A[p, q])) == 0


def test_average_pool_and_flatten_as_printed_equal_sympy_diff(tmp_path, capsys):
    path = tmp_path / "pool.py"
    path.write_text(
        "from derive import network\n"
        "from derive.layers import AvgPool2D, Dense, Dropout, Flatten\n"
        "model = network((5, 5, 2), [Dropout(0.5), AvgPool2D(2), Flatten(), Dense(2, 'softmax')],"
        " 'cce')\n"
    )
    out = _derive(capsys, path)
    X, dZ = sp.IndexedBase("X"), sp.IndexedBase("dZ")
    m, size, s, c = 1, 5, 2, 2
    # the average pool written out: a 5×5 map holds two whole 2×2 windows a side (Keras crops)
    cost = sum(
        dZ[n, h, w, ch]
        * sum(X[n, s * h + i, s * w + j, ch] for i in range(s) for j in range(s))
        / s**2
        for n, h, w, ch in itertools.product(range(m), range(2), range(2), range(c))
    )
    sizes = {"m": m, "s": s, "H": size, "W": size, "H_o": 2, "W_o": 2, "C_in": c}
    block = _block(out, 2)
    arrays = {"A1": X, "dA2": dZ, "R2": sp.IndexedBase("R")}
    derived = _parse(_rule_line(block, "dA1"), arrays)
    named = _parse(_named_line(block, "dA1"), arrays)
    for entry in itertools.product(range(m), range(size), range(size), range(c)):
        expected = sp.diff(cost, X[entry])
        at = _value(derived, entry, sizes).replace(
            lambda e: isinstance(e, sp.Indexed) and e.base.label.name == "R",
            lambda e: sp.Rational(1, s**2),
        )
        assert sp.expand(at - expected) == 0, entry
        if max(entry[1:3]) < 2 * s:  # in a whole window: the named form holds
            assert sp.expand(_value(named, entry, sizes) - expected) == 0, entry
    # flatten, row-major as NumPy's reshape: Z[n, (h W + w) C + c] = X[n, h, w, c]
    flat = sum(
        dZ[0, (h * 2 + w) * c + ch] * X[0, h, w, ch]
        for h, w, ch in itertools.product(range(2), range(2), range(c))
    )
    rule = _parse(_rule_line(_block(out, 3), "dA2"), {"A2": X, "dA3": dZ})
    for entry in itertools.product(range(1), range(2), range(2), range(c)):
        assert _value(rule, entry, {"H": 2, "W": 2, "C_in": c}) == sp.diff(flat, X[entry])


def _max_pool_net(tmp_path, capsys) -> str:
    """The printed forward and backward rules of a MaxPool2D(2) on a 5×5×2 map (a Dropout
    before it, so its input gradient is printed)."""
    path = tmp_path / "max_pool.py"
    path.write_text(
        "from derive import network\n"
        "from derive.layers import Dense, Dropout, Flatten, MaxPool2D\n"
        "model = network((5, 5, 2), [Dropout(0.5), MaxPool2D(2), Flatten(), Dense(2, 'softmax')],"
        " 'cce')\n"
    )
    return _block(_derive(capsys, path), 2)


def _with_indicator(expr, indicator: dict, values: dict):
    """``expr`` with each ``R[entry]`` read from ``indicator`` and ``X`` at ``values``."""
    expr = expr.replace(
        lambda e: isinstance(e, sp.Indexed) and e.base.label.name == "R",
        lambda e: indicator[tuple(int(i) for i in e.indices)],
    )
    return expr.xreplace(values)


def test_max_pool_as_printed_equals_sympy_diff_of_max_at_a_point_with_no_ties(tmp_path, capsys):
    block = _max_pool_net(tmp_path, capsys)
    X, dZ = sp.IndexedBase("X"), sp.IndexedBase("dZ")
    m, size, s, c, out = 1, 5, 2, 2, 2  # a 5×5 map holds two whole 2×2 windows a side
    windows = {
        (n, h, w, ch): [(n, s * h + i, s * w + j, ch) for i in range(s) for j in range(s)]
        for n, h, w, ch in itertools.product(range(m), range(out), range(out), range(c))
    }
    # the max pool written out with SymPy's Max; its diff is a Heaviside of each entry
    # against the window's other entries
    cost = sum(dZ[key] * sp.Max(*(X[e] for e in entries)) for key, entries in windows.items())
    entries = list(itertools.product(range(m), range(size), range(size), range(c)))
    rng = np.random.default_rng(3)  # distinct integers: no ties, every Heaviside is 0 or 1
    values = {X[e]: sp.Integer(int(v)) for e, v in zip(entries, rng.permutation(len(entries)))}
    # R as the printed note defines it: 1 at each window's arg-max, else 0
    arg_max = dict.fromkeys(entries, 0)
    arg_min = dict.fromkeys(entries, 0)  # a deliberately wrong R: the arg-min
    for window in windows.values():
        arg_max[max(window, key=lambda e: values[X[e]])] = 1
        arg_min[min(window, key=lambda e: values[X[e]])] = 1
    sizes = {"m": m, "s": s, "H": size, "W": size, "H_o": out, "W_o": out, "C_in": c}
    arrays = {"A1": X, "dA2": dZ, "R2": sp.IndexedBase("R")}
    forward = _parse(_rule_line(block, "A2"), arrays)
    for key, window in windows.items():
        pooled = _with_indicator(_value(forward, key, sizes), arg_max, values)
        assert pooled == max(values[X[e]] for e in window), key
    derived = _parse(_rule_line(block, "dA1"), arrays)
    named = _parse(_named_line(block, "dA1"), arrays)
    wrong = []
    for entry in entries:
        expected = sp.diff(cost, X[entry]).xreplace(values)
        assert not expected.has(sp.Heaviside), expected  # no tie left it undecided
        at = _with_indicator(_value(derived, entry, sizes), arg_max, values)
        assert sp.expand(at - expected) == 0, entry
        if max(entry[1:3]) < out * s:  # in a whole window: the named form holds
            at = _with_indicator(_value(named, entry, sizes), arg_max, values)
            assert sp.expand(at - expected) == 0, entry
        at_min = _with_indicator(_value(derived, entry, sizes), arg_min, values)
        wrong.append(sp.expand(at_min - expected) != 0)
    assert any(wrong)  # the comparison tells the arg-max from the arg-min


def test_the_convnet_example_derives_every_layer_fast_and_once(capsys, tmp_path):
    out = _derive(capsys, CONVNET)
    assert main(["derive", str(CONVNET), "-o", str(tmp_path / "convnet.txt")]) == 0
    assert (tmp_path / "convnet.txt").read_text(encoding="utf-8") == out
    # by hand: 28 - 3 + 1 = 26, pooled 13, 13 - 3 + 1 = 11, pooled (floor) 5, 5·5·64 = 1600
    for shapes in ("(28, 28, 1) -> (26, 26, 32)", "(13, 13, 32) -> (11, 11, 64)",
                   "(11, 11, 64) -> (5, 5, 64)", "(5, 5, 64) -> (1600,)"):  # fmt: skip
        assert shapes in out
    assert [int(h) for h in re.findall(r"^Layer (\d+), ", out, re.M)] == [7, 6, 5, 4, 3, 2, 1]
    pool = _rule_line(_block(out, 4), "dA3")
    assert "[0 ≤ -h*s + q ≤ s - 1]" in pool  # SymPy's rule: the windows that hold (q, r)
    assert "dA4[p, floor(q/s), floor(r/s), v]" in _named_line(_block(out, 4), "dA3")
    code = (
        "import runpy, time\n"
        "from derive import tensor_ops\n"
        "from reports.cli.tensor_plain import render\n"
        f"net = runpy.run_path({str(CONVNET)!r})['model']\n"
        "start = time.perf_counter(); render(net); took = time.perf_counter() - start\n"
        "print(took, tensor_ops.convolution.cache_info().misses)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    took, misses = run.stdout.split()
    assert float(took) < 2.0, run.stdout  # a fresh process: every rule derived here
    assert misses == "1"  # two conv layers, one derivation


def _attention_block(tmp_path, capsys, shape) -> str:
    """The printed backward rules of a SelfAttention(2) layer on sequences of ``shape``."""
    path = tmp_path / "attention.py"
    path.write_text(
        "from derive import network\n"
        "from derive.layers import Dense, Dropout, MeanOverTime, SelfAttention\n"
        f"model = network({shape}, [Dropout(0.5), SelfAttention(2), MeanOverTime(),\n"
        "                         Dense(2, 'softmax')], 'cce')\n"
    )
    return _block(_derive(capsys, path), 2)


def test_attention_prints_the_softmax_row_rule_and_the_three_branches(tmp_path, capsys):
    block = _attention_block(tmp_path, capsys, (4, 3))
    rows = _rule_line(block, "dS2").split(" = ", 1)[1]
    # the independent route: softmax written out for a row of 3, differentiated by SymPy
    S, dP = sp.symbols("S0:3"), sp.symbols("dP0:3")
    P = [sp.exp(s) / sum(map(sp.exp, S)) for s in S]
    expected = sp.diff(sum(g * p for g, p in zip(dP, P)), S[1])
    rows = re.sub(r"Σ_\{(\w+)<(\w+)\} (.*)$", r"Sum(\3, (\1, 0, \2 - 1))", rows)  # to the end
    printed = parse_expr(
        rows, local_dict={"P2": sp.IndexedBase("P"), "dP2": sp.IndexedBase("G"), "T": 3}
    )
    printed = printed.subs(sp.Symbol("l"), 1).doit()
    printed = printed.replace(
        lambda e: isinstance(e, sp.Indexed),
        lambda e: (P if e.base.label.name == "P" else dP)[int(e.indices[0])],
    )
    assert sp.simplify(printed - expected) == 0
    assert "three branches add" in block and "dA1[" in block


def test_attention_products_as_printed_equal_sympy_diff(tmp_path, capsys):
    block = _attention_block(tmp_path, capsys, (3, 2))
    n_, t_, d_, dk = 1, 3, 2, 2
    sizes = {"m": n_, "T": t_, "d": d_, "d_k": dk}
    seq = list(itertools.product(range(n_), range(t_)))
    Q, K, dS = (sp.IndexedBase(name) for name in ("Q", "K", "dS"))
    # S = Q Kᵀ/√d_k, per example, written out
    scores = sum(
        dS[n, t, u] * sum(Q[n, t, k] * K[n, u, k] for k in range(dk)) / sp.sqrt(dk)
        for (n, t), u in itertools.product(seq, range(t_))
    )
    arrays = {"Q2": Q, "K2": K, "dS2": dS}
    dQ, dK = (_parse(_rule_line(block, name), arrays) for name in ("dQ2", "dK2"))
    for entry in itertools.product(range(n_), range(t_), range(dk)):
        assert sp.expand(_value(dQ, entry, sizes) - sp.diff(scores, Q[entry])) == 0
        assert sp.expand(_value(dK, entry, sizes) - sp.diff(scores, K[entry])) == 0
    # X feeds Q = X Wq, K = X Wk and V = X Wv: its gradient sums the three branches
    X = sp.IndexedBase("X")
    grads = {part: sp.IndexedBase(f"d{part}") for part in "QKV"}
    weights = {part: sp.IndexedBase(f"W{part}") for part in "QKV"}
    products = sum(
        grads[part][n, t, k] * sum(X[n, t, e] * weights[part][e, k] for e in range(d_))
        for part in "QKV"
        for (n, t), k in itertools.product(seq, range(dk))
    )
    arrays = {"A1": X} | {f"d{part}2": grads[part] for part in "QKV"}
    arrays |= {f"W{part.lower()}2": weights[part] for part in "QKV"}
    dX = _parse(_rule_line(block, "dA1"), arrays)
    for entry in itertools.product(range(n_), range(t_), range(d_)):
        assert sp.expand(_value(dX, entry, sizes) - sp.diff(products, X[entry])) == 0
    dWq = _parse(_rule_line(block, "dWq2"), arrays)
    for entry in itertools.product(range(d_), range(dk)):
        expected = sp.diff(products, weights["Q"][entry])
        assert sp.expand(_value(dWq, entry, sizes) - expected) == 0


def test_a_bad_tensor_file_and_train_are_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from derive import network\nfrom derive.layers import Conv2D, Dense, Flatten\n"
        "model = network((2, 2, 1), [Conv2D(1, 3), Flatten(), Dense(1, 'sigmoid')], 'bce')\n"
    )
    assert main(["derive", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.py, line 3" in err and "kernel" in err
    assert main(["train", str(CONVNET)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(images (28, 28, 1) with 10 output(s)); give --data" in err
