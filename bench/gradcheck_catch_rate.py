"""How often does the fast gradient check catch one entry off by 1%, and how fast is it?

Model: a hand-written NumPy MLP 784-512-10 (relu, softmax + cross-entropy, float64, batch
128; 407,050 parameters). Its gradient is first checked as it is (must pass, and is spot-
checked entry by entry), then, for each seed, one random entry is multiplied by 1.01 and
``check_gradients`` (fast mode, chosen by size) must fail on exactly that entry.

An entry is eligible when its gradient is non-negligible: ``|g_i| >= 1e-3 * max|g|`` over
all parameters (a 1% change of a zero, or of a gradient a million times smaller than the
largest, is no error anyone can see). A second row samples any entry with ``g_i != 0``.

Run: ``python -m bench.gradcheck_catch_rate`` (``--seeds``, ``--threads``; see ``--help``).
"""

import argparse
import sys

from bench import pin_threads


def _args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=200, help="corrupted runs, eligible entries")
    p.add_argument("--seeds-any", type=int, default=100, help="corrupted runs, any g_i != 0")
    p.add_argument("--clean", type=int, default=50, help="runs on the correct gradient")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (pinned)")
    return p.parse_args(argv)


ARGS = _args() if __name__ == "__main__" else _args([])
PINS = pin_threads(ARGS.threads)  # before NumPy is imported

import time  # noqa: E402

import numpy as np  # noqa: E402

from numeric.gradcheck.check import check_gradients  # noqa: E402
from numeric.gradcheck.finite_diff import partial_derivative  # noqa: E402

SIZES = (784, 512, 10)
BATCH = 128
ELIGIBLE = 1e-3  # |g_i| >= ELIGIBLE * max|g|


def make_problem(seed: int = 0):
    """Pixel-like inputs in [0, 1), random labels, He-initialized weights."""
    rng = np.random.default_rng(seed)
    X = rng.random((BATCH, SIZES[0]))
    y = rng.integers(0, SIZES[-1], BATCH)
    params = {}
    for k, (a, b) in enumerate(zip(SIZES, SIZES[1:], strict=False), 1):
        params[f"W{k}"] = rng.normal(0.0, np.sqrt(2.0 / a), (a, b))
        params[f"b{k}"] = rng.normal(0.0, 0.1, b)
    return X, y, params


def _forward(p, X):
    Z1 = X @ p["W1"] + p["b1"]
    A1 = np.maximum(Z1, 0.0)
    Z2 = A1 @ p["W2"] + p["b2"]
    Zs = Z2 - Z2.max(axis=1, keepdims=True)
    log_p = Zs - np.log(np.exp(Zs).sum(axis=1, keepdims=True))
    return Z1, A1, log_p


def loss(p, X, y) -> float:
    """Mean softmax cross-entropy."""
    return float(-np.mean(_forward(p, X)[2][np.arange(len(y)), y]))


def grads(p, X, y) -> dict:
    """Backprop by hand: dZ2 = (P - Y)/m, dW2 = A1ᵀ dZ2, dZ1 = dZ2 W2ᵀ ⊙ 1[Z1 > 0], ..."""
    m = len(y)
    Z1, A1, log_p = _forward(p, X)
    dZ2 = np.exp(log_p)
    dZ2[np.arange(m), y] -= 1.0
    dZ2 /= m
    dZ1 = (dZ2 @ p["W2"].T) * (Z1 > 0)
    return {"W1": X.T @ dZ1, "b1": dZ1.sum(0), "W2": A1.T @ dZ2, "b2": dZ2.sum(0)}


def _pick(rng, g, eligible_only: bool):
    flat = np.concatenate([g[n].ravel() for n in g])
    mask = np.abs(flat) >= ELIGIBLE * np.abs(flat).max() if eligible_only else flat != 0
    k = int(rng.choice(np.flatnonzero(mask)))
    for name in g:
        if k < g[name].size:
            return name, tuple(int(i) for i in np.unravel_index(k, g[name].shape))
        k -= g[name].size
    raise AssertionError("unreachable")


def _corrupted_runs(lf, g, params, n, eligible_only, seed0):
    caught = localized = 0
    times = []
    for s in range(seed0, seed0 + n):
        name, idx = _pick(np.random.default_rng(s), g, eligible_only)
        bad = dict(g)
        bad[name] = g[name].copy()
        bad[name][idx] *= 1.01
        t = time.perf_counter()
        r = check_gradients(lf, lambda p, bad=bad: bad, params, seed=s)
        times.append(time.perf_counter() - t)
        caught += not r.ok
        localized += [(e.name, e.index) for e in r.failures] == [(name, idx)]
        if r.ok:
            print(f"  missed: seed {s}, {name}{list(idx)}, g = {g[name][idx]:.3e}", flush=True)
    return n, caught, localized, times


def _row(label, n, bad, loc, times):
    loc_s = "-" if loc is None else str(loc)
    return f"{label:<38} {n:>5} {bad:>7} {loc_s:>10} {np.median(times):>9.2f} {np.max(times):>6.2f}"


def main() -> int:
    X, y, params = make_problem()
    lf = lambda p: loss(p, X, y)  # noqa: E731
    g = grads(params, X, y)
    n_params = sum(a.size for a in params.values())
    print("thread pins: " + ", ".join(f"{k}={v}" for k, v in PINS.items()))
    print(
        f"model:   MLP {'-'.join(map(str, SIZES))}, relu + softmax-CE, float64, batch {BATCH},"
        f" {n_params:,} params"
    )
    t = time.perf_counter()
    for _ in range(20):
        lf(params)
    t_eval = (time.perf_counter() - t) / 20
    print(
        f"one loss evaluation: {t_eval * 1e3:.1f} ms, so elementwise central differences "
        f"(2 per entry) take ~{2 * n_params * t_eval / 60:.0f} min"
    )

    rng = np.random.default_rng(12345)
    spot = [_pick(rng, g, True) for _ in range(20)]
    ests = [(partial_derivative(lf, params, n, i), g[n][i]) for n, i in spot]
    rel = max((abs(e.value / a - 1) for e, a in ests if not e.kink), default=0.0)
    kinks = [min(abs(e.forward / a - 1), abs(e.backward / a - 1)) for e, a in ests if e.kink]
    kink_s = (
        f"; {len(kinks)} at a relu kink, analytic = a one-sided slope within {max(kinks):.0e}"
        if kinks
        else ""
    )
    print(
        f"reference gradient: 20 random entries vs partial_derivative: max rel err {rel:.1e}"
        + kink_s
    )
    flat = np.abs(np.concatenate([a.ravel() for a in g.values()]))
    print(
        f"eligible entries (|g_i| >= {ELIGIBLE:g} * max|g| = {ELIGIBLE * flat.max():.2e}): "
        f"{int((flat >= ELIGIBLE * flat.max()).sum()):,} of {n_params:,}; "
        f"g_i != 0: {int((flat > 0).sum()):,}"
    )

    clean_times, false_fail = [], 0
    for s in range(ARGS.clean):
        t = time.perf_counter()
        r = check_gradients(lf, lambda p: g, params, seed=s)
        clean_times.append(time.perf_counter() - t)
        false_fail += not r.ok
        if s == 0:
            print(
                f"correct gradient, seed 0: {'ok' if r.ok else 'FAILED'} ({r.mode} mode, "
                f"{r.loss_calls} loss calls)"
            )
        if not r.ok:
            print(r.report())
    rows = [_row("correct gradient (false failures)", ARGS.clean, false_fail, None, clean_times)]
    print("corrupting one entry by 1% ...", flush=True)
    runs = _corrupted_runs(lf, g, params, ARGS.seeds, True, 1000)
    rows.append(_row("1% off, |g_i| >= 1e-3 max|g|", *runs))
    runs_any = _corrupted_runs(lf, g, params, ARGS.seeds_any, False, 5000)
    rows.append(_row("1% off, any g_i != 0", *runs_any))

    print()
    print(f"{'case':<38} {'runs':>5} {'failed':>7} {'localized':>10} {'median s':>9} {'max s':>6}")
    print("\n".join(rows))
    n, caught, _, _ = runs
    print(
        f"\ncatch rate (eligible entries): {caught}/{n} = {caught / n:.1%}; "
        f"false failures on the correct gradient: {false_fail}/{ARGS.clean}"
    )
    return 0 if false_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
