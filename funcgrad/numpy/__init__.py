"""``funcgrad.numpy``: NumPy's API, differentiable and traceable.

>>> import funcgrad as fg, funcgrad.numpy as fnp
>>> fg.grad(lambda x: fnp.sum(fnp.sin(x) ** 2))(np.array([0.0, 1.0]))
array([0.        , 0.90929743])
"""
import numpy as _np

from ..primitives import stop_gradient  # noqa: F401
from . import _tracer_methods, linalg  # noqa: F401  (_tracer_methods: the array API of Tracer)
from ._array import Array, at  # noqa: F401
from ._creation import *
from ._creation import array, asarray, eye  # noqa: F401
from ._extra import *
from ._indexing import _IndexUpdateHelper
from ._indexing import getitem as _getitem  # noqa: F401
from ._linalg_ops import dot, einsum, inner, kron, matmul, outer, tensordot, trace, vdot  # noqa: F401
from ._reductions import (  # noqa: F401
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    cumprod,
    cumsum,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)
from ._shape import *
from ._ufuncs import *
from ._ufuncs import abs, round  # noqa: F401

float16 = _np.float16
float32 = _np.float32
float64 = _np.float64
int8 = _np.int8
int16 = _np.int16
int32 = _np.int32
int64 = _np.int64
uint8 = _np.uint8
uint32 = _np.uint32
bool_ = _np.bool_
dtype = _np.dtype
ndarray = _np.ndarray
pi = _np.pi
e = _np.e
inf = _np.inf
nan = _np.nan
newaxis = None
finfo = _np.finfo
iinfo = _np.iinfo
result_type = _np.result_type
issubdtype = _np.issubdtype
floating = _np.floating
integer = _np.integer


def _index_update_helper(x):
    return _IndexUpdateHelper(x)


def select(condlist, choicelist, default=0):
    """``numpy.select``: the first true condition picks its choice."""
    out = default
    for c, v in reversed(list(zip(condlist, choicelist))):
        out = where(c, v, out)
    return out
