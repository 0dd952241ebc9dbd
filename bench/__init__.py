"""Benchmarks: speed and catch rates, run by hand (``python -m bench.<name>``).

Never timed in the test suite: the machine is shared and noisy.
"""

import os
import sys

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def pin_threads(threads: int) -> dict[str, str]:
    """Run on ``threads`` cores: the BLAS/OpenMP thread counts, and the process's CPU
    affinity, which is what sizes XLA's thread pool (no XLA flag does: with only the flags,
    JAX ran its matrix products on both cores of a 2-core machine, cpu/wall 1.9, against
    single-threaded NumPy). Must run before NumPy or JAX is imported."""
    if "numpy" in sys.modules or "jax" in sys.modules:
        print("warning: numpy/jax already imported; thread pins may not apply", file=sys.stderr)
    pins = {var: str(threads) for var in THREAD_VARS}
    if threads == 1:
        pins["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    pins["JAX_PLATFORMS"] = "cpu"
    os.environ.update(pins)
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cpus)
        pins["cpus"] = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    return pins
