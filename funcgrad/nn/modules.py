"""PyTorch-style modules: ``torch.nn``'s names, arguments, layouts and initializations over
the math of funcgrad's ``(init, apply)`` layers (one implementation, two faces).

Modules are immutable pytrees (:class:`~funcgrad.nn.module.Module`): build them from a PRNG
``key`` and call them. Layouts are PyTorch's: ``Linear.weight`` is ``(out, in)``, images are
NCHW with OIHW kernels, sequences ``(time, batch, features)`` unless ``batch_first=True``.
Where PyTorch keeps a mode (``model.train()`` / ``model.eval()``), a call takes
``train=False`` (the default, eval) or ``train=True`` with a ``key`` for dropout; layers with
running statistics (``BatchNorm1d/2d``) take and return their state explicitly:
``out, state = bn(x, state, train=True)``.

>>> from funcgrad import random
>>> from funcgrad.nn import modules as nn
>>> k1, k2 = random.split(random.key(0))
>>> model = nn.Sequential(nn.Linear(4, 8, key=k1), nn.ReLU(), nn.Linear(8, 2, key=k2))
>>> model(np.ones((3, 4), np.float32)).shape
(3, 2)
"""
from __future__ import annotations

import inspect
import math

import numpy as np

from .. import numpy as fnp
from .. import random
from ..errors import FuncgradTypeError, FuncgradValueError, ShapeError, at_user_line
from ..primitives.conv import normalize_pair
from . import activations as act
from .layers import check_rate, dense, dropout, embedding, layer_norm, linear_params, torch_uniform
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import Module, combine, count_params, is_array, partition, tree_at
from .pooling import avg_pool, conv2d, max_pool
from .recurrent import gru_cell, lstm_cell, rnn_cell, run_cells, zeros_state

__all__ = [
    "ELU",
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "AvgPool1d",
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "Identity",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool1d",
    "MaxPool2d",
    "Module",
    "MultiheadAttention",
    "PositionalEncoding",
    "RNNCell",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
    "combine",
    "count_params",
    "is_array",
    "partition",
    "tree_at",
]


def _rank(name, x, ranks):
    nd = len(tuple(fnp.asarray(x).shape))
    if nd not in ranks:
        want = " or ".join(map(str, ranks))
        raise ShapeError(at_user_line(f"{name}: expected inputs of rank {want}, got shape {tuple(fnp.asarray(x).shape)}"))
    return nd


# -- dense, convolution, pooling ---------------------------------------------------------------------------
class Linear(Module):
    """``y = x @ weight.T + bias`` on the last axis; ``weight`` is ``(out_features, in_features)``,
    both initialized U(-1/sqrt(in_features), 1/sqrt(in_features)) as in PyTorch."""

    def __init__(self, in_features, out_features, bias=True, *, key, dtype=np.float32):
        self.weight, self.bias = linear_params(key, in_features, out_features, bias, dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)

    def __call__(self, x, *, key=None, train=False):
        return dense(x, self.weight, self.bias, out_in=True)


def _padding(padding, name) -> tuple:
    """A padding of PyTorch's (an int or a pair of ints >= 0) as a pair."""
    pair = (padding, padding) if np.ndim(padding) == 0 else tuple(padding)
    if len(pair) != 2 or not all(isinstance(p, (int, np.integer)) and p >= 0 for p in pair):
        raise FuncgradValueError(at_user_line(
            f"{name}: padding must be an int >= 0, a pair of them, 'same' or 'valid', got {padding!r}"))
    return tuple(int(p) for p in pair)


def _pairs(padding, name):
    """PyTorch padding (an int, a pair, 'same' or 'valid') as conv2d's."""
    if isinstance(padding, str):
        if padding.lower() not in ("same", "valid"):
            raise FuncgradValueError(at_user_line(f"{name}: padding must be an int, a pair, 'same' or 'valid', got {padding!r}"))
        return padding.upper()
    ph, pw = _padding(padding, name)
    return ((ph, ph), (pw, pw))


class Conv2d(Module):
    """2-D convolution of NCHW images with an OIHW ``weight`` (PyTorch's layouts and default
    initialization); ``stride`` and ``padding`` ints or pairs, or padding 'same'/'valid'.
    Computed by funcgrad's NHWC ``conv2d``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, *, key,
                 dtype=np.float32):
        kh, kw = normalize_pair(kernel_size, "kernel_size")
        k1, k2 = random.split(key)
        bound = 1.0 / math.sqrt(in_channels * kh * kw)
        self.weight = torch_uniform(k1, (out_channels, in_channels, kh, kw), bound, dtype)
        self.bias = torch_uniform(k2, (out_channels,), bound, dtype) if bias else None
        self.stride = normalize_pair(stride, "stride")
        self.padding = _pairs(padding, "Conv2d")

    def __call__(self, x, *, key=None, train=False):
        nd = _rank("Conv2d", x, (3, 4))
        x = fnp.asarray(x) if nd == 4 else fnp.expand_dims(x, 0)
        y = conv2d(fnp.transpose(x, (0, 2, 3, 1)), fnp.transpose(self.weight, (2, 3, 1, 0)), self.stride, self.padding)
        if self.bias is not None:
            y = y + self.bias
        y = fnp.transpose(y, (0, 3, 1, 2))
        return y if nd == 4 else y[0]


class Conv1d(Module):
    """1-D convolution of ``(N, C, L)`` signals with an ``(out, in, kernel)`` ``weight``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, *, key,
                 dtype=np.float32):
        k1, k2 = random.split(key)
        bound = 1.0 / math.sqrt(in_channels * int(kernel_size))
        self.weight = torch_uniform(k1, (out_channels, in_channels, int(kernel_size)), bound, dtype)
        self.bias = torch_uniform(k2, (out_channels,), bound, dtype) if bias else None
        self.stride = int(stride)
        self.padding = _pairs(padding if isinstance(padding, str) else (0, int(padding)), "Conv1d")

    def __call__(self, x, *, key=None, train=False):
        nd = _rank("Conv1d", x, (2, 3))
        x = fnp.asarray(x) if nd == 3 else fnp.expand_dims(x, 0)
        w = fnp.expand_dims(fnp.transpose(self.weight, (2, 1, 0)), 0)  # (1, K, I, O)
        y = conv2d(fnp.expand_dims(fnp.transpose(x, (0, 2, 1)), 1), w, (1, self.stride), self.padding)[:, 0]
        if self.bias is not None:
            y = y + self.bias
        y = fnp.transpose(y, (0, 2, 1))
        return y if nd == 3 else y[0]


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = normalize_pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else normalize_pair(stride, "stride")
        self.padding = _padding(padding, type(self).__name__)

    def __call__(self, x, *, key=None, train=False):
        nd = _rank(type(self).__name__, x, (3, 4))
        x = fnp.asarray(x) if nd == 4 else fnp.expand_dims(x, 0)
        y = fnp.transpose(self._pool(fnp.transpose(x, (0, 2, 3, 1)), self.kernel_size, self.stride, self.padding),
                          (0, 3, 1, 2))
        return y if nd == 4 else y[0]


def _max_pool(x, window, stride, padding):
    ph, pw = padding
    return max_pool(x, window, stride, ((ph, ph), (pw, pw)))  # pads with -inf


def _avg_pool(x, window, stride, padding):
    ph, pw = padding  # PyTorch's count_include_pad=True: the zeros of the padding count
    return avg_pool(fnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0))), window, stride)


class MaxPool2d(_Pool2d):
    """Maximum over windows of NCHW images (``stride`` defaults to the window; padding with -inf)."""
    _pool = staticmethod(_max_pool)


class AvgPool2d(_Pool2d):
    """Mean over windows of NCHW images; zero padding counts in the mean (PyTorch's default)."""
    _pool = staticmethod(_avg_pool)


class _Pool1d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = int(kernel_size)
        self.stride = self.kernel_size if stride is None else int(stride)
        self.padding = _padding(padding, type(self).__name__)[0]

    def __call__(self, x, *, key=None, train=False):
        nd = _rank(type(self).__name__, x, (2, 3))
        x = fnp.asarray(x) if nd == 3 else fnp.expand_dims(x, 0)
        img = fnp.expand_dims(fnp.transpose(x, (0, 2, 1)), 1)  # (N, 1, L, C)
        y = self._pool(img, (1, self.kernel_size), (1, self.stride), (0, self.padding))[:, 0]
        y = fnp.transpose(y, (0, 2, 1))
        return y if nd == 3 else y[0]


class MaxPool1d(_Pool1d):
    """Maximum over windows of ``(N, C, L)`` signals."""
    _pool = staticmethod(_max_pool)


class AvgPool1d(_Pool1d):
    """Mean over windows of ``(N, C, L)`` signals (zero padding counts)."""
    _pool = staticmethod(_avg_pool)


class Flatten(Module):
    """Flatten axes ``start_dim`` to ``end_dim`` into one (default: all but the batch)."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def __call__(self, x, *, key=None, train=False):
        x = fnp.asarray(x)
        shape = tuple(x.shape)
        a, b = self.start_dim % len(shape), self.end_dim % len(shape)
        return fnp.reshape(x, shape[:a] + (math.prod(shape[a:b + 1]),) + shape[b + 1:])


# -- regularization and normalization ----------------------------------------------------------------------
class Dropout(Module):
    """With ``train=True`` (and a ``key``), zero each entry with probability ``p`` and scale the
    rest by ``1 / (1 - p)``; the identity with ``train=False`` (PyTorch's ``eval()``)."""

    def __init__(self, p=0.5):
        check_rate("Dropout", p)
        self.p = float(p)

    def __call__(self, x, *, key=None, train=False):
        return dropout(x, self.p, key, train)


class LayerNorm(Module):
    """Normalize over the trailing ``normalized_shape`` axes, then ``* weight + bias``."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=np.float32):
        shape = (int(normalized_shape),) if np.ndim(normalized_shape) == 0 else tuple(int(d) for d in normalized_shape)
        self.normalized_shape, self.eps = shape, float(eps)
        self.weight = np.ones(shape, dtype) if elementwise_affine else None
        self.bias = np.zeros(shape, dtype) if elementwise_affine and bias else None

    def __call__(self, x, *, key=None, train=False):
        n = len(self.normalized_shape)
        if tuple(fnp.asarray(x).shape)[-n:] != self.normalized_shape:
            raise ShapeError(at_user_line(
                f"LayerNorm: inputs of shape {tuple(fnp.asarray(x).shape)} do not end in {self.normalized_shape}"))
        return layer_norm(x, self.weight, self.bias, self.eps, tuple(range(-n, 0)))


class _BatchNorm(Module):
    _ranks = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.weight = np.ones(self.num_features, dtype) if affine else None
        self.bias = np.zeros(self.num_features, dtype) if affine else None
        self.dtype = np.dtype(dtype)

    def init_state(self):
        """The running statistics before any batch: ``{"running_mean": 0, "running_var": 1}``."""
        c = self.num_features
        return {"running_mean": np.zeros(c, self.dtype), "running_var": np.ones(c, self.dtype)}

    def __call__(self, x, state, *, key=None, train=False):
        """``(y, new_state)``. ``train=True``: normalize by the batch's statistics (mean and
        biased variance over every axis but the channels, axis 1) and update the running ones,
        ``r <- (1 - momentum) r + momentum * batch`` (the variance unbiased), as PyTorch's
        ``model.train()``; ``train=False`` (``model.eval()``): normalize by the running
        statistics, and return the state unchanged."""
        x = fnp.asarray(x)
        nd = _rank(type(self).__name__, x, self._ranks)
        if x.shape[1] != self.num_features:
            raise ShapeError(at_user_line(
                f"{type(self).__name__}: expected {self.num_features} channels on axis 1, got shape {tuple(x.shape)}"))
        axes = (0,) + tuple(range(2, nd))
        bshape = (1, self.num_features) + (1,) * (nd - 2)
        if train:
            mean = fnp.mean(x, axis=axes)
            var = fnp.mean(fnp.square(x - fnp.reshape(mean, bshape)), axis=axes)
            n = math.prod(x.shape[a] for a in axes)
            m = self.momentum
            unbiased = var * (n / max(n - 1, 1))
            state = {"running_mean": (1 - m) * state["running_mean"] + m * mean,
                     "running_var": (1 - m) * state["running_var"] + m * unbiased}
        else:
            mean, var = state["running_mean"], state["running_var"]
        y = (x - fnp.reshape(mean, bshape)) / fnp.sqrt(fnp.reshape(var, bshape) + self.eps)
        if self.weight is not None:
            y = y * fnp.reshape(self.weight, bshape) + fnp.reshape(self.bias, bshape)
        return y, state


class BatchNorm1d(_BatchNorm):
    """Batch normalization of ``(N, C)`` or ``(N, C, L)`` inputs; see ``__call__``."""
    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of NCHW images; see ``__call__``."""
    _ranks = (4,)


class Embedding(Module):
    """Rows of a ``(num_embeddings, embedding_dim)`` table for integer ids (init N(0, 1))."""

    def __init__(self, num_embeddings, embedding_dim, *, key, dtype=np.float32):
        self.weight = np.asarray(random.normal(key, (int(num_embeddings), int(embedding_dim)), dtype))

    def __call__(self, ids, *, key=None, train=False):
        return embedding(self.weight, ids)


# -- activations -------------------------------------------------------------------------------------------
class _Activation(Module):
    def __call__(self, x, *, key=None, train=False):
        return self.fn(x)


def _activation(name, fn, doc):
    cls = type(name, (_Activation,), {"fn": staticmethod(fn), "__doc__": doc, "__module__": __name__})
    return cls


ReLU = _activation("ReLU", act.relu, "``max(x, 0)``.")
Tanh = _activation("Tanh", act.tanh, "``tanh(x)``.")
Sigmoid = _activation("Sigmoid", act.sigmoid, "``1 / (1 + exp(-x))``.")
SiLU = _activation("SiLU", act.silu, "``x * sigmoid(x)``.")
Softplus = _activation("Softplus", act.softplus, "``log(1 + exp(x))``.")
Identity = _activation("Identity", lambda x: x, "The input, unchanged.")


class GELU(Module):
    """Gaussian error linear unit: exact (``approximate='none'``, PyTorch's default) or 'tanh'."""

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise FuncgradValueError(at_user_line(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}"))
        self.approximate = approximate

    def __call__(self, x, *, key=None, train=False):
        return act.gelu(x, approximate=self.approximate == "tanh")


class ELU(Module):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""

    def __init__(self, alpha=1.0):
        self.alpha = float(alpha)

    def __call__(self, x, *, key=None, train=False):
        return act.elu(x, self.alpha)


class LeakyReLU(Module):
    """``x`` for x >= 0, ``negative_slope * x`` otherwise."""

    def __init__(self, negative_slope=0.01):
        self.negative_slope = float(negative_slope)

    def __call__(self, x, *, key=None, train=False):
        return act.leaky_relu(x, self.negative_slope)


class Softmax(Module):
    """Softmax along ``dim``."""

    def __init__(self, dim=-1):
        self.dim = int(dim)

    def __call__(self, x, *, key=None, train=False):
        return act.softmax(x, axis=self.dim)


class LogSoftmax(Softmax):
    """Log-softmax along ``dim``."""

    def __call__(self, x, *, key=None, train=False):
        return act.log_softmax(x, axis=self.dim)


# -- containers ----------------------------------------------------------------------------------------------
_KEYWORDS: dict = {}


def _accepts(layer) -> tuple:
    """Which of ``key`` and ``train`` a module's call accepts (a user's ``forward(x)`` may take neither)."""
    cls = type(layer)
    if cls not in _KEYWORDS:
        fn = cls.forward if cls.__call__ is Module.__call__ else cls.__call__
        params = inspect.signature(fn).parameters
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        _KEYWORDS[cls] = tuple(k for k in ("key", "train") if var_kw or k in params)
    return _KEYWORDS[cls]


def _stateful(layer) -> bool:
    return hasattr(layer, "init_state")


class Sequential(Module):
    """Modules applied one after the other; each gets its own ``key``, split from the one
    given. With stateful layers (``BatchNorm``) the call is ``y, state = seq(x, state, ...)``,
    ``state`` from :meth:`init_state` (one entry per layer, None for stateless ones)."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                hint = (" (an (init, apply) layer of funcgrad.nn: use its module form from funcgrad.nn.modules)"
                        if isinstance(layer, tuple) else "")
                raise FuncgradTypeError(at_user_line(
                    f"Sequential: layer {i} is a {type(layer).__name__}, not a Module{hint}"))
        self.layers = list(layers)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def init_state(self):
        """The state of every stateful layer (None for the others)."""
        return tuple(layer.init_state() if _stateful(layer) else None for layer in self.layers)

    def __call__(self, x, state=None, *, key=None, train=False):
        stateful = any(_stateful(layer) for layer in self.layers)
        if stateful and state is None:
            raise FuncgradValueError(at_user_line(
                "Sequential: this model has stateful layers (BatchNorm); call it as y, state = model(x, state, ...) "
                "with state = model.init_state()"))
        keys = [None] * len(self.layers) if key is None else list(random.split(key, len(self.layers)))
        new_state = []
        for i, (layer, k) in enumerate(zip(self.layers, keys)):
            kw = {n: v for n, v in (("key", k), ("train", train)) if n in _accepts(layer)}
            if _stateful(layer):
                x, s = layer(x, state[i], **kw)
                new_state.append(s)
            else:
                x = layer(x, **kw)
                new_state.append(None)
        return (x, tuple(new_state)) if stateful else x


# -- recurrent -------------------------------------------------------------------------------------------
class _Recurrent(Module):
    """Weights in PyTorch's shapes: ``weight_ih`` (gates * hidden, input), ``weight_hh``
    (gates * hidden, hidden) and one ``bias`` (gates * hidden), all U(-1/sqrt(hidden),
    1/sqrt(hidden)); the gates in PyTorch's order. funcgrad's cells have one bias per gate
    (PyTorch has two, ``b_ih + b_hh``); the GRU's candidate gate is ``tanh(x_n + r * (h u_n))``."""

    _gates = 1

    def __init__(self, input_size, hidden_size, bias=True, *, key, dtype=np.float32):
        k1, k2, k3 = random.split(key, 3)
        g, h = self._gates, int(hidden_size)
        bound = 1.0 / math.sqrt(h)
        self.input_size, self.hidden_size = int(input_size), h
        self.weight_ih = torch_uniform(k1, (g * h, input_size), bound, dtype)
        self.weight_hh = torch_uniform(k2, (g * h, h), bound, dtype)
        self.bias = torch_uniform(k3, (g * h,), bound, dtype) if bias else np.zeros(g * h, dtype)

    def _cell_fn(self):
        if self._gates == 1:
            return rnn_cell(act.relu if self.nonlinearity == "relu" else act.tanh)
        return gru_cell if self._gates == 3 else lstm_cell

    def _step(self, x, state):
        p = dense(x, self.weight_ih, self.bias, out_in=True)
        return self._cell_fn()(fnp.transpose(self.weight_hh), state, p)


class RNNCell(_Recurrent):
    """One Elman step: ``h' = tanh(x W_ih^T + h W_hh^T + b)`` (or ``nonlinearity='relu'``)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *, key, dtype=np.float32):
        super().__init__(input_size, hidden_size, bias, key=key, dtype=dtype)
        self.nonlinearity = _nonlinearity(nonlinearity)

    def __call__(self, x, h, *, key=None, train=False):
        return self._step(x, (h,))[0]


def _nonlinearity(name):
    if name not in ("tanh", "relu"):
        raise FuncgradValueError(at_user_line(f"RNN: nonlinearity must be 'tanh' or 'relu', got {name!r}"))
    return name


class GRUCell(_Recurrent):
    """One GRU step (reset, update, candidate gates): ``h' = GRUCell(x, h)``."""
    _gates = 3

    def __call__(self, x, h, *, key=None, train=False):
        return self._step(x, (h,))[0]


class LSTMCell(_Recurrent):
    """One LSTM step (input, forget, cell, output gates): ``(h', c') = LSTMCell(x, (h, c))``."""
    _gates = 4

    def __call__(self, x, hc, *, key=None, train=False):
        return self._step(x, tuple(hc))


class _Layer(_Recurrent):
    """A recurrent layer: ``output, h_n = layer(x, h_0=None)`` (LSTM: ``output, (h_n, c_n)``)
    with ``x`` of shape (time, batch, input), or (batch, time, input) when ``batch_first``;
    ``output`` holds every step's hidden state, ``h_n`` is (1, batch, hidden) as PyTorch's for one
    layer. Compiled as one ``lax.scan``."""

    _states = 1

    def __init__(self, input_size, hidden_size, bias=True, batch_first=False, *, key, dtype=np.float32):
        super().__init__(input_size, hidden_size, bias, key=key, dtype=dtype)
        self.batch_first = bool(batch_first)

    def __call__(self, x, hx=None, *, key=None, train=False):
        x = fnp.asarray(x)
        x = x if self.batch_first else fnp.swapaxes(x, 0, 1)
        state = None
        if hx is not None:
            state = tuple(s[0] for s in (hx if self._states > 1 else (hx,)))
        hs, final = run_cells(type(self).__name__, self._cell_fn(), zeros_state(self._states),
                              fnp.transpose(self.weight_ih), fnp.transpose(self.weight_hh), self.bias, x,
                              self.hidden_size, state=state)
        out = hs if self.batch_first else fnp.swapaxes(hs, 0, 1)
        last = tuple(fnp.expand_dims(s, 0) for s in final)
        return out, (last if self._states > 1 else last[0])


class RNN(_Layer):
    """Elman RNN layer (one layer; see ``_Layer``); ``nonlinearity`` 'tanh' or 'relu'."""

    def __init__(self, input_size, hidden_size, nonlinearity="tanh", bias=True, batch_first=False, *, key,
                 dtype=np.float32):
        super().__init__(input_size, hidden_size, bias, batch_first, key=key, dtype=dtype)
        self.nonlinearity = _nonlinearity(nonlinearity)


class GRU(_Layer):
    """GRU layer (one layer; see ``_Layer``)."""
    _gates = 3


class LSTM(_Layer):
    """LSTM layer (one layer; see ``_Layer``): ``output, (h_n, c_n) = lstm(x, (h_0, c_0))``."""
    _gates, _states = 4, 2


# the attention modules build on Linear and LayerNorm above
from .transformer import (
    MultiheadAttention,
    PositionalEncoding,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
)
