"""Staging: trace a Python function into a ``Graph``.

Operations whose inputs are all known (constants, closed-over arrays) are
evaluated at trace time, so only the work that depends on the inputs is staged.
"""
from __future__ import annotations

import numpy as np

from ..config import config
from ..errors import FuncgradError
from .avals import ShapedArray, aval_of_value
from .graph import Eqn, Graph, Literal, Var
from .trace import Trace, Tracer, current_source, new_main, with_user_line


class GraphTracer(Tracer):
    __slots__ = ("_aval", "var")

    def __init__(self, trace, aval, var):
        self._trace = trace
        self._aval = aval
        self.var = var

    @property
    def aval(self):
        return self._aval


class GraphBuilder:
    def __init__(self, source_info: bool = True):
        self.eqns: list[Eqn] = []
        self.consts: dict[int, tuple] = {}  # id(value) -> (value, Var)
        self.tracers: list[GraphTracer] = []
        self.source_info = source_info

    def const_var(self, val):
        entry = self.consts.get(id(val))
        if entry is None:
            entry = self.consts[id(val)] = (val, Var(aval_of_value(val) if not isinstance(val, Tracer)
                                                     else val.aval))
        return entry[1]


class GraphTrace(Trace):
    __slots__ = ()

    def pure(self, val):
        builder = self.main.data
        if isinstance(val, Tracer):
            var = builder.const_var(val)
            aval = val.aval
        else:
            arr = np.asarray(val)
            aval = aval_of_value(arr)
            var = Literal(arr[()], aval) if arr.ndim == 0 else builder.const_var(arr)
        t = GraphTracer(self, aval, var)
        builder.tracers.append(t)
        return t

    lift = pure

    def process_primitive(self, prim, tracers, params):
        builder = self.main.data
        try:
            out_aval = prim.abstract_eval(*[t.aval for t in tracers], **params)
        except FuncgradError as exc:
            raise with_user_line(exc, current_source()) from None
        out_avals = out_aval if prim.multiple_results else [out_aval]
        outvars = [Var(a) for a in out_avals]
        source = current_source() if builder.source_info else None
        builder.eqns.append(Eqn(prim, [t.var for t in tracers], params, outvars, source))
        outs = [GraphTracer(self, a, v) for a, v in zip(out_avals, outvars)]
        builder.tracers.extend(outs)
        return outs if prim.multiple_results else outs[0]


def _dce(eqns, outvars):
    """Drop equations whose results are unused (and that have no effects)."""
    live = {id(v) for v in outvars if isinstance(v, Var)}
    kept = []
    for e in reversed(eqns):
        if e.prim.effectful or any(id(v) in live for v in e.outvars):
            kept.append(e)
            for v in e.inputs:
                if isinstance(v, Var):
                    live.add(id(v))
    kept.reverse()
    return kept, live


def trace_to_graph(fun, in_avals, source_info: bool | None = None):
    """Trace ``fun(*tracers)`` (flat list in, flat list out) into a Graph."""
    if source_info is None:
        source_info = True
    builder = GraphBuilder(source_info)
    with new_main(GraphTrace, builder, name="jit") as main:
        trace = main.trace
        in_tracers = []
        for a in in_avals:
            t = GraphTracer(trace, a, Var(a))
            in_tracers.append(t)
        builder.tracers.extend(in_tracers)
        outs = fun(*in_tracers)
        out_vars = []
        for o in outs:
            if isinstance(o, GraphTracer) and o._trace is trace:
                out_vars.append(o.var)
            else:
                out_vars.append(trace.pure(o).var)
    eqns, live = _dce(builder.eqns, out_vars)
    constvars, consts = [], []
    for val, var in builder.consts.values():
        if id(var) in live or var in out_vars:
            constvars.append(var)
            consts.append(val)
    return Graph(constvars, consts, [t.var for t in in_tracers], eqns, out_vars)


__all__ = ["GraphTrace", "GraphTracer", "ShapedArray", "config", "trace_to_graph"]
