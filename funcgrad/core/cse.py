"""Common-subexpression elimination: a graph in which equal equations are computed once.

Two equations are equal when they apply the same primitive, with equal parameters, to the same
variables and literals. Traced programs repeat work often: an optimiser's bias correction
``1 - b ** t`` once per parameter, the same cast of a schedule value per layer, a derivative
recomputing a forward value. A compiler then writes (and Numba types and lowers) each copy;
after ``cse`` it writes one. Every value is computed exactly as before, so results do not
change by a bit.

Left alone: effectful primitives (each ``debug.print`` prints), equations whose parameters hold
sub-graphs or functions (their equality is not cheap to decide), and merges that would make
two outputs of the graph one array (a caller may update one in place).
"""
from __future__ import annotations

import numpy as np

from .graph import Eqn, Graph, Literal

_SIMPLE = (bool, int, float, str, type(None), np.dtype, np.generic)


def _param_key(v):
    if isinstance(v, _SIMPLE):
        return (type(v).__name__, v)
    if isinstance(v, tuple):
        parts = tuple(_param_key(x) for x in v)
        return None if any(p is None for p in parts) else parts
    if isinstance(v, np.ndarray):
        return ("array", v.shape, v.dtype.str, v.tobytes())
    return None


def _ref(v):
    if isinstance(v, Literal):
        return ("lit", np.dtype(v.aval.dtype).str, tuple(v.aval.shape), np.asarray(v.val).tobytes())
    return id(v)


def _key(eqn, inputs):
    if eqn.prim.effectful:
        return None
    params = []
    for name in sorted(eqn.params):
        k = _param_key(eqn.params[name])
        if k is None:
            return None
        params.append((name, k))
    return (id(eqn.prim), tuple(_ref(v) for v in inputs), tuple(params))


def cse(graph: Graph) -> Graph:
    """``graph`` with every repeated equation replaced by the first (the same object when
    nothing repeats). Sub-graphs of control flow are left as they are."""
    subst: dict = {}  # id(var) -> the var computing the same value first
    seen: dict = {}  # equation key -> its outvars
    outputs = {id(v) for v in graph.outvars}
    eqns, changed = [], False

    def canon(v):
        return v if isinstance(v, Literal) else subst.get(id(v), v)

    for e in graph.eqns:
        inputs = [canon(v) for v in e.inputs]
        key = _key(e, inputs)
        first = seen.get(key) if key is not None else None
        if first is not None and not (any(id(o) in outputs for o in e.outvars)
                                      and any(id(f) in outputs for f in first)):
            for old, new in zip(e.outvars, first):
                subst[id(old)] = new
            changed = True
            continue
        if key is not None and first is None:
            seen[key] = e.outvars
        if any(a is not b for a, b in zip(inputs, e.inputs)):
            e = Eqn(e.prim, inputs, e.params, e.outvars, e.source)
            changed = True
        eqns.append(e)
    if not changed:
        return graph
    return Graph(graph.constvars, graph.consts, graph.invars, eqns, [canon(v) for v in graph.outvars])
