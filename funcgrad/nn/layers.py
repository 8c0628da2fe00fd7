"""Stateless layers: each is a pair ``(init, apply)``.

``init(key, input_shape) -> (output_shape, params)`` (the batch dimension may
be -1) and ``apply(params, inputs, *, key=None, train=False) -> outputs``.

>>> from funcgrad import random
>>> init, apply = Dense(3)
>>> out_shape, params = init(random.key(0), (-1, 5))
>>> out_shape
(-1, 3)
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .. import numpy as fnp
from .. import random
from ..core.trace import Tracer
from ..errors import FuncgradTypeError, FuncgradValueError, ShapeError, at_user_line
from ..primitives.conv import normalize_pair
from ..primitives.linalg import dot_general
from . import activations as act
from . import initializers as inits
from .pooling import avg_pool, conv2d, max_pool, pool_output_shape

__all__ = [
    "AvgPool",
    "Conv",
    "Dense",
    "Dropout",
    "Elu",
    "Embedding",
    "Flatten",
    "Gelu",
    "Lambda",
    "Layer",
    "LayerNorm",
    "LeakyRelu",
    "LogSoftmax",
    "MaxPool",
    "Relu",
    "Sigmoid",
    "Silu",
    "Softmax",
    "Softplus",
    "Tanh",
]


class Layer(NamedTuple):
    """A layer: ``init(key, input_shape) -> (output_shape, params)`` and
    ``apply(params, inputs, *, key=None, train=False) -> outputs``."""

    init: Callable
    apply: Callable


def _rank_check(op, shape, rank):
    if len(shape) != rank:
        raise ShapeError(at_user_line(f"{op}: expected inputs of rank {rank}, got input shape {tuple(shape)}"))


# -- the math of the layers, shared by their (init, apply) pairs and their modules (module.py) --
def dense(x, w, b=None, out_in=False):
    """``x @ w + b`` on the last axis (``b`` may be None); ``out_in``: ``w`` is stored
    ``(out, in)`` (PyTorch's layout), and the product is ``x @ w.T``, one ``dot_general``
    contracting both last axes (no transposed copy of ``w`` in the step or its gradient)."""
    if out_in:
        x = fnp.asarray(x)
        lead = "abcdefgh"[:x.ndim - 1]
        y = dot_general(x, w, f"{lead}i,oi->{lead}o")
    else:
        y = fnp.matmul(x, w)
    return y if b is None else y + b


def torch_uniform(key, shape, bound, dtype):
    """PyTorch's default initialization: U(-bound, bound), usually ``bound = 1 / sqrt(fan_in)``."""
    return np.asarray(random.uniform(key, tuple(shape), dtype, -bound, bound))


def linear_params(key, in_features, out_features, bias=True, dtype=np.float32):
    """PyTorch's ``Linear`` initialization: ``(weight (out, in), bias)``, U(+-1/sqrt(in_features))."""
    kw, kb = random.split(key)
    bound = 1.0 / math.sqrt(in_features)
    return (torch_uniform(kw, (out_features, in_features), bound, dtype),
            torch_uniform(kb, (out_features,), bound, dtype) if bias else None)


def dropout(x, rate, key, train):
    """Zero each entry with probability ``rate`` and scale the rest by ``1 / (1 - rate)`` when
    ``train``; the identity otherwise."""
    if not train or rate == 0.0:
        return x
    if key is None:
        raise FuncgradValueError(at_user_line(
            "Dropout: training (train=True) needs a PRNG key: pass key=funcgrad.random.key(...)"))
    keep = random.bernoulli(key, 1.0 - rate, tuple(x.shape))
    x = fnp.asarray(x)
    return fnp.where(keep, x / np.asarray(1.0 - rate, x.dtype), 0.0)


def check_rate(name, rate):
    if not 0.0 <= rate < 1.0:
        raise FuncgradValueError(at_user_line(f"{name}: rate must be in [0, 1), got {rate}"))


def layer_norm(x, scale, bias, epsilon, axes=(-1,)):
    """Normalize over ``axes`` to zero mean and unit (biased) variance, then ``* scale + bias``
    (either may be None)."""
    x = fnp.asarray(x)
    mean = fnp.mean(x, axis=axes, keepdims=True)
    centered = x - mean
    var = fnp.mean(fnp.square(centered), axis=axes, keepdims=True)
    y = centered / fnp.sqrt(var + epsilon)
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y


def embedding(table, ids, name="Embedding"):
    """Rows ``table[ids]`` for integer ``ids`` (checked to lie in the table when concrete)."""
    vocab_size = table.shape[0]
    dt = ids.dtype if isinstance(ids, (np.ndarray, Tracer)) else np.asarray(ids).dtype
    if np.dtype(dt).kind not in "iu":
        raise FuncgradTypeError(at_user_line(f"{name}: ids must be integers, got dtype {np.dtype(dt).name}"))
    if not isinstance(ids, Tracer):
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise FuncgradValueError(at_user_line(
                f"{name}: ids must lie in [0, {vocab_size}), got values from {ids.min()} to {ids.max()}"))
    return table[ids]


# -- the (init, apply) layers ----------------------------------------------------------------------------
def Dense(out_dim: int, W_init=None, b_init=inits.zeros) -> Layer:
    """Fully connected layer ``x @ w + b`` on the last axis (params ``{"w", "b"}``).

    >>> _, params = Dense(4).init(random.key(0), (-1, 3))
    >>> params["w"].shape, params["b"].shape
    ((3, 4), (4,))
    """
    W_init = W_init or inits.glorot_normal()

    def init(key, input_shape):
        k1, k2 = random.split(key)
        w = W_init(k1, (input_shape[-1], out_dim))
        return tuple(input_shape[:-1]) + (out_dim,), {"w": w, "b": b_init(k2, (out_dim,))}

    def apply(params, x, *, key=None, train=False):
        return dense(x, params["w"], params["b"])

    return Layer(init, apply)


def Conv(out_chan: int, filter_shape, strides=(1, 1), padding="VALID", W_init=None, b_init=inits.zeros) -> Layer:
    """2-D convolution of NHWC inputs with an HWIO kernel (params ``{"w", "b"}``);
    ``padding`` is 'SAME', 'VALID' or explicit pairs.

    >>> shape, _ = Conv(8, (3, 3), padding="SAME").init(random.key(0), (-1, 28, 28, 1))
    >>> shape
    (-1, 28, 28, 8)
    """
    filter_shape = normalize_pair(filter_shape, "filter_shape")
    strides = normalize_pair(strides, "strides")
    W_init = W_init or inits.glorot_normal()

    def init(key, input_shape):
        _rank_check("Conv", input_shape, 4)
        k1, k2 = random.split(key)
        w = W_init(k1, filter_shape + (input_shape[3], out_chan))
        n, oh, ow, _ = pool_output_shape(input_shape, filter_shape, strides, padding)
        return (n, oh, ow, out_chan), {"w": w, "b": b_init(k2, (out_chan,))}

    def apply(params, x, *, key=None, train=False):
        return conv2d(x, params["w"], strides, padding) + params["b"]

    return Layer(init, apply)


def _pool_layer(fn, name):
    def layer(window_shape, strides=None, padding="VALID") -> Layer:
        window = normalize_pair(window_shape, "window_shape")
        stride = window if strides is None else normalize_pair(strides, "strides")

        def init(key, input_shape):
            _rank_check(name, input_shape, 4)
            return pool_output_shape(input_shape, window, stride, padding), ()

        def apply(params, x, *, key=None, train=False):
            return fn(x, window, stride, padding)

        return Layer(init, apply)

    layer.__name__ = name
    layer.__doc__ = (f"{name} over windows of NHWC inputs (``strides`` default to the window; "
                     "'SAME' or 'VALID' padding); no params.")
    return layer


MaxPool = _pool_layer(max_pool, "MaxPool")
AvgPool = _pool_layer(avg_pool, "AvgPool")


def _flatten_init(key, input_shape):
    rest = input_shape[1:]
    if any(d < 0 for d in rest):
        raise ShapeError(at_user_line(f"Flatten: only the batch dimension may be unknown, got {tuple(input_shape)}"))
    return (input_shape[0], math.prod(rest)), ()


def _flatten_apply(params, x, *, key=None, train=False):
    return fnp.reshape(x, (x.shape[0], -1))


#: Flatten every axis but the first (the batch).
Flatten = Layer(_flatten_init, _flatten_apply)


def Dropout(rate: float) -> Layer:
    """Zero each input with probability ``rate`` and scale the rest by ``1 / (1 - rate)``
    when ``train=True`` (needs ``key``); the identity when ``train=False``.

    >>> _, apply = Dropout(0.5)
    >>> y = apply((), np.ones((2, 4), np.float32), key=random.key(0), train=True)
    """
    check_rate("Dropout", rate)

    def init(key, input_shape):
        return tuple(input_shape), ()

    def apply(params, x, *, key=None, train=False):
        return dropout(x, rate, key, train)

    return Layer(init, apply)


def LayerNorm(epsilon: float = 1e-5, center: bool = True, scale: bool = True) -> Layer:
    """Normalize the last axis to zero mean and unit variance, then scale and shift
    (params ``{"scale", "bias"}`` of the feature size).

    >>> _, params = LayerNorm().init(random.key(0), (-1, 6))
    >>> sorted(params)
    ['bias', 'scale']
    """
    def init(key, input_shape):
        d = input_shape[-1]
        params = {}
        if scale:
            params["scale"] = np.ones((d,), np.float32)
        if center:
            params["bias"] = np.zeros((d,), np.float32)
        return tuple(input_shape), params

    def apply(params, x, *, key=None, train=False):
        return layer_norm(x, params.get("scale"), params.get("bias"), epsilon)

    return Layer(init, apply)


def Embedding(vocab_size: int, features: int, embedding_init=None) -> Layer:
    """Look up rows of a ``(vocab_size, features)`` table for integer ids (params ``{"table"}``).

    >>> shape, _ = Embedding(100, 8).init(random.key(0), (-1, 12))
    >>> shape
    (-1, 12, 8)
    """
    embedding_init = embedding_init or inits.normal(1.0)

    def init(key, input_shape):
        return tuple(input_shape) + (features,), {"table": embedding_init(key, (vocab_size, features))}

    def apply(params, ids, *, key=None, train=False):
        return embedding(params["table"], ids)

    return Layer(init, apply)


def Lambda(fn: Callable, output_shape: Callable | None = None) -> Layer:
    """A parameter-free layer applying ``fn``; ``output_shape(input_shape)`` gives its output
    shape (default: unchanged, as for elementwise functions).

    >>> MeanOverTime = Lambda(lambda x: x.mean(axis=1), lambda s: s[:1] + s[2:])
    """
    def init(key, input_shape):
        return (tuple(output_shape(tuple(input_shape))) if output_shape else tuple(input_shape)), ()

    def apply(params, x, *, key=None, train=False):
        return fn(x)

    return Layer(init, apply)


Relu = Lambda(act.relu)
Gelu = Lambda(act.gelu)
Sigmoid = Lambda(act.sigmoid)
Tanh = Lambda(act.tanh)
Softplus = Lambda(act.softplus)
LeakyRelu = Lambda(act.leaky_relu)
Elu = Lambda(act.elu)
Silu = Lambda(act.silu)
Softmax = Lambda(act.softmax)
LogSoftmax = Lambda(act.log_softmax)
