"""Parameter initializers with JAX's signatures: ``init(key, shape, dtype=float32)``.

``zeros`` and ``ones`` are initializers; the others are factories that return one.

>>> from funcgrad import random
>>> w = glorot_uniform()(random.key(0), (64, 10))
>>> w.shape, w.dtype
((64, 10), dtype('float32'))
"""
from __future__ import annotations

import math

import numpy as np

from .. import random
from ..errors import FuncgradValueError, at_user_line

__all__ = [
    "constant",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "normal",
    "ones",
    "uniform",
    "variance_scaling",
    "zeros",
]

# stddev of a standard normal truncated to (-2, 2)
_TRUNC_STD = 0.87962566103423978


def zeros(key, shape, dtype=np.float32):
    """All zeros."""
    return np.zeros(shape, dtype)


def ones(key, shape, dtype=np.float32):
    """All ones."""
    return np.ones(shape, dtype)


def constant(value, dtype=np.float32):
    """An initializer filling every entry with ``value``."""
    def init(key, shape, dtype=dtype):
        return np.full(shape, value, dtype)

    return init


def normal(stddev=1e-2, dtype=np.float32):
    """Normal entries with standard deviation ``stddev``.

    >>> b = normal(0.1)(random.key(0), (3,))
    """
    def init(key, shape, dtype=dtype):
        return np.asarray(random.normal(key, shape, dtype) * np.asarray(stddev, dtype))

    return init


def uniform(scale=1e-2, dtype=np.float32):
    """Uniform entries in ``[0, scale)``."""
    def init(key, shape, dtype=dtype):
        return np.asarray(random.uniform(key, shape, dtype, 0.0, scale))

    return init


def _fans(shape, in_axis, out_axis):
    if len(shape) < 2:
        raise FuncgradValueError(at_user_line(
            f"initializers: fan-in/fan-out need a shape of rank >= 2 (inputs, outputs), got {tuple(shape)}"))
    in_ax, out_ax = in_axis % len(shape), out_axis % len(shape)
    receptive = math.prod(d for i, d in enumerate(shape) if i not in (in_ax, out_ax))
    return shape[in_ax] * receptive, shape[out_ax] * receptive


def variance_scaling(scale, mode, distribution, in_axis=-2, out_axis=-1, dtype=np.float32):
    """Entries of variance ``scale / fan`` (``mode``: fan_in, fan_out, fan_avg) drawn
    from a truncated normal, a normal or a uniform ``distribution``.

    >>> w = variance_scaling(2.0, "fan_in", "normal")(random.key(0), (3, 3, 8, 16))
    """
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise FuncgradValueError(f"variance_scaling: mode must be fan_in, fan_out or fan_avg, got {mode!r}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise FuncgradValueError("variance_scaling: distribution must be truncated_normal, normal or uniform, "
                                 f"got {distribution!r}")

    def init(key, shape, dtype=dtype):
        shape = tuple(shape)
        fan_in, fan_out = _fans(shape, in_axis, out_axis)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(fan, 1)
        if distribution == "truncated_normal":
            w = random.truncated_normal(key, -2.0, 2.0, shape, dtype) * np.asarray(
                math.sqrt(variance) / _TRUNC_STD, dtype)
        elif distribution == "normal":
            w = random.normal(key, shape, dtype) * np.asarray(math.sqrt(variance), dtype)
        else:
            w = random.uniform(key, shape, dtype, -1.0, 1.0) * np.asarray(math.sqrt(3.0 * variance), dtype)
        return np.asarray(w)

    return init


def glorot_uniform(in_axis=-2, out_axis=-1, dtype=np.float32):
    """Glorot/Xavier uniform: variance ``2 / (fan_in + fan_out)``."""
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, dtype)


def glorot_normal(in_axis=-2, out_axis=-1, dtype=np.float32):
    """Glorot/Xavier truncated normal: variance ``2 / (fan_in + fan_out)``."""
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis, dtype)


def he_normal(in_axis=-2, out_axis=-1, dtype=np.float32):
    """He/Kaiming truncated normal: variance ``2 / fan_in`` (for ReLU networks)."""
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, dtype)


def he_uniform(in_axis=-2, out_axis=-1, dtype=np.float32):
    """He/Kaiming uniform: variance ``2 / fan_in``."""
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, dtype)


def lecun_normal(in_axis=-2, out_axis=-1, dtype=np.float32):
    """LeCun truncated normal: variance ``1 / fan_in``."""
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, dtype)
