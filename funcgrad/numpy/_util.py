"""Helpers shared by funcgrad.numpy: argument conversion and dtype promotion."""
from __future__ import annotations

import numpy as np

from .. import primitives as P
from ..core.trace import Tracer
from ..dtypes import SUPPORTED as _OK
from ..dtypes import check_supported
from ..errors import FuncgradIndexError, FuncgradTypeError, FuncgradValueError, at_user_line


def is_traced(x) -> bool:
    return isinstance(x, Tracer)


def asarray_arg(x):
    """An operand as an array or tracer; Python scalars stay weakly typed."""
    if isinstance(x, (Tracer, np.ndarray)):
        return x
    if isinstance(x, (bool, int, float)):
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    if isinstance(x, (list, tuple)) and _contains_tracer(x):
        from ._shape import stack

        return stack([asarray_arg(e) for e in x])
    arr = np.asarray(x)
    if arr.dtype == object:
        raise FuncgradTypeError(at_user_line(f"funcgrad.numpy: cannot convert a {type(x).__name__} to an array"))
    return arr


def _contains_tracer(xs):
    for e in xs:
        if isinstance(e, Tracer):
            return True
        if isinstance(e, (list, tuple)) and _contains_tracer(e):
            return True
    return False


def dtype_of(x):
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return x.dtype
    return np.asarray(x).dtype


def shape_of(x):
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return tuple(x.shape)
    return np.shape(x)


def ndim_of(x):
    return len(shape_of(x))


def cast(x, dtype):
    """``x`` as ``dtype``: tracers get a convert primitive, constants are converted now."""
    dtype = np.dtype(dtype)
    if isinstance(x, Tracer):
        return x if x.dtype == dtype else P.convert(x, dtype)
    if isinstance(x, np.ndarray) and x.dtype == dtype:
        return x
    return np.asarray(x, dtype=dtype)


def result_type(*args):
    ts = []
    for a in args:
        if isinstance(a, (bool, int, float)):
            ts.append(a)
        else:
            ts.append(dtype_of(a))
    try:
        return np.result_type(*ts)
    except TypeError as e:
        raise FuncgradTypeError(f"funcgrad.numpy: cannot promote {ts}: {e}") from None


_SCALARS = (int, float)


def _promote_pair(x, y):
    """The common cases of two operands, without building a dtype list."""
    dx = getattr(x, "dtype", None)
    dy = getattr(y, "dtype", None)
    if dx is not None:
        if dy is not None:
            return (x, y) if dx == dy else None
        ty = type(y)
        if ty in _SCALARS and (dx.kind == "f" or (dx.kind in "iu" and ty is int)):
            return x, np.asarray(y, dx)
    elif dy is not None:
        tx = type(x)
        if tx in _SCALARS and (dy.kind == "f" or (dy.kind in "iu" and tx is int)):
            return np.asarray(x, dy), y
    return None


def promote(*args):
    if len(args) == 2:
        pair = _promote_pair(*args)
        if pair is not None and pair[0].dtype in _OK:
            return pair
    args = [asarray_arg(a) for a in args]
    dt = check_supported(result_type(*args))
    return [cast(a, dt) for a in args]


def promote_float(*args):
    if len(args) == 1:
        dt = getattr(args[0], "dtype", None)
        if dt is not None and dt.kind == "f":
            return args
    elif len(args) == 2:
        pair = _promote_pair(*args)
        if pair is not None and pair[0].dtype.kind == "f":
            return pair
    args = [asarray_arg(a) for a in args]
    dt = result_type(*args)
    if dt.kind not in "biuf":  # complex: refused, not cast to real (which would drop the imaginary part)
        check_supported(dt, "an operand")
    if dt.kind != "f":
        dt = np.dtype(np.float64)
    return [cast(a, dt) for a in args]


def normalize_axis(axis, ndim, op="axis"):
    if axis < -ndim or axis >= max(ndim, 1) and not (ndim == 0 and axis in (0, -1)):
        raise FuncgradIndexError(at_user_line(
            f"{op}: axis {axis} is out of bounds for an array of dimension {ndim}; valid axes are "
            f"{-max(ndim, 1)}..{max(ndim, 1) - 1} (negative ones count from the end)"))
    return axis % ndim if ndim else 0


def normalize_axes(axis, ndim, op="axis"):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    out = tuple(sorted(normalize_axis(int(a), ndim, op) for a in axis))
    if len(set(out)) != len(out):
        raise FuncgradValueError(f"{op}: repeated axis in {axis}")
    return out
