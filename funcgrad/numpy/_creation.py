"""Array creation. Constants are NumPy arrays (``Array``: indexable with traced values, with
``.at``); only ``*_like`` of a traced value with a traced fill, and ``array`` of a list holding
traced values, are traced."""
from __future__ import annotations

import numpy as np

from .. import primitives as P
from ..core.trace import Tracer
from ._array import wrap
from ._util import asarray_arg, cast, dtype_of, shape_of


def _dt(dtype, default=np.float64):
    return np.dtype(default if dtype is None else dtype)


def array(object, dtype=None, copy=True, ndmin=0):
    x = asarray_arg(object)
    if isinstance(x, Tracer):
        x = cast(x, dtype) if dtype is not None else x
        return P.reshape(x, (1,) * (ndmin - x.ndim) + x.shape) if ndmin > x.ndim else x
    return wrap(np.array(x, dtype=dtype, copy=copy, ndmin=ndmin))


def asarray(a, dtype=None):
    x = asarray_arg(a)
    if isinstance(x, Tracer):
        return cast(x, dtype) if dtype is not None else x
    return wrap(np.asarray(x, dtype=dtype))


def zeros(shape, dtype=None):
    return wrap(np.zeros(shape, _dt(dtype)))


def ones(shape, dtype=None):
    return wrap(np.ones(shape, _dt(dtype)))


def empty(shape, dtype=None):
    return wrap(np.zeros(shape, _dt(dtype)))


def full(shape, fill_value, dtype=None):
    if isinstance(fill_value, Tracer):
        v = cast(fill_value, dtype) if dtype is not None else fill_value
        return P.broadcast_to(v, tuple(np.atleast_1d(shape)) if not isinstance(shape, tuple) else shape)
    return wrap(np.full(shape, fill_value, dtype))


def zeros_like(a, dtype=None):
    return wrap(np.zeros(shape_of(a), dtype or dtype_of(a)))


def ones_like(a, dtype=None):
    return wrap(np.ones(shape_of(a), dtype or dtype_of(a)))


def empty_like(a, dtype=None):
    return zeros_like(a, dtype)


def full_like(a, fill_value, dtype=None):
    dt = dtype or dtype_of(a)
    if isinstance(fill_value, Tracer):
        return P.broadcast_to(cast(fill_value, dt), shape_of(a))
    return wrap(np.full(shape_of(a), fill_value, dt))


def eye(N, M=None, k=0, dtype=None):
    return wrap(np.eye(N, M, k, dtype=_dt(dtype)))


def identity(n, dtype=None):
    return wrap(np.identity(n, dtype=_dt(dtype)))


def arange(start, stop=None, step=None, dtype=None):
    return wrap(np.arange(start, stop, step, dtype=dtype))


def linspace(start, stop, num=50, endpoint=True, dtype=None):
    if isinstance(start, Tracer) or isinstance(stop, Tracer):
        from ._ufuncs import add, multiply, subtract

        div = (num - 1) if endpoint else num
        steps = np.arange(num, dtype=np.float64) / max(div, 1)
        return add(start, multiply(subtract(stop, start), steps))
    return wrap(np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype))


def meshgrid(*xi, indexing="xy"):
    from ._shape import broadcast_to, reshape

    n = len(xi)
    xi = [asarray_arg(x) for x in xi]
    shapes = [shape_of(x)[0] for x in xi]
    if indexing == "xy" and n >= 2:
        shapes[0], shapes[1] = shapes[1], shapes[0]
    out = []
    for i, x in enumerate(xi):
        s = [1] * n
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        s[pos] = shape_of(x)[0]
        out.append(broadcast_to(reshape(x, tuple(s)), tuple(shapes)))
    return out
