"""The primitive operations of funcgrad's graph language (lax-like).

Each primitive is defined once, with its NumPy implementation, abstract
evaluation, JVP, VJP and batching rule side by side. ``funcgrad.numpy`` is
written on top of these wrappers.
"""
from ..core.primitive import registry  # noqa: F401
from .elementwise import *
from .elementwise import (  # noqa: F401
    add,
    convert,
    div,
    equal,
    exp,
    greater,
    integer_pow,
    less,
    log,
    mul,
    neg,
    power,
    select,
    sqrt,
    stop_gradient,
    sub,
    zeros_like_value,
)
from .linalg import cholesky, det, dot_general, inv, mm, mT, slogdet, solve  # noqa: F401
from .reductions import (  # noqa: F401
    argmax_p,
    argmin_p,
    cumprod,
    cumsum,
    reduce_max,
    reduce_min,
    reduce_prod,
    reduce_sum,
)
from .structural import (  # noqa: F401
    argsort,
    broadcast_to,
    concatenate,
    flip,
    getitem,
    index_add,
    index_set,
    pad,
    reshape,
    transpose,
)
