"""Which NumPy spelling of each elementwise function is fastest, and is it accurate enough?

    python -m bench.elementwise_forms               # 256x64 (the tanh network's layer)
    python -m bench.elementwise_forms --shape 128,256 --rounds 400

The NumPy printer spells a function the way :data:`numeric.generator.numpy_forms.FORMS`
says; this bench is the measurement behind that table, so the choice can be re-made on
another CPU or NumPy. Each formulation writes into a given array (``out=``), as a kernel
does. Times are medians over interleaved rounds, one pinned core; ``x first`` is the median
of the per-round ratio to the first (the current) formulation. ``max rel err`` is the
largest ``|form - exact| / |exact|`` over inputs from -1000 to 1000 (tiny, moderate and
huge ``|x|``, where overflow shows; a subnormal result may be off by the smallest normal
number, as verify allows), exact meaning ``np.longdouble``;
``verify`` says whether that error stays within ``numeric.verify``'s relative tolerance for
the dtype (float64 1e-10, float32 1e-4), the bar a kernel must pass.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from bench import pin_threads

VERIFY_RTOL = {"float64": 1e-10, "float32": 1e-4}


def forms(np):
    """``{function: {label: (compute(u, out), exact(u as longdouble))}}``; the first label
    of each function is what kernels printed before the table."""

    def tanh_np(u, out):
        np.tanh(u, out=out)

    def tanh_exp(u, out):  # 1 - 2 / (exp(2u) + 1): exp overflows to inf where tanh is 1
        with np.errstate(over="ignore"):
            np.exp(np.multiply(u, 2, out=out), out=out)
        out += 1
        np.subtract(1, np.divide(2, out, out=out), out=out)

    def tanh_sigmoid(u, out):  # 2 sigmoid(2u) - 1 = 2 / (1 + exp(-2u)) - 1
        with np.errstate(over="ignore"):
            np.exp(np.multiply(u, -2, out=out), out=out)
        out += 1
        np.subtract(np.divide(2, out, out=out), 1, out=out)

    def tanh_expm1(u, out):  # sign(u) -d / (2 + d), d = expm1(-2|u|): no overflow, no 1 - e
        d = np.expm1(np.multiply(np.abs(u, out=out), -2, out=out), out=out)
        np.copysign(np.divide(d, -2 - d, out=out), u, out=out)

    def sigmoid_where(u, out):  # the helper kernels had: exp(-|u|) only
        e = np.exp(-np.abs(u))
        np.divide(np.where(u >= 0, 1, e), 1 + e, out=out)

    def sigmoid_exp(u, out):  # 1 / (1 + exp(-u)): exp(-u) = inf where sigmoid is 0
        with np.errstate(over="ignore"):
            np.exp(np.negative(u, out=out), out=out)
        out += 1
        np.reciprocal(out, out=out)

    def sigmoid_tanh(u, out):  # (1 + tanh(u/2)) / 2: loses relative accuracy for u << 0
        np.tanh(np.multiply(u, 0.5, out=out), out=out)
        out *= 0.5
        out += 0.5

    def softplus_abs(u, out):  # the helper kernels had: max(u, 0) + log1p(exp(-|u|))
        np.add(np.maximum(u, 0), np.log1p(np.exp(-np.abs(u))), out=out)

    def softplus_in_place(u, out):  # the same steps, every one into out
        np.log1p(np.exp(np.negative(np.abs(u, out=out), out=out), out=out), out=out)
        out += np.maximum(u, 0)

    def softplus_logaddexp(u, out):
        np.logaddexp(0, u, out=out)

    def relu_mask(u, out):  # the kernels' form: the mask is kept for the backward step
        np.multiply(u, u > 0, out=out)

    def relu_maximum(u, out):
        np.maximum(u, 0, out=out)

    def relu_float_mask(u, out):  # a mask in the dtype: no bool-to-float cast in the product
        np.multiply(u, (u > 0).astype(u.dtype), out=out)

    def exact_relu(x):
        return np.maximum(x, 0)

    def exact_tanh(x):
        return np.tanh(x)

    def exact_sigmoid(x):
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-x))

    def exact_softplus(x):
        with np.errstate(over="ignore"):
            return np.where(x > 30, x + np.log1p(np.exp(-x)), np.log1p(np.exp(x)))

    return {
        "tanh": {
            "np.tanh(u, out=)": (tanh_np, exact_tanh),
            "1 - 2/(exp(2u) + 1)": (tanh_exp, exact_tanh),
            "2/(1 + exp(-2u)) - 1": (tanh_sigmoid, exact_tanh),
            "sign(u) -d/(2 + d), d=expm1(-2|u|)": (tanh_expm1, exact_tanh),
        },
        "relu": {
            "u * (u > 0)": (relu_mask, exact_relu),
            "maximum(u, 0)": (relu_maximum, exact_relu),
            "u * (u > 0).astype(dtype)": (relu_float_mask, exact_relu),
        },
        "sigmoid": {
            "where(u >= 0, 1, e)/(1 + e)": (sigmoid_where, exact_sigmoid),
            "1/(1 + exp(-u)), in place": (sigmoid_exp, exact_sigmoid),
            "(1 + tanh(u/2))/2, in place": (sigmoid_tanh, exact_sigmoid),
        },
        "softplus": {
            "max(u,0) + log1p(exp(-|u|))": (softplus_abs, exact_softplus),
            "the same, in place": (softplus_in_place, exact_softplus),
            "logaddexp(0, u)": (softplus_logaddexp, exact_softplus),
        },
    }


def accuracy(np, compute, exact, dtype) -> float:
    """Largest relative error of ``compute`` against ``exact`` in long double."""
    grid = np.concatenate([np.linspace(-1000, 1000, 20001), np.geomspace(1e-30, 50, 4000)])
    x = np.concatenate([grid, -grid]).astype(dtype)
    out = np.empty_like(x)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        try:  # a formulation that warns is not one a kernel can print
            compute(x, out)
        except FloatingPointError:
            return float("nan")
    ref = exact(x.astype(np.longdouble))
    error = np.abs(out - ref)
    tiny = np.finfo(dtype).tiny  # below it (subnormal results) an error up to tiny is rounding
    if np.any(error[np.abs(ref) < tiny] > tiny):
        return float("inf")
    normal = np.abs(ref) >= tiny
    return float(np.max(error[normal] / np.abs(ref[normal])))


def timings(np, table, shape, dtype, rounds):
    """Median seconds per call of each formulation, and its median ratio to the first."""
    rng = np.random.default_rng(0)
    u = (2 * rng.standard_normal(shape)).astype(dtype)
    out = np.empty_like(u)
    labels = list(table)
    inner = 20
    times = {label: [] for label in labels}
    for label in labels:  # warm up
        table[label][0](u, out)
    order = labels[:]
    shuffle = random.Random(0).shuffle
    for _ in range(rounds):
        shuffle(order)
        for label in order:
            compute = table[label][0]
            start = time.perf_counter()
            for _ in range(inner):
                compute(u, out)
            times[label].append((time.perf_counter() - start) / inner)
    first = times[labels[0]]
    return {
        label: (
            statistics.median(times[label]),
            statistics.median(t / f for t, f in zip(times[label], first)),
        )
        for label in labels
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="256,64", help="rows,columns of the array (256,64)")
    p.add_argument("--rounds", type=int, default=200, help="interleaved rounds (200)")
    args = p.parse_args(argv)
    pins = pin_threads(1)
    import numpy as np

    shape = tuple(int(n) for n in args.shape.split(","))
    print("thread pins:", ", ".join(f"{k}={v}" for k, v in pins.items()))
    print(f"numpy {np.__version__}; array {shape}; machine shared: read ratios, not times\n")
    header = f"{'function':<9} {'formulation':<34} {'dtype':<8} {'median':>9} {'x first':>8}"
    print(f"{header} {'max rel err':>11}  verify")
    print("-" * (len(header) + 20))
    for name, table in forms(np).items():
        for dtype in ("float64", "float32"):
            times = timings(np, table, shape, dtype, args.rounds)
            for label, (seconds, ratio) in times.items():
                error = accuracy(np, *table[label], dtype)
                ok = "ok" if error <= VERIFY_RTOL[dtype] else "FAILS"
                if error != error:
                    ok = "warns"
                print(f"{name:<9} {label:<34} {dtype:<8} {seconds * 1e6:7.1f}us {ratio:8.3f} "
                      f"{error:11.1e}  {ok}")  # fmt: skip
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
