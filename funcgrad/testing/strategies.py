"""Hypothesis strategies for testing code written with funcgrad (needs ``hypothesis``).

Built on :mod:`hypothesis.extra.numpy`: arrays by dtype, shape and bounds, broadcastable
shapes, pytrees of arrays, and inputs inside a named function's domain (positive for
``log``, ``(-1, 1)`` for ``arctanh``, well-conditioned or SPD matrices for linear algebra).

The pattern to copy — a property test of your own function's derivatives::

    from hypothesis import given, settings
    from funcgrad.testing import check_grads, strategies as fst

    @settings(max_examples=25, deadline=None)
    @given(x=fst.arrays(shape=(3,), min_value=-2.0, max_value=2.0))
    def test_my_loss_grads(x):
        check_grads(my_loss, (x,), order=2)

and for a function with a domain, draw its inputs with ``fst.inputs_for("log")`` (a tuple
of arguments) or ``fst.domain_arrays("arccosh")``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..errors import FuncgradValueError

__all__ = [
    "DOMAINS",
    "Interval",
    "array_shapes",
    "arrays",
    "broadcastable_arrays",
    "broadcastable_shapes",
    "domain_arrays",
    "inputs_for",
    "pytrees",
    "spd_matrices",
    "well_conditioned_matrices",
]


def array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Shapes of ``min_dims``..``max_dims`` dimensions, each of ``min_side``..``max_side``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def _bound(v, dtype):
    """``v`` rounded into the float format hypothesis draws for ``dtype``."""
    return None if v is None else float(np.asarray(v, dtype))


def elements(dtype, min_value=None, max_value=None):
    """Scalars of ``dtype``: finite floats (no subnormals) or integers within the bounds."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return st.floats(_bound(min_value, dtype), _bound(max_value, dtype), width=8 * dtype.itemsize,
                         allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo = info.min if min_value is None else max(info.min, int(np.ceil(min_value)))
        hi = info.max if max_value is None else min(info.max, int(np.floor(max_value)))
        return st.integers(lo, hi)
    if dtype.kind == "b":
        return st.booleans()
    raise FuncgradValueError(f"strategies: unsupported dtype {dtype}")


def arrays(dtype=np.float64, shape=None, *, min_value=-10.0, max_value=10.0, min_dims=0, max_dims=3,
           min_side=1, max_side=4, elements_strategy=None):
    """NumPy arrays of ``dtype`` with values in ``[min_value, max_value]``; ``shape`` is a tuple,
    a strategy of tuples, or None for any shape within the ``*_dims``/``*_side`` limits.

    >>> from funcgrad.testing import strategies as fst
    >>> fst.arrays(np.float32, (2, 3), min_value=0.0).example().shape
    (2, 3)
    """
    if shape is None:
        shape = array_shapes(min_dims, max_dims, min_side, max_side)
    elems = elements_strategy if elements_strategy is not None else elements(dtype, min_value, max_value)
    return hnp.arrays(np.dtype(dtype), shape, elements=elems)


def broadcastable_shapes(num_shapes=2, *, min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Tuples of ``num_shapes`` shapes that broadcast together (NumPy rules)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side,
    ).map(lambda r: r.input_shapes)


def broadcastable_arrays(num=2, dtype=np.float64, *, min_value=-10.0, max_value=10.0, max_dims=3,
                         max_side=4):
    """Tuples of ``num`` arrays whose shapes broadcast together."""
    return broadcastable_shapes(num, max_dims=max_dims, max_side=max_side).flatmap(
        lambda shapes: st.tuples(*[arrays(dtype, s, min_value=min_value, max_value=max_value)
                                   for s in shapes]))


def pytrees(leaves=None, *, max_leaves=6):
    """Nested dicts, lists and tuples whose leaves come from ``leaves`` (default: small
    float64 arrays)."""
    leaves = leaves if leaves is not None else arrays(max_dims=2, max_side=3)
    keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
    return st.recursive(
        leaves,
        lambda children: st.one_of(st.lists(children, min_size=1, max_size=3).map(tuple),
                                   st.lists(children, min_size=1, max_size=3),
                                   st.dictionaries(keys, children, min_size=1, max_size=3)),
        max_leaves=max_leaves)


# -- matrices ----------------------------------------------------------------------------
def _matrix_side(n):
    return st.just(n) if isinstance(n, int) else st.integers(1, 4)


def well_conditioned_matrices(n=None, dtype=np.float64, *, batch_shape=()):
    """Square ``n``-by-``n`` matrices (``n`` drawn in 1..4 when None) that are diagonally
    dominant, so their condition number is at most ``2n + 1``: safe for inv, solve and det."""
    def build(side):
        return arrays(dtype, tuple(batch_shape) + (side, side), min_value=-1.0, max_value=1.0).map(
            lambda a: (a + (side + 1) * np.eye(side, dtype=a.dtype)).astype(dtype))
    return _matrix_side(n).flatmap(build)


def spd_matrices(n=None, dtype=np.float64, *, batch_shape=()):
    """Symmetric positive-definite ``n``-by-``n`` matrices (``a @ a.T + n I``): for cholesky."""
    def build(side):
        return arrays(dtype, tuple(batch_shape) + (side, side), min_value=-1.0, max_value=1.0).map(
            lambda a: (a @ np.swapaxes(a, -1, -2) + side * np.eye(side)).astype(dtype))
    return _matrix_side(n).flatmap(build)


# -- function domains -----------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """Values in ``[low, high]``; with ``avoid_zero`` also at least ``margin`` away from 0."""

    low: float = -10.0
    high: float = 10.0
    avoid_zero: bool = False
    margin: float = 0.1

    def elements(self, dtype):
        if not self.avoid_zero:
            return elements(dtype, self.low, self.high)
        return st.one_of(elements(dtype, max(self.low, self.margin), self.high),
                         elements(dtype, self.low, min(self.high, -self.margin)))


REAL = Interval()
POSITIVE = Interval(0.1, 10.0)
NONZERO = Interval(avoid_zero=True)
OPEN_UNIT = Interval(-0.9, 0.9)

#: Per function name, the domain of each operand (an Interval) or a matrix kind
#: ("matrix": well-conditioned, "spd": symmetric positive-definite, "rhs": right-hand side).
DOMAINS: dict[str, tuple] = {
    "log": (POSITIVE,), "log2": (POSITIVE,), "log10": (POSITIVE,), "sqrt": (POSITIVE,),
    "reciprocal": (NONZERO,), "log1p": (Interval(-0.9, 10.0),), "arcsin": (OPEN_UNIT,),
    "arccos": (OPEN_UNIT,), "arctanh": (OPEN_UNIT,), "arccosh": (Interval(1.1, 10.0),),
    "cbrt": (NONZERO,), "abs": (NONZERO,), "tan": (Interval(-1.4, 1.4),),
    "gammaln": (POSITIVE,), "digamma": (POSITIVE,), "logit": (Interval(0.05, 0.95),),
    "exp": (Interval(-10.0, 5.0),), "sin": (REAL,), "cos": (REAL,), "tanh": (REAL,),
    "arctan": (REAL,), "arcsinh": (REAL,), "sinh": (Interval(-5.0, 5.0),), "cosh": (Interval(-5.0, 5.0),),
    "expit": (REAL,), "erf": (REAL,), "square": (REAL,), "negative": (REAL,),
    "add": (REAL, REAL), "subtract": (REAL, REAL), "multiply": (REAL, REAL),
    "divide": (REAL, NONZERO), "true_divide": (REAL, NONZERO), "power": (POSITIVE, Interval(-3.0, 3.0)),
    "arctan2": (NONZERO, REAL), "hypot": (NONZERO, NONZERO), "logaddexp": (REAL, REAL),
    "xlogy": (REAL, POSITIVE),
    "inv": ("matrix",), "det": ("matrix",), "slogdet": ("matrix",), "solve": ("matrix", "rhs"),
    "cholesky": ("spd",),
}


def _domain(name):
    try:
        return DOMAINS[name]
    except KeyError:
        raise FuncgradValueError(
            f"strategies: no domain is known for {name!r}; known: {', '.join(sorted(DOMAINS))}. "
            "Use fst.arrays(min_value=..., max_value=...) for your own bounds") from None


def domain_arrays(name, dtype=np.float64, shape=None, *, max_dims=3, max_side=4):
    """Arrays inside the domain of the first operand of ``name`` (e.g. positive for "log")."""
    dom = _domain(name)[0]
    if isinstance(dom, str):
        return inputs_for(name, dtype).map(lambda args: args[0])
    return arrays(dtype, shape, max_dims=max_dims, max_side=max_side, elements_strategy=dom.elements(dtype))


def inputs_for(name, dtype=np.float64, *, max_dims=3, max_side=4):
    """A tuple of arguments for ``fnp.<name>`` (or ``fnp.linalg.<name>``) inside its domain;
    operands of binary functions have broadcastable shapes."""
    dom = _domain(name)
    if isinstance(dom[0], str):
        n = st.integers(1, 4)
        if dom[0] == "spd":
            return st.tuples(spd_matrices(None, dtype))
        return n.flatmap(lambda k: st.tuples(
            well_conditioned_matrices(k, dtype),
            *[arrays(dtype, (k,), min_value=-5.0, max_value=5.0) for _ in dom[1:]]))
    return broadcastable_shapes(len(dom), max_dims=max_dims, max_side=max_side).flatmap(
        lambda shapes: st.tuples(*[arrays(dtype, s, elements_strategy=d.elements(dtype))
                                   for s, d in zip(shapes, dom)]))
