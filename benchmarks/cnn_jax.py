"""The JAX twin of the training step of ``examples/cnn_digits.py`` (F2 of BENCHMARKS.md).

Two 3x3 SAME convolutions (32 and 64 channels) with ReLU, 2x2 max pooling, dropout 0.2, a
dense layer of 128 with ReLU, dropout, a dense layer of 10; softmax cross-entropy on integer
labels; Adam with cosine learning-rate decay; one ``jax.jit`` around the whole step. Needs
``jax`` (``pip install -e ".[bench]"``).
"""
from __future__ import annotations

import time

import numpy as np


def _init(rng):
    def glorot(shape, fan_in, fan_out):
        return (rng.normal(size=shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(np.float32)

    return {"c1": (glorot((3, 3, 1, 32), 9, 9 * 32), np.zeros(32, np.float32)),
            "c2": (glorot((3, 3, 32, 64), 9 * 32, 9 * 64), np.zeros(64, np.float32)),
            "d1": (glorot((4 * 4 * 64, 128), 1024, 128), np.zeros(128, np.float32)),
            "d2": (glorot((128, 10), 128, 10), np.zeros(10, np.float32))}


def make_step(lr=2e-3, decay_steps=1000, rate=0.2):
    import jax
    import jax.numpy as jnp

    dims = ("NHWC", "HWIO", "NHWC")

    def conv(x, w, b):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dims) + b

    def dropout(key, x):
        keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), 0.0)

    def apply(p, x, key):
        k1, k2 = jax.random.split(key)
        h = jax.nn.relu(conv(x, *p["c1"]))
        h = jax.nn.relu(conv(h, *p["c2"]))
        h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = dropout(k1, h).reshape(x.shape[0], -1)
        h = dropout(k2, jax.nn.relu(h @ p["d1"][0] + p["d1"][1]))
        return h @ p["d2"][0] + p["d2"][1]

    def loss(p, x, y, key):
        logp = jax.nn.log_softmax(apply(p, x, key))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def step(p, state, x, y, key):
        m, v, t = state
        val, g = jax.value_and_grad(loss)(p, x, y, key)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        rate_t = lr * 0.5 * (1 + jnp.cos(jnp.pi * jnp.minimum(t, decay_steps) / decay_steps))
        mhat = 1 - 0.9 ** t
        vhat = 1 - 0.999 ** t
        p = jax.tree_util.tree_map(lambda p, m, v: p - rate_t * (m / mhat) / (jnp.sqrt(v / vhat) + 1e-8), p, m, v)
        return p, (m, v, t), val

    return jax.jit(step)


def first_step(batch: int) -> float:
    """Seconds of the first call of the jitted step (tracing, compiling, running)."""
    import jax

    rng = np.random.default_rng(0)
    params = _init(rng)
    zeros = jax.tree_util.tree_map(np.zeros_like, params)
    state = (zeros, zeros, np.int32(0))
    x = rng.random((batch, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, batch).astype(np.int32)
    step = make_step()
    key = jax.random.PRNGKey(1)
    t0 = time.perf_counter()
    float(step(params, state, x, y, key)[2])
    return time.perf_counter() - t0
