"""Recurrent layers (RNN, GRU, LSTM), each a ``lax.scan`` over time.

Inputs are ``(batch, time, features)``. With ``return_sequences=True`` the
output is every step's hidden state ``(batch, time, hidden)``, otherwise the
last one ``(batch, hidden)``. The input projection of all steps is one matmul
before the loop; the scan body does only the recurrent part, so ``jit`` stages
the layer as a single loop whatever the sequence length.

>>> from funcgrad import nn, random
>>> init, apply = nn.GRU(16)
>>> out_shape, params = init(random.key(0), (-1, 20, 3))
>>> out_shape
(-1, 16)
"""
from __future__ import annotations

import numpy as np

from .. import lax, random
from .. import numpy as fnp
from ..errors import FuncgradValueError, ShapeError, at_user_line
from . import activations as act
from . import initializers as inits
from .layers import Layer

__all__ = ["GRU", "LSTM", "RNN", "orthogonal"]


def orthogonal(scale=1.0, dtype=np.float32):
    """Initializer of matrices with orthonormal rows or columns (times ``scale``): the
    default for recurrent weights, whose repeated products then neither blow up nor vanish.

    >>> u = orthogonal()(random.key(0), (8, 8))
    """
    def init(key, shape, dtype=dtype):
        shape = tuple(shape)
        if len(shape) < 2:
            raise FuncgradValueError(at_user_line(f"orthogonal: needs a shape of rank >= 2, got {shape}"))
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = np.asarray(random.normal(key, (max(rows, cols), min(rows, cols)), np.float64))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        q = q if rows >= cols else q.T
        return (scale * q).reshape(shape).astype(dtype)

    return init


def _recurrent_layer(name, gates, cell, init_state, hidden, return_sequences, reverse, W_init, U_init, b_init):
    """A layer scanning ``cell(params, state, x_proj) -> state`` over time; ``x_proj`` is the
    input projected to ``gates * hidden`` features; ``state[0]`` is the hidden state."""
    if int(hidden) != hidden or hidden < 1:
        raise FuncgradValueError(at_user_line(f"{name}: hidden must be a positive int, got {hidden!r}"))
    W_init = W_init or inits.glorot_uniform()
    U_init = U_init or orthogonal()

    def init(key, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(at_user_line(
                f"{name}: expected inputs of shape (batch, time, features), got {tuple(input_shape)}"))
        kw, ku, kb = random.split(key, 3)
        u = np.concatenate([U_init(k, (hidden, hidden)) for k in random.split(ku, gates)], axis=1)
        params = {"w": W_init(kw, (input_shape[-1], gates * hidden)), "u": u,
                  "b": b_init(kb, (gates * hidden,))}
        out = (input_shape[0], input_shape[1], hidden) if return_sequences else (input_shape[0], hidden)
        return out, params

    def apply(params, inputs, *, key=None, train=False):
        hs, _ = run_cells(name, cell, init_state, params["w"], params["u"], params["b"], inputs, hidden, reverse)
        if return_sequences:
            return hs
        return hs[:, 0] if reverse else hs[:, -1]

    return Layer(init, apply)


def run_cells(name, cell, init_state, w, u, b, inputs, hidden, reverse=False, state=None):
    """``(hidden states (batch, time, hidden), final state)`` of ``cell`` scanned over the
    time axis of ``inputs`` (batch, time, features), from ``state`` (default: zeros). The
    math of both the recurrent layers and their modules (``module_layers.py``)."""
    x = fnp.asarray(inputs)
    if x.ndim != 3:
        raise ShapeError(at_user_line(
            f"{name}: expected inputs of shape (batch, time, features), got {tuple(x.shape)}"))
    proj = fnp.matmul(x, w) + b  # every step's input projection at once
    if state is None:
        state = init_state(x.shape[0], hidden, proj.dtype)

    def step(s, p):
        s = cell(u, s, p)
        return s, s[0]

    final, hs = lax.scan(step, tuple(state), fnp.swapaxes(proj, 0, 1), reverse=reverse)
    return fnp.swapaxes(hs, 0, 1), final


def zeros_state(n):
    def state(batch, hidden, dtype):
        return tuple(fnp.zeros((batch, hidden), dtype) for _ in range(n))

    return state


def _split_gates(z, n):
    h = z.shape[-1] // n
    return [z[..., i * h:(i + 1) * h] for i in range(n)]


def RNN(hidden: int, *, return_sequences=False, reverse=False, activation=act.tanh,
        W_init=None, U_init=None, b_init=inits.zeros) -> Layer:
    """Elman RNN: ``h = activation(x @ w + h @ u + b)`` (params ``{"w", "u", "b"}``).

    >>> _, params = RNN(8).init(random.key(0), (-1, 5, 3))
    """
    return _recurrent_layer("RNN", 1, rnn_cell(activation), zeros_state(1), hidden, return_sequences, reverse,
                            W_init, U_init, b_init)


def rnn_cell(activation=act.tanh):
    """The Elman cell ``(u, state, x_proj) -> state``."""
    def cell(u, s, p):
        return (activation(p + fnp.matmul(s[0], u)),)

    return cell


def gru_cell(u, s, p):
    """The GRU cell ``(u, state, x_proj) -> state`` (see :func:`GRU`)."""
    h = s[0]
    xr, xz, xn = _split_gates(p, 3)
    hr, hz, hn = _split_gates(fnp.matmul(h, u), 3)
    r = act.sigmoid(xr + hr)
    z = act.sigmoid(xz + hz)
    n = fnp.tanh(xn + r * hn)
    return ((1.0 - z) * n + z * h,)


def lstm_cell(u, s, p):
    """The LSTM cell ``(u, (h, c), x_proj) -> (h, c)`` (see :func:`LSTM`)."""
    h, c = s
    i, f, g, o = _split_gates(p + fnp.matmul(h, u), 4)
    c = act.sigmoid(f) * c + act.sigmoid(i) * fnp.tanh(g)
    return act.sigmoid(o) * fnp.tanh(c), c


def GRU(hidden: int, *, return_sequences=False, reverse=False, W_init=None, U_init=None,
        b_init=inits.zeros) -> Layer:
    """Gated recurrent unit (gates: reset, update, candidate):

    ``r = σ(x_r + h u_r)``, ``z = σ(x_z + h u_z)``, ``n = tanh(x_n + r · (h u_n))``,
    ``h = (1 - z) · n + z · h`` where ``x_* = x @ w_* + b_*``.

    >>> _, params = GRU(8).init(random.key(0), (-1, 5, 3))
    >>> params["w"].shape, params["u"].shape
    ((3, 24), (8, 24))
    """
    return _recurrent_layer("GRU", 3, gru_cell, zeros_state(1), hidden, return_sequences, reverse,
                            W_init, U_init, b_init)


def _lstm_bias(forget_bias):
    def init(key, shape, dtype=np.float32):
        b = np.zeros(shape, dtype)
        h = shape[0] // 4
        b[h:2 * h] = forget_bias
        return b

    return init


def LSTM(hidden: int, *, return_sequences=False, reverse=False, forget_bias=1.0, W_init=None,
         U_init=None, b_init=None) -> Layer:
    """Long short-term memory (gates: input, forget, cell, output):

    ``c = σ(f) · c + σ(i) · tanh(g)``, ``h = σ(o) · tanh(c)`` with ``[i, f, g, o] = x @ w + h @ u + b``;
    the forget gate's bias starts at ``forget_bias``.

    >>> out_shape, _ = LSTM(8, return_sequences=True).init(random.key(0), (4, 5, 3))
    >>> out_shape
    (4, 5, 8)
    """
    return _recurrent_layer("LSTM", 4, lstm_cell, zeros_state(2), hidden, return_sequences, reverse,
                            W_init, U_init, b_init or _lstm_bias(forget_bias))
