"""``funcgrad.numpy.linalg``: norm, inv, solve, det, slogdet, cholesky, eigh, eigvalsh, svd, qr, pinv,
lstsq (differentiable)."""
from __future__ import annotations

from collections import namedtuple
from functools import lru_cache

import numpy as np

from .. import primitives as P
from ..errors import FuncgradValueError, ShapeError, at_user_line
from ..primitives import linalg as _L
from ..primitives._rules import broadcast_shapes
from ..transforms.custom import custom_jvp
from ._reductions import max as _max
from ._reductions import min as _min
from ._reductions import sum as _sum
from ._shape import reshape
from ._ufuncs import absolute, power, sqrt, where
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


# -- decompositions: eigh, svd, qr (primitives); pinv and lstsq built on svd ------------------------
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = namedtuple("QRResult", ["Q", "R"])


def _matrix_arg(a, name, square=False):
    a = _float_matrix(a)
    shape = shape_of(a)
    if len(shape) < 2:
        raise ShapeError(at_user_line(
            f"linalg.{name}: expected a matrix (or a stack of them, at least 2-D), got shape {tuple(shape)}"))
    if square and shape[-1] != shape[-2]:
        raise ShapeError(at_user_line(
            f"linalg.{name}: expected a square matrix (or a stack of them), got shape {tuple(shape)}"))
    return a


def eigh(a, UPLO="L"):
    """``numpy.linalg.eigh``: ``EighResult(eigenvalues, eigenvectors)`` of a symmetric matrix
    (or a stack), eigenvalues ascending.

    NumPy reads only the ``UPLO`` triangle; the derivatives are those of the symmetric part
    ``(a + a^T) / 2`` (as for ``cholesky``, and as in JAX), so differentiate with symmetric
    inputs. Derivatives of the eigenvectors divide by the gaps between eigenvalues: at
    repeated eigenvalues they are not defined and come out Inf/NaN (as in JAX). An
    eigenvector's sign is arbitrary: differentiate quantities that do not depend on it
    (eigenvalues, ``v_i v_i^T``, ``v diag(f(w)) v^T``)."""
    if UPLO not in ("L", "U"):
        raise FuncgradValueError(at_user_line(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}"))
    w, v = _L.eigh(_matrix_arg(a, "eigh", square=True), UPLO)
    return EighResult(w, v)


def eigvalsh(a, UPLO="L"):
    """``numpy.linalg.eigvalsh``: the eigenvalues of ``eigh``, with its derivatives."""
    return eigh(a, UPLO)[0]


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """``numpy.linalg.svd``: ``SVDResult(U, S, Vh)``, or the singular values alone with
    ``compute_uv=False``; stacks of matrices too.

    Derivatives: the singular values always (``compute_uv=False``); ``U`` and ``Vh`` for
    ``full_matrices=False`` (the thin SVD, Townsend 2016) and for square matrices. For a
    non-square matrix with ``full_matrices=True`` the extra singular vectors are not unique
    and differentiating is a ``FuncgradValueError``. Derivatives of the singular vectors
    divide by gaps between singular values (and, for non-square matrices, by the singular
    values): at repeated (or zero) singular values they are not defined and come out
    Inf/NaN, as in JAX. The pair ``(u_i, v_i)`` has an arbitrary common sign: differentiate
    quantities that do not depend on it. ``hermitian=True`` is accepted and computes the
    general SVD."""
    outs = _L.svd(_matrix_arg(a, "svd"), full_matrices, compute_uv)
    return SVDResult(*outs) if compute_uv else outs[0]


def qr(a, mode="reduced"):
    """``numpy.linalg.qr``: ``QRResult(Q, R)`` for mode 'reduced' or 'complete', ``R`` for
    mode 'r' ('raw' is not supported); stacks of matrices too. Derivatives (reduced QR, the
    standard formula) for matrices with at least as many rows as columns; mode 'complete'
    only for square matrices. Derivatives at rank-deficient matrices are not defined."""
    if mode not in ("reduced", "complete", "r"):
        raise FuncgradValueError(at_user_line(
            f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}"))
    outs = _L.qr(_matrix_arg(a, "qr"), mode)
    return outs[0] if mode == "r" else QRResult(*outs)


_NO_VALUE = object()


def _mT(x):
    return _L.mT(x)


def _pinv_by_svd(a, rcond):
    u, s, vh = _L.svd(a, False, True)
    cutoff = rcond * _max(s, -1, keepdims=True)
    large = s > cutoff
    s_inv = where(large, 1.0 / where(large, s, 1.0), 0.0)
    return _L.mm(_mT(vh) * reshape(s_inv, shape_of(s_inv)[:-1] + (1, shape_of(s_inv)[-1])), _mT(u))


@lru_cache(maxsize=64)
def _pinv_function(rcond):
    """The pseudo-inverse for one cutoff, with the derivative of Golub and Pereyra (1973): it
    holds wherever the rank is locally constant, repeated singular values included."""

    @custom_jvp
    def pinv_(a):
        return _pinv_by_svd(a, rcond)

    @pinv_.defjvp
    def _pinv_jvp(primals, tangents):
        a, = primals
        da, = tangents
        p = pinv_(a)
        mm, pt, dat = _L.mm, _mT(p), _mT(da)
        s = mm(mm(p, pt), dat)  # P P^T dA^T
        t = mm(mm(dat, pt), p)  # dA^T P^T P
        dp = -mm(mm(p, da), p) + s - mm(mm(s, a), p) + t - mm(mm(p, a), t)
        return p, dp

    return pinv_


def _resolve_rcond(a, rcond, rtol, name):
    if rcond is not None and rtol is not _NO_VALUE:
        raise FuncgradValueError(at_user_line(f"linalg.{name}: rtol and rcond cannot both be set"))
    if rcond is None:
        if rtol is _NO_VALUE:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(shape_of(a)[-2:]) * np.finfo(a.dtype).eps
        else:
            rcond = rtol
    if np.ndim(rcond) != 0:
        raise FuncgradValueError(at_user_line(f"linalg.{name}: rcond/rtol must be a scalar, got {rcond!r}"))
    return float(rcond)


def pinv(a, rcond=None, hermitian=False, *, rtol=_NO_VALUE):
    """``numpy.linalg.pinv`` (NumPy 2 defaults: ``rcond=1e-15`` unless ``rtol`` is given,
    ``rtol=None`` meaning ``max(M, N) * eps``), through the SVD; singular values at most
    ``rcond * max(s)`` count as zero. The derivative (Golub and Pereyra) is exact wherever
    the rank does not change, repeated singular values included; it is not defined where
    the rank changes. ``hermitian`` is accepted and computes the general SVD."""
    a = _matrix_arg(a, "pinv")
    return _pinv_function(_resolve_rcond(a, rcond, rtol, "pinv"))(a)


def lstsq(a, b, rcond=None):
    """``numpy.linalg.lstsq``: ``(x, residuals, rank, s)`` for a 2-D ``a`` (M, N) and ``b``
    of shape (M,) or (M, K); ``rcond=None`` is ``max(M, N) * eps``. ``x = pinv(a) @ b``
    (differentiable in ``a`` and ``b``, see ``pinv``), ``s`` the singular values of ``a``
    (differentiable), ``rank`` the count of singular values above ``rcond * max(s)``.
    ``residuals``: the squared norms of the columns of ``b - a x``, shape (K,) (or (1,)), when
    M > N; NumPy also returns an empty array when ``a`` is rank deficient, which funcgrad does
    when the rank is concrete (outside ``jit``/``vmap``/derivatives), and inside them returns
    the residuals (shapes cannot depend on values there). Otherwise an empty array."""
    a, b = promote_float(a, b)
    a = np.asarray(a) if not hasattr(a, "shape") else a
    b = np.asarray(b) if not hasattr(b, "shape") else b
    if ndim_of(a) != 2:
        raise ShapeError(at_user_line(f"linalg.lstsq: a must be a 2-D matrix, got shape {shape_of(a)}"))
    m, n = shape_of(a)
    if ndim_of(b) not in (1, 2) or shape_of(b)[0] != m:
        raise ShapeError(at_user_line(
            f"linalg.lstsq: a of shape {shape_of(a)} and b of shape {shape_of(b)} do not fit: b must have "
            f"shape ({m},) or ({m}, k)"))
    if rcond is None:
        rcond = np.finfo(a.dtype).eps * max(m, n)
    rcond = _resolve_rcond(a, rcond, _NO_VALUE, "lstsq")
    vector = ndim_of(b) == 1
    b2 = reshape(b, (m, 1)) if vector else b
    s = _L.svd(a, False, False)[0]
    x = _L.mm(_pinv_function(rcond)(a), b2)
    rank = _sum(s > rcond * _max(s), None).astype(np.int32)
    if m > n:
        r = b2 - _L.mm(a, x)
        residuals = _sum(r * r, 0)
        concrete = isinstance(rank, (np.ndarray, np.generic))
        if concrete and int(rank) < n:
            residuals = np.zeros((0,), dtype=a.dtype)
    else:
        residuals = np.zeros((0,), dtype=a.dtype)
    if vector:
        x = reshape(x, (n,))
    return x, residuals, rank, s
