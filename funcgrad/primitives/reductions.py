"""Reductions and scans along axes."""
from __future__ import annotations

import numpy as np

from ..core.avals import ShapedArray
from ..core.primitive import Kind, Primitive
from ._rules import shape_of
from .elementwise import add, convert, div, equal, mul, select


def _reduced_shape(shape, axes):
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _keepdims_shape(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _expand_back(g, shape, axes):
    """Broadcast a reduced array back to ``shape``."""
    from .structural import broadcast_to, reshape

    if not shape_of(g):  # a full reduction: broadcast the scalar directly
        return broadcast_to(g, tuple(shape))
    return broadcast_to(reshape(g, _keepdims_shape(shape, axes)), tuple(shape))


def _reduction(name, np_fn, numba_op):
    p = Primitive(name, kind=Kind.REDUCTION)
    p.impl = lambda x, *, axes: np.asarray(np_fn(x, axis=axes)).astype(x.dtype, copy=False)
    p.abstract_eval = lambda x, *, axes: ShapedArray(_reduced_shape(x.shape, axes), x.dtype)
    p.extra["numba"] = numba_op
    p.batch = _batch_reduction(p)
    return p


def _batch_reduction(p):
    def rule(args, dims, *, axes):
        from ._rules import move_batch_to_front

        x = move_batch_to_front(args[0], dims[0])
        return p.bind(x, axes=tuple(a + 1 for a in axes)), 0

    return rule


reduce_sum_p = _reduction("reduce_sum", np.sum, "+")
reduce_sum_p.impl = lambda x, *, axes: np.add.reduce(x, axis=axes, dtype=x.dtype)
reduce_sum_p.jvp = lambda primals, tangents, *, axes: (reduce_sum(primals[0], axes), reduce_sum(tangents[0], axes))
reduce_sum_p.vjp = lambda g, ans, primals, needs, *, axes: [_expand_back(g, shape_of(primals[0]), axes)]

reduce_max_p = _reduction("reduce_max", np.max, "max")
reduce_min_p = _reduction("reduce_min", np.min, "min")


def _extremum_rules(p):
    def weights(x, ans, axes):
        from .structural import reshape

        shape = shape_of(x)
        hit = equal(x, reshape(ans, _keepdims_shape(shape, axes)))
        w = convert(hit, x.dtype)
        return div(w, _expand_back(reduce_sum(w, axes), shape, axes))

    def jvp(primals, tangents, *, axes):
        x, = primals
        ans = p.bind(x, axes=axes)
        return ans, reduce_sum(mul(tangents[0], weights(x, ans, axes)), axes)

    def vjp(g, ans, primals, needs, *, axes):
        x, = primals
        return [mul(_expand_back(g, shape_of(x), axes), weights(x, ans, axes))]

    p.jvp, p.vjp = jvp, vjp


_extremum_rules(reduce_max_p)
_extremum_rules(reduce_min_p)

reduce_prod_p = _reduction("reduce_prod", np.prod, "*")


def _prod_jvp(primals, tangents, *, axes):
    x, = primals
    ans = reduce_prod(x, axes)
    # d prod = sum_i t_i * prod_{j != i} x_j, computed without dividing by x
    return ans, reduce_sum(mul(tangents[0], _prod_others(x, axes)), axes)


def _prod_others(x, axes):
    """prod over ``axes`` of every element but the one at each position (exact at zeros)."""
    from .structural import reshape, transpose

    shape = shape_of(x)
    keep = [i for i in range(len(shape)) if i not in axes]
    perm = tuple(keep) + tuple(axes)
    xt = transpose(x, perm)
    kshape = tuple(shape[i] for i in keep)
    n = 1
    for a in axes:
        n *= shape[a]
    flat = reshape(xt, kshape + (n,))
    ax = len(kshape)
    ones = np.ones(kshape + (1,), dtype=x.dtype)
    from .structural import concatenate, getitem

    before = cumprod(concatenate([ones, getitem(flat, (), _last_slice(ax, 0, n - 1))], ax), ax, False)
    after = cumprod(concatenate([getitem(flat, (), _last_slice(ax, 1, n)), ones], ax), ax, True)
    others = reshape(mul(before, after), tuple(xt.shape) if hasattr(xt, "shape") else shape_of(xt))
    inv = tuple(int(i) for i in np.argsort(perm))
    return transpose(others, inv)


def _last_slice(ax, start, stop):
    return (("slice", 0, None, 1),) * ax + (("slice", start, stop, 1),)


reduce_prod_p.jvp = _prod_jvp
reduce_prod_p.vjp = lambda g, ans, primals, needs, *, axes: [
    mul(_expand_back(g, shape_of(primals[0]), axes), _prod_others(primals[0], axes))]


def _argreduce(name, np_fn):
    p = Primitive(name, kind=Kind.REDUCTION, differentiable=False)
    p.impl = lambda x, *, axis: np.asarray(np_fn(x, axis=axis)).astype(np.int64)
    p.abstract_eval = lambda x, *, axis: ShapedArray(_reduced_shape(x.shape, (axis,)), np.int64)

    def batch(args, dims, *, axis):
        from ._rules import move_batch_to_front

        return p.bind(move_batch_to_front(args[0], dims[0]), axis=axis + 1), 0

    p.batch = batch
    return p


argmax_p = _argreduce("argmax", np.argmax)
argmin_p = _argreduce("argmin", np.argmin)


# -- scans ---------------------------------------------------------------------------------
def _scan_impl(np_fn):
    def impl(x, *, axis, reverse):
        if reverse:
            x = np.flip(x, axis)
        out = np_fn(x, axis=axis, dtype=x.dtype)
        return np.flip(out, axis) if reverse else out

    return impl


cumsum_p = Primitive("cumsum", kind=Kind.SCAN)
cumsum_p.impl = _scan_impl(np.cumsum)
cumsum_p.abstract_eval = lambda x, *, axis, reverse: x
cumsum_p.jvp = lambda primals, tangents, *, axis, reverse: (
    cumsum(primals[0], axis, reverse), cumsum(tangents[0], axis, reverse))
cumsum_p.vjp = lambda g, ans, primals, needs, *, axis, reverse: [cumsum(g, axis, not reverse)]

cumprod_p = Primitive("cumprod", kind=Kind.SCAN)
cumprod_p.impl = _scan_impl(np.cumprod)
cumprod_p.abstract_eval = lambda x, *, axis, reverse: x


# The derivatives of cumprod follow a Hillis-Steele scan (log2(n) levels of y * shifted(y)):
# they never divide by x, so they are exact where x has zeros, at every order.
def _axis_slice(axis, start, stop):
    return (("slice", None, None, None),) * axis + (("slice", start, stop, 1),)


def _shift(x, d, axis, fill):
    """``x`` moved ``d`` places up along ``axis``; the first ``d`` entries are ``fill``."""
    from .structural import concatenate, getitem

    shape = shape_of(x)
    head = np.full(shape[:axis] + (d,) + shape[axis + 1:], fill, dtype=x.dtype)
    return concatenate([head, getitem(x, (), _axis_slice(axis, 0, shape[axis] - d))], axis)


def _unshift(x, d, axis):
    """The transpose of ``_shift`` with a zero fill: moved ``d`` places down."""
    from .structural import concatenate, getitem

    shape = shape_of(x)
    tail = np.zeros(shape[:axis] + (d,) + shape[axis + 1:], dtype=x.dtype)
    return concatenate([getitem(x, (), _axis_slice(axis, d, shape[axis])), tail], axis)


def _scan_levels(x, axis):
    """``[(y, shifted y, d)]`` per level of the scan whose last ``y * shifted y`` is cumprod(x)."""
    levels, y, d = [], x, 1
    while d < shape_of(x)[axis]:
        ys = _shift(y, d, axis, 1)
        levels.append((y, ys, d))
        y, d = mul(y, ys), 2 * d
    return levels


def _flip_if(x, reverse, axis):
    from .structural import flip

    return flip(x, (axis,)) if reverse else x


def _cumprod_jvp(primals, tangents, *, axis, reverse):
    x, t = (_flip_if(v, reverse, axis) for v in (primals[0], tangents[0]))
    for y, ys, d in _scan_levels(x, axis):
        t = add(mul(t, ys), mul(y, _shift(t, d, axis, 0)))
    return cumprod(primals[0], axis, reverse), _flip_if(t, reverse, axis)


def _cumprod_vjp(g, ans, primals, needs, *, axis, reverse):
    g = _flip_if(g, reverse, axis)
    for y, ys, d in reversed(_scan_levels(_flip_if(primals[0], reverse, axis), axis)):
        g = add(mul(g, ys), _unshift(mul(g, y), d, axis))
    return [_flip_if(g, reverse, axis)]


cumprod_p.jvp = _cumprod_jvp
cumprod_p.vjp = _cumprod_vjp


def _batch_scan(p):
    def rule(args, dims, *, axis, reverse):
        from ._rules import move_batch_to_front

        return p.bind(move_batch_to_front(args[0], dims[0]), axis=axis + 1, reverse=reverse), 0

    return rule


cumsum_p.batch = _batch_scan(cumsum_p)
cumprod_p.batch = _batch_scan(cumprod_p)


# -- wrappers ----------------------------------------------------------------------------------
def reduce_sum(x, axes):
    axes = tuple(axes)
    if not axes:
        return x
    return reduce_sum_p.bind(x, axes=axes)


def reduce_max(x, axes):
    return reduce_max_p.bind(x, axes=tuple(axes))


def reduce_min(x, axes):
    return reduce_min_p.bind(x, axes=tuple(axes))


def reduce_prod(x, axes):
    return reduce_prod_p.bind(x, axes=tuple(axes))


def cumsum(x, axis, reverse=False):
    return cumsum_p.bind(x, axis=int(axis), reverse=bool(reverse))


def cumprod(x, axis, reverse=False):
    return cumprod_p.bind(x, axis=int(axis), reverse=bool(reverse))


__all__ = ["cumprod", "cumsum", "reduce_max", "reduce_min", "reduce_prod", "reduce_sum", "select"]
