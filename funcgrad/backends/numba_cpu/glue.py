"""The Python steps between compiled segments: BLAS contractions and NumPy fallbacks."""
from __future__ import annotations

import numpy as np

from ...primitives.linalg import dot_general_impl, dot_general_p, parse_spec
from . import gemm


def _fix(x, dtype):
    """A writeable C-contiguous ndarray of ``dtype`` (what compiled segments accept)."""
    x = np.asarray(x, dtype=dtype, order="C")
    if not x.flags.writeable:
        x = x.copy()
    return x


def matmul_plan(spec, ndim_a, ndim_b):
    """``(swap, ta, tb, transpose_out)`` such that ``spec`` is a plain matrix product of views,
    or None. With ``swap`` the operands are exchanged; ``ta``/``tb`` transpose them."""
    a, b, out = parse_spec(spec)
    contract = [c for c in a if c in b and c not in out]
    if len(contract) != 1 or any(c in a and c in b for c in out):
        return None
    (c,) = contract
    if ndim_a == 2 and ndim_b == 2 and len(out) == 2:
        if out[0] in a and out[1] in b:
            left, right, swap = a, b, False
        elif out[0] in b and out[1] in a:
            left, right, swap = b, a, True
        else:
            return None
        return swap, left != out[0] + c, right != c + out[1]
    if ndim_a == 2 and ndim_b == 1 and len(out) == 1:  # matrix-vector
        return False, a != out + c, False
    if ndim_a == 1 and ndim_b == 2 and len(out) == 1:  # vector-matrix
        return True, b != out + c, False
    if ndim_a == 1 and ndim_b == 1 and not out:
        return False, False, False
    return None


def _contracted(spec) -> str:
    a, b, out = parse_spec(spec)
    return next(c for c in a if c in b and c not in out)


def make_dot(eqn):
    """A BLAS-backed callable for a ``dot_general`` equation; operands are never copied when
    the contraction is a (transposed) matrix product."""
    spec = eqn.params["spec"]
    dtype = np.dtype(eqn.outvars[0].aval.dtype)
    nda, ndb = (len(v.aval.shape) for v in eqn.inputs)
    plan = matmul_plan(spec, nda, ndb)
    if plan is None:
        return lambda x, y: _fix(dot_general_impl(x, y, spec=spec), dtype)
    swap, ta, tb = plan
    if nda == 1 and ndb == 1:
        return lambda x, y: np.asarray(np.dot(x, y), dtype=dtype)
    if nda == 2 and ndb == 2:
        m, n = eqn.outvars[0].aval.shape
        k = eqn.inputs[0].aval.shape[parse_spec(spec)[0].index(_contracted(spec))]
        dot = gemm.Product(m, n, k, dtype) if gemm.supported(dtype) else np.dot
        if swap:
            return lambda x, y: dot(y.T if ta else y, x.T if tb else x)
        return lambda x, y: dot(x.T if ta else x, y.T if tb else y)
    if swap:  # vector-matrix: y is the matrix
        return lambda x, y: np.dot(y.T if ta else y, x)
    return lambda x, y: np.dot(x.T if ta else x, y)


def make_fallback(eqn):
    """Run an equation through its primitive's NumPy ``impl`` (any primitive, any params)."""
    prim, params = eqn.prim, eqn.params
    impl = prim.impl
    dtypes = [np.dtype(v.aval.dtype) for v in eqn.outvars]
    if prim.multiple_results:
        def call(*args):
            outs = impl(*args, **params)
            return [_fix(o, d) for o, d in zip(outs, dtypes)] if dtypes else []
        return call
    dtype = dtypes[0]
    if params:
        return lambda *args: _fix(impl(*args, **params), dtype)
    return lambda *args: _fix(impl(*args), dtype)


def make_glue(eqn, classify):
    if eqn.prim is dot_general_p and classify(eqn) == "glue" and not eqn.prim.effectful:
        kinds = {np.dtype(v.aval.dtype).kind for v in eqn.inputs}
        if kinds <= {"f"}:
            return make_dot(eqn)
    return make_fallback(eqn)
