"""G1: the B1 training step on a GPU (``device="cuda"``) against PyTorch and JAX on the same GPU.

One SGD step of the MLP 784-512-512-10 (ReLU, softmax cross-entropy, float32) at batch 4096, the
parameters kept in GPU memory between steps (``fg.device_put``). PyTorch runs eagerly, JAX under
``jax.jit``; each is used only when importable with a GPU. Prints the medians and the ratios
funcgrad / PyTorch (target <= 2) and funcgrad / JAX; ``--json PATH`` writes them.

    python -m benchmarks.gpu              # a few minutes on a GPU
    NUMBA_ENABLE_CUDASIM=1 python -m benchmarks.gpu --tiny   # the code path, on the simulator
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time

import numpy as np

SIZES = (784, 512, 512, 10)
BATCH = 4096
TINY_SIZES = (12, 8, 8, 4)
TINY_BATCH = 8
LR = 0.01


def mlp_data(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    params = [(rng.normal(0, 1 / np.sqrt(m), (m, n)).astype(np.float32), np.zeros(n, np.float32))
              for m, n in itertools.pairwise(sizes)]
    x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    onehot = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    return params, x, onehot


def mlp_loss(xp, logsumexp):
    """The B1 loss written with the array module ``xp`` (funcgrad.numpy or jax.numpy)."""
    def loss(p, x, y):
        h = x
        for i, (w, b) in enumerate(p):
            h = h @ w + b
            if i < len(p) - 1:
                h = xp.maximum(h, 0.0)
        return -xp.mean(xp.sum(y * (h - logsumexp(h, axis=1, keepdims=True)), axis=1))

    return loss


def sgd_step(value_and_grad, loss):
    def step(p, x, y):
        val, g = value_and_grad(loss)(p, x, y)
        return [(w - LR * gw, b - LR * gb) for (w, b), (gw, gb) in zip(p, g)], val

    return step


def _stepper(jitted):
    def step(state):
        p, xd, yd = state
        new, val = jitted(p, xd, yd)
        return (new, xd, yd), val

    return step


# -- the implementations: each returns (step, state, sync(state), read_loss) ------------------
def funcgrad_impl(params, x, y):
    import funcgrad as fg
    import funcgrad.numpy as fnp
    from funcgrad.device import cuda_api
    from funcgrad.scipy.special import logsumexp

    step = _stepper(fg.jit(sgd_step(fg.value_and_grad, mlp_loss(fnp, logsumexp)), device="cuda"))
    cuda = cuda_api()
    state = (fg.device_put(params), fg.device_put(x), fg.device_put(y))
    return step, state, lambda state: cuda.synchronize(), float


def torch_impl(params, x, y):
    import torch

    if not torch.cuda.is_available():
        return None
    dev = torch.device("cuda")
    p = [(torch.tensor(w, device=dev), torch.tensor(b, device=dev)) for w, b in params]
    xd, yd = torch.tensor(x, device=dev), torch.tensor(y, device=dev)

    def step(state):
        p, xd, yd = state
        flat = [t.requires_grad_(True) for wb in p for t in wb]
        h = xd
        for i in range(0, len(flat), 2):
            h = h @ flat[i] + flat[i + 1]
            if i < len(flat) - 2:
                h = torch.relu(h)
        val = -(yd * torch.log_softmax(h, dim=1)).sum(dim=1).mean()
        grads = torch.autograd.grad(val, flat)
        with torch.no_grad():
            new = [(flat[i] - LR * grads[i], flat[i + 1] - LR * grads[i + 1]) for i in range(0, len(flat), 2)]
        return (new, xd, yd), val.detach()

    return step, (p, xd, yd), lambda state: torch.cuda.synchronize(), lambda v: float(v.item())


def jax_impl(params, x, y):
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    if jax.default_backend() != "gpu":
        return None

    step = _stepper(jax.jit(sgd_step(jax.value_and_grad, mlp_loss(jnp, logsumexp))))
    state = (jax.device_put(params), jax.device_put(x), jax.device_put(y))

    return step, state, jax.block_until_ready, lambda v: float(v.block_until_ready())


IMPLS = {"funcgrad": funcgrad_impl, "pytorch": torch_impl, "jax": jax_impl}


def _setup(params, x, y):
    impls, notes = {}, {}
    for name, make in IMPLS.items():
        try:
            made = make(params, x, y)
        except ImportError as exc:
            notes[name] = f"not importable ({exc.name or exc})"
            continue
        if made is None:
            notes[name] = "no GPU backend"
            continue
        impls[name] = made
    return impls, notes


def run(sizes, batch, reps, warmup):
    params, x, y = mlp_data(sizes, batch)
    t0 = time.perf_counter()
    impls, notes = _setup(params, x, y)
    states, first_loss, first_call = {}, {}, {}
    for name, (step, state, sync, read) in impls.items():
        t = time.perf_counter()
        state, val = step(state)
        first_loss[name] = read(val)
        sync(state)
        first_call[name] = time.perf_counter() - t
        for _ in range(warmup):
            state, val = step(state)
        sync(state)
        states[name] = state
    times = {name: [] for name in impls}
    for _ in range(reps):  # interleaved, so drifts of the machine's speed hit every implementation
        for name, (step, _, sync, _) in impls.items():
            sync(states[name])
            t = time.perf_counter()
            states[name], _ = step(states[name])
            sync(states[name])
            times[name].append(time.perf_counter() - t)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    return {"sizes": list(sizes), "batch": batch, "reps": reps, "median_s": medians, "first_call_s": first_call,
            "first_loss": first_loss, "skipped": notes, "setup_s": time.perf_counter() - t0}


def _device_name():
    from funcgrad.device import cuda_api

    cuda = cuda_api()
    if not hasattr(cuda, "get_current_device"):
        return "Numba CUDA simulator"
    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


def report(res):
    med = res["median_s"]
    lines = [(f"G1: MLP {'-'.join(map(str, res['sizes']))} SGD step, batch {res['batch']}, float32, "
             f"{res['reps']} interleaved reps")]
    for name, t in med.items():
        lines.append(f"  {name:9s} median {t * 1e3:9.3f} ms   first call {res['first_call_s'][name]:7.2f} s   "
                     f"loss at step 0 {res['first_loss'][name]:.6f}")
    for name, why in res["skipped"].items():
        lines.append(f"  {name:9s} skipped: {why}")
    for peer in ("pytorch", "jax"):
        if peer in med:
            lines.append(f"  funcgrad / {peer}: {med['funcgrad'] / med[peer]:.2f}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="small sizes (to run the code path on the simulator)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    from funcgrad.device import CudaUnavailableError

    try:
        device = _device_name()
    except CudaUnavailableError as exc:
        print(f"G1 needs a GPU: {exc}", file=sys.stderr)
        return 2
    sizes, batch = (TINY_SIZES, TINY_BATCH) if args.tiny else (SIZES, BATCH)
    reps = args.reps or (3 if args.tiny else 50)
    warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 5)
    res = run(sizes, batch, reps, warmup)
    res["device"] = device
    try:
        from benchmarks.machine import describe

        res["machine"] = describe()
    except ImportError:
        pass
    print(f"device: {device}")
    print(report(res))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
