"""``funcgrad.numpy.linalg``: norm, inv, solve, det, slogdet, cholesky (differentiable)."""
from __future__ import annotations

import numpy as np

from .. import primitives as P
from ..errors import FuncgradValueError, ShapeError, at_user_line
from ..primitives._rules import broadcast_shapes
from ._reductions import max as _max
from ._reductions import min as _min
from ._reductions import sum as _sum
from ._shape import reshape
from ._ufuncs import absolute, power, sqrt
from ._util import ndim_of, normalize_axis, promote_float, shape_of


def _float_matrix(a):
    a, = promote_float(a)
    return np.asarray(a) if not hasattr(a, "shape") else a


def inv(a):
    return P.inv(_float_matrix(a))


def solve(a, b):
    a, b = promote_float(a, b)
    a = np.asarray(a) if not hasattr(a, "shape") else a
    b = np.asarray(b) if not hasattr(b, "shape") else b
    # NumPy 2: a 1-D b is one vector; otherwise b is a stack of matrices; batch axes broadcast
    vector = ndim_of(b) == 1
    n = shape_of(a)[-1] if ndim_of(a) >= 2 else None
    if n is not None and ndim_of(b) >= 1 and shape_of(b)[0 if vector else -2] != n:
        raise ShapeError(at_user_line(
            f"linalg.solve: a of shape {shape_of(a)} and b of shape {shape_of(b)} do not fit: for a "
            f"{n}x{n} system b must have shape ({n},) or (..., {n}, k)"))
    if vector:
        b = reshape(b, shape_of(b) + (1,))
    batch = broadcast_shapes(shape_of(a)[:-2], shape_of(b)[:-2], op="linalg.solve (batch axes)")
    x = P.solve(P.broadcast_to(a, batch + shape_of(a)[-2:]), P.broadcast_to(b, batch + shape_of(b)[-2:]))
    return reshape(x, shape_of(x)[:-1]) if vector else x


def det(a):
    return P.det(_float_matrix(a))


def slogdet(a):
    sign, logdet = P.slogdet(_float_matrix(a))
    return sign, logdet


def cholesky(a):
    return P.cholesky(_float_matrix(a))


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector norms (``ord`` None/2, 1, inf, -inf, 0, p) and matrix norms ('fro', 1, -1, inf, -inf)."""
    x, = promote_float(x)
    x = np.asarray(x) if not hasattr(x, "shape") else x
    nd = ndim_of(x)
    if axis is None and ord is None:
        return sqrt(_sum(x * x, None, keepdims=keepdims))
    # the order of two axes matters (rows, columns): normalize without sorting
    axes = tuple(range(nd)) if axis is None else tuple(
        normalize_axis(int(a), nd, "norm") for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis))
    if len(set(axes)) != len(axes):
        raise FuncgradValueError(f"norm: repeated axis in {axis}")
    if len(axes) == 1:
        if ord is None or ord == 2:
            return sqrt(_sum(x * x, axes, keepdims=keepdims))
        if ord == np.inf:
            return _max(absolute(x), axes, keepdims=keepdims)
        if ord == -np.inf:
            return _min(absolute(x), axes, keepdims=keepdims)
        if ord == 1:
            return _sum(absolute(x), axes, keepdims=keepdims)
        if ord == 0:
            return _sum((x != 0).astype(x.dtype) if hasattr(x, "astype") else x != 0, axes, keepdims=keepdims)
        return power(_sum(power(absolute(x), float(ord)), axes, keepdims=keepdims), 1.0 / ord)
    if len(axes) == 2:
        r, c = axes
        if ord is None or ord == "fro":
            return sqrt(_sum(x * x, axes, keepdims=keepdims))
        if ord in (1, -1, np.inf, -np.inf):  # extreme column (1) or row (inf) sum of |x|
            summed, over = ((r,), (c,)) if ord in (1, -1) else ((c,), (r,))
            pick = _max if ord > 0 else _min
            s = pick(_sum(absolute(x), summed, keepdims=True), over, keepdims=True)
            return _keep(s, keepdims, axes, shape_of(x))
        raise FuncgradValueError(f"norm: matrix ord {ord!r} is not supported ('fro', 1, -1, inf, -inf)")
    raise FuncgradValueError(f"norm: improper number of axes {axes}")


def _keep(v, keepdims, axes, shape):
    if keepdims:
        return v
    return reshape(v, tuple(d for i, d in enumerate(shape) if i not in axes))
