"""More of NumPy's API, written with the other ``funcgrad.numpy`` functions: angle conversion,
``nan_to_num``, shape helpers, statistics (``average``, ``median``, ``quantile``, NaN-skipping
reductions, ``cov``), ``trapezoid``, ``cross``, ``convolve``, ``polyval``, ``interp`` and others."""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..errors import FuncgradIndexError, FuncgradTypeError, FuncgradValueError, at_user_line
from . import _reductions as R
from . import _shape as S
from . import _ufuncs as U
from ._array import wrap
from ._indexing import getitem, index_update
from ._linalg_ops import matmul
from ._util import (
    asarray_arg,
    cast,
    dtype_of,
    is_traced,
    ndim_of,
    normalize_axes,
    normalize_axis,
    promote,
    promote_float,
    shape_of,
)

__all__ = [
    "allclose",
    "append",
    "argwhere",
    "average",
    "bincount",
    "c_",
    "convolve",
    "corrcoef",
    "correlate",
    "count_nonzero",
    "cov",
    "cross",
    "degrees",
    "digitize",
    "divmod",
    "dsplit",
    "dstack",
    "ediff1d",
    "flatnonzero",
    "geomspace",
    "gradient",
    "hsplit",
    "interp",
    "isin",
    "ldexp",
    "logspace",
    "median",
    "modf",
    "nan_to_num",
    "nanmax",
    "nanmean",
    "nanmin",
    "nansum",
    "nonzero",
    "partition",
    "percentile",
    "polyval",
    "quantile",
    "r_",
    "radians",
    "rollaxis",
    "rot90",
    "row_stack",
    "searchsorted",
    "trapezoid",
    "tril_indices",
    "triu_indices",
    "unique",
    "vander",
    "vsplit",
]


def _prep(a):
    a = asarray_arg(a)
    if isinstance(a, (int, float, bool)):
        a = np.asarray(a)
    return a


def _float(a):
    a, = promote_float(_prep(a))
    return _prep(a)


# -- elementwise ---------------------------------------------------------------------------------------

def degrees(x):
    """``numpy.degrees``: radians to degrees."""
    return U.multiply(_float(x), 180.0 / math.pi)


def radians(x):
    """``numpy.radians``: degrees to radians."""
    return U.multiply(_float(x), math.pi / 180.0)


def _isclose(a, b, rtol, atol, equal_nan):
    a, b = promote_float(a, b)
    with np.errstate(invalid="ignore"):
        close = U.less_equal(U.absolute(U.subtract(a, b)), U.add(atol, U.multiply(rtol, U.absolute(b))))
    close = U.logical_or(close, U.equal(a, b))  # equal infinities
    if equal_nan:
        close = U.logical_or(close, U.logical_and(U.isnan(a), U.isnan(b)))
    return close


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``numpy.allclose``: a Python bool eagerly, a traced bool under transforms."""
    out = R.all(_isclose(a, b, rtol, atol, equal_nan))
    return out if is_traced(out) else bool(out)


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """``numpy.nan_to_num``: NaN, +inf and -inf replaced. Differentiable: the gradient is 1 at
    finite entries and 0 at replaced ones."""
    x = _prep(x)
    dt = dtype_of(x)
    if dt.kind not in "fc":
        return x
    info = np.finfo(dt)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    big = U.greater(x, 0.0)
    out = U.where(U.isnan(x), np.asarray(nan, dt), x)
    out = U.where(U.logical_and(U.isinf(x), big), np.asarray(posinf, dt), out)
    return U.where(U.logical_and(U.isinf(x), U.logical_not(big)), np.asarray(neginf, dt), out)


def ldexp(x1, x2):
    """``numpy.ldexp``: ``x1 * 2**x2`` for integer ``x2``."""
    if dtype_of(x2).kind not in "iub":
        raise FuncgradTypeError(at_user_line(
            f"ldexp: the exponent must be an integer, got dtype {dtype_of(x2)}"))
    x1 = _float(x1)
    dt = np.result_type(dtype_of(x1), np.float16)
    scale = U.exp2(cast(_prep(x2), np.float64))
    return cast(U.multiply(cast(x1, np.float64), scale), dt)


def modf(x):
    """``numpy.modf``: the fractional and integral parts, both with the sign of ``x``."""
    x = _float(x)
    whole = U.trunc(x)
    with np.errstate(invalid="ignore"):
        frac = U.subtract(x, whole)
    dt = dtype_of(x)
    zero = U.where(U.less(x, 0.0), np.asarray(-0.0, dt), np.asarray(0.0, dt))
    frac = U.where(U.isinf(x), zero, frac)
    return frac, whole


def divmod(x1, x2):
    """``numpy.divmod``: ``(floor_divide(x1, x2), remainder(x1, x2))``."""
    return U.floor_divide(x1, x2), U.remainder(x1, x2)


# -- shape ---------------------------------------------------------------------------------------------

def rot90(m, k=1, axes=(0, 1)):
    """``numpy.rot90``: ``k`` quarter turns from the first axis of ``axes`` towards the second."""
    m = _prep(m)
    nd = ndim_of(m)
    axes = tuple(axes)
    if len(axes) != 2:
        raise FuncgradValueError("rot90: len(axes) must be 2")
    a0, a1 = (normalize_axis(int(a), nd, "rot90") for a in axes)
    if a0 == a1:
        raise FuncgradValueError("rot90: axes must be different")
    k = int(k) % 4
    if k == 0:
        return m
    if k == 2:
        return S.flip(S.flip(m, a0), a1)
    perm = list(range(nd))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return S.transpose(S.flip(m, a1), perm)
    return S.flip(S.transpose(m, perm), a1)


def append(arr, values, axis=None):
    """``numpy.append``: flattened when ``axis`` is None."""
    arr, values = _prep(arr), _prep(values)
    if axis is None:
        return S.concatenate([S.ravel(arr), S.ravel(values)], 0)
    return S.concatenate([arr, values], axis)


def _split_along(a, indices_or_sections, axis, name, min_ndim):
    a = _prep(a)
    if ndim_of(a) < min_ndim:
        raise FuncgradValueError(at_user_line(
            f"{name} only works on arrays of {min_ndim} or more dimensions, got {ndim_of(a)}"))
    return S.split(a, indices_or_sections, axis)


def hsplit(ary, indices_or_sections):
    """``numpy.hsplit``: along axis 1 (axis 0 for 1-D arrays)."""
    axis = 1 if ndim_of(_prep(ary)) > 1 else 0
    return _split_along(ary, indices_or_sections, axis, "hsplit", 1)


def vsplit(ary, indices_or_sections):
    """``numpy.vsplit``: along axis 0 of an array of 2 or more dimensions."""
    return _split_along(ary, indices_or_sections, 0, "vsplit", 2)


def dsplit(ary, indices_or_sections):
    """``numpy.dsplit``: along axis 2 of an array of 3 or more dimensions."""
    return _split_along(ary, indices_or_sections, 2, "dsplit", 3)


def rollaxis(a, axis, start=0):
    """``numpy.rollaxis``: ``axis`` moved to lie before position ``start``."""
    a = _prep(a)
    n = ndim_of(a)
    axis = normalize_axis(int(axis), n, "rollaxis")
    if not -n <= start <= n:
        raise FuncgradIndexError(at_user_line(
            f"rollaxis: start {start} is out of bounds for an array of dimension {n}; valid values are {-n}..{n}"))
    start = start + n if start < 0 else start
    if axis < start:
        start -= 1
    if axis == start:
        return a
    order = [i for i in range(n) if i != axis]
    order.insert(start, axis)
    return S.transpose(a, order)


def dstack(tup):
    """``numpy.dstack``: stacked along the third axis."""
    return S.concatenate([S.atleast_3d(a) for a in tup], 2)


def row_stack(tup):
    """``numpy.row_stack``: the same as ``vstack``."""
    return S.vstack(tup)


def count_nonzero(a, axis=None, keepdims=False):
    """``numpy.count_nonzero`` along ``axis``."""
    return R.sum(U.not_equal(_prep(a), 0), axis, keepdims=keepdims)


def isin(element, test_elements, assume_unique=False, invert=False):
    """``numpy.isin``: a boolean array of ``element``'s shape (not differentiable)."""
    element, tests = _prep(element), S.ravel(_prep(test_elements))
    shape = shape_of(element)
    if shape_of(tests)[0] == 0:
        found = np.zeros(shape, bool)
    else:
        found = R.any(U.equal(S.expand_dims(element, -1), tests), -1)
    return U.logical_not(found) if invert else found


def ediff1d(ary, to_end=None, to_begin=None):
    """``numpy.ediff1d``: differences of the flattened array, with optional ends."""
    ary = S.ravel(_prep(ary))
    parts = [S.diff(ary)]
    dt = dtype_of(ary)
    if to_begin is not None:
        parts.insert(0, cast(S.ravel(_prep(to_begin)), dt))
    if to_end is not None:
        parts.append(cast(S.ravel(_prep(to_end)), dt))
    return S.concatenate(parts, 0) if len(parts) > 1 else parts[0]


# -- statistics ----------------------------------------------------------------------------------------

def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """``numpy.average``; ``weights`` of ``a``'s shape, or 1-D along an integer ``axis``."""
    a = _prep(a)
    if weights is None:
        avg = R.mean(a, axis, keepdims=keepdims)
        if not returned:
            return avg
        axes = normalize_axes(axis, ndim_of(a), "average")
        count = int(np.prod([shape_of(a)[i] for i in axes], dtype=np.int64))
        return avg, S.broadcast_to(np.asarray(count, dtype_of(avg)), shape_of(avg))
    a, w = promote_float(a, _prep(weights))
    a, w = _prep(a), _prep(w)
    if shape_of(a) != shape_of(w):
        if axis is None:
            raise FuncgradTypeError(at_user_line(
                "average: axis must be specified when shapes of a and weights differ"))
        if ndim_of(w) != 1:
            raise FuncgradTypeError(at_user_line(
                "average: 1D weights expected when shapes of a and weights differ"))
        ax = normalize_axis(int(axis), ndim_of(a), "average")
        if shape_of(w)[0] != shape_of(a)[ax]:
            raise FuncgradValueError(at_user_line(
                "average: length of weights not compatible with specified axis"))
        shp = [1] * ndim_of(a)
        shp[ax] = shape_of(w)[0]
        w = S.broadcast_to(S.reshape(w, shp), shape_of(a))
    scl = R.sum(w, axis, keepdims=keepdims)
    avg = U.true_divide(R.sum(U.multiply(a, w), axis, keepdims=keepdims), scl)
    return (avg, S.broadcast_to(scl, shape_of(avg))) if returned else avg


def _to_last(a, axis, name):
    """``a`` with the ``axis`` axes flattened into one last axis, and those axes."""
    nd = ndim_of(a)
    axes = normalize_axes(axis, nd, name)
    rest = [i for i in range(nd) if i not in axes]
    a = S.transpose(a, rest + list(axes))
    shape = shape_of(a)
    n = int(np.prod(shape[len(rest):], dtype=np.int64))
    return S.reshape(a, shape[:len(rest)] + (n,)), axes


def _quantile(a, q, axis, method, keepdims, name):
    if method != "linear":
        raise FuncgradValueError(at_user_line(
            f"{name}: method {method!r} is not supported; funcgrad supports method='linear'"))
    if is_traced(q):
        raise FuncgradTypeError(at_user_line(f"{name}: q must be a concrete value, not a traced one"))
    qa = np.asarray(q)
    if qa.ndim > 1:
        raise FuncgradValueError(at_user_line(f"{name}: q must be a scalar or 1-D"))
    a = _prep(a)
    dt = np.result_type(dtype_of(a), qa) if not isinstance(q, (int, float)) else dtype_of(_float(a))
    if dt.kind != "f":
        dt = np.dtype(np.float64)
    a = cast(a, dt)
    shape = shape_of(a)
    flat, axes = _to_last(a, axis, name)
    n = shape_of(flat)[-1]
    if n == 0:
        raise FuncgradValueError(at_user_line(f"{name}: cannot take a quantile of an empty array"))
    s = S.sort(flat, -1)
    pos = qa.astype(np.float64).reshape(-1) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    t = (pos - lo).astype(dt)
    va, vb = S.take(s, lo, -1), S.take(s, hi, -1)  # (..., len(q))
    d = U.subtract(vb, va)
    out = U.where(t >= 0.5, U.subtract(vb, U.multiply(d, 1 - t)), U.add(va, U.multiply(d, t)))
    out = U.where(R.any(U.isnan(flat), -1, keepdims=True), np.asarray(np.nan, dt), out)
    out = S.moveaxis(out, -1, 0)
    if keepdims:
        kshape = tuple(1 if i in axes else d for i, d in enumerate(shape))
        out = S.reshape(out, (shape_of(out)[0],) + kshape)
    return out[0] if qa.ndim == 0 else out


def _check_range(q, hi, name, what):
    qa = np.asarray(q)
    if qa.dtype == object or not np.all((qa >= 0) & (qa <= hi)):
        raise FuncgradValueError(at_user_line(f"{name}: {what} must be in the range [0, {hi}]"))


def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False):
    """``numpy.quantile`` with ``method="linear"``; ``q`` a concrete scalar or 1-D array.
    Differentiable in ``a`` through the sort."""
    R._no_out(out, "quantile")
    if not is_traced(q):
        _check_range(q, 1, "quantile", "Quantiles")
    return _quantile(a, q, axis, method, keepdims, "quantile")


def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False):
    """``numpy.percentile`` with ``method="linear"``; ``q`` in [0, 100]."""
    R._no_out(out, "percentile")
    if is_traced(q):
        raise FuncgradTypeError(at_user_line("percentile: q must be a concrete value, not a traced one"))
    _check_range(q, 100, "percentile", "Percentiles")
    q = q / 100.0 if isinstance(q, (int, float)) else np.asarray(q) / 100
    return _quantile(a, q, axis, method, keepdims, "percentile")


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """``numpy.median``; at ties the gradient is split among the middle entries."""
    R._no_out(out, "median")
    return _quantile(a, 0.5, axis, "linear", keepdims, "median")


def nansum(a, axis=None, dtype=None, out=None, keepdims=False):
    """``numpy.nansum``: NaNs count as zero."""
    a = _prep(a)
    if dtype_of(a).kind == "f":
        a = U.where(U.isnan(a), np.zeros((), dtype_of(a)), a)
    return R.sum(a, axis, dtype, out, keepdims)


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False):
    """``numpy.nanmean``: the mean of the non-NaN entries (NaN where there are none)."""
    a = _prep(a)
    if dtype_of(a).kind != "f":
        return R.mean(a, axis, dtype, out, keepdims)
    keep = U.logical_not(U.isnan(a))
    s = R.sum(U.where(keep, a, np.zeros((), dtype_of(a))), axis, dtype, out, keepdims)
    n = R.sum(keep, axis, keepdims=keepdims)
    with np.errstate(invalid="ignore", divide="ignore"):
        return U.true_divide(s, cast(n, dtype_of(s)))


def _nanext(reducer, fill, name):
    def f(a, axis=None, out=None, keepdims=False):
        R._no_out(out, name)
        a = _prep(a)
        if dtype_of(a).kind != "f":
            return reducer(a, axis, keepdims=keepdims)
        nan = U.isnan(a)
        res = reducer(U.where(nan, np.asarray(fill, dtype_of(a)), a), axis, keepdims=keepdims)
        return U.where(R.all(nan, axis, keepdims=keepdims), np.asarray(np.nan, dtype_of(a)), res)

    f.__name__ = name
    f.__doc__ = f"``numpy.{name}``: NaNs are skipped (NaN where a slice holds only NaNs)."
    return f


nanmax = _nanext(R.max, -np.inf, "nanmax")
nanmin = _nanext(R.min, np.inf, "nanmin")


def _cov_rows(m, rowvar, dt):
    m = cast(_prep(m), dt)
    if ndim_of(m) > 2:
        raise FuncgradValueError(at_user_line("cov: m has more than 2 dimensions"))
    x = S.atleast_2d(m)
    if not rowvar and shape_of(x)[0] != 1:
        x = S.transpose(x)
    return x


def cov(m, y=None, rowvar=True, bias=False, ddof=None, *, dtype=None):
    """``numpy.cov``: the covariance of the rows (the columns when ``rowvar=False``)."""
    if ddof is not None and ddof != int(ddof):
        raise FuncgradValueError("cov: ddof must be an integer")
    args = [m] if y is None else [m, y]
    dt = np.dtype(dtype) if dtype is not None else np.result_type(*[dtype_of(v) for v in args], np.float64)
    x = _cov_rows(m, rowvar, dt)
    if y is not None:
        x = S.concatenate([x, _cov_rows(y, rowvar, dt)], 0)
    ddof = (0 if bias else 1) if ddof is None else int(ddof)
    fact = float(shape_of(x)[1] - ddof)
    x = U.subtract(x, R.mean(x, 1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = U.true_divide(matmul(x, S.transpose(x)), fact)
    return S.squeeze(c)


def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    """``numpy.corrcoef``: Pearson correlation coefficients, clipped to [-1, 1]."""
    c = cov(x, y, rowvar, dtype=dtype)
    if ndim_of(c) == 0:
        return U.true_divide(c, c)
    sd = U.sqrt(S.diagonal(c))
    c = U.true_divide(U.true_divide(c, S.expand_dims(sd, 1)), S.expand_dims(sd, 0))
    return U.clip(c, -1.0, 1.0)


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """``numpy.trapezoid``: the trapezoidal rule along ``axis``."""
    y = _prep(y)
    nd = ndim_of(y)
    ax = normalize_axis(axis, nd, "trapezoid")
    n = shape_of(y)[ax]
    if x is None:
        d = dx
    else:
        x = _prep(x)
        d = S.diff(x, axis=ax if ndim_of(x) > 1 else 0)
        if ndim_of(x) == 1:
            shp = [1] * nd
            shp[ax] = shape_of(d)[0]
            d = S.reshape(d, shp)
    mid = U.add(S._slice_axis(y, ax, 1, n), S._slice_axis(y, ax, 0, builtins.max(n - 1, 0)))
    return R.sum(U.true_divide(U.multiply(d, mid), 2.0), ax)


# -- polynomials, signals and grids --------------------------------------------------------------------

def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """``numpy.cross`` of vectors of length 3 (or 2, giving the z component)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = promote(_prep(a), _prep(b))
    a = S.moveaxis(_prep(a), normalize_axis(axisa, ndim_of(a), "cross"), -1)
    b = S.moveaxis(_prep(b), normalize_axis(axisb, ndim_of(b), "cross"), -1)
    na, nb = shape_of(a)[-1], shape_of(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise FuncgradValueError(at_user_line(
            "cross: incompatible dimensions for cross product (dimension must be 2 or 3)"))

    def comp(v, i, n):
        return getitem(v, (Ellipsis, i)) if i < n else np.zeros((), dtype_of(v))

    a0, a1, a2 = (comp(a, i, na) for i in range(3))
    b0, b1, b2 = (comp(b, i, nb) for i in range(3))
    z = U.subtract(U.multiply(a0, b1), U.multiply(a1, b0))
    if na == 2 and nb == 2:
        return z
    x = U.subtract(U.multiply(a1, b2), U.multiply(a2, b1))
    y = U.subtract(U.multiply(a2, b0), U.multiply(a0, b2))
    x, y, z = S.broadcast_arrays(x, y, z)
    out = S.stack([x, y, z], -1)
    return S.moveaxis(out, -1, normalize_axis(axisc, ndim_of(out), "cross"))


def _correlate_full(a, v):
    """``c[k] = sum_j a[k + j - (m - 1)] v[j]`` for every ``k`` where the sum is not empty."""
    n, m = shape_of(a)[0], shape_of(v)[0]
    apad = S.pad(a, (m - 1, m - 1))
    idx = np.arange(n + m - 1)[:, None] + np.arange(m)[None, :]
    return matmul(S.take(apad, idx, 0), v)


def _signal(a, v, mode, name, flip):
    a, v = promote(_prep(a), _prep(v))
    if ndim_of(a) > 1 or ndim_of(v) > 1:
        raise FuncgradValueError(at_user_line(f"{name}: a and v must be 1-D (object too deep)"))
    a, v = S.ravel(_prep(a)), S.ravel(_prep(v))
    n, m = shape_of(a)[0], shape_of(v)[0]
    if n == 0:
        raise FuncgradValueError(f"{name}: a cannot be empty")
    if m == 0:
        raise FuncgradValueError(f"{name}: v cannot be empty")
    if mode not in ("full", "same", "valid"):
        raise FuncgradValueError(f"{name}: mode must be 'full', 'same' or 'valid', got {mode!r}")
    if not flip and m > n:  # as NumPy: the correlation the other way round, reversed
        return S.flip(_signal(v, a, mode, name, flip), 0)
    full = _correlate_full(a, S.flip(v, 0) if flip else v)
    big, small = builtins.max(n, m), builtins.min(n, m)
    if mode == "full":
        return full
    lo = small - 1 if mode == "valid" else (small - 1) // 2
    return S._slice_axis(full, 0, lo, lo + (big - small + 1 if mode == "valid" else big))


def convolve(a, v, mode="full"):
    """``numpy.convolve`` of two 1-D arrays; modes full, same and valid."""
    return _signal(a, v, mode, "convolve", True)


def correlate(a, v, mode="valid"):
    """``numpy.correlate`` of two 1-D real arrays; modes full, same and valid."""
    return _signal(a, v, mode, "correlate", False)


def polyval(p, x):
    """``numpy.polyval``: the polynomial with coefficients ``p`` (highest power first) at ``x``."""
    p, x = _prep(p), _prep(x)
    if ndim_of(p) != 1:
        raise FuncgradValueError("polyval: p must be a 1-D sequence of coefficients")
    y = U.multiply(np.zeros((), np.result_type(dtype_of(p), dtype_of(x))), x)
    for i in range(shape_of(p)[0]):
        y = U.add(U.multiply(y, x), getitem(p, i))
    return y


def vander(x, N=None, increasing=False):
    """``numpy.vander``: columns the powers of ``x`` (decreasing unless ``increasing``)."""
    x = _prep(x)
    if ndim_of(x) != 1:
        raise FuncgradValueError("vander: x must be a one-dimensional array or sequence")
    N = shape_of(x)[0] if N is None else int(N)
    x = cast(x, np.promote_types(dtype_of(x), np.int64))  # as NumPy: float32 gives float64
    cols, col = [], None
    for i in range(N):
        col = np.ones(shape_of(x), dtype_of(x)) if i == 0 else (x if i == 1 else U.multiply(col, x))
        cols.append(col)
    if not increasing:
        cols = cols[::-1]
    if not cols:
        return np.zeros(shape_of(x) + (0,), dtype_of(x))
    return S.stack(cols, 1)


def interp(x, xp, fp, left=None, right=None):
    """``numpy.interp``: piecewise-linear interpolation at ``x`` of the points ``(xp, fp)``;
    ``xp`` concrete and increasing. Differentiable in ``x`` and ``fp``."""
    if is_traced(xp):
        raise FuncgradTypeError(at_user_line("interp: xp must be concrete (it decides the intervals)"))
    xp = np.asarray(xp, np.float64)
    fp = cast(_prep(fp), np.float64)
    x = cast(_prep(x), np.float64)
    if xp.ndim != 1 or ndim_of(fp) != 1:
        raise FuncgradValueError("interp: data points must be 1-D sequences")
    if xp.shape[0] != shape_of(fp)[0]:
        raise FuncgradValueError("interp: fp and xp are not of the same length")
    if xp.shape[0] == 0:
        raise FuncgradValueError("interp: array of sample points is empty")
    n = xp.shape[0]
    f0, f1 = getitem(fp, 0), getitem(fp, n - 1)
    if n == 1:
        y = U.add(U.multiply(x, 0.0), f0)
    else:
        j = R.sum(U.greater_equal(S.expand_dims(x, -1), xp[1:-1]), -1) if n > 2 else \
            np.zeros(shape_of(x), np.int64)
        x0, x1 = S.take(wrap(xp), j), S.take(wrap(xp), U.add(j, 1))
        y0, y1 = S.take(fp, j), S.take(fp, U.add(j, 1))
        t = U.true_divide(U.subtract(x, x0), U.subtract(x1, x0))
        y = U.add(y0, U.multiply(t, U.subtract(y1, y0)))
        y = U.where(U.equal(x, xp[-1]), f1, y)
    y = U.where(U.less(x, xp[0]), f0 if left is None else left, y)
    return U.where(U.greater(x, xp[-1]), f1 if right is None else right, y)


def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """``numpy.logspace``; traced ``start``/``stop`` (scalars) give a traced result."""
    if is_traced(start) or is_traced(stop):
        from ._creation import linspace

        out = U.power(base, linspace(start, stop, num, endpoint))
        return cast(out, dtype) if dtype is not None else out
    return wrap(np.logspace(start, stop, num, endpoint, base, dtype, axis))


def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """``numpy.geomspace``; traced ``start``/``stop`` (scalars of one sign) give a traced result."""
    if is_traced(start) or is_traced(stop):
        from ._creation import linspace

        start, stop = promote_float(start, stop)
        sgn = U.sign(start)
        out = U.multiply(sgn, U.exp(linspace(U.log(U.absolute(start)), U.log(U.absolute(stop)), num, endpoint)))
        first = np.arange(num) == 0
        out = U.where(first, start, out)
        if endpoint and num > 1:
            out = U.where(np.arange(num) == num - 1, stop, out)
        return cast(out, dtype) if dtype is not None else out
    return wrap(np.geomspace(start, stop, num, endpoint, dtype, axis))


def triu_indices(n, k=0, m=None):
    """``numpy.triu_indices``: concrete index arrays."""
    return np.triu_indices(n, k, m)


def tril_indices(n, k=0, m=None):
    """``numpy.tril_indices``: concrete index arrays."""
    return np.tril_indices(n, k, m)


# -- index functions: nonzero, unique, searchsorted, bincount, gradient, r_/c_ -----------------------

def _needs_concrete(name, kw, x):
    from ..errors import ConcretizationError

    shape = "x".join(str(d) for d in shape_of(x))
    return ConcretizationError(at_user_line(
        f"{name}: the size of its result depends on the values of its traced argument "
        f"({dtype_of(x)}[{shape}]); under jit/vmap pass {kw}= (a static size; the result is padded "
        f"with fill_value or cut to that size), as in JAX, e.g. {name}(x, {kw}=n)"))


def _any_traced(*xs):
    return builtins.any(is_traced(x) for x in xs)


def _first_true(mask, size):
    """The positions of the true entries of the 1-D ``mask``, first ``size`` of them (a stable
    argsort of ``~mask``), the count of true entries, and whether each output slot is filled."""
    n = shape_of(mask)[0]
    idx = S.argsort(cast(U.logical_not(mask), np.int8))
    if size <= n:
        idx = getitem(idx, slice(0, size))
    else:
        idx = S.concatenate([idx, np.zeros(size - n, dtype_of(idx))])
    idx = cast(idx, np.intp)
    count = R.sum(cast(mask, np.intp))
    valid = U.less(np.arange(size), count)
    return cast(U.where(valid, idx, np.zeros((), np.intp)), np.intp), count, valid


def _eager_or_sized(name, a, size, np_fn):
    """``(a, result)``: NumPy's result for a concrete ``a`` without ``size`` (else None); a
    traced ``a`` needs ``size``, as in JAX."""
    a = _prep(a)
    if not is_traced(a) and size is None:
        return a, np_fn(np.asarray(a))
    if size is None:
        raise _needs_concrete(name, "size", a)
    return a, None


def nonzero(a, *, size=None, fill_value=None):
    """``numpy.nonzero``: a tuple of index arrays, one per dimension. Under jit/vmap ``size`` is
    required (as in JAX); the indices are cut or padded to ``size`` with ``fill_value`` (default
    0; a scalar or one value per dimension)."""
    a, eager = _eager_or_sized("nonzero", a, size, np.nonzero)
    if eager is not None:
        return eager
    if ndim_of(a) == 0:
        raise FuncgradValueError("nonzero: calling nonzero on 0d arrays is not allowed; use atleast_1d")
    size = int(size)
    shape = shape_of(a)
    fills = fill_value if isinstance(fill_value, (tuple, list)) else (fill_value,) * len(shape)
    if len(fills) != len(shape):
        raise FuncgradValueError(f"nonzero: fill_value must be a scalar or a tuple of length {len(shape)}")
    flat, _, valid = _first_true(U.not_equal(S.ravel(a), 0), size)
    out, stride = [], int(np.prod(shape))
    for d, f in zip(shape, fills):
        stride //= d
        coord = U.remainder(U.floor_divide(flat, stride), d) if stride > 1 or len(shape) > 1 else flat
        coord = cast(U.where(valid, coord, np.asarray(0 if f is None else f, np.intp)), np.intp)
        out.append(coord)
    return tuple(out)


def flatnonzero(a, *, size=None, fill_value=None):
    """``numpy.flatnonzero``: the indices of the nonzero entries of the flattened array (under
    jit/vmap ``size`` is required, as in JAX)."""
    a, eager = _eager_or_sized("flatnonzero", a, size, np.flatnonzero)
    if eager is not None:
        return eager
    return nonzero(S.ravel(a), size=size, fill_value=fill_value)[0]


def argwhere(a, *, size=None, fill_value=None):
    """``numpy.argwhere``: the indices of the nonzero entries, one row each (under jit/vmap
    ``size`` is required, as in JAX)."""
    a, eager = _eager_or_sized("argwhere", a, size, np.argwhere)
    if eager is not None:
        return eager
    if ndim_of(a) == 0:
        a = S.atleast_1d(a)
        idx = nonzero(a, size=size, fill_value=fill_value)
        return np.zeros((int(size), 0), np.intp) if not idx else S.stack(idx, 1)[:, :0]
    return S.stack(nonzero(a, size=size, fill_value=fill_value), 1)


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *,
           equal_nan=True, size=None, fill_value=None):
    """``numpy.unique`` of the flattened array (``axis=None`` only). Under jit/vmap ``size`` is
    required (as in JAX): the sorted unique values are cut or padded to ``size`` with
    ``fill_value`` (default: the minimum value); indices are padded as JAX pads them and counts
    with 0."""
    if axis is not None:
        raise FuncgradValueError("unique: only axis=None (the flattened array) is supported")
    ar = _prep(ar)
    flags = (return_index, return_inverse, return_counts)
    if not is_traced(ar) and size is None:
        return np.unique(np.asarray(ar), *flags, equal_nan=equal_nan)
    if size is None:
        raise _needs_concrete("unique", "size", ar)
    size = int(size)
    flat = S.ravel(ar)
    n = shape_of(flat)[0]
    if n == 0:
        raise FuncgradValueError("unique: a traced empty array with size= is not supported")
    perm = S.argsort(flat)
    s = getitem(flat, perm)
    diff = U.not_equal(getitem(s, slice(1, None)), getitem(s, slice(None, -1)))
    if dtype_of(s).kind in "fc" and equal_nan:  # NaNs sort last: keep only the first one
        both = U.logical_and(U.isnan(getitem(s, slice(1, None))), U.isnan(getitem(s, slice(None, -1))))
        diff = U.logical_and(diff, U.logical_not(both))
    mask = S.concatenate([np.ones(1, bool), diff])
    ind, _, valid = _first_true(mask, size)
    vals = getitem(s, ind)
    if fill_value is not None:
        vals = U.where(valid, vals, np.asarray(fill_value, dtype_of(s)))
    if not builtins.any(flags):
        return vals
    ret = [vals]
    if return_index:
        ret.append(cast(getitem(perm, ind), np.intp))
    if return_inverse:
        imask = U.subtract(R.cumsum(cast(mask, np.intp)), 1)
        inv = index_update(np.zeros(n, np.intp), perm, imask, "set")
        ret.append(S.reshape(inv, shape_of(ar)))
    if return_counts:
        idx, _, _ = _first_true(mask, size + 1)
        tail = getitem(idx, slice(1, None))
        tail = U.where(U.not_equal(tail, 0), tail, n)
        ret.append(S.diff(S.concatenate([getitem(idx, slice(0, 1)), tail])))
    return tuple(ret)


def _lt_nan_last(x, y):
    """``x < y`` in NumPy's sort order (NaN after everything)."""
    lt = U.less(x, y)
    if np.result_type(dtype_of(x), dtype_of(y)).kind in "fc":
        lt = U.logical_or(lt, U.logical_and(U.isnan(y), U.logical_not(U.isnan(x))))
    return lt


def searchsorted(a, v, side="left", sorter=None):
    """``numpy.searchsorted`` into the sorted 1-D ``a``: traceable (a comparison count)."""
    if side not in ("left", "right"):
        raise FuncgradValueError(f"searchsorted: side must be 'left' or 'right', not {side!r}")
    a, v = _prep(a), _prep(v)
    if ndim_of(a) != 1:
        raise FuncgradValueError("searchsorted: a must be 1-D")
    if not _any_traced(a, v, sorter):
        return np.searchsorted(np.asarray(a), np.asarray(v), side, None if sorter is None else np.asarray(sorter))
    if sorter is not None:
        a = S.take(a, sorter)
    if shape_of(a)[0] == 0:
        return np.zeros(shape_of(v), np.intp)
    ve = S.expand_dims(v, -1)
    if side == "left":
        hit = _lt_nan_last(a, ve)
    else:
        hit = U.logical_not(_lt_nan_last(ve, a))
    return cast(R.sum(cast(hit, np.intp), -1), np.intp)


def digitize(x, bins, right=False):
    """``numpy.digitize``: the bin index of each ``x`` (``bins`` increasing or decreasing)."""
    x, bins = _prep(x), _prep(bins)
    if ndim_of(bins) != 1:
        raise FuncgradValueError("digitize: bins must be 1-D")
    if not _any_traced(x, bins):
        return np.digitize(np.asarray(x), np.asarray(bins), right)
    n = shape_of(bins)[0]
    side = "left" if right else "right"
    inc = searchsorted(bins, x, side)
    if n < 2:
        return inc
    dec = U.subtract(n, searchsorted(S.flip(bins, 0), x, side))
    increasing = U.less_equal(getitem(bins, 0), getitem(bins, n - 1))
    return cast(U.where(increasing, inc, dec), np.intp)


def bincount(x, weights=None, minlength=0, *, length=None):
    """``numpy.bincount`` of non-negative integers ``x``. Under jit/vmap (traced ``x``)
    ``length`` is required (as in JAX; values outside ``[0, length)`` are dropped).
    Differentiable in ``weights``."""
    x = _prep(x)
    if ndim_of(x) != 1:
        raise FuncgradValueError("bincount: x must be 1-D")
    if dtype_of(x).kind not in "biu":
        raise FuncgradTypeError("bincount: x must be an array of integers")
    if length is None:
        if is_traced(x):
            raise _needs_concrete("bincount", "length", x)
        xc = np.asarray(x)
        if xc.size and xc.min() < 0:
            raise FuncgradValueError("bincount: x must contain only non-negative integers")
        if weights is None or not is_traced(weights):
            return np.bincount(xc, None if weights is None else np.asarray(weights), minlength)
        length = builtins.max(int(minlength), int(xc.max()) + 1 if xc.size else 0)
    length = int(length)
    if weights is None:
        w = np.ones(shape_of(x), np.intp)
    else:
        w = cast(_prep(weights), np.float64)
        if shape_of(w) != shape_of(x):
            raise FuncgradValueError("bincount: the weights and x must have the same length")
    inside = U.logical_and(U.greater_equal(x, 0), U.less(x, length))
    w = U.where(inside, w, np.zeros((), dtype_of(w)))
    idx = U.clip(cast(x, np.intp), 0, builtins.max(length - 1, 0))
    if length == 0:
        return np.zeros(0, dtype_of(w))
    return index_update(np.zeros(length, dtype_of(w)), idx, w, "add")


def _along(a, ax, sl):
    return getitem(a, (slice(None),) * ax + (sl,))


def _gradient_axis(f, ax, h, edge_order):
    n = shape_of(f)[ax]
    if n < edge_order + 1:
        raise FuncgradValueError("gradient: shape of the array too small to calculate a numerical gradient, "
                                 "at least (edge_order + 1) elements are required")
    tail = (1,) * (ndim_of(f) - ax - 1)
    f0, f1, f2 = (_along(f, ax, slice(i, i + 1)) for i in range(3)) if n > 2 else (None,) * 3
    if n <= 2:
        f0, f1 = _along(f, ax, slice(0, 1)), _along(f, ax, slice(1, 2))
    fm1, fm2, fm3 = (_along(f, ax, slice(n - i, n - i + 1)) for i in (1, 2, 3)) if n > 2 else (None,) * 3
    if n <= 2:
        fm1, fm2 = f1, f0
    uniform = ndim_of(h) == 0
    if uniform:
        mid = U.true_divide(U.subtract(_along(f, ax, slice(2, None)), _along(f, ax, slice(None, -2))),
                            U.multiply(h, 2.0))
        if edge_order == 1:
            first = U.true_divide(U.subtract(f1, f0), h)
            last = U.true_divide(U.subtract(fm1, fm2), h)
        else:
            first = U.true_divide(U.add(U.add(U.multiply(f0, -1.5), U.multiply(f1, 2.0)), U.multiply(f2, -0.5)), h)
            last = U.true_divide(U.add(U.add(U.multiply(fm3, 0.5), U.multiply(fm2, -2.0)), U.multiply(fm1, 1.5)), h)
    else:
        if shape_of(h) != (n,):
            raise FuncgradValueError("gradient: when 1d, distances must match the length of the corresponding dimension")
        dx = S.diff(cast(h, np.promote_types(dtype_of(h), np.float64) if dtype_of(h).kind not in "fc"
                         else dtype_of(h)))
        col = lambda v: S.reshape(v, (-1,) + tail)
        d1, d2 = col(getitem(dx, slice(None, -1))), col(getitem(dx, slice(1, None)))
        a = U.negative(U.true_divide(d2, U.multiply(d1, U.add(d1, d2))))
        b = U.true_divide(U.subtract(d2, d1), U.multiply(d1, d2))
        c = U.true_divide(d1, U.multiply(d2, U.add(d1, d2)))
        mid = U.add(U.add(U.multiply(a, _along(f, ax, slice(None, -2))), U.multiply(b, _along(f, ax, slice(1, -1)))),
                    U.multiply(c, _along(f, ax, slice(2, None))))
        if edge_order == 1:
            first = U.true_divide(U.subtract(f1, f0), getitem(dx, 0))
            last = U.true_divide(U.subtract(fm1, fm2), getitem(dx, n - 2))
        else:
            e1, e2 = getitem(dx, 0), getitem(dx, 1)
            s = U.add(e1, e2)
            a0 = U.negative(U.true_divide(U.add(U.multiply(e1, 2.0), e2), U.multiply(e1, s)))
            b0 = U.true_divide(s, U.multiply(e1, e2))
            c0 = U.negative(U.true_divide(e1, U.multiply(e2, s)))
            first = U.add(U.add(U.multiply(a0, f0), U.multiply(b0, f1)), U.multiply(c0, f2))
            e1, e2 = getitem(dx, n - 3), getitem(dx, n - 2)
            s = U.add(e1, e2)
            a1 = U.true_divide(e2, U.multiply(e1, s))
            b1 = U.negative(U.true_divide(s, U.multiply(e1, e2)))
            c1 = U.true_divide(U.add(U.multiply(e2, 2.0), e1), U.multiply(e2, s))
            last = U.add(U.add(U.multiply(a1, fm3), U.multiply(b1, fm2)), U.multiply(c1, fm1))
    parts = [first, mid, last] if n > 2 else [first, last]
    return S.concatenate(parts, ax)


def gradient(f, *varargs, axis=None, edge_order=1):
    """``numpy.gradient``: central differences inside, one-sided (first or second order) at the
    edges; spacings are scalars or 1-D coordinates. Traceable and differentiable."""
    f = _prep(f)
    if edge_order not in (1, 2):
        raise FuncgradValueError("gradient: edge_order greater than 2 not supported")
    nd = ndim_of(f)
    if axis is None:
        axes = tuple(range(nd))
    else:
        axes = normalize_axes(axis, nd, "gradient") if isinstance(axis, (tuple, list)) else \
            (normalize_axis(axis, nd, "gradient"),)
    if len(varargs) == 0:
        spacings = [1.0] * len(axes)
    elif len(varargs) == 1 and ndim_of(_prep(varargs[0])) == 0:
        spacings = [varargs[0]] * len(axes)
    elif len(varargs) == len(axes):
        spacings = list(varargs)
    else:
        raise FuncgradTypeError("gradient: invalid number of arguments")
    if dtype_of(f).kind not in "fc":
        f = cast(f, np.float64)
    outs = [_gradient_axis(f, ax, _prep(h), edge_order) for ax, h in zip(axes, spacings)]
    outs = [o if dtype_of(o) == dtype_of(f) or dtype_of(f).kind == "c" else cast(o, dtype_of(f)) for o in outs]
    return outs[0] if len(axes) == 1 else tuple(outs)


def partition(a, kth, axis=-1):
    """``numpy.partition``: returned fully sorted along ``axis`` (which satisfies NumPy's
    contract: the ``kth`` entry in its sorted place, smaller before, larger after).
    Differentiable."""
    a = _prep(a)
    if axis is None:
        a, axis = S.ravel(a), 0
    ax = normalize_axis(axis, ndim_of(a), "partition")
    n = shape_of(a)[ax]
    for k in np.atleast_1d(np.asarray(kth)).ravel():
        if not -n <= int(k) < n:
            raise FuncgradIndexError(f"partition: kth(={int(k)}) out of bounds ({n})")
    return S.sort(a, ax)


class _Concatenator:
    """``r_`` / ``c_``: concatenation by index syntax (slices with a step, arrays, scalars)."""

    def __init__(self, name, column):
        self.name, self.column = name, column

    def __repr__(self):
        return f"funcgrad.numpy.{self.name}"

    def __getitem__(self, key):
        items = key if isinstance(key, tuple) else (key,)
        for it in items:
            if isinstance(it, str):
                raise FuncgradValueError(
                    f"{self.name}: string directives ({it!r}) are not supported; use concatenate, "
                    "stack or column_stack with an axis")
            if isinstance(it, slice) and _any_traced(it.start, it.stop, it.step):
                raise FuncgradTypeError(at_user_line(
                    f"{self.name}: slice bounds must be concrete (they decide the length)"))
        if not builtins.any(is_traced(it) or (isinstance(it, (list, tuple)) and _any_traced(*it))
                            for it in items):
            return np.c_[key] if self.column else np.r_[key]
        parts = []
        for it in items:
            if isinstance(it, slice):
                parts.append(np.r_[it])
            else:
                parts.append(asarray_arg(it))
        dt = np.result_type(*[p if isinstance(p, (int, float, bool, complex)) else dtype_of(p) for p in parts])
        arrs = []
        for p in parts:
            p = cast(_prep(p), dt) if not isinstance(p, (int, float, bool, complex)) else np.asarray(p, dt)
            if self.column:
                if ndim_of(p) == 0:
                    p = S.reshape(p, (1, 1))
                elif ndim_of(p) == 1:
                    p = S.expand_dims(p, 1)
            else:
                p = S.atleast_1d(p)
            arrs.append(p)
        return S.concatenate(arrs, -1 if self.column else 0)


r_ = _Concatenator("r_", False)
c_ = _Concatenator("c_", True)
