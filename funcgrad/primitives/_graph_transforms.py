"""Graph-to-graph transforms for the sub-graphs of control-flow primitives.

Each one traces ``eval_graph`` of the given graph under a transform into a new
graph, so a loop body is differentiated or batched once, not per iteration.
Results are cached by the graph's fingerprint and the masks.
"""
from __future__ import annotations

from functools import lru_cache

from ..core.avals import ShapedArray
from ..core.graph import Graph
from ..core.interpreter import eval_graph
from ..core.staging import trace_to_graph
from ..core.trace import Tracer, new_main
from ..dtypes import is_float
from ._rules import broadcast_batched, moveaxis_value


def trace_closed(flat_fun, in_avals):
    """Trace ``flat_fun`` into a Graph whose traced constants (values of outer
    transforms it closed over) become leading inputs. Returns ``(graph, consts)``:
    call the graph on ``[*consts, *args]``."""
    return hoist_traced_consts(trace_to_graph(flat_fun, in_avals))


def hoist_traced_consts(g):
    """``(graph, consts)``: ``g`` with its traced constants (values of outer transforms it
    closed over) moved to leading inputs; call the graph on ``[*consts, *args]``."""
    hoisted = [i for i, c in enumerate(g.consts) if isinstance(c, Tracer)]
    if not hoisted:
        return g, []
    keep = [i for i in range(len(g.consts)) if i not in set(hoisted)]
    graph = Graph([g.constvars[i] for i in keep], [g.consts[i] for i in keep],
                  [g.constvars[i] for i in hoisted] + g.invars, g.eqns, g.outvars)
    return graph, [g.consts[i] for i in hoisted]


def permute_graph(g, in_order, out_order):
    """``g`` with inputs ``[g.invars[i] for i in in_order]`` (and outputs likewise)."""
    invars = g.invars if in_order is None else [g.invars[i] for i in in_order]
    outvars = g.outvars if out_order is None else [g.outvars[i] for i in out_order]
    return Graph(g.constvars, g.consts, invars, g.eqns, outvars)


@lru_cache(maxsize=512)
def jvp_graph(g, nonzero, instantiate):
    """Forward-mode graph of ``g``.

    Inputs ``(*primals, *tangents where nonzero)``, outputs ``(*outs, *tangents)`` with a
    tangent for each float output whose tangent is nonzero or that ``instantiate`` asks for
    (as zeros). Returns ``(graph, out_nonzero)``; ``out_nonzero`` says which outputs had a
    nonzero tangent before instantiation.
    """
    from ..transforms.jvp import JVPTrace, JVPTracer
    from .elementwise import zeros_like_value

    n = len(g.invars)
    out_nz = []

    def fun(*args):
        tangents = iter(args[n:])
        with new_main(JVPTrace, name="jvp") as main:
            trace = main.trace
            ins = [JVPTracer(trace, p, next(tangents) if nz else None) for p, nz in zip(args[:n], nonzero)]
            outs = eval_graph(g, g.consts, ins)
            pairs = [(o.primal, o.tangent) if isinstance(o, JVPTracer) and o._trace is trace else (o, None)
                     for o in outs]
        primals, ts = [], []
        for (p, t), inst, aval in zip(pairs, instantiate, g.out_avals):
            primals.append(p)
            if not is_float(aval):
                out_nz.append(False)
                continue
            out_nz.append(t is not None)
            if t is None and inst:
                t = zeros_like_value(p if isinstance(p, Tracer) else _as_array(p, aval))
            if t is not None:
                ts.append(t)
        return primals + ts

    avals = g.in_avals + [a for a, nz in zip(g.in_avals, nonzero) if nz]
    graph = trace_to_graph(fun, avals, source_info=False)
    return graph, tuple(out_nz)


def _as_array(x, aval):
    import numpy as np

    return np.asarray(x, dtype=aval.dtype)


def reverse_of_graph(g, primals, needs, out_mask=None):
    """Reverse mode over ``g`` at ``primals``, for the inputs that ``needs`` marks:
    ``(outputs, backward)`` with the outputs ``out_mask`` marks (all when None)."""
    from ..transforms.reverse import vjp_flat

    diff = [i for i, m in enumerate(needs) if m]

    def f(*dp):
        full = list(primals)
        for i, v in zip(diff, dp):
            full[i] = v
        outs = eval_graph(g, g.consts, full)
        return (outs if out_mask is None else [o for o, m in zip(outs, out_mask) if m]), None

    outs, backward, _ = vjp_flat(f, [primals[i] for i in diff])
    return outs, backward


@lru_cache(maxsize=512)
def vjp_graph(g, needs, ct_mask):
    """Reverse-mode graph of ``g``: inputs ``(*primals, *cotangents where ct_mask)``,
    outputs the cotangents of the inputs that ``needs`` (zeros where no path exists)."""
    n = len(g.invars)

    def fun(*args):
        _, backward = reverse_of_graph(g, list(args[:n]), needs, ct_mask)
        return backward(list(args[n:]))

    ct_avals = [a for a, m in zip(g.out_avals, ct_mask) if m]
    return trace_to_graph(fun, g.in_avals + ct_avals, source_info=False)


@lru_cache(maxsize=512)
def batch_graph(g, size, in_batched, force_out):
    """Batched graph of ``g``: the inputs that ``in_batched`` marks carry a leading batch
    axis of ``size``; so do the outputs that come out batched or that ``force_out`` marks
    (``None``: none). Returns ``(graph, out_batched)``."""
    from ..transforms.batching import BatchTrace, BatchTracer

    out_b = []
    force = force_out or (False,) * len(g.outvars)

    def fun(*args):
        with new_main(BatchTrace, size, name="vmap") as main:
            trace = main.trace
            ins = [BatchTracer(trace, a, 0) if b else a for a, b in zip(args, in_batched)]
            outs = eval_graph(g, g.consts, ins)
            res = []
            for o, f in zip(outs, force):
                v, d = (o.val, o.bdim) if isinstance(o, BatchTracer) and o._trace is trace else (o, None)
                if d is not None:
                    v = moveaxis_value(v, d, 0)
                elif f:
                    v = broadcast_batched(v, size, 0)
                out_b.append(d is not None)
                res.append(v)
        return res

    avals = [ShapedArray((size,) + a.shape, a.dtype) if b else a for a, b in zip(g.in_avals, in_batched)]
    graph = trace_to_graph(fun, avals, source_info=False)
    return graph, tuple(out_b)
