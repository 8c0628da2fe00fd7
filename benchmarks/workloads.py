"""The workloads B1-B4, B6 and B7 (``transformer.py``) of BENCHMARKS.md, each implemented for
funcgrad and its peers.

Every ``bN(size)`` returns ``{implementation: zero-argument callable}``; one call is one unit
of work (a training step, a gradient, a whole training run). Implementations whose library is
not installed are left out. ``LIMIT[bN]`` names the handwritten implementation that funcgrad
is compared with, ``REFERENCE[bN]`` the peer of the target ratio.
"""
from __future__ import annotations

import importlib.util
import itertools

import numpy as np

from .transformer import b7

REFERENCE = {"B1": "jax", "B2": "jax", "B3": "jax", "B4": "autograd", "B6": "jax", "B7": "jax"}
LIMIT = {"B1": "numpy", "B2": "numba", "B3": "numba", "B6": "numpy"}


def have(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# -- B1: MLP 784-512-512-10, ReLU, softmax cross-entropy, batch 128, float32, SGD step ------------
def _mlp_data(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for m, n in itertools.pairwise(sizes):
        params.append((rng.normal(0, 1 / np.sqrt(m), (m, n)).astype(np.float32), np.zeros(n, np.float32)))
    x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], batch)
    onehot = np.eye(sizes[-1], dtype=np.float32)[labels]
    return params, x, onehot


def _xent(xp, logits, onehot, logsumexp):
    return -xp.mean(xp.sum(onehot * (logits - logsumexp(logits)[:, None]), axis=1))


def mlp_loss(xp, act, logsumexp=None):
    """The B1 (ReLU, softmax cross-entropy) or B2 (tanh, MSE) loss written against ``xp``."""
    def loss(p, x, y):
        h = x
        for i, (w, b) in enumerate(p):
            h = h @ w + b
            if i < len(p) - 1:
                h = xp.maximum(h, 0.0) if act == "relu" else xp.tanh(h)
        if act == "relu":
            return _xent(xp, h, y, logsumexp)
        return xp.mean((h - y) ** 2)
    return loss


def sgd_step(value_and_grad, loss, lr):
    """``step(params, x, y) -> (new params, loss)`` for a list of (w, b) pairs."""
    def step(p, x, y):
        val, g = value_and_grad(loss)(p, x, y)
        return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(p, g)], val
    return step


def funcgrad_step(act, lr):
    import funcgrad as fg
    import funcgrad.numpy as fnp
    from funcgrad.scipy.special import logsumexp

    return fg.jit(sgd_step(fg.value_and_grad, mlp_loss(fnp, act, lambda z: logsumexp(z, axis=1)), lr))


def jax_step(act, lr):
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    return jax.jit(sgd_step(jax.value_and_grad, mlp_loss(jnp, act, lambda z: logsumexp(z, axis=1)), lr))


def _mlp_impls(act, params, x, y, lr, limit=None):
    impls = {"funcgrad": _stepper(funcgrad_step(act, lr), params, x, y)}
    if have("jax"):
        impls["jax"] = _stepper(jax_step(act, lr), params, x, y, block=act == "relu")
    if limit is not None:
        impls["numba"] = limit
    impls["numpy"] = _stepper(lambda p, x, y: _np_mlp_step(p, x, y, lr, act), params, x, y)
    if have("autograd"):
        impls["autograd"] = _autograd_stepper(params, x, y, lr, act)
    return impls


def b1(quick=False):
    params, x, y = _mlp_data((784, 512, 512, 10), 128)
    return _mlp_impls("relu", params, x, y, 0.01)


def _stepper(step, params, x, y, block=False):
    state = {"p": params}

    def run():
        p, loss = step(state["p"], x, y)
        state["p"] = p
        float(loss) if not block else float(loss.block_until_ready())

    return run


def _np_mlp_step(params, x, y, lr, act):
    hs, h = [x], x
    for i, (w, b) in enumerate(params):
        z = h @ w + b
        if i < len(params) - 1:
            h = np.maximum(z, 0.0) if act == "relu" else np.tanh(z)
            hs.append(h)
        else:
            h = z
    n = x.shape[0]
    if act == "relu":
        m = h.max(axis=1, keepdims=True)
        e = np.exp(h - m)
        s = e.sum(axis=1, keepdims=True)
        loss = -np.mean(np.sum(y * (h - m - np.log(s)), axis=1))
        g = (e / s - y) / n
    else:
        d = h - y
        loss = np.mean(d * d)
        g = (2.0 / d.size) * d
    g = g.astype(np.float32)
    new = [None] * len(params)
    for i in range(len(params) - 1, -1, -1):
        w, b = params[i]
        gw, gb = hs[i].T @ g, g.sum(axis=0)
        if i:
            g = g @ w.T
            g = g * (hs[i] > 0) if act == "relu" else g * (1 - hs[i] * hs[i])
        new[i] = (w - np.float32(lr) * gw, b - np.float32(lr) * gb)
    return new, loss


def _autograd_stepper(params, x, y, lr, act):
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    loss = mlp_loss(anp, act, lambda z: logsumexp(z, axis=1))
    return _stepper(sgd_step(autograd.value_and_grad, loss, lr), params, x, y)


# -- B2: tiny MLP 2-32-32-1, tanh, MSE, batch 16, float32 ----------------------------------------------
def b2(quick=False):
    params, x, _ = _mlp_data((2, 32, 32, 1), 16, seed=1)
    y = np.sin(x[:, :1] * 3).astype(np.float32)
    return _mlp_impls("tanh", params, x, y, 0.01, limit=_numba_b2(params, x, y, 0.01))


def _numba_b2(params, x, y, lr):
    from .handwritten import tiny_mlp_step

    flat = [a for wb in params for a in wb]
    state = {"p": flat}
    lr32 = np.float32(lr)
    tiny_mlp_step(*flat, x, y, lr32)

    def run():
        *p, loss = tiny_mlp_step(*state["p"], x, y, lr32)
        state["p"] = p
        float(loss)

    return run


# -- B3: grad of sum(tanh(x) exp(-x^2) + 0.5 sin(3x)), x float64 of 10,000,000 --------------------------
def b3(quick=False):
    n = 1_000_000 if quick else 10_000_000
    x = np.random.default_rng(2).uniform(-3, 3, n)
    impls = {}
    import funcgrad as fg
    import funcgrad.numpy as fnp

    g = fg.jit(fg.grad(lambda x: fnp.sum(fnp.tanh(x) * fnp.exp(-x ** 2) + 0.5 * fnp.sin(3 * x))))
    impls["funcgrad"] = lambda: g(x)
    if have("jax"):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        jg = jax.jit(jax.grad(lambda x: jnp.sum(jnp.tanh(x) * jnp.exp(-x ** 2) + 0.5 * jnp.sin(3 * x))))
        xj = jnp.asarray(x)
        impls["jax"] = lambda: jg(xj).block_until_ready()

    from .handwritten import b3_grad_loop

    impls["numba"] = lambda: b3_grad_loop(x)

    def by_hand():
        t, e = np.tanh(x), np.exp(-x * x)
        return (1 - t * t) * e - 2 * x * t * e + 1.5 * np.cos(3 * x)

    impls["numpy"] = by_hand
    return impls


# -- B4: eager grad of sum(sin(x)^2 + cos(x) x), x float64 of 100 -----------------------------------------
def b4(quick=False):
    x = np.linspace(-2, 2, 100)
    impls = {}
    import funcgrad as fg
    import funcgrad.numpy as fnp

    fgg = fg.grad(lambda x: fnp.sum(fnp.sin(x) ** 2 + fnp.cos(x) * x))
    impls["funcgrad"] = lambda: fgg(x)
    if have("autograd"):
        import autograd
        import autograd.numpy as anp

        ag = autograd.grad(lambda x: anp.sum(anp.sin(x) ** 2 + anp.cos(x) * x))
        impls["autograd"] = lambda: ag(x)
    if have("jax"):
        import jax
        import jax.numpy as jnp

        jgrad = jax.grad(lambda x: jnp.sum(jnp.sin(x) ** 2 + jnp.cos(x) * x))
        impls["jax (no jit)"] = lambda: jgrad(x).block_until_ready()
    return impls


# -- B6: logistic regression 10,000 x 100 float64, 200 full-batch gradient steps ------------------------
def _logreg_data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(10_000, 100))
    w_true = rng.normal(size=100)
    y = (X @ w_true + rng.normal(size=10_000) > 0).astype(np.float64)
    return X, y


def b6(quick=False):
    X, y = _logreg_data()
    steps, lr = 200, 0.5
    impls = {}
    import funcgrad as fg
    import funcgrad.numpy as fnp

    def fg_loss(w, X, y):
        z = X @ w
        return fnp.mean(fnp.logaddexp(0.0, z) - y * z)

    fg_step = fg.jit(lambda w, X, y: w - lr * fg.grad(fg_loss)(w, X, y))

    def fg_run():
        w = np.zeros(100)
        for _ in range(steps):
            w = fg_step(w, X, y)
        return w

    impls["funcgrad"] = fg_run
    if have("jax"):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)

        def j_loss(w, X, y):
            z = X @ w
            return jnp.mean(jnp.logaddexp(0.0, z) - y * z)

        @jax.jit
        def j_train(X, y):
            return jax.lax.fori_loop(0, steps, lambda i, w: w - lr * jax.grad(j_loss)(w, X, y), jnp.zeros(100))

        Xj, yj = jnp.asarray(X), jnp.asarray(y)
        impls["jax"] = lambda: j_train(Xj, yj).block_until_ready()

    def np_run():
        w = np.zeros(100)
        for _ in range(steps):
            p = 1.0 / (1.0 + np.exp(-(X @ w)))
            w = w - lr * ((p - y) @ X) / len(y)
        return w

    impls["numpy"] = np_run
    if have("autograd"):
        import autograd
        import autograd.numpy as anp

        ag = autograd.grad(lambda w: anp.mean(anp.logaddexp(0.0, anp.dot(X, w)) - y * anp.dot(X, w)))

        def ag_run():
            w = np.zeros(100)
            for _ in range(steps):
                w = w - lr * ag(w)
            return w

        impls["autograd"] = ag_run
    return impls


WORKLOADS = {
    "B1": ("MLP 784-512-512-10 SGD step, batch 128, f32", b1),
    "B2": ("tiny MLP 2-32-32-1 SGD step, batch 16, f32", b2),
    "B3": ("jit grad of sum(tanh(x)exp(-x^2)+0.5sin(3x)), 1e7 f64", b3),
    "B4": ("eager grad of sum(sin(x)^2+cos(x)x), 100 f64", b4),
    "B6": ("logistic regression 10000x100 f64, 200 steps", b6),
    "B7": ("2-layer Transformer encoder step, d 128, 4 heads, T 64, batch 32, f32", b7),
}
