"""Speed of generated tensor-network kernels: the seed course's MNIST convnet and one-head
self-attention, against torch (CPU, eager autograd) and JAX ``jit(value_and_grad)``, all on
one pinned core in the same run; the convnet also against the GEMM floor of its own im2col
formulation (the same matrix products, timed alone on ready operands).

    taskset -c 1 python -m bench.convnet_speed            # about a minute
    taskset -c 1 python -m bench.convnet_speed --quick
    taskset -c 1 python -m bench.convnet_speed --keep-memory

``--keep-memory`` calls ``numeric.keep_freed_memory()`` first, as ``numeric.train`` does: no
variant's arrays are faulted in again on each call (torch's and JAX's included).

The machine is shared and noisy: read the ratios (measured in the same run), not the times.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from bench import pin_threads

CONVNET = """
from derive import network
from derive.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
model = network((28, 28, 1), [Conv2D(32, 3, "relu"), MaxPool2D(2), Conv2D(64, 3, "relu"),
                              MaxPool2D(2), Flatten(), Dropout(0.5), Dense(10, "softmax")], "cce")
"""


def _args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    keep = "numeric.keep_freed_memory() first, as numeric.train does"
    parser.add_argument("--keep-memory", action="store_true", help=keep)
    return parser.parse_args(argv)


def _median(fn, repeats: int) -> float:
    fn()  # warm: caches, JAX's compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    args = _args(argv)
    pins = pin_threads(1)
    import jax
    import numpy as np
    import torch

    torch.set_num_threads(1)
    print("thread pins:", ", ".join(f"{k}={v}" for k, v in pins.items()))
    print(f"numpy {np.__version__}, jax {jax.__version__}, torch {torch.__version__}; "
          "machine shared: read ratios\n")  # fmt: skip
    if args.keep_memory:
        from numeric import keep_freed_memory

        print(f"numeric.keep_freed_memory(): {keep_freed_memory()}\n")
    repeats = 5 if args.quick else 15
    _derive_time()
    _convnet(np, jax, torch, repeats)
    _attention(np, jax, torch, repeats)
    return 0


def _derive_time() -> None:
    """Deriving the convnet and printing its kernel, in a fresh process (nothing cached)."""
    code = (
        "import time; t = time.perf_counter()\n" + CONVNET + "model.rules()\n"
        "from numeric.generator.tensor_kernel import tensor_codegen\n"
        "tensor_codegen(model); print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print(f"derive + codegen of the MNIST convnet (fresh process): {float(out.stdout):.2f} s "
          "(target < 2 s)\n")  # fmt: skip


def _convnet(np, jax, torch, repeats: int) -> None:
    from numeric.generator.tensor_kernel import tensor_kernel
    from numeric.tensor_strategies import sample_batch
    from numeric.verification.tensor_route import jax_cost

    scope = {}
    exec(CONVNET, scope)  # our own text above
    net = scope["model"]
    kernel = tensor_kernel(net)
    params, X, Y, masks = sample_batch(net, 128, seed=0, scale=0.1)
    f32 = {k: v.astype(np.float32) for k, v in params.items()}
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    masks = {k: v.astype(np.float32) for k, v in masks.items()}

    ours = _median(lambda: kernel.loss_and_grads(f32, X, Y, masks), repeats)
    step = jax.jit(jax.value_and_grad(jax_cost(net)))
    jp = {k: jax.numpy.asarray(v) for k, v in f32.items()}
    jx, jy = jax.numpy.asarray(X), jax.numpy.asarray(Y)
    jm = {k: jax.numpy.asarray(v) for k, v in masks.items()}
    jax_t = _median(lambda: jax.block_until_ready(step(jp, jx, jy, jm)), repeats)
    torch_step = _torch_convnet(torch, f32, X, Y, masks)
    torch_t = _median(torch_step, repeats)
    _agree(kernel.loss_and_grads(f32, X, Y, masks), step(jp, jx, jy, jm), torch_step(), np)
    floor = _gemm_floor(net, 128, np, repeats)
    best = min(jax_t, torch_t)
    print("MNIST convnet (Conv 32 3x3 relu, pool 2, Conv 64 3x3 relu, pool 2, dropout, dense 10 "
          "softmax, cce), m=128, float32, loss_and_grads:")  # fmt: skip
    print(
        f"  generated NumPy   {ours * 1e3:8.2f} ms   {ours / best:5.2f}x the faster baseline "
        f"(target <= 1.5x), {ours / floor:5.2f}x its im2col GEMM floor"
    )
    print(f"  JAX jit(v_and_g)  {jax_t * 1e3:8.2f} ms")
    print(f"  torch (eager)     {torch_t * 1e3:8.2f} ms")
    print(f"  im2col GEMM floor {floor * 1e3:8.2f} ms   (the kernel's matrix products alone)\n")


def _torch_convnet(torch, params, X, Y, masks):
    F = torch.nn.functional
    leaves = {
        "W1": torch.from_numpy(params["W1"].transpose(3, 2, 0, 1).copy()),  # OIHW, as torch
        "b1": torch.from_numpy(params["b1"]),
        "W3": torch.from_numpy(params["W3"].transpose(3, 2, 0, 1).copy()),
        "b3": torch.from_numpy(params["b3"]),
        "W7": torch.from_numpy(params["W7"]),
        "b7": torch.from_numpy(params["b7"]),
    }
    for leaf in leaves.values():
        leaf.requires_grad_()
    x = torch.from_numpy(X.transpose(0, 3, 1, 2).copy())  # NCHW: torch's own layout
    y, mask = torch.from_numpy(Y), torch.from_numpy(masks["M6"])

    def step():
        for leaf in leaves.values():
            leaf.grad = None
        a = F.max_pool2d(F.relu(F.conv2d(x, leaves["W1"], leaves["b1"])), 2)
        a = F.max_pool2d(F.relu(F.conv2d(a, leaves["W3"], leaves["b3"])), 2)
        a = a.permute(0, 2, 3, 1).reshape(a.shape[0], -1) * mask / 0.5  # NHWC flatten order
        z = a @ leaves["W7"] + leaves["b7"]
        loss = -(y * torch.log_softmax(z, dim=1)).sum() / x.shape[0]
        loss.backward()
        return loss.item(), {k: v.grad for k, v in leaves.items()}

    return step


def _agree(ours, jax_out, torch_out, np) -> None:
    """The three compute the same loss and gradients (float32 tolerance) before timing counts."""
    (value, grads), (jv, jg) = ours, jax_out
    tv, tg = torch_out
    assert abs(value - float(jv)) < 1e-4 * max(1, abs(value)) and abs(value - tv) < 1e-4 * abs(
        value
    )
    for name, grad in grads.items():
        scale = float(np.abs(grad).max()) + 1e-12
        assert float(np.abs(grad - np.asarray(jg[name])).max()) < 1e-3 * scale, name
        theirs = tg[name].numpy()
        theirs = theirs.transpose(2, 3, 1, 0) if theirs.ndim == 4 else theirs
        assert float(np.abs(grad - theirs).max()) < 1e-3 * scale, name


def _gemm_floor(net, m: int, np, repeats: int) -> float:
    """The matrix products of the im2col formulation, each timed alone on ready float32
    operands of the kernel's shapes and layouts: per conv, ``Z = cols @ W`` and
    ``dW = colsᵀ @ dZ`` (a transposed view), and ``dX_cols = dZ @ Wᵀ`` unless it is the first
    layer; per dense layer ``Z = A @ W``, ``dW = Aᵀ @ dZ``, ``dA = dZ @ Wᵀ``."""
    rng = np.random.default_rng(0)
    gemms = []
    for stage in net.stages:
        layer, first = stage.layer, stage is net.stages[0]
        if hasattr(layer, "kernel"):
            (kh, kw), (_, _, c), (ho, wo, f) = layer.kernel, stage.inputs, stage.outputs
            rows, depth = m * ho * wo, kh * kw * c
            gemms += [
                ((rows, depth), False, (depth, f), False),
                ((rows, depth), True, (rows, f), False),
            ]
            if not first:  # dX's columns, dZ Wᵀ (col2im)
                gemms.append(((rows, f), False, (depth, f), True))
        elif hasattr(layer, "units"):
            (n,), (u,) = stage.inputs, stage.outputs
            gemms += [((m, n), False, (n, u), False), ((m, n), True, (m, u), False)]
            if not first:
                gemms.append(((m, u), False, (n, u), True))
    total = 0.0
    for a_shape, a_t, b_shape, b_t in gemms:
        a = rng.normal(size=a_shape).astype(np.float32)
        b = rng.normal(size=b_shape).astype(np.float32)
        a, b = (a.T if a_t else a), (b.T if b_t else b)
        total += _median(lambda a=a, b=b: a @ b, repeats)
    return total


def _attention(np, jax, torch, repeats: int) -> None:
    from derive import network
    from derive.layers import Dense, MeanOverTime, SelfAttention
    from numeric.generator.tensor_kernel import tensor_kernel
    from numeric.tensor_strategies import sample_batch
    from numeric.verification.tensor_route import jax_cost

    net = network((64, 64), [SelfAttention(64), MeanOverTime(), Dense(10, "softmax")], "cce")
    kernel = tensor_kernel(net)
    params, X, Y, _ = sample_batch(net, 32, seed=0, scale=0.1)
    f32 = {k: v.astype(np.float32) for k, v in params.items()}
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    ours = _median(lambda: kernel.loss_and_grads(f32, X, Y), repeats)
    step = jax.jit(jax.value_and_grad(jax_cost(net)))
    jp = {k: jax.numpy.asarray(v) for k, v in f32.items()}
    jx, jy = jax.numpy.asarray(X), jax.numpy.asarray(Y)
    jax_t = _median(lambda: jax.block_until_ready(step(jp, jx, jy)), repeats)
    value, grads = kernel.loss_and_grads(f32, X, Y)
    jv, jg = step(jp, jx, jy)
    assert abs(value - float(jv)) < 1e-4 * abs(value)
    for name, grad in grads.items():
        assert np.abs(grad - np.asarray(jg[name])).max() < 1e-3 * (np.abs(grad).max() + 1e-12)
    print("one-head self-attention T=64, d=64, d_k=64, mean over time, dense 10 softmax, m=32, "
          "float32:")  # fmt: skip
    print(f"  generated NumPy   {ours * 1e3:8.2f} ms   {ours / jax_t:5.2f}x JAX (target <= 1x)")
    print(f"  JAX jit(v_and_g)  {jax_t * 1e3:8.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
