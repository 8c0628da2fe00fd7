"""R1/R2: an Elman RNN over 100 time steps, written with ``lax.scan`` and jitted, against the same
computation written as one handwritten ``@njit`` loop.

    python -m benchmarks.rnn_scan [--quick] [--json benchmarks/results_rnn_scan.json]

Sizes: 100 steps, batch 32, input 16, hidden 64, float32; ``h = tanh(x_t @ W + h @ U + b)``,
loss = mean of all hidden states squared.

- R1: the forward pass (the loss).
- R2: a training step: ``value_and_grad`` through the scan (backpropagation through time) and
  an SGD update, parameters in and out.

Implementations (run interleaved, medians of repeated blocks, as in ``benchmarks/run.py``):
``funcgrad`` (``jit``, Numba backend: the scan is a compiled loop), ``funcgrad-interpreter``
(the same graph on the NumPy interpreter: one Python round trip per step), ``numba`` (one
handwritten ``@njit`` function: ``np.dot`` (BLAS) for the products, ``np.tanh``, the backward
pass written out by hand with the hidden states kept from the forward pass), ``numba-fast``
(the same with the vectorisable float32 tanh funcgrad's generated code calls, so only the
structure of the code differs) and ``jax`` (``jax.jit`` of ``jax.lax.scan``) when installed. The ratios printed are funcgrad / numba and funcgrad / numba-fast.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from numba import njit

from . import machine
from .run import fmt, measure

STEPS, BATCH, FEATURES, HIDDEN = 100, 32, 16, 64
LR = 0.05


def data(seed=0):
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=(FEATURES, HIDDEN)) / np.sqrt(FEATURES)).astype(np.float32)
    u = (rng.normal(size=(HIDDEN, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32)
    b = (0.1 * rng.normal(size=HIDDEN)).astype(np.float32)
    xs = rng.normal(size=(STEPS, BATCH, FEATURES)).astype(np.float32)
    h0 = np.zeros((BATCH, HIDDEN), np.float32)
    return [w, u, b], xs, h0


# -- handwritten Numba ---------------------------------------------------------------------------
def _handwritten(fast_tanh):
    """``(forward, train_step)`` compiled with ``np.tanh`` or with the float32 tanh funcgrad's
    generated code calls (``vecmath.tanh32``)."""
    from funcgrad.backends.numba_cpu.vecmath import tanh32

    act = tanh32 if fast_tanh else np.tanh

    @njit(cache=True, fastmath=True)
    def run_forward(w, u, b, xs, h0, hs):
        """Fill ``hs[t + 1]`` with the hidden state after step t (``hs[0] = h0``)."""
        hs[0] = h0
        for t in range(xs.shape[0]):
            z = np.dot(xs[t], w) + np.dot(hs[t], u)
            for i in range(z.shape[0]):
                for j in range(z.shape[1]):
                    hs[t + 1, i, j] = act(z[i, j] + b[j])

    @njit(cache=True, fastmath=True)
    def forward(w, u, b, xs, h0):
        hs = np.empty((xs.shape[0] + 1,) + h0.shape, np.float32)
        run_forward(w, u, b, xs, h0, hs)
        acc = np.float32(0.0)
        for v in hs[1:].ravel():
            acc += v * v
        return acc / np.float32(hs[1:].size)

    @njit(cache=True, fastmath=True)
    def train_step(w, u, b, xs, h0, lr):
        steps, batch, hidden = xs.shape[0], h0.shape[0], h0.shape[1]
        hs = np.empty((steps + 1, batch, hidden), np.float32)
        run_forward(w, u, b, xs, h0, hs)
        n = np.float32(steps * batch * hidden)
        loss = np.float32(0.0)
        for v in hs[1:].ravel():
            loss += v * v
        scale = np.float32(2.0) / n
        gw, gu, gb = np.zeros_like(w), np.zeros_like(u), np.zeros_like(b)
        dh = np.zeros((batch, hidden), np.float32)
        dz = np.empty((batch, hidden), np.float32)
        ut = np.ascontiguousarray(u.T)
        for t in range(steps - 1, -1, -1):
            for i in range(batch):
                for j in range(hidden):
                    h = hs[t + 1, i, j]
                    g = (dh[i, j] + scale * h) * (np.float32(1.0) - h * h)
                    dz[i, j] = g
                    gb[j] += g
            gw += np.dot(xs[t].T, dz)
            gu += np.dot(hs[t].T, dz)
            dh = np.dot(dz, ut)
        return w - lr * gw, u - lr * gu, b - lr * gb, loss / n

    return forward, train_step


# -- funcgrad and JAX ------------------------------------------------------------------------------
def rnn_loss(xp, scan):
    """The loss written against a NumPy-like module and a ``scan``."""
    def loss(params, xs, h0):
        w, u, b = params

        def step(h, x):
            h = xp.tanh(x @ w + h @ u + b)
            return h, h

        _, hs = scan(step, h0, xs)
        return xp.mean(hs * hs)

    return loss


def _sgd(value_and_grad, loss):
    def step(params, xs, h0):
        val, grads = value_and_grad(loss)(params, xs, h0)
        return [p - LR * g for p, g in zip(params, grads)], val

    return step


def funcgrad_fns(device="cpu"):
    import funcgrad as fg
    import funcgrad.numpy as fnp
    from funcgrad import lax

    loss = rnn_loss(fnp, lax.scan)
    return fg.jit(loss, device=device), fg.jit(_sgd(fg.value_and_grad, loss), device=device)


def jax_fns():
    import jax
    import jax.numpy as jnp

    loss = rnn_loss(jnp, jax.lax.scan)
    return jax.jit(loss), jax.jit(_sgd(jax.value_and_grad, loss))


def _trainer(step, params, xs, h0, block=False):
    state = {"p": params}

    def run():
        p, loss = step(state["p"], xs, h0)
        state["p"] = p
        float(loss.block_until_ready() if block else loss)

    return run


def _numba_trainer(step, params, xs, h0):
    state = {"p": list(params)}
    lr = np.float32(LR)

    def run():
        *p, loss = step(*state["p"], xs, h0, lr)
        state["p"] = p
        float(loss)

    return run


def workloads(quick=False):
    import importlib.util

    params, xs, h0 = data()
    fg_fwd, fg_train = funcgrad_fns()
    in_fwd, in_train = funcgrad_fns("interpreter")
    fwd = {"funcgrad": lambda: float(fg_fwd(params, xs, h0)),
           "funcgrad-interpreter": lambda: float(in_fwd(params, xs, h0))}
    train = {"funcgrad": _trainer(fg_train, params, xs, h0),
             "funcgrad-interpreter": _trainer(in_train, params, xs, h0)}
    for name, fast in (("numba", False), ("numba-fast", True)):
        nb_fwd, nb_train = _handwritten(fast)
        fwd[name] = lambda f=nb_fwd: float(f(*params, xs, h0))
        train[name] = _numba_trainer(nb_train, params, xs, h0)
    if importlib.util.find_spec("jax") is not None:
        import jax.numpy as jnp

        j_fwd, j_train = jax_fns()
        jp, jx, jh = [jnp.asarray(p) for p in params], jnp.asarray(xs), jnp.asarray(h0)
        fwd["jax"] = lambda: float(j_fwd(jp, jx, jh).block_until_ready())
        train["jax"] = _trainer(j_train, jp, jx, jh, block=True)
    return {"R1": ("Elman RNN forward, 100 steps, batch 32, 16->64, f32", fwd),
            "R2": ("Elman RNN training step (value_and_grad + SGD), same sizes", train)}


def check(atol=1e-4):
    """funcgrad and the handwritten loops agree (loss, one training step)."""
    params, xs, h0 = data()
    fg_fwd, fg_train = funcgrad_fns()
    nb_fwd, nb_train = _handwritten(False)
    assert abs(float(fg_fwd(params, xs, h0)) - float(nb_fwd(*params, xs, h0))) < atol
    new, loss = fg_train(params, xs, h0)
    *nb_new, nb_loss = nb_train(*params, xs, h0, np.float32(LR))
    assert abs(float(loss) - float(nb_loss)) < atol
    for a, b in zip(new, nb_new):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=atol)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--json", default=str(Path(__file__).with_name("results_rnn_scan.json")))
    args = ap.parse_args(argv)
    import funcgrad as fg

    fg.config.update("async_compile", False)  # steady-state timings measure the compiled code
    check()
    reps, target = (3, 0.05) if args.quick else (9, 0.2)
    results, lines = {}, ["| id | workload | funcgrad | peers (median) | funcgrad / numba | funcgrad / numba-fast |",
                          "| --- | --- | --- | --- | --- | --- |"]
    for wid, (title, impls) in workloads(args.quick).items():
        med = measure(impls, reps, target)
        ratios = {k: med["funcgrad"] / med[k] for k in ("numba", "numba-fast", "jax") if k in med}
        results[wid] = {"title": title, "median_s": med, "ratios": ratios}
        print(f"{wid}: " + ", ".join(f"{k} {fmt(v)}" for k, v in med.items()), flush=True)
        peers = " · ".join(f"{k} {fmt(v)}" for k, v in med.items() if k != "funcgrad")
        lines.append(f"| {wid} | {title} | {fmt(med['funcgrad'])} | {peers} | {ratios['numba']:.2f}x | "
                     f"{ratios['numba-fast']:.2f}x |")
    info = machine.describe()
    text = "\n".join(lines)
    print()
    print("Machine: " + machine.summary(info))
    print(text)
    Path(args.json).write_text(json.dumps({"machine": info, "workloads": results, "quick": args.quick,
                                           "table": text}, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
