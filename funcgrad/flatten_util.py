"""``ravel_pytree``: a pytree of arrays as one flat vector, and the function that undoes it.

>>> import numpy as np
>>> flat, unravel = ravel_pytree({"w": np.ones((2, 2)), "b": np.zeros(2)})
>>> flat.shape
(6,)
>>> unravel(flat)["w"].shape
(2, 2)
"""
from __future__ import annotations

import numpy as np

from . import numpy as fnp
from .errors import ShapeError, at_user_line
from .numpy._util import dtype_of, shape_of
from .tree_util import tree_flatten

__all__ = ["ravel_pytree"]


def ravel_pytree(tree):
    """``(flat, unravel)``: the leaves of ``tree`` raveled and concatenated in ``tree_leaves``
    order, in their common dtype (NumPy's promotion), and ``unravel(v)`` rebuilding a tree of the
    same structure, shapes and dtypes from a vector like ``flat``. Both work on traced values, so
    ``grad``, ``jit`` and ``vmap`` see through them (an optimizer over one vector, a Hessian of a
    model's parameters as one matrix)."""
    leaves, treedef = tree_flatten(tree)
    shapes = [tuple(shape_of(x)) for x in leaves]
    dtypes = [np.dtype(dtype_of(x)) for x in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    common = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
    if leaves:
        flat = fnp.concatenate([fnp.ravel(fnp.asarray(x, dtype=common)) for x in leaves])
    else:
        flat = np.zeros(0, common)
    total = sum(sizes)

    def unravel(vector):
        v = fnp.asarray(vector)
        if tuple(shape_of(v)) != (total,):
            raise ShapeError(at_user_line(
                f"unravel: expected a vector of shape ({total},) like ravel_pytree's, got shape {tuple(shape_of(v))}"))
        parts, start = [], 0
        for shape, dt, size in zip(shapes, dtypes, sizes):
            part = fnp.reshape(v[start:start + size], shape)
            parts.append(part if np.dtype(dtype_of(part)) == dt else fnp.asarray(part, dtype=dt))
            start += size
        return treedef.unflatten(parts)

    return flat, unravel
