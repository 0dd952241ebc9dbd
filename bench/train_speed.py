"""Speed of one training epoch: ``numeric.train`` with Adam against torch and JAX + optax.

    taskset -c 1 python -m bench.train_speed             # 5 rounds (about a minute)
    taskset -c 1 python -m bench.train_speed --quick     # 2 rounds

The case: MLP 784-512-10 (ReLU, softmax + cross-entropy), Adam with lr 1e-3, one epoch over
60,000 generated MNIST-shaped examples (pixels in [0, 1], ten classes), batches of 128
(468 full and one of 96), float32, one thread (the pins are printed). All three start from
the same parameters and visit the rows in the same order (one permutation per epoch):

* ``ours``   ``numeric.train(kernel, params, X, Y, Adam(), epochs=1, batch_size=128)``
             with the generated kernel and the update printed from ``derive.optimizers.Adam``;
* ``torch``  eager autograd of the same forward (``bench.baselines``), ``torch.optim.Adam``
             (``eps`` set to Keras's 1e-7 like ours), batches gathered with ``index_select``;
* ``jax``    one ``jax.jit`` of the whole step (``value_and_grad`` of the same forward,
             ``optax.adam``'s update, ``apply_updates``), batches gathered inside the jit.

Rounds run the three in a shuffled order; a round's ratio is ours over the faster of the
other two *in that round*, and the printed ratio is the median over rounds, by the wall
clock and by the process's CPU time (on a shared machine the CPU time leaves out the time
other processes held the core; all three run on one thread, so the two agree on a quiet
one). Then one epoch of ours is split into its parts (gathering a batch, the kernel, the
update) to say where the time goes. Before timing, 20 steps of each are checked to agree
(float32 rounding).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

from bench import pin_threads

EXAMPLES, SIZES, BATCH, LR = 60_000, (784, 512, 10), 128, 1e-3


def _args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="epochs timed per variant")
    p.add_argument("--quick", action="store_true", help="2 rounds")
    p.add_argument("--threads", type=int, default=1, help="BLAS/XLA/torch threads (pinned)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _args(argv)
    pins = pin_threads(args.threads)
    import jax
    import numpy as np
    import optax
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    print("thread pins:", ", ".join(f"{k}={v}" for k, v in pins.items()))
    versions = f"numpy {np.__version__}, torch {torch.__version__}, jax {jax.__version__}"
    print(f"{versions}, optax {optax.__version__}; shared machine: read ratios, not times\n")

    variants, parts = _variants(np, jax, optax, torch)
    load = f"{os.getloadavg()[0]:.1f}"
    rounds = 2 if args.quick else args.rounds
    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    order = list(variants)
    rng = random.Random(0)
    for r in range(rounds):
        rng.shuffle(order)
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            variants[name](r + 1)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    print(f"load average before/after: {load} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    for clock, times in (("wall", wall), ("cpu", cpu)):
        _print(clock, times, rounds)
    parts()
    return 0


def _data(np):
    rng = np.random.default_rng(0)
    X = rng.random((EXAMPLES, SIZES[0]), dtype=np.float32)
    labels = rng.integers(0, SIZES[-1], EXAMPLES)
    Y = np.eye(SIZES[-1], dtype=np.float32)[labels]
    return X, Y, labels


def _variants(np, jax, optax, torch):
    import derive
    from bench import baselines
    from derive.optimizers import Adam
    from numeric import codegen, train
    from numeric.training import Stepper

    kernel = codegen(derive.mlp(list(SIZES), activation="relu").derive(), dtype="float32")
    X, Y, labels = _data(np)
    start = kernel.random_params(seed=1, dtype="float32")
    rule = Adam(lr=LR)

    def order(epoch):  # the rows of an epoch, the same for all three
        return np.random.default_rng(epoch).permutation(EXAMPLES)

    ours_params = {k: v.copy() for k, v in start.items()}

    def ours(epoch):
        train(kernel, ours_params, X, Y, rule, epochs=1, batch_size=BATCH, seed=epoch,
              progress=False, measure_accuracy=False)  # fmt: skip

    leaves = [torch.from_numpy(start[k].copy()).requires_grad_() for k in start]
    tparams = dict(zip(start, leaves))
    opt = torch.optim.Adam(leaves, lr=LR, eps=rule.eps)
    tX, tY = torch.from_numpy(X), torch.from_numpy(Y)

    def torch_epoch(epoch):
        rows = torch.from_numpy(order(epoch))
        for lo in range(0, EXAMPLES, BATCH):
            idx = rows[lo : lo + BATCH]
            opt.zero_grad()
            loss = baselines.torch_mlp_relu_softmax_ce(tparams, tX[idx], tY[idx])
            loss.backward()
            opt.step()

    tx = optax.adam(LR, eps=rule.eps)
    jstate = [jax.device_put({k: v.copy() for k, v in start.items()}), None]
    jstate[1] = tx.init(jstate[0])
    jX, jY = jax.device_put(X), jax.device_put(Y)

    @jax.jit
    def jax_step(params, opt_state, idx):
        loss, grads = jax.value_and_grad(baselines.jax_mlp_relu_softmax_ce)(
            params, jX[idx], jY[idx]
        )
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def jax_epoch(epoch):
        rows = order(epoch)
        for lo in range(0, EXAMPLES, BATCH):
            jstate[0], jstate[1], loss = jax_step(jstate[0], jstate[1], rows[lo : lo + BATCH])
        jax.block_until_ready(loss)

    _check_agreement(np, jax, torch, kernel, start, X, Y, rule, tx, baselines, train)
    for rows in (np.arange(BATCH), np.arange(EXAMPLES % BATCH)):  # compile both batch shapes
        jax_step(jstate[0], jstate[1], rows)
    for warm in (ours, torch_epoch, jax_epoch):
        warm(0)

    def parts():
        _parts(np, kernel, ours_params, X, Y, rule, Stepper)

    return {"ours": ours, "torch": torch_epoch, "jax": jax_epoch}, parts


def _check_agreement(np, jax, torch, kernel, start, X, Y, rule, tx, baselines, train):
    """20 steps of batch 128 from the same start: the three sets of params agree."""
    import optax

    rows = slice(0, 20 * BATCH)
    ours = {k: v.copy() for k, v in start.items()}
    train(kernel, ours, X[rows], Y[rows], rule, epochs=1, batch_size=BATCH, seed=0,
          progress=False, measure_accuracy=False)  # fmt: skip
    order = np.random.default_rng(0).permutation(20 * BATCH)
    leaves = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in start.items()}
    opt = torch.optim.Adam(leaves.values(), lr=rule.lr, eps=rule.eps)
    jparams = jax.device_put(start)
    state = tx.init(jparams)
    grad = jax.jit(jax.grad(baselines.jax_mlp_relu_softmax_ce))
    for lo in range(0, 20 * BATCH, BATCH):
        idx = order[lo : lo + BATCH]
        opt.zero_grad()
        baselines.torch_mlp_relu_softmax_ce(
            leaves, torch.from_numpy(X[idx]), torch.from_numpy(Y[idx])
        ).backward()
        opt.step()
        updates, state = tx.update(grad(jparams, X[idx], Y[idx]), state, jparams)
        jparams = optax.apply_updates(jparams, updates)
    for k, ref in start.items():
        moved = np.max(np.abs(ours[k] - ref))
        for name, other in (("torch", leaves[k].detach().numpy()), ("jax", jparams[k])):
            gap = np.max(np.abs(ours[k] - np.asarray(other)))
            assert gap <= 1e-3 * moved + 1e-6, (name, k, gap, moved)


def _parts(np, kernel, params, X, Y, rule, Stepper) -> None:
    """Where an epoch of ours goes: gathering batches, the kernel, the update (CPU time)."""
    stepper = Stepper(rule, params)
    xb = np.empty((BATCH, X.shape[1]), dtype=X.dtype)
    yb = np.empty((BATCH, Y.shape[1]), dtype=Y.dtype)
    rows = np.random.default_rng(9).permutation(EXAMPLES)
    spent = {"gather": 0.0, "kernel": 0.0, "update": 0.0}
    for lo in range(0, EXAMPLES - BATCH + 1, BATCH):
        t0 = time.process_time()
        np.take(X, rows[lo : lo + BATCH], axis=0, out=xb)
        np.take(Y, rows[lo : lo + BATCH], axis=0, out=yb)
        t1 = time.process_time()
        _, grads = kernel.loss_and_grads(params, xb, yb)
        t2 = time.process_time()
        stepper.step(grads)
        t3 = time.process_time()
        spent["gather"] += t1 - t0
        spent["kernel"] += t2 - t1
        spent["update"] += t3 - t2
    steps = EXAMPLES // BATCH
    print("one epoch of ours, by part (CPU time per step):")
    for name, seconds in spent.items():
        print(f"  {name:<7} {seconds * 1e3 / steps:7.3f} ms")


def _print(clock: str, times, rounds) -> None:
    """Epoch times by one clock, and the ratio of ours to the faster other, round by round."""
    ratios = [o / min(t, j) for o, t, j in zip(times["ours"], times["torch"], times["jax"])]
    print(f"\n{clock} time   {'median epoch':>13} {'min':>9} {'max':>9}")
    for name, values in times.items():
        print(f"{name:<10} {statistics.median(values):>11.3f} s {min(values):>7.3f} s "
              f"{max(values):>7.3f} s")  # fmt: skip
    ratio = statistics.median(ratios)
    verdict = "met" if ratio <= 1.15 else "NOT met"
    spread = f"{min(ratios):.3f}-{max(ratios):.3f}"
    print(f"ours / faster of torch and jax ({clock}), median over {rounds} rounds: {ratio:.3f} "
          f"(rounds {spread}); target <= 1.15 {verdict}\n")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
