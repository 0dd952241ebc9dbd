"""How the derivation scales, against SymPy's per-parameter ``diff`` measured in the same run.

    python -m bench.derive_scale            # the full run (SymPy baselines capped at --cap s)
    python -m bench.derive_scale --quick    # small sizes only

Our sweep visits each node once and keeps adjoints as named intermediates, so its work and
its total operation count grow linearly with depth. The baseline differentiates the expanded
cost once per parameter, as a reader would with ``sympy.diff``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue as queue_module
import statistics
import sys
import threading
import time

import sympy as sp

import derive


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def ours(build) -> tuple[float, int]:
    """Build + derive every gradient (textbook form); seconds and total op count."""

    def run():
        derivation = build().derive()
        return sum(sp.count_ops(step.value) for step in derivation.steps)

    seconds, ops = _timed(run, repeat=3)
    return seconds, ops


def _sympy_diff_worker(build, queue) -> None:
    # deep nested costs need a deep stack: run in a thread with room for SymPy's recursion
    sys.setrecursionlimit(200_000)
    threading.stack_size(1 << 29)
    thread = threading.Thread(target=_diff_all, args=(build, queue))
    thread.start()
    thread.join()


def _diff_all(build, queue) -> None:
    model = build()
    cost = model.cost_expression()
    start = time.perf_counter()
    ops = sum(sp.count_ops(sp.diff(cost, p.symbol)) for p in model.params)
    queue.put((time.perf_counter() - start, ops))


def sympy_diff(build, cap: float) -> tuple[float | None, int | None]:
    """SymPy's diff of the expanded cost, once per parameter, in a child process we can stop."""
    queue = mp.Queue()
    proc = mp.Process(target=_sympy_diff_worker, args=(build, queue))
    proc.start()
    try:
        return queue.get(timeout=cap)
    except queue_module.Empty:
        return None, None
    finally:
        proc.terminate()
        proc.join()


def _chain(depth):
    return lambda: derive.chain(depth)


def _scalar_mlp(sizes):
    return lambda: derive.mlp(sizes, "sigmoid", level="scalar")


def _matrix_mlp(depth, width):
    return lambda: derive.mlp([width] * (depth + 1), "tanh")


def mixed_network(width: int = 256, blocks: int = 5) -> derive.Model:
    """20 layers of every kind: per block Dense, Residual(Dense), LayerNorm, Dropout, with
    four hidden activations in turn; a softmax output (the 20th layer) with cross-entropy."""
    from derive.layers import Dense, Dropout, LayerNorm, Residual

    activations = ("relu", "tanh", "sigmoid", "elu")
    layers = []
    for k in range(blocks):
        act = activations[k % len(activations)]
        layers += [Dense(width, act), Residual(Dense(width, "relu")), LayerNorm(), Dropout(0.1)]
    layers[-1] = Dense(10, "softmax")
    return derive.network(64, layers, "cce", weight_decay=1e-4)


def _first_in_process() -> tuple[float, float]:
    """In a process that has derived nothing yet: seconds to derive the registry's rules of
    the activations and loss used (once per process, whatever the model), then to build and
    derive the mixed network (its layer rules, layer norm's and the matrix VJPs, derived here)."""
    from derive import rules

    start = time.perf_counter()
    for name in ("relu", "tanh", "sigmoid", "elu", "softmax"):
        rules.activation_vjp(name)
    rules.loss_gradient("cce")
    middle = time.perf_counter()
    mixed_network().derive()
    return middle - start, time.perf_counter() - middle


def _fmt(seconds, cap):
    return f"> {cap:.0f} s (stopped)" if seconds is None else f"{seconds:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=120.0, help="seconds per SymPy baseline")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    derive.mlp([3, 3, 2], "sigmoid", level="scalar").derive()  # derive the registry rules once
    derive.chain(2).derive()
    derive.mlp([3, 3, 3], "tanh").derive()

    print("chain networks (3Blue1Brown): all 2L gradients")
    print(f"{'L':>5} {'ours':>10} {'ops':>8} {'ops/L':>7} {'sympy diff':>20} {'sympy ops':>10}")
    depths = [8, 16, 32] if args.quick else [8, 16, 32, 64, 128, 256]
    for depth in depths:
        seconds, ops = ours(_chain(depth))
        base_s, base_ops = (None, None)
        if depth <= 32:
            base_s, base_ops = sympy_diff(_chain(depth), args.cap)
        base = _fmt(base_s, args.cap) if depth <= 32 else "-"
        print(
            f"{depth:>5} {seconds:>9.3f}s {ops:>8} {ops / depth:>7.1f} {base:>20} "
            f"{base_ops if base_ops is not None else '-':>10}"
        )

    print("\nscalar MLPs (a node per neuron and weight), sigmoid + softmax + cross-entropy")
    for sizes in ([16, 16, 4], [64, 64, 10]) if not args.quick else ([16, 16, 4],):
        seconds, ops = ours(_scalar_mlp(sizes))
        base_s = None
        if sizes == [16, 16, 4]:
            base_s, _ = sympy_diff(_scalar_mlp(sizes), args.cap)
        base = _fmt(base_s, args.cap) if sizes == [16, 16, 4] else "-"
        label = "-".join(map(str, sizes))
        print(f"  {label:<10} ours {seconds:7.3f} s   sympy diff {base}")

    print("\nmatrix-level MLPs (symbolic sizes), tanh + softmax + cross-entropy")
    for depth, width in [(2, 64), (10, 64), (10, 4096), (30, 512)]:
        seconds, _ = ours(_matrix_mlp(depth, width))
        print(f"  {depth:>2} layers of {width:<5} ours {seconds:7.3f} s")

    print("\nderive.network: 20 layers (Dense/Residual/LayerNorm/Dropout), widths 256")
    with mp.get_context("spawn").Pool(1) as pool:
        rules_s, first = pool.apply(_first_in_process)
    warm, _ = ours(mixed_network)
    print(f"  activation and loss rules, once per process {rules_s:7.3f} s")
    print(f"  the network, first in its process            {first:7.3f} s")
    print(f"  the network again (median of 3)              {warm:7.3f} s")


if __name__ == "__main__":
    main()
