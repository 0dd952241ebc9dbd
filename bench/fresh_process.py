"""Kernel speed the way a training loop sees it: each variant alone in a fresh process.

    python -m bench.fresh_process                  # residual MLP and MLP 784-512-10, m=128
    python -m bench.fresh_process --rounds 9 --calls 800 --only float32

``bench.codegen_speed`` interleaves every variant in one process, which keeps the heap's
top in use; a process that runs one kernel over and over (a training loop) does not, and
glibc returns each freed block of 128 kB or more to the operating system, so the next call
faults its pages back in. Here each variant runs alone in a new process pinned to one core
(``--calls`` calls after a warm-up; its median call), rounds in a shuffled order, and a
variant's ratio is the median over rounds of its time over the fault-free GEMM floor's in the
same round (``x floor``, ``floor-tuned`` below) or JAX's (``x jax``). ``faults`` is minor page
faults per call.

* ``floor``       the matrix products of the pass (``bench.baselines``), new arrays each call,
                  which fault like the plain kernel's;
* ``floor-tuned`` the same with glibc keeping freed memory (``TUNED``, as ``gen-tuned``): the
                  products alone, with no page faults, the reference of ``x floor``;
* ``jax-floor``   the same products under ``jax.jit``: XLA's matrix products alone;
* ``generated``   the NumPy kernel's ``loss_and_grads(params, X, Y)``: new gradient arrays;
* ``gen-tuned``   the same, with glibc told to keep freed memory (``MALLOC_TRIM_THRESHOLD_``,
                  ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TOP_PAD_``, see ``TUNED``): what a
                  user's own loop gets from three environment variables and no code;
* ``gen-out``     the same with ``out=``: the gradients written into arrays kept between
                  calls;
* ``train-like``  ``out=`` with glibc keeping freed memory (``TUNED``); ``numeric.train``
                  keeps freed memory (``numeric.keep_freed_memory``) and passes no ``out=``
                  then, as ``gen-tuned`` runs, since this measured no faster;
* ``jax``         ``jax.jit(jax.value_and_grad(cost))`` (XLA keeps its own buffers);
* ``torch``       eager autograd on the CPU, when torch is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time

from bench import pin_threads

CASES = (
    "residual MLP 4 blocks of 256, m=128, float32",
    "residual MLP 4 blocks of 256, m=128, float64",
    "MLP 784-512-10 relu+softmax-CE, m=128, float32",
)
VARIANTS = ("floor", "floor-tuned", "jax-floor", "generated", "gen-tuned", "gen-out",
            "train-like", "jax", "torch")  # fmt: skip
# run with TUNED set
TUNED_VARIANTS = {"gen-tuned": "generated", "floor-tuned": "floor", "train-like": "gen-out"}
#: glibc's malloc keeping what is freed, set at a child's start-up: numeric.keep_freed_memory's
#: settings (256 MB thresholds, 64 MB of padding at the top; a test holds them equal). Not
#: imported from numeric.memory: that imports NumPy before pin_threads can pin its threads.
TUNED = {"MALLOC_TRIM_THRESHOLD_": str(1 << 28), "MALLOC_MMAP_THRESHOLD_": str(1 << 28),
         "MALLOC_TOP_PAD_": str(1 << 26)}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="fresh processes per variant")
    p.add_argument("--calls", type=int, default=600, help="timed calls in each process")
    p.add_argument("--only", default="", help="cases whose name contains this text")
    p.add_argument("--child", nargs=2, metavar=("CASE", "VARIANT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child, args.calls)))
        return 0
    print("each variant alone in a fresh process, one core; medians of rounds, ratios to the "
          "fault-free floor (floor-tuned) of the same round\n")  # fmt: skip
    print(f"{'case':<48} {'variant':<10} {'median':>10} {'x floor':>8} {'x jax':>8} {'faults':>8}")
    for case in (c for c in CASES if args.only in c):
        _run(case, args.rounds, args.calls)
    return 0


def _run(case: str, rounds: int, calls: int) -> None:
    times = {v: [] for v in VARIANTS}
    faults = {v: [] for v in VARIANTS}
    order = list(VARIANTS)
    shuffle = random.Random(0).shuffle
    for _ in range(rounds):
        shuffle(order)
        for variant in order:
            child = TUNED_VARIANTS.get(variant, variant)
            command = [sys.executable, "-m", "bench.fresh_process", "--calls", str(calls),
                       "--child", case, child]  # fmt: skip
            env = {**os.environ, **(TUNED if variant in TUNED_VARIANTS else {})}
            done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if result is None:  # torch not installed
                continue
            times[variant].append(result["time"])
            faults[variant].append(result["faults"])
    for variant in VARIANTS:
        if not times[variant]:
            print(f"{case:<48} {variant:<10} {'(not installed)':>10}")
            continue
        ratio = statistics.median(t / f for t, f in zip(times[variant], times["floor-tuned"]))
        to_jax = statistics.median(t / j for t, j in zip(times[variant], times["jax"]))
        median = statistics.median(times[variant]) * 1e3
        print(f"{case:<48} {variant:<10} {median:>7.3f} ms {ratio:>8.3f} {to_jax:>8.3f} "
              f"{statistics.median(faults[variant]):>8.1f}")  # fmt: skip
    print()


def _child(case_name: str, variant: str, calls: int) -> dict | None:
    """Time one variant alone: the median of ``calls`` calls after a warm-up."""
    pin_threads(1)
    fn = _variant(case_name, variant)
    if fn is None:
        return None
    for _ in range(max(20, calls // 10)):
        fn()
    samples = []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return {"time": statistics.median(samples), "faults": faults / calls}


def _variant(case_name: str, variant: str):
    """A function of no arguments running ``variant`` on the case's data (None: torch is
    not installed)."""
    import numpy as np

    import derive
    from bench import baselines
    from bench.codegen_speed import _cases, _data
    from numeric import codegen

    case = next(c for c in _cases(derive) if c["name"] == case_name)
    kind = case["kind"]
    kernel = codegen(case["build"]().derive())
    params, X, Y = _data(case, kernel, np)
    if variant == "floor":
        return baselines.numpy_floor(kind, params, X)
    if variant == "generated":
        return lambda: kernel.loss_and_grads(params, X, Y)
    if variant == "gen-out":
        out = {name: np.empty_like(value) for name, value in params.items()}
        return lambda: kernel.loss_and_grads(params, X, Y, out=out)
    if variant in ("jax", "jax-floor"):
        import jax

        jax.config.update("jax_enable_x64", True)
        if variant == "jax-floor":
            return baselines.jax_floor(kind, params, X)
        fn = baselines.jax_value_and_grad(baselines.JAX[kind])
        jp, jX, jY = jax.device_put(params), jax.device_put(X), jax.device_put(Y)
        return lambda: jax.block_until_ready(fn(jp, jX, jY))
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return baselines.torch_value_and_grad(baselines.TORCH[kind], params, X, Y)


if __name__ == "__main__":
    sys.exit(main())
