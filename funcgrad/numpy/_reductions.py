"""Reductions and cumulative functions with NumPy's axis/keepdims/dtype rules."""
from __future__ import annotations

import numpy as np

from .. import primitives as P
from ..errors import FuncgradValueError, at_user_line
from ._ufuncs import multiply, sqrt, subtract, true_divide
from ._util import asarray_arg, cast, dtype_of, normalize_axes, normalize_axis, shape_of


def _prep(a):
    a = asarray_arg(a)
    if isinstance(a, (int, float, bool)):
        a = np.asarray(a)
    return a


def _keep(out, shape, axes, keepdims):
    if not keepdims:
        return out
    return P.reshape(out, tuple(1 if i in axes else d for i, d in enumerate(shape)))


def _sum_dtype(dt):
    dt = np.dtype(dt)
    if dt.kind == "b" or (dt.kind == "i" and dt.itemsize < 8):
        return np.dtype(np.int64)
    if dt.kind == "u" and dt.itemsize < 8:
        return np.dtype(np.uint64)
    return dt


def sum(a, axis=None, dtype=None, out=None, keepdims=False):  # noqa: A001
    """``numpy.sum``; small integer and bool inputs accumulate in int64 as in NumPy."""
    a = _prep(a)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape), "sum")
    a = cast(a, dtype if dtype is not None else _sum_dtype(dtype_of(a)))
    return _keep(P.reduce_sum(a, axes), shape, axes, keepdims)


def prod(a, axis=None, dtype=None, out=None, keepdims=False):
    a = _prep(a)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape), "prod")
    a = cast(a, dtype if dtype is not None else _sum_dtype(dtype_of(a)))
    if not axes:
        return a
    return _keep(P.reduce_prod(a, axes), shape, axes, keepdims)


def _extremum(reducer, name):
    def f(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        a = _prep(a)
        shape = shape_of(a)
        axes = normalize_axes(axis, len(shape), name)
        if any_zero(shape, axes):
            raise FuncgradValueError(at_user_line(f"{name}: zero-size array along a reduced axis "
                                                  f"(shape {shape}) has no identity"))
        if not axes:
            return a
        return _keep(reducer(a, axes), shape, axes, keepdims)

    f.__name__ = name
    return f


max = _extremum(P.reduce_max, "max")  # noqa: A001
min = _extremum(P.reduce_min, "min")  # noqa: A001
amax = max
amin = min


def mean(a, axis=None, dtype=None, out=None, keepdims=False):
    a = _prep(a)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape), "mean")
    n = 1
    for i in axes:
        n *= shape[i]
    dt = dtype or (dtype_of(a) if dtype_of(a).kind == "f" else np.float64)
    s = sum(cast(a, dt), axes, keepdims=keepdims)
    return true_divide(s, float(n)) if n else true_divide(s, np.asarray(np.nan, dt))


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    a = _prep(a)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape), "var")
    n = 1
    for i in axes:
        n *= shape[i]
    m = mean(a, axes, dtype, keepdims=True)
    d = subtract(cast(a, dtype_of(m)), m)
    return true_divide(sum(multiply(d, d), axes, keepdims=keepdims), float(n - ddof))


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    return sqrt(var(a, axis, dtype, ddof=ddof, keepdims=keepdims))


def _arg(prim, name):
    def f(a, axis=None, out=None, keepdims=False):
        a = _prep(a)
        if axis is None:
            ndim = len(shape_of(a))
            a = P.reshape(a, (int(np.prod(shape_of(a), dtype=np.int64)),))
            if keepdims:
                return P.reshape(f(a, 0), (1,) * ndim)
            axis = 0
        shape = shape_of(a)
        ax = normalize_axis(int(axis), len(shape), name)
        if shape[ax] == 0:
            raise FuncgradValueError(f"{name}: attempt to get {name} of an empty sequence")
        res = prim.bind(a, axis=ax)
        return _keep(res, shape, (ax,), keepdims)

    f.__name__ = name
    return f


argmax = _arg(P.argmax_p, "argmax")
argmin = _arg(P.argmin_p, "argmin")


def all(a, axis=None, keepdims=False):  # noqa: A001
    a = cast(_prep(a), bool)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape), "all")
    if not axes:
        return a
    if any_zero(shape, axes):
        return np.ones(_empty_reduced_shape(shape, axes, keepdims), bool)
    return _keep(P.reduce_min(a, axes), shape, axes, keepdims)


def any(a, axis=None, keepdims=False):  # noqa: A001
    a = cast(_prep(a), bool)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape), "any")
    if not axes:
        return a
    if any_zero(shape, axes):
        return np.zeros(_empty_reduced_shape(shape, axes, keepdims), bool)
    return _keep(P.reduce_max(a, axes), shape, axes, keepdims)


def _empty_reduced_shape(shape, axes, keepdims):
    return tuple(1 if i in axes else d for i, d in enumerate(shape) if keepdims or i not in axes)


def any_zero(shape, axes):
    for i in axes:
        if shape[i] == 0:
            return True
    return False


def _cum(prim_fn, name):
    def f(a, axis=None, dtype=None):
        a = _prep(a)
        if axis is None:
            a = P.reshape(a, (int(np.prod(shape_of(a), dtype=np.int64)),))
            axis = 0
        ax = normalize_axis(int(axis), len(shape_of(a)), name)
        a = cast(a, dtype if dtype is not None else _sum_dtype(dtype_of(a)))
        return prim_fn(a, ax)

    f.__name__ = name
    return f


cumsum = _cum(P.cumsum, "cumsum")
cumprod = _cum(P.cumprod, "cumprod")
