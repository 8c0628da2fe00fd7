"""Primitives that move data: reshape, transpose, broadcast, concatenate, pad,
flip, indexing (getitem and its functional updates), and argsort."""
from __future__ import annotations

import numpy as np

from ..core.avals import ShapedArray
from ..core.primitive import Kind, Primitive
from ..errors import ShapeError
from ._rules import broadcast_shapes, move_batch_to_front, shape_of, unbroadcast
from .elementwise import convert, zeros_like_value

# -- reshape -------------------------------------------------------------------------------
reshape_p = Primitive("reshape", kind=Kind.VIEW)
reshape_p.impl = lambda x, *, shape: x.reshape(shape) if hasattr(x, "reshape") else np.reshape(x, shape)


def _reshape_abstract(x, *, shape):
    n = 1
    for d in shape:
        n *= d
    if n != x.size:
        raise ShapeError(f"reshape: cannot reshape array of shape {x.shape} ({x.size} elements) "
                         f"into shape {shape} ({n} elements); the new shape must hold the same number "
                         "of elements (write -1 for one dimension to have it inferred)")
    return ShapedArray(shape, x.dtype)


reshape_p.abstract_eval = _reshape_abstract
reshape_p.jvp = lambda primals, tangents, *, shape: (reshape(primals[0], shape), reshape(tangents[0], shape))
reshape_p.vjp = lambda g, ans, primals, needs, *, shape: [reshape(g, shape_of(primals[0]))]
reshape_p.batch = lambda args, dims, *, shape: (
    reshape(move_batch_to_front(args[0], dims[0]), (shape_of(args[0])[dims[0]],) + tuple(shape)), 0)

# -- transpose -----------------------------------------------------------------------------
transpose_p = Primitive("transpose", kind=Kind.VIEW)
transpose_p.impl = lambda x, *, perm: x.transpose(perm) if hasattr(x, "transpose") else np.transpose(x, perm)
transpose_p.abstract_eval = lambda x, *, perm: ShapedArray(tuple(x.shape[i] for i in perm), x.dtype)
transpose_p.jvp = lambda primals, tangents, *, perm: (transpose(primals[0], perm), transpose(tangents[0], perm))
transpose_p.vjp = lambda g, ans, primals, needs, *, perm: [transpose(g, tuple(int(i) for i in np.argsort(perm)))]
transpose_p.batch = lambda args, dims, *, perm: (
    transpose(move_batch_to_front(args[0], dims[0]), (0,) + tuple(p + 1 for p in perm)), 0)

# -- broadcast_to --------------------------------------------------------------------------
broadcast_p = Primitive("broadcast_to", kind=Kind.ELEMENTWISE)


def _broadcast_impl(x, *, shape):
    """A read-only view for large results; small ones are filled (a view costs more to make)."""
    n = 1
    for d in shape:
        n *= d
    if n > 4096:
        return np.broadcast_to(x, shape)
    out = np.empty(shape, dtype=x.dtype)
    out[...] = x
    return out


broadcast_p.impl = _broadcast_impl


def _broadcast_abstract(x, *, shape):
    if broadcast_shapes(x.shape, shape, op="broadcast_to") != tuple(shape):
        raise ShapeError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}")
    return ShapedArray(shape, x.dtype)


def _broadcast_batch(args, dims, *, shape):
    x = move_batch_to_front(args[0], dims[0])
    s = shape_of(x)
    rank = len(s) - 1
    x = reshape(x, (s[0],) + (1,) * (len(shape) - rank) + s[1:])
    return broadcast_to(x, (s[0],) + tuple(shape)), 0


broadcast_p.abstract_eval = _broadcast_abstract
broadcast_p.jvp = lambda primals, tangents, *, shape: (broadcast_to(primals[0], shape),
                                                       broadcast_to(tangents[0], shape))
broadcast_p.vjp = lambda g, ans, primals, needs, *, shape: [unbroadcast(g, shape_of(primals[0]))]
broadcast_p.batch = _broadcast_batch
broadcast_p.extra["numba"] = "{0}"

# -- concatenate ---------------------------------------------------------------------------
concatenate_p = Primitive("concatenate", kind=Kind.OPAQUE)
concatenate_p.impl = lambda *xs, axis: np.concatenate(xs, axis=axis)


def _concat_abstract(*xs, axis):
    first = xs[0]
    for x in xs[1:]:
        if x.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != axis):
            raise ShapeError("concatenate: shapes " + ", ".join(str(v.shape) for v in xs)
                             + f" do not match outside axis {axis}; every dimension but the "
                             "concatenation axis must be equal (pass axis=... or reshape first)")
    n = sum(x.shape[axis] for x in xs)
    shape = first.shape[:axis] + (n,) + first.shape[axis + 1:]
    return ShapedArray(shape, first.dtype)


def _concat_jvp(primals, tangents, *, axis):
    ts = [zeros_like_value(p) if t is None else t for p, t in zip(primals, tangents)]
    return concatenate(primals, axis), concatenate(ts, axis)


def _concat_vjp(g, ans, primals, needs, *, axis):
    out, start = [], 0
    for x, need in zip(primals, needs):
        n = shape_of(x)[axis]
        if need:
            spec = (("slice", None, None, None),) * axis + (("slice", start, start + n, 1),)
            out.append(getitem(g, (), spec))
        else:
            out.append(None)
        start += n
    return out


def _concat_batch(args, dims, *, axis):
    size = next(shape_of(a)[d] for a, d in zip(args, dims) if d is not None)
    xs = []
    for a, d in zip(args, dims):
        if d is None:
            a = broadcast_to(reshape(a, (1,) + shape_of(a)), (size,) + shape_of(a))
        else:
            a = move_batch_to_front(a, d)
        xs.append(a)
    return concatenate(xs, axis + 1), 0


concatenate_p.abstract_eval = _concat_abstract
concatenate_p.jvp = _concat_jvp
concatenate_p.vjp = _concat_vjp
concatenate_p.batch = _concat_batch

# -- pad (constant zero) ---------------------------------------------------------------------
pad_p = Primitive("pad", kind=Kind.OPAQUE)
pad_p.impl = lambda x, *, widths: np.pad(x, widths) if widths else np.array(x)
pad_p.abstract_eval = lambda x, *, widths: ShapedArray(
    tuple(d + lo + hi for d, (lo, hi) in zip(x.shape, widths)), x.dtype)
pad_p.jvp = lambda primals, tangents, *, widths: (pad(primals[0], widths), pad(tangents[0], widths))


def _pad_vjp(g, ans, primals, needs, *, widths):
    shape = shape_of(g)
    spec = tuple(("slice", lo, shape[i] - hi, 1) for i, (lo, hi) in enumerate(widths))
    return [getitem(g, (), spec)]


pad_p.vjp = _pad_vjp
pad_p.batch = lambda args, dims, *, widths: (
    pad(move_batch_to_front(args[0], dims[0]), ((0, 0),) + tuple(widths)), 0)

# -- flip ------------------------------------------------------------------------------------
flip_p = Primitive("flip", kind=Kind.VIEW)
flip_p.impl = lambda x, *, axes: np.flip(x, axes)
flip_p.abstract_eval = lambda x, *, axes: x
flip_p.jvp = lambda primals, tangents, *, axes: (flip(primals[0], axes), flip(tangents[0], axes))
flip_p.vjp = lambda g, ans, primals, needs, *, axes: [flip(g, axes)]
flip_p.batch = lambda args, dims, *, axes: (
    flip(move_batch_to_front(args[0], dims[0]), tuple(a + 1 for a in axes)), 0)


# -- indexing ----------------------------------------------------------------------------------
# An index is a static ``spec``: a tuple of entries ("slice", start, stop, step), ("int", i),
# ("none",) or ("array", k) (the k-th integer index operand), applied in order like NumPy.
def spec_to_index(spec, arrays):
    idx = []
    for e in spec:
        kind = e[0]
        if kind == "slice":
            idx.append(slice(e[1], e[2], e[3]))
        elif kind == "int":
            idx.append(e[1])
        elif kind == "none":
            idx.append(None)
        else:
            idx.append(arrays[e[1]])
    return tuple(idx)


def _dummy(shape):
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype=np.uint8), shape=shape,
                                           strides=(0,) * len(shape))


def indexed_shape(shape, spec, index_avals):
    arrays = [np.zeros(a.shape, dtype=np.int64) for a in index_avals]
    try:
        return _dummy(shape)[spec_to_index(spec, arrays)].shape
    except IndexError as exc:
        raise ShapeError(f"indexing: index {spec_text(spec, index_avals)} does not fit an array of "
                         f"shape {tuple(shape)}: {exc}") from None


def spec_text(spec, index_avals=()):
    parts = []
    for e in spec:
        if e[0] == "slice":
            parts.append(":".join("" if v is None else str(v) for v in e[1:3])
                         + (f":{e[3]}" if e[3] not in (None, 1) else ""))
        elif e[0] == "int":
            parts.append(str(e[1]))
        elif e[0] == "none":
            parts.append("None")
        else:
            a = index_avals[e[1]] if e[1] < len(index_avals) else None
            parts.append(f"<int array{'' if a is None else a.shape}>")
    return "[" + ", ".join(parts) + "]"


getitem_p = Primitive("getitem", kind=Kind.GATHER)
getitem_p.impl = lambda x, *idx, spec: x[spec_to_index(spec, idx)]
getitem_p.abstract_eval = lambda x, *idx, spec: ShapedArray(indexed_shape(x.shape, spec, idx), x.dtype)


def _getitem_jvp(primals, tangents, *, spec):
    x, *idx = primals
    return getitem(x, idx, spec), getitem(tangents[0], idx, spec)


def _getitem_vjp(g, ans, primals, needs, *, spec):
    x, *idx = primals
    return [index_add(zeros_like_value(x) if g.dtype == x.dtype else
                      convert(zeros_like_value(x), g.dtype), g, idx, spec)] + [None] * len(idx)


getitem_p.jvp = _getitem_jvp
getitem_p.vjp = _getitem_vjp

index_add_p = Primitive("index_add", kind=Kind.SCATTER)
index_set_p = Primitive("index_set", kind=Kind.SCATTER)


def _index_add_impl(x, v, *idx, spec):
    out = np.array(x, copy=True)
    index = spec_to_index(spec, idx)
    if idx:
        # NumPy's ufunc.at mis-broadcasts a value of lower rank than the indexed shape (wrong
        # sums, reads past the buffer; seen with NumPy 2.4): hand it the broadcast view
        np.add.at(out, index, np.broadcast_to(v, _dummy(out.shape)[index].shape))
    else:
        out[index] += v
    return out


def _index_set_impl(x, v, *idx, spec):
    out = np.array(x, copy=True)
    out[spec_to_index(spec, idx)] = v
    return out


def _scatter_abstract(x, v, *idx, spec):
    target = indexed_shape(x.shape, spec, idx)
    if broadcast_shapes(v.shape, target, op="at[].set/add") != tuple(target):
        raise ShapeError(f"at[{spec_text(spec, idx)[1:-1]}]: value of shape {v.shape} does not "
                         f"broadcast to the indexed shape {target}")
    return x


def _scatter_jvp(p):
    def jvp(primals, tangents, *, spec):
        x, v, *idx = primals
        tx, tv = tangents[0], tangents[1]
        tx = zeros_like_value(x) if tx is None else tx
        tv = zeros_like_value(v) if tv is None else tv
        return p.bind(x, v, *idx, spec=spec), p.bind(tx, tv, *idx, spec=spec)

    return jvp


def _index_add_vjp(g, ans, primals, needs, *, spec):
    _, v, *idx = primals
    gv = unbroadcast(getitem(g, idx, spec), shape_of(v)) if needs[1] else None
    return [g, gv] + [None] * len(idx)


def _index_set_vjp(g, ans, primals, needs, *, spec):
    _, v, *idx = primals
    gx = index_set(g, np.zeros((), g.dtype), idx, spec) if needs[0] else None
    gv = unbroadcast(getitem(g, idx, spec), shape_of(v)) if needs[1] else None
    return [gx, gv] + [None] * len(idx)


for _p in (index_add_p, index_set_p):
    _p.abstract_eval = _scatter_abstract
    _p.jvp = _scatter_jvp(_p)
index_add_p.impl = _index_add_impl
index_set_p.impl = _index_set_impl
index_add_p.vjp = _index_add_vjp
index_set_p.vjp = _index_set_vjp

# -- argsort ------------------------------------------------------------------------------------
argsort_p = Primitive("argsort", kind=Kind.OPAQUE, differentiable=False)
argsort_p.impl = lambda x, *, axis, descending: (
    np.argsort(x, axis=axis, kind="stable") if not descending
    else np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis) * -1 + (x.shape[axis] - 1)
).astype(np.int64)
argsort_p.abstract_eval = lambda x, *, axis, descending: ShapedArray(x.shape, np.int64)
argsort_p.batch = lambda args, dims, *, axis, descending: (
    argsort(move_batch_to_front(args[0], dims[0]), axis + 1, descending), 0)


# -- wrappers -------------------------------------------------------------------------------------
def reshape(x, shape):
    shape = tuple(int(d) for d in shape)
    if shape_of(x) == shape:
        return x
    return reshape_p.bind(x, shape=shape)


def transpose(x, perm):
    perm = tuple(int(p) for p in perm)
    if perm == tuple(range(len(perm))):
        return x
    return transpose_p.bind(x, perm=perm)


def broadcast_to(x, shape):
    shape = tuple(int(d) for d in shape)
    if shape_of(x) == shape:
        return x
    return broadcast_p.bind(x, shape=shape)


def concatenate(xs, axis):
    xs = list(xs)
    if len(xs) == 1:
        return xs[0]
    return concatenate_p.bind(*xs, axis=int(axis))


def pad(x, widths):
    widths = tuple((int(lo), int(hi)) for lo, hi in widths)
    if all(lo == 0 and hi == 0 for lo, hi in widths):
        return x
    return pad_p.bind(x, widths=widths)


def flip(x, axes):
    return flip_p.bind(x, axes=tuple(int(a) for a in axes))


def getitem(x, idx, spec):
    return getitem_p.bind(x, *idx, spec=tuple(spec))


def index_add(x, v, idx, spec):
    return index_add_p.bind(x, v, *idx, spec=tuple(spec))


def index_set(x, v, idx, spec):
    return index_set_p.bind(x, v, *idx, spec=tuple(spec))


def argsort(x, axis, descending=False):
    return argsort_p.bind(x, axis=int(axis), descending=bool(descending))


# -- batching of indexing (vmap) -----------------------------------------------------------------
def _complete_spec(spec, ndim):
    used = sum(1 for e in spec if e[0] != "none")
    return tuple(spec) + (("slice", None, None, None),) * (ndim - used)


def _is_advanced(e, has_arrays):
    return e[0] == "array" or (has_arrays and e[0] == "int")


def _adv_contiguous(spec, has_arrays):
    pos = [i for i, e in enumerate(spec) if _is_advanced(e, has_arrays)]
    return not pos or pos[-1] - pos[0] + 1 == len(pos)


def _all_advanced(spec, x_shape, idx, idx_dims, size):
    """Rewrite an index as integer arrays only, with a leading batch index: the result of
    ``x[(arange(size), *arrays)]`` is the batched result with the batch axis first."""
    spec = _complete_spec(spec, len(x_shape))
    # integer entries count as advanced: without arrays their group has no dims, so placement is moot
    has_arrays = True
    per = [shape_of(a) if d is None else shape_of(a)[:d] + shape_of(a)[d + 1:] for a, d in zip(idx, idx_dims)]
    adv_shape = np.broadcast_shapes(*per) if per else ()
    contiguous = _adv_contiguous(spec, has_arrays)
    layout, dim = [], 0  # output dims: ("basic", spec position, size) and one ("adv",) group
    group_added = False
    for i, e in enumerate(spec):
        if _is_advanced(e, has_arrays):
            if not group_added:
                layout.append(("adv",))
                group_added = True
            dim += 1
        elif e[0] == "none":
            layout.append(("basic", i, 1))
        else:
            n = len(range(*slice(e[1], e[2], e[3]).indices(x_shape[dim])))
            layout.append(("basic", i, n))
            dim += 1
    if not contiguous and group_added:
        layout.remove(("adv",))
        layout.insert(0, ("adv",))
    out_dims = []
    for item in layout:
        out_dims.extend(adv_shape if item[0] == "adv" else (item[2],))
    rank = len(out_dims)
    g = next((k for k, it in enumerate(layout) if it[0] == "adv"), 0)
    gpos = sum(len(adv_shape) if it[0] == "adv" else 1 for it in layout[:g])
    arrays = [np.arange(size).reshape((size,) + (1,) * rank)]
    dim = 0
    for i, e in enumerate(spec):
        if e[0] == "none":
            continue
        if e[0] == "array":
            a, d = idx[e[1]], idx_dims[e[1]]
            s = per[e[1]]
            lead = (1,) * (len(adv_shape) - len(s))
            tail = (1,) * (rank - gpos - len(adv_shape))
            if d is None:
                arrays.append(reshape(a, (1,) + (1,) * gpos + lead + s + tail))
            else:
                a = move_batch_to_front(a, d)
                arrays.append(reshape(a, (size,) + (1,) * gpos + lead + s + tail))
        elif e[0] == "int":
            arrays.append(np.asarray(e[1]).reshape((1,) * (rank + 1)))
        else:
            p = next(k for k, it in enumerate(layout) if it[0] == "basic" and it[1] == i)
            pos = sum(len(adv_shape) if it[0] == "adv" else 1 for it in layout[:p])
            r = np.arange(x_shape[dim])[slice(e[1], e[2], e[3])]
            arrays.append(r.reshape((1,) + (1,) * pos + (len(r),) + (1,) * (rank - pos - 1)))
        dim += 1
    new_spec = tuple(("array", k) for k in range(len(arrays)))
    return new_spec, arrays, tuple(out_dims)


def _getitem_batch(args, dims, *, spec):
    x, *idx = args
    dx, *didx = dims
    if all(d is None for d in didx):
        x = move_batch_to_front(x, dx)
        full = _complete_spec(spec, len(shape_of(x)) - 1)
        has_arrays = any(e[0] == "array" for e in full)
        out = getitem(x, idx, (("slice", None, None, None),) + full)
        if has_arrays and not _adv_contiguous(full, True):
            per = [shape_of(a) for a in idx]
            return out, len(np.broadcast_shapes(*per))
        return out, 0
    size = next(shape_of(a)[d] for a, d in zip(idx, didx) if d is not None)
    if dx is None:
        x = broadcast_to(reshape(x, (1,) + shape_of(x)), (size,) + shape_of(x))
    else:
        x = move_batch_to_front(x, dx)
    new_spec, arrays, _ = _all_advanced(spec, shape_of(x)[1:], idx, didx, size)
    return getitem(x, arrays, new_spec), 0


def _scatter_batch(p):
    def rule(args, dims, *, spec):
        x, v, *idx = args
        dx, dv, *didx = dims
        size = next(shape_of(a)[d] for a, d in zip(args, dims) if d is not None)
        if dx is None:
            x = broadcast_to(reshape(x, (1,) + shape_of(x)), (size,) + shape_of(x))
        else:
            x = move_batch_to_front(x, dx)
        new_spec, arrays, out_dims = _all_advanced(spec, shape_of(x)[1:], idx, didx, size)
        if dv is not None:
            v = move_batch_to_front(v, dv)
            sv = shape_of(v)[1:]
            v = reshape(v, (size,) + (1,) * (len(out_dims) - len(sv)) + sv)
        return p.bind(x, v, *arrays, spec=new_spec), 0

    return rule


getitem_p.batch = _getitem_batch
index_add_p.batch = _scatter_batch(index_add_p)
index_set_p.batch = _scatter_batch(index_set_p)
