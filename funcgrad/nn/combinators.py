"""Combinators that build a model from layers.

>>> from funcgrad import nn, random
>>> init, apply = nn.serial(nn.Dense(16), nn.Relu, nn.Dense(2))
>>> out_shape, params = init(random.key(0), (-1, 4))
>>> out_shape
(-1, 2)
"""
from __future__ import annotations

from .. import random
from ..errors import FuncgradValueError, at_user_line
from .layers import Layer

__all__ = ["parallel", "serial"]


def _subkeys(key, n):
    return [None] * n if key is None else list(random.split(key, n))


def serial(*layers: Layer) -> Layer:
    """Apply ``layers`` one after the other; params are a tuple, one entry per layer.
    Each layer gets its own key, split from the one given."""
    def init(key, input_shape):
        params = []
        for layer, k in zip(layers, _subkeys(key, len(layers))):
            input_shape, p = layer.init(k, input_shape)
            params.append(p)
        return input_shape, tuple(params)

    def apply(params, x, *, key=None, train=False):
        _check_count("serial", params, layers)
        for layer, p, k in zip(layers, params, _subkeys(key, len(layers))):
            x = layer.apply(p, x, key=k, train=train)
        return x

    return Layer(init, apply)


def parallel(*layers: Layer) -> Layer:
    """Apply layer ``i`` to input ``i`` of a sequence of inputs; returns a tuple."""
    def init(key, input_shape):
        _check_count("parallel", input_shape, layers, "input shapes")
        outs = [layer.init(k, s) for layer, k, s in zip(layers, _subkeys(key, len(layers)), input_shape)]
        return tuple(o[0] for o in outs), tuple(o[1] for o in outs)

    def apply(params, xs, *, key=None, train=False):
        _check_count("parallel", params, layers)
        _check_count("parallel", xs, layers, "inputs")
        return tuple(layer.apply(p, x, key=k, train=train)
                     for layer, p, x, k in zip(layers, params, xs, _subkeys(key, len(layers))))

    return Layer(init, apply)


def _check_count(op, items, layers, what="params"):
    if len(items) != len(layers):
        raise FuncgradValueError(at_user_line(f"{op}: {len(layers)} layers but {len(items)} {what}"))
