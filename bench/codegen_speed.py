"""Speed of generated kernels against the GEMM-only floor, hand-written NumPy, JAX and torch.

    python -m bench.codegen_speed                 # the full table (a few minutes)
    python -m bench.codegen_speed --quick         # fewer rounds
    python -m bench.codegen_speed --threads 2     # pin 2 BLAS/XLA threads instead of 1
    python -m bench.codegen_speed --clock cpu     # CPU time: steadier on a loaded machine
    python -m bench.codegen_speed --only tanh --lines   # and where the generated kernel's time goes

Everything is measured in ONE process with the thread counts pinned before NumPy, JAX and
torch are imported (the pins are printed; torch also gets ``torch.set_num_threads``).
Variants are interleaved: each round runs every variant once, in a shuffled order, and a
variant's ratio is the median over rounds of its time divided by the floor's time *in the
same round*, so drifts of a shared machine cancel;
``quartiles`` are those of the per-round ratios.

* ``floor``       just the matrix products the pass needs (``bench.baselines``);
* ``jax-floor``   the same products under ``jax.jit``: XLA's matrix products, not OpenBLAS's
                  (below 1 where JAX's floor is lower than NumPy's);
* ``generated``   ``numeric.codegen`` NumPy kernel, ``loss_and_grads``;
* ``gen-out``     the same, writing the gradients into arrays kept between calls (``out=``,
                  as ``numeric.train`` does);
* ``numpy``       hand-written NumPy backprop (``bench.baselines``);
* ``jax``         ``jax.jit(jax.value_and_grad(cost))`` of a forward written in jax.numpy;
* ``gen-jax``     the generated kernel with ``target="jax"`` (compiled with ``jax.jit``);
* ``torch``       the same forward in ``torch`` (CPU, eager), then ``loss.backward()``
                  (skipped, with a note, when torch is not installed: ``pip install .[bench]``).

``faults`` is minor page faults per call: NumPy code that allocates more than glibc keeps
between calls gets fresh pages from the kernel every call (expensive in a VM), so the
allocator's state, and thus what ran before in the process, shows in the times. Run alone
(``--only``), the residual MLP's generated kernel faulted 9 (float32) and 143 (float64)
pages per call, 0 in the full table; in a process that runs nothing but the kernel, as a
training loop does, its eight 256 kB float32 ``dW`` faulted 64 pages each and the pass took
1.36x the floor (1.07x once a 30 MB array had been freed). Compare like runs.

Before timing, every variant's loss and gradients are checked against the generated ones.

``--lines`` then times the generated ``loss_and_grads`` statement by statement (a clock read
between statements, ~0.1 µs): the share of its matrix products, and of the other lines,
each line taken over all layers (``Z# += b#``): where the time over the floor goes.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time

from bench import pin_threads


def _args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="BLAS/XLA threads (pinned)")
    p.add_argument("--quick", action="store_true", help="fewer rounds (a rough table)")
    p.add_argument("--seconds", type=float, default=6.0, help="time budget per case")
    p.add_argument("--only", default="", help="run cases whose name contains this text")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time (default), or the process's CPU time: on a loaded machine "
                        "it leaves out the time other processes hold the core")  # fmt: skip
    p.add_argument("--lines", type=int, nargs="?", const=15, default=0, metavar="N",
                   help="also the N costliest non-GEMM lines of each generated kernel")  # fmt: skip
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _args(argv)
    pins = pin_threads(args.threads)

    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    import derive
    from bench import baselines
    from numeric import codegen

    torch = _torch(args.threads)
    print("thread pins:", ", ".join(f"{k}={v}" for k, v in pins.items()))
    other = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_") and k not in pins}
    if other:
        print("also set:", ", ".join(f"{k}={v}" for k, v in sorted(other.items())))
    blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
    print(f"numpy {np.__version__} ({blas['name']} {blas.get('version', '')}, kernels: "
          f"{_openblas_core(np)}), jax {jax.__version__}, "
          + (f"torch {torch.__version__} ({torch.get_num_threads()} thread)" if torch else
             "torch not installed (pip install .[bench]): no torch column"))  # fmt: skip
    print(f"cpu count {os.cpu_count()}; {args.clock} clock; machine shared: read ratios, "
          "not absolute times\n")  # fmt: skip

    cases = _cases(derive)
    cases = [c for c in cases if args.only in c["name"]]
    budget = args.seconds / (3 if args.quick else 1)
    rows = []
    for case in cases:
        rows += _run_case(case, budget, np, jax, torch, baselines, codegen, CLOCKS[args.clock])
        if args.lines:
            _line_shares(case, codegen, np, args.lines)
    _print_table(rows)
    _codegen_time(derive, codegen)
    return 0


def _torch(threads: int):
    """torch pinned to ``threads`` threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    return torch


def _openblas_core(np) -> str:
    """The OpenBLAS kernel family in use (OPENBLAS_CORETYPE may force one)."""
    import ctypes
    import glob

    for lib in glob.glob(os.path.join(os.path.dirname(np.__path__[0]), "numpy.libs", "*openblas*")):
        for symbol in ("scipy_openblas_get_corename64_", "openblas_get_corename64_"):
            try:
                get = getattr(ctypes.CDLL(lib), symbol)
            except (AttributeError, OSError):
                continue
            get.restype = ctypes.c_char_p
            return get().decode()
    return "unknown"


def _cases(derive) -> list[dict]:
    def mlp784():
        return derive.mlp([784, 512, 10], activation="relu")

    def logreg():
        return derive.logistic_regression(100, level="matrix")

    def tanh10():
        return derive.mlp([64] * 11, activation="tanh", output="tanh", loss="mse")

    def resmlp():
        from derive.layers import Dense, Residual

        blocks = [Residual(Dense(256, "relu"), Dense(256)) for _ in range(4)]
        return derive.network(256, [*blocks, Dense(10, "softmax")], "cce")

    out = []
    for batch in (128, 1024):
        for dtype in ("float32", "float64"):
            out.append(dict(name=f"MLP 784-512-10 relu+softmax-CE, m={batch}, {dtype}",
                            kind="mlp_relu_softmax_ce", build=mlp784, batch=batch,
                            dtype=dtype, target=1.05))  # fmt: skip
    for dtype in ("float64", "float32"):
        out.append(dict(name=f"logistic regression d=100, m=1024, {dtype}", kind="logreg",
                        build=logreg, batch=1024, dtype=dtype, target=2.0))  # fmt: skip
    for dtype in ("float64", "float32"):
        out.append(dict(name=f"10 tanh layers of 64 + MSE, m=256, {dtype}", kind="mlp_tanh_mse",
                        build=tanh10, batch=256, dtype=dtype, target=1.20))  # fmt: skip
    for dtype in ("float32", "float64"):
        out.append(dict(name=f"residual MLP 4 blocks of 256, m=128, {dtype}",
                        kind="resmlp", build=resmlp, batch=128, dtype=dtype,
                        target=1.10))  # fmt: skip
    return out


def _data(case, kernel, np):
    rng = np.random.default_rng(1)
    dtype = case["dtype"]
    params = kernel.random_params(seed=2, dtype=dtype)
    n_in = next(iter(params.values())).shape[0]
    X = rng.standard_normal((case["batch"], n_in)).astype(dtype)
    if case["kind"] == "logreg":
        Y = (rng.random(case["batch"]) < 0.5).astype(dtype)
    elif case["kind"] in ("mlp_relu_softmax_ce", "resmlp"):
        Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, case["batch"])]
    else:
        Y = np.tanh(rng.standard_normal((case["batch"], 64))).astype(dtype)
    return params, X, Y


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _run_case(case, budget, np, jax, torch, baselines, codegen, clock) -> list[dict]:
    import random

    kind = case["kind"]
    derivation = case["build"]().derive()
    kernel = codegen(derivation)
    jax_kernel = codegen(derivation, target="jax")
    params, X, Y = _data(case, kernel, np)
    jparams = {k: jax.device_put(v) for k, v in params.items()}
    jX, jY = jax.device_put(X), jax.device_put(Y)
    jax_fn = baselines.jax_value_and_grad(baselines.JAX[kind])
    gen_jax = jax_kernel.module._loss_and_grads

    out = {name: np.empty_like(value) for name, value in params.items()}
    variants = {
        "floor": baselines.numpy_floor(kind, params, X),
        "jax-floor": baselines.jax_floor(kind, params, X),
        "generated": lambda: kernel.loss_and_grads(params, X, Y),
        "gen-out": lambda: kernel.loss_and_grads(params, X, Y, out=out),
        "numpy": lambda: baselines.NUMPY[kind](params, X, Y),
        "jax": lambda: jax.block_until_ready(jax_fn(jparams, jX, jY)),
        "gen-jax": lambda: jax.block_until_ready(gen_jax(jparams, jX, jY)),
    }
    if torch is not None:
        variants["torch"] = baselines.torch_value_and_grad(baselines.TORCH[kind], params, X, Y)
    others = {
        "numpy": lambda: baselines.NUMPY[kind](params, X, Y),
        "jax": lambda: jax_fn(jparams, jX, jY),
        "gen-jax": lambda: gen_jax(jparams, jX, jY),
        "torch": variants.get("torch"),
    }
    _check_agreement(kernel.loss_and_grads(params, X, Y), others, X.dtype, np)

    for fn in variants.values():  # warm up: compile, fault in pages, fill caches
        for _ in range(3):
            fn()
    one = {}
    for name, fn in variants.items():
        start = clock()
        fn()
        one[name] = clock() - start
    inner = {name: max(1, int(2e-3 / max(t, 1e-7))) for name, t in one.items()}
    per_round = sum(one[n] * inner[n] for n in variants)
    rounds = max(15, min(400, int(budget / max(per_round, 1e-6))))

    order = list(variants)
    rng = random.Random(0)
    times = {name: [] for name in variants}
    faults = {name: 0 for name in variants}
    calls = {name: 0 for name in variants}
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            fn, n = variants[name], inner[name]
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = clock()
            for _ in range(n):
                fn()
            times[name].append((clock() - start) / n)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
            calls[name] += n

    floor = times["floor"]
    rows = []
    for name in variants:
        q1, ratio, q3 = statistics.quantiles([t / f for t, f in zip(times[name], floor)], n=4)
        rows.append(dict(case=case["name"], variant=name, median=statistics.median(times[name]),
                         ratio=ratio, quartiles=(q1, q3), rounds=rounds, target=case["target"],
                         faults=faults[name] / calls[name]))  # fmt: skip
    return rows


def _line_shares(case, codegen, np, top: int, calls: int = 300) -> None:
    """Where the generated ``loss_and_grads`` spends its time: each statement's median over
    ``calls`` calls (wall clock), the matrix products' share of the sum, and the ``top``
    other lines, each taken over every layer (``Z# += b#``), with their shares."""
    import ast

    kernel = codegen(case["build"]().derive())
    params, X, Y = _data(case, kernel, np)
    tree = ast.parse(kernel.source)
    function = next(n for n in tree.body if getattr(n, "name", "") == "loss_and_grads")
    body = [s for s in function.body[1:] if not isinstance(s, ast.Return)]  # no docstring
    tick = ast.parse("_ticks.append(_clock())").body[0]
    function.body = [tick] + [t for s in body for t in (s, tick)] + function.body[-1:]
    ticks: list[float] = []
    namespace = {"_ticks": ticks, "_clock": time.perf_counter}
    exec(compile(ast.fix_missing_locations(tree), "<generated kernel>", "exec"), namespace)
    per_call = []
    for _ in range(calls):
        ticks.clear()
        namespace["loss_and_grads"](params, X, Y)
        per_call.append(np.diff(ticks))
    medians = np.median(per_call, axis=0)
    total = medians.sum()
    lines = [ast.get_source_segment(kernel.source, s).splitlines()[0] for s in body]
    products = [k for k, line in enumerate(lines) if " @ " in line or "np.matmul(" in line]
    print(f"{case['name']}: generated kernel line by line, sum of medians {_fmt(total)}; "
          f"matrix products (GEMMs, 1ᵀ dZ) {100 * medians[products].sum() / total:.1f} %, "
          "then the costliest other lines:")  # fmt: skip
    groups: dict[str, list[float]] = {}
    for k, line in enumerate(lines):
        if k not in products:
            groups.setdefault(re.sub(r"(?<=[A-Za-z_])\d+", "#", line), []).append(medians[k])
    for line, times in sorted(groups.items(), key=lambda g: -sum(g[1]))[:top]:
        each = _fmt(float(np.median(times)))
        print(f"  {100 * sum(times) / total:5.1f} %  {len(times):>3} x {each:>9}  {line}")
    print()


def _check_agreement(generated, others, dtype, np):
    """Every variant computes the same loss and gradients as the generated kernel (up to
    rounding of the dtype); ``others`` maps a variant's name to a call returning its pair."""
    loss, grads = generated
    tol = 1e-4 if dtype == np.float32 else 1e-9
    for name, call in others.items():
        if call is None:
            continue
        other_loss, other_grads = call()
        scale = max(1.0, abs(loss))
        assert abs(float(other_loss) - loss) <= tol * scale, (name, float(other_loss), loss)
        for key, g in grads.items():
            other = np.asarray(other_grads[key])
            bound = tol * max(1.0, float(np.max(np.abs(g))))
            assert other.shape == g.shape and np.max(np.abs(other - g)) <= bound, (name, key)


def _print_table(rows) -> None:
    by_case: dict[str, dict] = {}
    for row in rows:
        by_case.setdefault(row["case"], {})[row["variant"]] = row
    header = (
        f"{'case':<48} {'variant':<10} {'median':>10} {'x floor':>8} {'quartiles':>13} "
        f"{'target':>7} {'faults':>7}"
    )
    print(header)
    print("-" * len(header))
    for case, variants in by_case.items():
        for name, row in variants.items():
            target = f"<={row['target']:.2f}" if name == "generated" else ""
            quartiles = "{:.3f}-{:.3f}".format(*row["quartiles"])
            print(f"{case:<48} {name:<10} {_fmt(row['median']):>10} {row['ratio']:>8.3f} "
                  f"{quartiles:>13} {target:>7} {row['faults']:>7.0f}")  # fmt: skip
        gen = variants["generated"]["ratio"]
        verdict = "met" if gen <= variants["generated"]["target"] else "NOT met"
        vs = ", ".join(
            f"{gen / variants[n]['ratio']:.2f}x {n}"
            for n in ("numpy", "jax", "torch")
            if n in variants
        )
        rounds = variants["generated"]["rounds"]
        print(f"{'':<48} generated: target {verdict}; {vs}; {rounds} rounds")
        print()


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


_COLD = """
import time
import derive
from numeric import codegen
start = time.perf_counter()
derivation = derive.mlp([784, 512, 10], activation="relu").derive()
derived = time.perf_counter()
kernel = codegen(derivation)
generated = time.perf_counter()
kernel.module
loaded = time.perf_counter()
print(derived - start, generated - derived, loaded - generated)
"""


def _codegen_time(derive, codegen) -> None:
    """Derivation, codegen and import of the 784-512-10 kernel in a fresh interpreter (cold
    caches; importing SymPy, NumPy and the toolkit itself not counted), then warm."""
    print("codegen + import, MLP 784-512-10 (relu, softmax, cce), matrix level:")
    cold = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True)
    derived, generated, loaded = map(float, cold.stdout.split())
    print(f"  cold   derive {derived:.3f} s, codegen {generated:.3f} s, import {loaded:.4f} s; "
          f"codegen + import {generated + loaded:.3f} s (target < 1 s)")  # fmt: skip
    start = time.perf_counter()
    derivation = derive.mlp([784, 512, 10], activation="relu").derive()
    derived = time.perf_counter()
    kernel = codegen(derivation)
    generated = time.perf_counter()
    kernel.module  # noqa: B018  (loading the module is what is timed)
    loaded = time.perf_counter()
    print(f"  warm   derive {derived - start:.3f} s, codegen {generated - derived:.3f} s, "
          f"import {loaded - generated:.4f} s; "
          f"codegen + import {loaded - derived:.3f} s")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
