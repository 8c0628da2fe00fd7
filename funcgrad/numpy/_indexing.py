"""Indexing of traced arrays (basic and integer-array) and ``x.at[idx].set/add``."""
from __future__ import annotations

import numpy as np

from .. import primitives as P
from ..core.trace import Tracer
from ..errors import FuncgradIndexError, FuncgradTypeError, FuncgradValueError, at_user_line
from ._util import asarray_arg, cast, dtype_of, shape_of


def _as_index_array(v):
    if isinstance(v, Tracer):
        if v.dtype.kind == "b":
            raise FuncgradTypeError(at_user_line(
                f"boolean-mask indexing with a traced mask ({v.aval.str_short()}) has a data-dependent "
                "shape, which jit cannot compile; use fnp.where(mask, x, 0) (or a masked reduction such "
                "as fnp.sum(fnp.where(mask, x, 0))), or index outside of jit"))
        if v.dtype.kind not in "iu":
            raise FuncgradTypeError(at_user_line(f"index arrays must be integers, got {v.dtype}"))
        return v
    arr = np.asarray(v)
    if arr.dtype.kind not in "iub":
        raise FuncgradTypeError(at_user_line(f"index arrays must be integers or booleans, got {arr.dtype}"))
    return arr


def parse_index(idx, shape):
    """Turn a NumPy index into a primitive spec and its list of index arrays."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    # boolean arrays (concrete only) become integer arrays, one per dimension they cover
    expanded = []
    for e in idx:
        if isinstance(e, (list, np.ndarray)) and np.asarray(e).dtype == bool:
            expanded.extend(np.nonzero(np.asarray(e)))
        elif isinstance(e, Tracer) and e.dtype.kind == "b":
            _as_index_array(e)
        else:
            expanded.append(e)
    idx = tuple(expanded)
    n_used = sum(1 for e in idx if e is not None and e is not Ellipsis)
    if sum(1 for e in idx if e is Ellipsis) > 1:
        raise FuncgradValueError("an index can only have a single ellipsis ('...')")
    if n_used > len(shape):
        raise FuncgradValueError(at_user_line(f"too many indices for an array of shape {tuple(shape)}: "
                                              f"{n_used} were given"))
    spec, arrays = [], []
    dim = 0
    for e in idx:
        if e is Ellipsis:
            k = len(shape) - n_used
            spec.extend([("slice", None, None, None)] * k)
            dim += k
        elif e is None:
            spec.append(("none",))
        elif isinstance(e, slice):
            for v in (e.start, e.stop, e.step):
                if isinstance(v, Tracer):
                    v.concrete_value()  # raises inside jit with a clear message
            spec.append(("slice", _int_or_none(e.start), _int_or_none(e.stop), _int_or_none(e.step)))
            dim += 1
        elif isinstance(e, (int, np.integer)) and not isinstance(e, bool):
            n = shape[dim]
            if not -n <= int(e) < n:
                raise FuncgradIndexError(at_user_line(
                    f"index {int(e)} is out of bounds for axis {dim} with size {n} of an array of shape "
                    f"{tuple(shape)}; valid indices are {-n}..{n - 1}"))
            spec.append(("int", int(e) % n))
            dim += 1
        else:
            arr = _as_index_array(e)
            if not isinstance(arr, Tracer):
                n = shape[dim]
                if arr.size and (arr.max() >= n or arr.min() < -n):
                    raise FuncgradIndexError(at_user_line(
                        f"index array with values in [{arr.min()}, {arr.max()}] is out of bounds for "
                        f"axis {dim} with size {n}; valid indices are {-n}..{n - 1}"))
                arr = np.where(arr < 0, arr + n, arr) if arr.size and arr.min() < 0 else arr
            spec.append(("array", len(arrays)))
            arrays.append(arr)
            dim += 1
    return tuple(spec), arrays


def _int_or_none(v):
    return None if v is None else int(v)


def getitem(x, idx):
    """``x[idx]`` for arrays and tracers."""
    x = asarray_arg(x)
    if not isinstance(x, Tracer) and not _has_tracer(idx):
        return np.asarray(x)[idx]
    spec, arrays = parse_index(idx, shape_of(x))
    if all(e[0] == "slice" and e[1:] == (None, None, None) for e in spec):
        return x
    return P.getitem(x, arrays, spec)


def _has_tracer(idx):
    if isinstance(idx, Tracer):
        return True
    if isinstance(idx, tuple):
        return any(isinstance(e, Tracer) or (isinstance(e, slice) and any(
            isinstance(v, Tracer) for v in (e.start, e.stop, e.step))) for e in idx)
    return False


def index_update(x, idx, value, mode):
    x = asarray_arg(x)
    if isinstance(x, (int, float, bool)):
        x = np.asarray(x)
    spec, arrays = parse_index(idx, shape_of(x))
    v = cast(asarray_arg(value), dtype_of(x))
    if mode == "set":
        return P.index_set(x, v, arrays, spec)
    if mode == "add":
        return P.index_add(x, v, arrays, spec)
    raise FuncgradValueError(f"unknown update mode {mode!r}")


class _IndexUpdateRef:
    __slots__ = ("idx", "x")

    def __init__(self, x, idx):
        self.x, self.idx = x, idx

    def set(self, value):
        """A copy of the array with ``value`` written at the index."""
        return index_update(self.x, self.idx, value, "set")

    def add(self, value):
        """A copy with ``value`` added at the index (repeated indices accumulate)."""
        return index_update(self.x, self.idx, value, "add")

    def subtract(self, value):
        from ._ufuncs import negative

        return index_update(self.x, self.idx, negative(value), "add")

    def multiply(self, value):
        from ._ufuncs import multiply

        return index_update(self.x, self.idx, multiply(getitem(self.x, self.idx), value), "set")

    def get(self):
        return getitem(self.x, self.idx)


class _IndexUpdateHelper:
    """``x.at[idx]``: functional updates, as in JAX."""

    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x

    def __getitem__(self, idx):
        return _IndexUpdateRef(self.x, idx)
