"""DP1: the DP-SGD training step of ``examples/dp_digits.py`` (per-example gradients by
``vmap(grad)``, clipped, summed, noised, averaged, SGD with momentum) against the non-private
step of the same MLP (64-256-128-10) at the same batch size (gradient of the mean loss, the same
optimizer), both jitted; with JAX installed, the same two steps in JAX for the anchor ratio.

    python -m benchmarks.dp_step [--rounds 30] [--calls 20] [--batch 128]

The steps run interleaved (alternating order), ``--calls`` calls per block; the ratio printed is
the median of the per-round ratios DP / non-private, with each step's median time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

CLIP, NOISE, LR, MOMENTUM = 1.0, 1.2, 0.2, 0.9


def batch_of(size):
    rng = np.random.default_rng(0)
    return rng.normal(size=(size, 64)).astype(np.float32), rng.integers(0, 10, size).astype(np.int32)


def funcgrad_steps(x, y):
    import dp_digits
    import mlp_digits

    import funcgrad as fg
    from funcgrad import nn, optim, privacy, random

    init, apply = mlp_digits.build_model(0.0)
    _, params = init(random.key(0), (-1, 64))

    dp_opt = privacy.dp_sgd(LR, CLIP, NOISE, key=1, momentum=MOMENTUM)
    dp_step = dp_digits.make_step(apply, dp_opt)

    opt = optim.sgd(LR, momentum=MOMENTUM)

    @fg.jit
    def plain_step(params, state, x, y):
        loss, grads = fg.value_and_grad(lambda p: nn.softmax_cross_entropy(apply(p, x), y))(params)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss

    out = {}
    for name, step, state in (("dp", dp_step, dp_opt.init(params)), ("plain", plain_step, opt.init(params))):
        args = (params, state, x, y)
        step(*args)  # compile
        out[name] = (lambda step=step, args=args: step(*args))
    return out, params


def jax_steps(x, y, params):
    """The same two steps in JAX: ``vmap(grad)`` over single examples, global-norm clipping,
    ``jax.random.normal`` noise from a key split every step, SGD with momentum."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return {}

    params = [{k: jnp.asarray(v) for k, v in p.items()} for p in params if p]

    def apply(params, x):
        for i, p in enumerate(params):
            x = x @ p["w"] + p["b"]
            if i < len(params) - 1:
                x = jax.nn.relu(x)
        return x

    def loss_fn(params, x, y):
        logp = jax.nn.log_softmax(apply(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def momentum_update(params, trace, grads):
        trace = jax.tree_util.tree_map(lambda g, t: g + MOMENTUM * t, grads, trace)
        return jax.tree_util.tree_map(lambda p, t: p - LR * t, params, trace), trace

    @jax.jit
    def dp_step(params, trace, key, x, y):
        per_example = jax.vmap(jax.grad(lambda p, xi, yi: loss_fn(p, xi[None], yi[None])),
                               in_axes=(None, 0, 0))(params, x, y)
        leaves = jax.tree_util.tree_leaves(per_example)
        norms = jnp.sqrt(sum(jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in leaves))
        factors = CLIP / jnp.maximum(norms, CLIP)
        key, noise_key = jax.random.split(key)
        flat, treedef = jax.tree_util.tree_flatten(per_example)
        keys = jax.random.split(noise_key, len(flat))
        clipped_sums = [jnp.sum(g * factors.reshape((-1,) + (1,) * (g.ndim - 1)), axis=0) for g in flat]
        noised = [(s + NOISE * CLIP * jax.random.normal(k, s.shape)) / len(y) for s, k in zip(clipped_sums, keys)]
        params, trace = momentum_update(params, trace, jax.tree_util.tree_unflatten(treedef, noised))
        return params, trace, key

    @jax.jit
    def plain_step(params, trace, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        params, trace = momentum_update(params, trace, grads)
        return params, trace, loss

    trace = jax.tree_util.tree_map(jnp.zeros_like, params)
    xj, yj, key = jnp.asarray(x), jnp.asarray(y), jax.random.PRNGKey(1)
    dp = lambda: jax.block_until_ready(dp_step(params, trace, key, xj, yj))
    plain = lambda: jax.block_until_ready(plain_step(params, trace, xj, yj))
    dp(), plain()  # compile
    return {"jax dp": dp, "jax plain": plain}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args(argv)
    x, y = batch_of(args.batch)
    steps, params = funcgrad_steps(x, y)
    steps.update(jax_steps(x, y, params))
    runs = list(steps.items())
    times: dict = {name: [] for name, _ in runs}
    for r in range(args.rounds):
        for name, call in runs if r % 2 else runs[::-1]:
            t0 = time.perf_counter()
            for _ in range(args.calls):
                call()
            times[name].append((time.perf_counter() - t0) / args.calls)
    med = {n: statistics.median(v) * 1e3 for n, v in times.items()}

    def ratio(a, b):
        return statistics.median(u / v for u, v in zip(times[a], times[b]))

    dp = ratio("dp", "plain")
    print(f"DP1 step, batch {args.batch}: non-private {med['plain']:.2f} ms, DP-SGD {med['dp']:.2f} ms; "
          f"DP / non-private {dp:.2f}x (median of {args.rounds} interleaved rounds)")
    if "jax dp" in times:
        print(f"    jax: non-private {med['jax plain']:.2f} ms, DP-SGD {med['jax dp']:.2f} ms; "
              f"DP / non-private {ratio('jax dp', 'jax plain'):.2f}x; funcgrad DP / jax DP {ratio('dp', 'jax dp'):.2f}x")
    return dp


if __name__ == "__main__":
    main()
