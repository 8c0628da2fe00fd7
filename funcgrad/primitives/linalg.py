"""Linear algebra primitives: the two-operand contraction ``dot_general`` (every
matmul, dot, tensordot and einsum lowers to it) and the dense decompositions."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..core.avals import ShapedArray
from ..core.primitive import Kind, Primitive
from ..errors import FuncgradValueError, ShapeError
from ._rules import move_batch_to_front, shape_of
from .elementwise import mul, neg
from .reductions import reduce_sum
from .structural import reshape, transpose

# -- dot_general: einsum of two operands, "ab,bc->ac" --------------------------------------


def parse_spec(spec):
    ins, out = spec.split("->")
    a, b = ins.split(",")
    return a, b, out


def _sizes(spec, sa, sb):
    a, b, _ = parse_spec(spec)
    if len(a) != len(sa) or len(b) != len(sb):
        raise ShapeError(f"dot_general {spec!r}: operands of shapes {tuple(sa)} and {tuple(sb)} do not "
                         "match the subscripts' ranks")
    sizes = {}
    for letters, shape in ((a, sa), (b, sb)):
        for c, d in zip(letters, shape):
            if sizes.setdefault(c, d) != d:
                raise ShapeError(f"dot_general {spec!r}: shapes {tuple(sa)} and {tuple(sb)} disagree on "
                                 f"the size of index {c!r} ({sizes[c]} vs {d})")
    return sizes


@lru_cache(maxsize=4096)
def contraction_plan(spec, sa, sb):
    """Transposes and reshapes that turn the contraction into one batched matmul."""
    a, b, out = parse_spec(spec)
    sizes = _sizes(spec, sa, sb)
    batch = [c for c in out if c in a and c in b]
    contract = [c for c in a if c in b and c not in out]
    free_a = [c for c in a if c not in b]
    free_b = [c for c in b if c not in a]
    perm_a = tuple(a.index(c) for c in batch + free_a + contract)
    perm_b = tuple(b.index(c) for c in batch + contract + free_b)

    def prod(cs):
        n = 1
        for c in cs:
            n *= sizes[c]
        return n

    nb, nfa, nc, nfb = prod(batch), prod(free_a), prod(contract), prod(free_b)
    mid = batch + free_a + free_b
    out_perm = tuple(mid.index(c) for c in out)
    mid_shape = tuple(sizes[c] for c in mid)
    out_shape = tuple(sizes[c] for c in out)
    return perm_a, (nb, nfa, nc), perm_b, (nb, nc, nfb), mid_shape, out_perm, out_shape


def dot_general_impl(x, y, *, spec):
    if spec == "ij,jk->ik" or spec == "j,jk->k" or spec == "ij,j->i":
        return np.matmul(x, y)
    pa, ra, pb, rb, mid_shape, out_perm, _ = contraction_plan(spec, x.shape, y.shape)
    xa = np.transpose(x, pa).reshape(ra)
    yb = np.transpose(y, pb).reshape(rb)
    out = np.matmul(xa, yb).reshape(mid_shape)
    return np.transpose(out, out_perm) if out_perm != tuple(range(len(out_perm))) else out


dot_general_p = Primitive("dot_general", kind=Kind.DOT)
dot_general_p.impl = dot_general_impl


def _dot_abstract(x, y, *, spec):
    sizes = _sizes(spec, x.shape, y.shape)
    return ShapedArray(tuple(sizes[c] for c in parse_spec(spec)[2]), x.dtype)


def _dot_jvp(primals, tangents, *, spec):
    x, y = primals
    tx, ty = tangents
    out = dot_general(x, y, spec)
    t = None
    if tx is not None:
        t = dot_general(tx, y, spec)
    if ty is not None:
        t2 = dot_general(x, ty, spec)
        t = t2 if t is None else t + t2
    return out, t


def _dot_vjp(g, ans, primals, needs, *, spec):
    x, y = primals
    a, b, out = parse_spec(spec)
    gx = dot_general(g, y, f"{out},{b}->{a}") if needs[0] else None
    gy = dot_general(x, g, f"{a},{out}->{b}") if needs[1] else None
    return [gx, gy]


def _fresh_letter(*specs):
    used = set("".join(specs))
    for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA":
        if c not in used:
            return c
    raise FuncgradValueError("dot_general: too many indices to batch")


def _dot_batch(args, dims, *, spec):
    a, b, out = parse_spec(spec)
    c = _fresh_letter(a, b, out)
    x, y = args
    dx, dy = dims
    if dx is not None:
        x = move_batch_to_front(x, dx)
        a = c + a
    if dy is not None:
        y = move_batch_to_front(y, dy)
        b = c + b
    return dot_general(x, y, f"{a},{b}->{c}{out}"), 0


dot_general_p.abstract_eval = _dot_abstract
dot_general_p.jvp = _dot_jvp
dot_general_p.vjp = _dot_vjp
dot_general_p.batch = _dot_batch


def dot_general(x, y, spec):
    """``einsum(spec, x, y)``; a contraction over indices of size 1 only (an outer product,
    such as a per-example weight gradient under ``vmap``) is the exact broadcast product
    instead, which the compilers fuse with its neighbours."""
    a, b, out = parse_spec(spec)
    sa, sb = shape_of(x), shape_of(y)
    summed = set(a + b) - set(out)
    if summed and all(c in a and c in b and sa[a.index(c)] == 1 for c in summed):
        return mul(_along(x, a, sa, out), _along(y, b, sb, out))
    return dot_general_p.bind(x, y, spec=spec)


def _along(x, letters, shape, out):
    """``x`` (indices ``letters``) without its size-1 contracted axes, its axes in ``out``'s
    order and size 1 where ``out`` has an index it lacks: ready to broadcast."""
    kept = [c for c in letters if c in out]
    x = reshape(x, tuple(shape[letters.index(c)] for c in kept))
    order = sorted(range(len(kept)), key=lambda i: out.index(kept[i]))
    if order != list(range(len(kept))):
        x = transpose(x, tuple(order))
    ordered = [kept[i] for i in order]
    full = tuple(shape[letters.index(c)] if c in ordered else 1 for c in out)
    return reshape(x, full) if full != tuple(shape_of(x)) else x


# -- helpers for the matrix rules (stacks of matrices: last two axes) -----------------------------
def mT(x):
    nd = len(shape_of(x))
    return transpose(x, tuple(range(nd - 2)) + (nd - 1, nd - 2))


def mm(x, y):
    nd = len(shape_of(x))
    lead = "".join(chr(ord("a") + i) for i in range(nd - 2))
    return dot_general(x, y, f"{lead}ij,{lead}jk->{lead}ik")


def _bcast_scalar_to_mat(s):
    return reshape(s, shape_of(s) + (1, 1))


def _square_abstract(name):
    def rule(x):
        if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
            raise ShapeError(f"linalg.{name}: expected a square matrix (or a stack of them), got shape {x.shape}")
        if x.dtype.kind != "f":
            raise FuncgradValueError(f"linalg.{name}: expected a float matrix, got {x.dtype}")
        return x

    return rule


def _batch_leading(p, nargs=1):
    def rule(args, dims, **params):
        size = next(shape_of(a)[d] for a, d in zip(args, dims) if d is not None)
        xs = []
        for a, d in zip(args, dims):
            if d is None:
                from .structural import broadcast_to

                a = broadcast_to(reshape(a, (1,) + shape_of(a)), (size,) + shape_of(a))
            else:
                a = move_batch_to_front(a, d)
            xs.append(a)
        out = p.bind(*xs, **params)
        return out, ([0] * len(out) if p.multiple_results else 0)

    return rule


# inv
inv_p = Primitive("inv")
inv_p.impl = np.linalg.inv
inv_p.abstract_eval = _square_abstract("inv")


def _inv_jvp(primals, tangents):
    ai = inv(primals[0])
    return ai, neg(mm(mm(ai, tangents[0]), ai))


inv_p.jvp = _inv_jvp
inv_p.vjp = lambda g, ans, primals, needs: [neg(mm(mm(mT(ans), g), mT(ans)))]
inv_p.batch = _batch_leading(inv_p)

# solve(a, b) with b a stack of matrices (..., n, k)
solve_p = Primitive("solve")
solve_p.impl = np.linalg.solve


def _solve_abstract(a, b):
    _square_abstract("solve")(a)
    if b.ndim != a.ndim or b.shape[-2] != a.shape[-1] or b.shape[:-2] != a.shape[:-2]:
        raise ShapeError(f"linalg.solve: a of shape {a.shape} and b of shape {b.shape} do not fit")
    return b


def _solve_jvp(primals, tangents):
    a, b = primals
    ta, tb = tangents
    x = solve(a, b)
    rhs = tb
    if ta is not None:
        r = neg(mm(ta, x))
        rhs = r if rhs is None else rhs + r
    return x, solve(a, rhs)


def _solve_vjp(g, ans, primals, needs):
    a = primals[0]
    gb = solve(mT(a), g)
    ga = neg(mm(gb, mT(ans))) if needs[0] else None
    return [ga, gb if needs[1] else None]


solve_p.abstract_eval = _solve_abstract
solve_p.jvp = _solve_jvp
solve_p.vjp = _solve_vjp
solve_p.batch = _batch_leading(solve_p)


def _trace_last2(x):
    nd = len(shape_of(x))
    lead = "".join(chr(ord("a") + i) for i in range(nd - 2))
    eye = np.eye(shape_of(x)[-1], dtype=x.dtype)
    return dot_general(x, eye, f"{lead}ij,ij->{lead}")


# det
det_p = Primitive("det")
det_p.impl = np.linalg.det
det_p.abstract_eval = lambda x: ShapedArray(_square_abstract("det")(x).shape[:-2], x.dtype)


def _det_jvp(primals, tangents):
    d = det(primals[0])
    return d, mul(d, _trace_last2(solve(primals[0], tangents[0])))


det_p.jvp = _det_jvp
det_p.vjp = lambda g, ans, primals, needs: [mul(_bcast_scalar_to_mat(mul(g, ans)), mT(inv(primals[0])))]
det_p.batch = _batch_leading(det_p)

# slogdet -> (sign, logabsdet)
slogdet_p = Primitive("slogdet", multiple_results=True)
slogdet_p.impl = lambda x: tuple(np.linalg.slogdet(x))
slogdet_p.abstract_eval = lambda x: [ShapedArray(_square_abstract("slogdet")(x).shape[:-2], x.dtype)] * 2


def _slogdet_jvp(primals, tangents):
    x, = primals
    sign, logdet = slogdet(x)
    return [sign, logdet], [None, _trace_last2(solve(x, tangents[0]))]


def _slogdet_vjp(cts, ans, primals, needs):
    g = cts[1]
    if g is None:
        return [None]
    return [mul(_bcast_scalar_to_mat(g), mT(inv(primals[0])))]


slogdet_p.jvp = _slogdet_jvp
slogdet_p.vjp = _slogdet_vjp
slogdet_p.batch = _batch_leading(slogdet_p)

# cholesky (lower)
cholesky_p = Primitive("cholesky")
cholesky_p.impl = np.linalg.cholesky
cholesky_p.abstract_eval = _square_abstract("cholesky")


def _phi(x):
    """Lower triangle with the diagonal halved."""
    n = shape_of(x)[-1]
    w = np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)
    return mul(x, w.astype(x.dtype))


def _cholesky_jvp(primals, tangents):
    a, = primals
    L = cholesky(a)
    Li = inv(L)
    t = tangents[0]
    t = 0.5 * (t + mT(t))
    return L, mm(L, _phi(mm(mm(Li, t), mT(Li))))


def _cholesky_vjp(g, L, primals, needs):
    Li = inv(L)
    p = _phi(mm(mT(L), g))
    ga = mm(mm(mT(Li), p), Li)
    return [0.5 * (ga + mT(ga))]


cholesky_p.jvp = _cholesky_jvp
cholesky_p.vjp = _cholesky_vjp
cholesky_p.batch = _batch_leading(cholesky_p)


def inv(x):
    return inv_p.bind(x)


def solve(a, b):
    return solve_p.bind(a, b)


def det(x):
    return det_p.bind(x)


def slogdet(x):
    return slogdet_p.bind(x)


def cholesky(x):
    return cholesky_p.bind(x)


__all__ = ["cholesky", "det", "dot_general", "inv", "mT", "mm", "reduce_sum", "slogdet", "solve"]


# -- eigh, svd, qr: decompositions with several outputs --------------------------------------------
# Their rules are the standard ones (JAX's): eigh and the thin SVD divide by gaps between
# eigenvalues / singular values, so derivatives where two coincide are not defined (Inf/NaN).
def _lead(x):
    return "".join(chr(ord("a") + i) for i in range(len(shape_of(x)) - 2))


def _diag_part(x):
    """The diagonal of a stack of square matrices: (..., n, n) -> (..., n)."""
    lead = _lead(x)
    return dot_general(x, np.eye(shape_of(x)[-1], dtype=x.dtype), f"{lead}ij,ij->{lead}i")


def _diag_mat(v):
    """A stack of diagonal matrices from their diagonals: (..., n) -> (..., n, n)."""
    n = shape_of(v)[-1]
    return mul(reshape(v, shape_of(v) + (1,)), np.eye(n, dtype=v.dtype))


def _row(v):
    return reshape(v, shape_of(v)[:-1] + (1, shape_of(v)[-1]))


def _col(v):
    return reshape(v, shape_of(v) + (1,))


def _gap_inverse(d):
    """``1 / d`` off the diagonal and 0 on it (``d`` is 0 there), without dividing by zero
    on the diagonal."""
    eye = np.eye(shape_of(d)[-1], dtype=d.dtype)
    return 1.0 / (d + eye) - eye


def _check_float_matrix(name, x):
    if x.ndim < 2:
        raise ShapeError(f"linalg.{name}: expected a matrix (or a stack of them, at least 2-D), got shape "
                         f"{x.shape}")
    if x.dtype.kind != "f":
        raise FuncgradValueError(f"linalg.{name}: expected a float matrix, got {x.dtype}")


# eigh(x, uplo) -> (w, v): the eigenvalues (ascending) and eigenvectors of a symmetric matrix.
# NumPy reads one triangle (uplo); the derivative rules take the symmetric part of the tangent
# (or cotangent), i.e. they differentiate eigh((x + x^T) / 2), as cholesky's rules do.
eigh_p = Primitive("eigh", multiple_results=True)
eigh_p.impl = lambda x, *, uplo: tuple(np.linalg.eigh(x, UPLO=uplo))


def _eigh_abstract(x, *, uplo):
    _square_abstract("eigh")(x)
    return [ShapedArray(x.shape[:-1], x.dtype), ShapedArray(x.shape, x.dtype)]


def _eig_gaps(w):
    """F with F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it."""
    return _gap_inverse(_row(w) - _col(w))


def _eigh_jvp(primals, tangents, *, uplo):
    a, = primals
    w, v = eigh(a, uplo)
    t = tangents[0]
    t = 0.5 * (t + mT(t))
    m = mm(mm(mT(v), t), v)
    return [w, v], [_diag_part(m), mm(v, mul(_eig_gaps(w), m))]


def _eigh_vjp(cts, ans, primals, needs, *, uplo):
    gw, gv = cts
    w, v = ans
    inner = None if gw is None else _diag_mat(gw)
    if gv is not None:
        x = mul(_eig_gaps(w), mm(mT(v), gv))
        inner = x if inner is None else inner + x
    if inner is None:
        return [None]
    ga = mm(mm(v, inner), mT(v))
    return [0.5 * (ga + mT(ga))]


eigh_p.abstract_eval = _eigh_abstract
eigh_p.jvp = _eigh_jvp
eigh_p.vjp = _eigh_vjp
eigh_p.batch = _batch_leading(eigh_p)


# svd(x, full_matrices, compute_uv) -> (u, s, vh), or (s,) without compute_uv
svd_p = Primitive("svd", multiple_results=True)


def _svd_impl(x, *, full_matrices, compute_uv):
    if not compute_uv:
        return (np.linalg.svd(x, compute_uv=False),)
    return tuple(np.linalg.svd(x, full_matrices=full_matrices, compute_uv=True))


def _svd_abstract(x, *, full_matrices, compute_uv):
    _check_float_matrix("svd", x)
    m, n = x.shape[-2:]
    k, lead = min(m, n), tuple(x.shape[:-2])
    s = ShapedArray(lead + (k,), x.dtype)
    if not compute_uv:
        return [s]
    cu, rv = (m, n) if full_matrices else (k, k)
    return [ShapedArray(lead + (m, cu), x.dtype), s, ShapedArray(lead + (rv, n), x.dtype)]


def _svd_full_check(shape, full_matrices, compute_uv):
    m, n = shape[-2:]
    if compute_uv and full_matrices and m != n:
        raise FuncgradValueError(
            f"linalg.svd: the derivative of svd(full_matrices=True) of a non-square matrix (shape "
            f"{tuple(shape)}) is not defined (the extra singular vectors are not unique); use "
            "full_matrices=False, or compute_uv=False for the singular values alone")


def _svd_gaps(s):
    """F with F_ij = 1 / (s_j^2 - s_i^2) off the diagonal, 0 on it."""
    sr, sc = _row(s), _col(s)
    return _gap_inverse((sr + sc) * (sr - sc))


def _svd_jvp(primals, tangents, *, full_matrices, compute_uv):
    a, = primals
    da = tangents[0]
    _svd_full_check(shape_of(a), full_matrices, compute_uv)
    u, s, vh = svd(a, full_matrices=False)
    v = mT(vh)
    ds_mat = mm(mm(mT(u), da), v)
    ds = _diag_part(ds_mat)
    if not compute_uv:
        return [s], [ds]
    m, n = shape_of(a)[-2:]
    sr, sc = _row(s), _col(s)
    f = _svd_gaps(s)
    dss = mul(ds_mat, sr)  # dS diag(s)
    sds = mul(sc, ds_mat)  # diag(s) dS
    du = mm(u, mul(f, dss + mT(dss)))
    dv = mm(v, mul(f, sds + mT(sds)))
    if m > n:
        dav = mm(da, v)
        du = du + (dav - mm(u, mm(mT(u), dav))) / sr
    if n > m:
        dau = mm(mT(da), u)
        dv = dv + (dau - mm(v, mm(vh, dau))) / sr
    return [u, s, vh], [du, ds, mT(dv)]


def _svd_vjp(cts, ans, primals, needs, *, full_matrices, compute_uv):
    a, = primals
    _svd_full_check(shape_of(a), full_matrices, compute_uv)
    if compute_uv:
        gu, gs, gvh = cts
        u, s, vh = ans
    else:
        (gs,), gu, gvh = cts, None, None
        u, s, vh = svd(a, full_matrices=False)
    m, n = shape_of(a)[-2:]
    sr, sc = _row(s), _col(s)
    inner = None if gs is None else _diag_mat(gs)
    if gu is not None or gvh is not None:
        f = _svd_gaps(s)
    if gu is not None:
        h = mul(f, mm(mT(u), gu))
        x = mul(h + mT(h), sr)
        inner = x if inner is None else inner + x
    if gvh is not None:
        gv = mT(gvh)
        h = mul(f, mm(vh, gv))
        x = mul(sc, h + mT(h))
        inner = x if inner is None else inner + x
    ga = None if inner is None else mm(mm(u, inner), vh)
    if gu is not None and m > n:
        x = mm((gu - mm(u, mm(mT(u), gu))) / sr, vh)
        ga = x if ga is None else ga + x
    if gvh is not None and n > m:
        x = mm(u, mT((gv - mm(mT(vh), mm(vh, gv))) / sr))
        ga = x if ga is None else ga + x
    return [ga]


svd_p.impl = _svd_impl
svd_p.abstract_eval = _svd_abstract
svd_p.jvp = _svd_jvp
svd_p.vjp = _svd_vjp
svd_p.batch = _batch_leading(svd_p)


# qr(x, mode) -> (q, r) for mode 'reduced' or 'complete', (r,) for mode 'r'
qr_p = Primitive("qr", multiple_results=True)


def _qr_impl(x, *, mode):
    if mode == "r":
        return (np.linalg.qr(x, mode="r"),)
    return tuple(np.linalg.qr(x, mode=mode))


def _qr_abstract(x, *, mode):
    _check_float_matrix("qr", x)
    m, n = x.shape[-2:]
    k, lead = min(m, n), tuple(x.shape[:-2])
    rows = m if mode == "complete" else k
    r = ShapedArray(lead + (rows, n), x.dtype)
    return [r] if mode == "r" else [ShapedArray(lead + (m, rows), x.dtype), r]


def _qr_check(shape, mode):
    m, n = shape[-2:]
    if m < n or (mode == "complete" and m != n):
        raise FuncgradValueError(
            f"linalg.qr: derivatives are defined for matrices with at least as many rows as columns "
            f"(mode 'reduced' or 'r'; 'complete' only for square ones), got shape {tuple(shape)} and "
            f"mode {mode!r}")


def _strict_lower(x):
    n = shape_of(x)[-1]
    return mul(x, np.tril(np.ones((n, n), dtype=x.dtype), -1))


def _qr_jvp(primals, tangents, *, mode):
    a, = primals
    da = tangents[0]
    _qr_check(shape_of(a), mode)
    q, r = qr(a, "reduced")
    c = mm(da, inv(r))  # dA R^-1
    mq = mm(mT(q), c)
    low = _strict_lower(mq)
    do = low - mT(low)  # Q^T dQ, skew-symmetric
    dq = mm(q, do - mq) + c
    dr = mm(mq - do, r)
    return ([r], [dr]) if mode == "r" else ([q, r], [dq, dr])


def _qr_vjp(cts, ans, primals, needs, *, mode):
    a, = primals
    _qr_check(shape_of(a), mode)
    if mode == "r":
        (gr,), gq = cts, None
        q, r = qr(a, "reduced")
    else:
        gq, gr = cts
        q, r = ans
    if gq is None and gr is None:
        return [None]
    b = None if gq is None else mm(mT(q), gq)
    if gr is not None:
        b = neg(mm(gr, mT(r))) if b is None else b - mm(gr, mT(r))
    x = mm(q, _strict_lower(b - mT(b)) - b)
    if gq is not None:
        x = x + gq
    return [mm(x, mT(inv(r)))]


qr_p.impl = _qr_impl
qr_p.abstract_eval = _qr_abstract
qr_p.jvp = _qr_jvp
qr_p.vjp = _qr_vjp
qr_p.batch = _batch_leading(qr_p)


def eigh(x, uplo="L"):
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix (stack): ``[w, v]``.
    Derivatives at repeated eigenvalues are not defined (Inf/NaN)."""
    return eigh_p.bind(x, uplo=uplo)


def svd(x, full_matrices=True, compute_uv=True):
    """``[u, s, vh]`` (``[s]`` without ``compute_uv``). Derivatives at repeated (or, for
    non-square matrices, zero) singular values are not defined (Inf/NaN)."""
    return svd_p.bind(x, full_matrices=bool(full_matrices), compute_uv=bool(compute_uv))


def qr(x, mode="reduced"):
    """``[q, r]`` (mode 'reduced' or 'complete') or ``[r]`` (mode 'r')."""
    return qr_p.bind(x, mode=mode)
