"""Reductions and cumulative functions with NumPy's axis/keepdims/dtype rules."""
from __future__ import annotations

import numpy as np

from .. import primitives as P
from ..errors import FuncgradValueError, at_user_line
from ._ufuncs import maximum, minimum, multiply, sqrt, subtract, true_divide
from ._ufuncs import where as _where
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


def _no_out(out, name):
    if out is not None:
        raise FuncgradValueError(at_user_line(
            f"{name}: out= is not supported (funcgrad arrays are immutable); use the returned array"))


def _sum_dtype(dt):
    dt = np.dtype(dt)
    if dt.kind == "b" or (dt.kind == "i" and dt.itemsize < 8):
        return np.dtype(np.int64)
    if dt.kind == "u" and dt.itemsize < 8:
        return np.dtype(np.uint64)
    return dt


def sum(a, axis=None, dtype=None, out=None, keepdims=False):
    """``numpy.sum``; small integer and bool inputs accumulate in int64 as in NumPy."""
    if axis is None and dtype is None and out is None and not keepdims:
        dt = getattr(a, "dtype", None)
        if dt is not None and dt.kind == "f":  # the common case: a float array summed to a scalar
            return P.reduce_sum(a, tuple(range(len(a.shape))))
    _no_out(out, "sum")
    a = _prep(a)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape), "sum")
    a = cast(a, dtype if dtype is not None else _sum_dtype(dtype_of(a)))
    return _keep(P.reduce_sum(a, axes), shape, axes, keepdims)


def prod(a, axis=None, dtype=None, out=None, keepdims=False):
    _no_out(out, "prod")
    a = _prep(a)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape), "prod")
    a = cast(a, dtype if dtype is not None else _sum_dtype(dtype_of(a)))
    if not axes:
        return a
    return _keep(P.reduce_prod(a, axes), shape, axes, keepdims)


def _extremum(reducer, combine, name):
    def f(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        _no_out(out, name)
        a = _prep(a)
        shape = shape_of(a)
        axes = normalize_axes(axis, len(shape), name)
        if initial is not None:  # NumPy casts it to the array's dtype
            initial = np.asarray(initial).astype(dtype_of(a))
        if where is not None:  # masked-out entries take the identity, as in NumPy
            a = _where(where, a, _identity(dtype_of(a), name) if initial is None else initial)
            shape = shape_of(a)
        if any_zero(shape, axes):
            if initial is None:
                raise FuncgradValueError(at_user_line(f"{name}: zero-size array along a reduced axis "
                                                      f"(shape {shape}) has no identity; pass initial="))
            return np.full(_empty_reduced_shape(shape, axes, keepdims), initial, dtype_of(a))
        res = _keep(reducer(a, axes), shape, axes, keepdims) if axes else a
        return res if initial is None else combine(res, initial)

    f.__name__ = name
    return f


def _identity(dt, name):
    """The value that never wins a max (or a min) in dtype ``dt``."""
    big = True if dt.kind == "b" else (np.inf if dt.kind == "f" else np.iinfo(dt).max)
    small = False if dt.kind == "b" else (-np.inf if dt.kind == "f" else np.iinfo(dt).min)
    return np.asarray(small if name == "max" else big, dt)


max = _extremum(P.reduce_max, maximum, "max")
min = _extremum(P.reduce_min, minimum, "min")
amax = max
amin = min


def mean(a, axis=None, dtype=None, out=None, keepdims=False):
    _no_out(out, "mean")
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
    _no_out(out, "var")
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
    _no_out(out, "std")
    return sqrt(var(a, axis, dtype, ddof=ddof, keepdims=keepdims))


def _arg(prim, name):
    def f(a, axis=None, out=None, keepdims=False):
        _no_out(out, name)
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


def _logical_reduction(reducer, empty_value, name):
    def f(a, axis=None, keepdims=False):
        a = cast(_prep(a), bool)
        shape = shape_of(a)
        axes = normalize_axes(axis, len(shape), name)
        if not axes:
            return a
        if any_zero(shape, axes):
            return np.full(_empty_reduced_shape(shape, axes, keepdims), empty_value)
        return _keep(reducer(a, axes), shape, axes, keepdims)

    f.__name__ = name
    f.__doc__ = f"``numpy.{name}`` along ``axis``."
    return f


all = _logical_reduction(P.reduce_min, True, "all")
any = _logical_reduction(P.reduce_max, False, "any")


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
