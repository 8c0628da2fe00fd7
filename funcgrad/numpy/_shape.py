"""Shape manipulation with NumPy's names and rules."""
from __future__ import annotations

import itertools

import numpy as np

from .. import primitives as P
from ..errors import FuncgradValueError, ShapeError, at_user_line
from ._util import asarray_arg, dtype_of, ndim_of, normalize_axis, promote, shape_of


def _prep(a):
    a = asarray_arg(a)
    if isinstance(a, (int, float, bool)):
        a = np.asarray(a)
    return a


def reshape(a, newshape, order="C"):
    """``numpy.reshape`` (one dimension may be -1); ``order`` "C" (or "A") and "F"."""
    a = _prep(a)
    if order == "F":  # Fortran order is C order on the reversed axes
        if isinstance(newshape, (int, np.integer)):
            newshape = (int(newshape),)
        return transpose(reshape(transpose(a), tuple(newshape)[::-1]))
    if order not in ("C", "A"):
        raise FuncgradValueError(f"reshape: order must be 'C', 'F' or 'A', got {order!r}")
    if isinstance(newshape, (int, np.integer)):
        newshape = (int(newshape),)
    newshape = [int(d) for d in newshape]
    size = int(np.prod(shape_of(a), dtype=np.int64))
    if newshape.count(-1) > 1:
        raise ShapeError("reshape: can only specify one unknown dimension")
    if -1 in newshape:
        known = int(np.prod([d for d in newshape if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ShapeError(at_user_line(f"reshape: cannot reshape array of shape {shape_of(a)} "
                                          f"({size} elements) into shape {tuple(newshape)}"))
        newshape[newshape.index(-1)] = size // known
    return P.reshape(a, tuple(newshape))


def ravel(a):
    a = _prep(a)
    return P.reshape(a, (int(np.prod(shape_of(a), dtype=np.int64)),))


def transpose(a, axes=None):
    a = _prep(a)
    nd = ndim_of(a)
    if axes is None:
        axes = tuple(range(nd))[::-1]
    axes = tuple(normalize_axis(int(x), nd, "transpose") for x in axes)
    if sorted(axes) != list(range(nd)):
        raise FuncgradValueError(f"transpose: axes {axes} are not a permutation of {nd} dimensions")
    return P.transpose(a, axes)


def swapaxes(a, axis1, axis2):
    a = _prep(a)
    nd = ndim_of(a)
    perm = list(range(nd))
    i, j = normalize_axis(axis1, nd, "swapaxes"), normalize_axis(axis2, nd, "swapaxes")
    perm[i], perm[j] = perm[j], perm[i]
    return P.transpose(a, tuple(perm))


def moveaxis(a, source, destination):
    a = _prep(a)
    nd = ndim_of(a)
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    src = [normalize_axis(s, nd, "moveaxis") for s in src]
    dst = [normalize_axis(d, nd, "moveaxis") for d in dst]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return P.transpose(a, tuple(order))


def expand_dims(a, axis):
    a = _prep(a)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    nd = ndim_of(a) + len(axes)
    axes = sorted(normalize_axis(int(x), nd, "expand_dims") for x in axes)
    shape = list(shape_of(a))
    for ax in axes:
        shape.insert(ax, 1)
    return P.reshape(a, tuple(shape))


def squeeze(a, axis=None):
    a = _prep(a)
    shape = shape_of(a)
    if axis is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    else:
        axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
        axes = [normalize_axis(int(x), len(shape), "squeeze") for x in axes]
        for ax in axes:
            if shape[ax] != 1:
                raise FuncgradValueError(at_user_line(
                    f"squeeze: cannot select axis {ax} of shape {shape}: its size is not 1"))
    return P.reshape(a, tuple(d for i, d in enumerate(shape) if i not in axes))


def broadcast_to(a, shape):
    a = _prep(a)
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    return P.broadcast_to(a, shape)


def broadcast_arrays(*args):
    args = [_prep(a) for a in args]
    shape = np.broadcast_shapes(*[shape_of(a) for a in args])
    return [P.broadcast_to(a, shape) for a in args]


def atleast_1d(a):
    a = _prep(a)
    return reshape(a, (1,)) if ndim_of(a) == 0 else a


def atleast_2d(a):
    a = _prep(a)
    nd = ndim_of(a)
    if nd == 0:
        return reshape(a, (1, 1))
    if nd == 1:
        return reshape(a, (1,) + shape_of(a))
    return a


def atleast_3d(a):
    a = _prep(a)
    nd = ndim_of(a)
    if nd == 0:
        return reshape(a, (1, 1, 1))
    if nd == 1:
        return reshape(a, (1,) + shape_of(a) + (1,))
    if nd == 2:
        return reshape(a, shape_of(a) + (1,))
    return a


def concatenate(arrays, axis=0):
    arrays = promote(*arrays)
    arrays = [np.asarray(a) if not hasattr(a, "shape") else a for a in arrays]
    if axis is None:
        return P.concatenate([ravel(a) for a in arrays], 0)
    if not arrays:
        raise FuncgradValueError("concatenate: need at least one array")
    nd = ndim_of(arrays[0])
    if nd == 0:
        raise FuncgradValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    for a in arrays:
        if ndim_of(a) != nd:
            raise ShapeError(at_user_line("concatenate: all inputs must have the same number of dimensions, "
                                          "got shapes " + ", ".join(str(shape_of(x)) for x in arrays)))
    return P.concatenate(arrays, normalize_axis(axis, nd, "concatenate"))


def stack(arrays, axis=0):
    arrays = [_prep(a) for a in arrays]
    if not arrays:
        raise FuncgradValueError("stack: need at least one array")
    shape = shape_of(arrays[0])
    for a in arrays:
        if shape_of(a) != shape:
            raise ShapeError(at_user_line("stack: all input arrays must have the same shape, got "
                                          + ", ".join(str(shape_of(x)) for x in arrays)))
    ax = normalize_axis(axis, len(shape) + 1, "stack")
    return concatenate([expand_dims(a, ax) for a in arrays], ax)


def vstack(arrays):
    return concatenate([atleast_2d(a) for a in arrays], 0)


def hstack(arrays):
    arrays = [atleast_1d(a) for a in arrays]
    return concatenate(arrays, 0 if ndim_of(arrays[0]) == 1 else 1)


def column_stack(arrays):
    cols = [reshape(a, (-1, 1)) if ndim_of(_prep(a)) < 2 else a for a in arrays]
    return concatenate(cols, 1)


def _slice_axis(a, axis, start, stop, step=1):
    nd = ndim_of(a)
    spec = (("slice", None, None, None),) * axis + (("slice", start, stop, step),) + (
        ("slice", None, None, None),) * (nd - axis - 1)
    return P.getitem(a, (), spec)


def split(a, indices_or_sections, axis=0):
    a = _prep(a)
    ax = normalize_axis(axis, ndim_of(a), "split")
    n = shape_of(a)[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if n % k:
            raise FuncgradValueError(f"split: array of size {n} along axis {ax} does not divide into {k} equal parts")
        bounds = [i * (n // k) for i in range(k + 1)]
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    return [_slice_axis(a, ax, lo, hi) for lo, hi in itertools.pairwise(bounds)]


def array_split(a, sections, axis=0):
    a = _prep(a)
    if not isinstance(sections, (int, np.integer)):  # a list of indices, as for split
        return split(a, sections, axis)
    ax = normalize_axis(axis, ndim_of(a), "array_split")
    n = shape_of(a)[ax]
    q, r = divmod(n, int(sections))
    sizes = [q + 1] * r + [q] * (int(sections) - r)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    return [_slice_axis(a, ax, lo, hi) for lo, hi in itertools.pairwise(bounds)]


def flip(a, axis=None):
    a = _prep(a)
    nd = ndim_of(a)
    if axis is None:
        axes = tuple(range(nd))
    elif isinstance(axis, (int, np.integer)):
        axes = (normalize_axis(int(axis), nd, "flip"),)
    else:
        axes = tuple(normalize_axis(int(x), nd, "flip") for x in axis)
    return P.flip(a, axes)


def fliplr(a):
    return flip(a, 1)


def flipud(a):
    return flip(a, 0)


def roll(a, shift, axis=None):
    a = _prep(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), shape_of(a))
    shifts = (shift,) if isinstance(shift, (int, np.integer)) else tuple(shift)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    for s, ax in zip(shifts, axes):
        ax = normalize_axis(ax, ndim_of(a), "roll")
        n = shape_of(a)[ax]
        if n == 0:
            continue
        s = int(s) % n
        if s:
            a = P.concatenate([_slice_axis(a, ax, n - s, n), _slice_axis(a, ax, 0, n - s)], ax)
    return a


def tile(a, reps):
    a = _prep(a)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    nd = max(ndim_of(a), len(reps))
    shape = (1,) * (nd - ndim_of(a)) + shape_of(a)
    reps = (1,) * (nd - len(reps)) + reps
    a = reshape(a, sum(((1, d) for d in shape), ()))
    a = P.broadcast_to(a, sum(((r, d) for r, d in zip(reps, shape)), ()))
    return reshape(a, tuple(r * d for r, d in zip(reps, shape)))


def repeat(a, repeats, axis=None):
    a = _prep(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    ax = normalize_axis(axis, ndim_of(a), "repeat")
    n = shape_of(a)[ax]
    idx = np.repeat(np.arange(n), repeats)
    return take(a, idx, axis=ax)


def take(a, indices, axis=None):
    from ._indexing import getitem

    a = _prep(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    ax = normalize_axis(axis, ndim_of(a), "take")
    return getitem(a, (slice(None),) * ax + (indices,))


def take_along_axis(arr, indices, axis):
    from ._indexing import getitem

    arr = _prep(arr)
    nd = ndim_of(arr)
    ax = normalize_axis(axis, nd, "take_along_axis")
    ishape = shape_of(indices)
    if len(ishape) != nd:
        raise ShapeError(f"take_along_axis: indices of shape {ishape} must have {nd} dimensions like the array")
    idx = []
    for i in range(nd):
        if i == ax:
            idx.append(indices)
        else:
            shp = [1] * nd
            shp[i] = shape_of(arr)[i]
            idx.append(np.arange(shape_of(arr)[i]).reshape(shp))
    return getitem(arr, tuple(idx))


def diagonal(a, offset=0, axis1=0, axis2=1):
    from ._indexing import getitem

    a = _prep(a)
    nd = ndim_of(a)
    a1, a2 = normalize_axis(axis1, nd, "diagonal"), normalize_axis(axis2, nd, "diagonal")
    rest = [i for i in range(nd) if i not in (a1, a2)]
    a = P.transpose(a, tuple(rest) + (a1, a2))
    n1, n2 = shape_of(a)[-2:]
    if offset >= 0:
        k = max(0, min(n1, n2 - offset))
        i, j = np.arange(k), np.arange(k) + offset
    else:
        k = max(0, min(n1 + offset, n2))
        i, j = np.arange(k) - offset, np.arange(k)
    return getitem(a, (Ellipsis, i, j))


def diag(v, k=0):
    v = _prep(v)
    nd = ndim_of(v)
    if nd == 1:
        from ._indexing import index_update

        n = shape_of(v)[0] + abs(k)
        i = np.arange(shape_of(v)[0])
        rows, cols = (i, i + k) if k >= 0 else (i - k, i)
        return index_update(np.zeros((n, n), dtype_of(v)), (rows, cols), v, "set")
    if nd == 2:
        return diagonal(v, k)
    raise FuncgradValueError("diag: input must be 1-D or 2-D")


def triu(m, k=0):
    from ._ufuncs import where

    m = _prep(m)
    n1, n2 = shape_of(m)[-2:]
    return where(np.triu(np.ones((n1, n2), bool), k), m, np.zeros((), dtype_of(m)))


def tril(m, k=0):
    from ._ufuncs import where

    m = _prep(m)
    n1, n2 = shape_of(m)[-2:]
    return where(np.tril(np.ones((n1, n2), bool), k), m, np.zeros((), dtype_of(m)))


def pad(array, pad_width, mode="constant", constant_values=0):
    """``numpy.pad`` for modes constant, edge, reflect, symmetric and wrap."""
    from ._indexing import getitem
    from ._ufuncs import add

    a = _prep(array)
    nd = ndim_of(a)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (nd, 2)).tolist()
    if mode == "constant":
        values = np.broadcast_to(np.asarray(constant_values).astype(dtype_of(a)), (nd, 2))
        if not np.any(values):
            return P.pad(a, widths)
        for ax, (lo, hi) in enumerate(widths):  # axis by axis: later axes fill the corners, as in NumPy
            out = P.pad(a, [(lo, hi) if i == ax else (0, 0) for i in range(nd)])
            fill = np.zeros(shape_of(out), dtype_of(a))
            n = shape_of(out)[ax]
            fill[(slice(None),) * ax + (slice(0, lo),)] = values[ax, 0]
            fill[(slice(None),) * ax + (slice(n - hi, n),)] = values[ax, 1]
            a = add(out, fill) if (lo or hi) and np.any(values[ax]) else out
        return a
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise FuncgradValueError(f"pad: mode {mode!r} is not supported (constant, edge, reflect, symmetric, wrap)")
    for ax, (lo, hi) in enumerate(widths):
        if lo or hi:
            idx = np.pad(np.arange(shape_of(a)[ax]), (lo, hi), mode=mode)
            a = getitem(a, (slice(None),) * ax + (idx,))
    return a


def sort(a, axis=-1):
    """``numpy.sort``; differentiable (the gradient follows the permutation)."""
    a = _prep(a)
    if axis is None:
        a, axis = ravel(a), 0
    ax = normalize_axis(axis, ndim_of(a), "sort")
    idx = P.argsort(a, ax)
    return take_along_axis(a, idx, ax)


def argsort(a, axis=-1):
    a = _prep(a)
    if axis is None:
        a, axis = ravel(a), 0
    return P.argsort(a, normalize_axis(axis, ndim_of(a), "argsort"))


def diff(a, n=1, axis=-1):
    from ._ufuncs import subtract

    a = _prep(a)
    ax = normalize_axis(axis, ndim_of(a), "diff")
    for _ in range(n):
        m = shape_of(a)[ax]
        a = subtract(_slice_axis(a, ax, 1, m), _slice_axis(a, ax, 0, m - 1))
    return a


def shape(a):
    return shape_of(a)


def ndim(a):
    return ndim_of(a)


def size(a):
    return int(np.prod(shape_of(a), dtype=np.int64))
