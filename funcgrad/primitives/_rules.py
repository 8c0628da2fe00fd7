"""Shared machinery for defining primitives: elementwise constructors, the
broadcasting helpers the derivative rules use, and batching helpers."""
from __future__ import annotations

import numpy as np

from ..core.avals import ShapedArray
from ..core.primitive import Kind, Primitive
from ..errors import ShapeError


def broadcast_shapes(*shapes, op="broadcast"):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ShapeError(
            f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} cannot be broadcast together "
            "(aligned from the right, each pair of dimensions must be equal or 1); add a size-1 axis "
            "where one is missing (x[:, None], fnp.expand_dims) or reshape an operand"
        ) from None


def shape_of(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape`` (the inverse of NumPy broadcasting)."""
    gshape = shape_of(g)
    if gshape == tuple(shape):
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, d in enumerate(shape) if d == 1 and gshape[i + lead] != 1
    )
    if axes:
        g = _P().reduce_sum(g, axes)
    if shape_of(g) != tuple(shape):
        g = _P().reshape(g, tuple(shape))
    return g


def broadcast_to_shape(x, shape):
    return x if shape_of(x) == tuple(shape) else _P().broadcast_to(x, tuple(shape))


_primitives = None


def _P():
    """The primitives package (imported on first use: it imports this module)."""
    global _primitives
    if _primitives is None:
        from .. import primitives

        _primitives = primitives
    return _primitives


def _add_tangents(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


# -- batching helpers (vmap) -----------------------------------------------------
def move_batch_to_front(x, d):
    if d is None or d == 0:
        return x
    nd = len(shape_of(x))
    perm = (d,) + tuple(i for i in range(nd) if i != d)
    return _P().transpose(x, perm)


def moveaxis_value(x, src, dst):
    """``x`` with axis ``src`` moved to ``dst`` (a batch axis, for batching rules)."""
    nd = len(shape_of(x))
    if src == dst:
        return x
    perm = [i for i in range(nd) if i != src]
    perm.insert(dst, src)
    return _P().transpose(x, tuple(perm))


def broadcast_batched(x, size, dim):
    """``x``, the same for the whole batch, given a batch axis of ``size`` at ``dim``."""
    shape = tuple(shape_of(x))
    x = _P().reshape(x, shape[:dim] + (1,) + shape[dim:])
    return _P().broadcast_to(x, shape[:dim] + (size,) + shape[dim:])


def batch_elementwise(prim):
    def rule(args, dims, **params):
        reshape = _P().reshape
        nd = max(len(shape_of(a)) - (d is not None) for a, d in zip(args, dims))
        new = []
        for a, d in zip(args, dims):
            if d is None:
                new.append(a)
                continue
            a = move_batch_to_front(a, d)
            s = shape_of(a)
            rank = len(s) - 1
            if rank < nd:
                a = reshape(a, (s[0],) + (1,) * (nd - rank) + s[1:])
            new.append(a)
        # unbatched operands broadcast against the trailing dims already
        return prim.bind(*new, **params), 0

    return rule


# -- elementwise constructors -------------------------------------------------------
def unary(name, np_fn, deriv=None, *, out_dtype=None, numba=None):
    """An elementwise primitive of one operand; ``deriv(x, ans)`` is df/dx."""
    p = Primitive(name, kind=Kind.ELEMENTWISE, differentiable=deriv is not None)
    p.impl = np_fn
    if out_dtype is None:
        p.abstract_eval = lambda x: x
    else:
        p.abstract_eval = lambda x: ShapedArray(x.shape, out_dtype)
    if deriv is not None:
        def jvp(primals, tangents):
            x, = primals
            ans = p.bind(x)
            with np.errstate(all="ignore"):  # the derivative's own inf/NaN (sqrt at 0) is no warning
                return ans, tangents[0] * deriv(x, ans)

        def vjp(g, ans, primals, needs):
            return [g * deriv(primals[0], ans)]

        p.jvp, p.vjp = jvp, vjp
    p.batch = batch_elementwise(p)
    p.extra["numba"] = numba or f"np.{np_fn.__name__}({{0}})"
    return p


def binary(name, np_fn, dx=None, dy=None, *, out_dtype=None, numba=None):
    """An elementwise primitive of two operands of one dtype, with broadcasting;
    ``dx(x, y, ans)``/``dy(x, y, ans)`` are the partial derivatives."""
    p = Primitive(name, kind=Kind.ELEMENTWISE, differentiable=dx is not None or dy is not None)
    p.impl = np_fn

    def abstract_eval(x, y):
        shape = broadcast_shapes(x.shape, y.shape, op=name)
        return ShapedArray(shape, out_dtype or x.dtype)

    p.abstract_eval = abstract_eval
    if p.differentiable:
        def jvp(primals, tangents):
            x, y = primals
            tx, ty = tangents
            ans = p.bind(x, y)
            out = None
            with np.errstate(all="ignore"):  # as in unary
                if tx is not None and dx is not None:
                    out = tx * dx(x, y, ans)
                if ty is not None and dy is not None:
                    out = _add_tangents(out, ty * dy(x, y, ans))
            if out is not None:
                out = broadcast_to_shape(out, shape_of(ans))
            return ans, out

        def vjp(g, ans, primals, needs):
            x, y = primals
            gx = unbroadcast(g * dx(x, y, ans), shape_of(x)) if needs[0] and dx is not None else None
            gy = unbroadcast(g * dy(x, y, ans), shape_of(y)) if needs[1] and dy is not None else None
            return [gx, gy]

        p.jvp, p.vjp = jvp, vjp
    p.batch = batch_elementwise(p)
    p.extra["numba"] = numba or f"np.{np_fn.__name__}({{0}}, {{1}})"
    return p
