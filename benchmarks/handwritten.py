"""Handwritten Numba "limits": what a careful programmer writes by hand for B2 and B3
(loops with scalar accumulators, ``fastmath=True``)."""
import numpy as np
from numba import njit


@njit(cache=True, fastmath=True)
def _dense(x, w, b, out):
    for i in range(x.shape[0]):
        for k in range(w.shape[1]):
            acc = b[k]
            for j in range(x.shape[1]):
                acc += x[i, j] * w[j, k]
            out[i, k] = acc


@njit(cache=True, fastmath=True)
def tiny_mlp_step(w1, b1, w2, b2, w3, b3, x, y, lr):
    """One SGD step of the 2-32-32-1 tanh MLP with MSE loss; returns new params and the loss."""
    n = x.shape[0]
    h1 = np.empty((n, w1.shape[1]), np.float32)
    h2 = np.empty((n, w2.shape[1]), np.float32)
    o = np.empty((n, 1), np.float32)
    _dense(x, w1, b1, h1)
    h1 = np.tanh(h1)
    _dense(h1, w2, b2, h2)
    h2 = np.tanh(h2)
    _dense(h2, w3, b3, o)
    d = o - y
    loss = np.float32(0.0)
    for i in range(n):
        loss += d[i, 0] * d[i, 0]
    loss /= n
    g = d * np.float32(2.0 / n)
    gw3 = np.zeros_like(w3)
    for i in range(n):
        for j in range(w3.shape[0]):
            gw3[j, 0] += h2[i, j] * g[i, 0]
    gb3 = np.zeros_like(b3)
    for i in range(n):
        gb3[0] += g[i, 0]
    g2 = np.empty_like(h2)
    for i in range(n):
        for j in range(h2.shape[1]):
            g2[i, j] = g[i, 0] * w3[j, 0] * (np.float32(1.0) - h2[i, j] * h2[i, j])
    g1 = np.empty_like(h1)
    for i in range(n):
        for j in range(h1.shape[1]):
            acc = np.float32(0.0)
            for k in range(h2.shape[1]):
                acc += g2[i, k] * w2[j, k]
            g1[i, j] = acc
    gw2 = np.empty_like(w2)
    for j in range(h1.shape[1]):
        for k in range(h2.shape[1]):
            acc = np.float32(0.0)
            for i in range(n):
                acc += h1[i, j] * g2[i, k]
            gw2[j, k] = acc
    gb2 = np.zeros_like(b2)
    for i in range(n):
        for k in range(h2.shape[1]):
            gb2[k] += g2[i, k]
    gw1 = np.zeros_like(w1)
    gb1 = np.zeros_like(b1)
    for i in range(n):
        for j in range(h1.shape[1]):
            gj = g1[i, j] * (np.float32(1.0) - h1[i, j] * h1[i, j])
            gb1[j] += gj
            for m in range(x.shape[1]):
                gw1[m, j] += x[i, m] * gj
    return (w1 - lr * gw1, b1 - lr * gb1, w2 - lr * gw2, b2 - lr * gb2, w3 - lr * gw3, b3 - lr * gb3, loss)


@njit(cache=True)
def b3_grad_loop(x):
    """d/dx sum(tanh(x) exp(-x^2) + 0.5 sin(3x)) in one pass over x."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        v = x[i]
        t = np.tanh(v)
        e = np.exp(-v * v)
        out[i] = (1.0 - t * t) * e - 2.0 * v * t * e + 1.5 * np.cos(3.0 * v)
    return out
