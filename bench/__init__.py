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
    """Set the BLAS/OpenMP/XLA thread counts; must run before NumPy or JAX is imported."""
    if "numpy" in sys.modules or "jax" in sys.modules:
        print("warning: numpy/jax already imported; thread pins may not apply", file=sys.stderr)
    pins = {var: str(threads) for var in THREAD_VARS}
    xla = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    pins["XLA_FLAGS"] = xla if threads == 1 else f"intra_op_parallelism_threads={threads}"
    pins["JAX_PLATFORMS"] = "cpu"
    os.environ.update(pins)
    return pins
