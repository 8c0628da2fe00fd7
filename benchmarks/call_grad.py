"""C1: ``grad(jit(f))`` against ``jit(grad(f))`` for ``f = sum(tanh(x))`` on 1M float64
elements (and a small MLP loss), to show the ``call`` primitive keeps the jitted function
compiled under ``grad``: reverse mode runs a compiled forward program (outputs and residuals)
and a compiled backward program.

    python -m benchmarks.call_grad [--rounds 15] [--calls 10] [--n 1000000]

The two forms run interleaved (alternating order), ``--calls`` calls per block; printed is each
form's median time and the median of the per-round ratios grad(jit) / jit(grad).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _block(fn, calls):
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def workloads(n):
    import funcgrad as fg
    import funcgrad.numpy as fnp

    x = np.random.default_rng(0).normal(size=n)

    def f(x):
        return fnp.sum(fnp.tanh(x))

    rng = np.random.default_rng(1)
    w1, w2 = rng.normal(size=(64, 128)) * 0.1, rng.normal(size=(128, 10)) * 0.1
    xb = rng.normal(size=(256, 64))

    def mlp(w1):
        return fnp.mean(fnp.tanh(fnp.tanh(xb @ w1) @ w2) ** 2)

    out = {}
    for name, fun, arg in (("tanh-sum 1M", f, x), ("MLP loss", mlp, w1)):
        inner = fg.grad(fg.jit(fun))
        outer = fg.jit(fg.grad(fun))
        np.testing.assert_allclose(inner(arg), outer(arg), rtol=1e-12)
        out[name] = (lambda inner=inner, arg=arg: inner(arg), lambda outer=outer, arg=arg: outer(arg))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--n", type=int, default=1_000_000)
    args = p.parse_args(argv)
    for name, (inner, outer) in workloads(args.n).items():
        ti, to, ratios = [], [], []
        for r in range(args.rounds):
            order = (inner, outer) if r % 2 == 0 else (outer, inner)
            t = {fn: _block(fn, args.calls) for fn in order}
            ti.append(t[inner])
            to.append(t[outer])
            ratios.append(t[inner] / t[outer])
        print(f"{name:12s}  grad(jit(f)) {statistics.median(ti) * 1e3:8.3f} ms   "
              f"jit(grad(f)) {statistics.median(to) * 1e3:8.3f} ms   "
              f"ratio {statistics.median(ratios):.3f}x")


if __name__ == "__main__":
    main()
