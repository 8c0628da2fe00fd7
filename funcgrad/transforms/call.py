"""The ``call`` primitive: a jitted function that another transformation meets.

``jit(f)`` called with the tracers of ``grad``, ``jvp`` or ``vmap`` traces ``f`` into a
closed graph once per signature and binds ``call[graph, device]``. Every transformation
transforms the graph as a whole and binds ``call`` again, so the transformed function stays
compiled:

- forward mode: ``call`` of the graph's JVP graph;
- reverse mode: the joint graph ``(primals, cotangents) -> (outputs, input cotangents)`` is
  split by partial evaluation (:mod:`funcgrad.core.partial_eval`) into a compiled forward
  program, which also returns the residuals, and a compiled backward program reading them;
- vmap: ``call`` of the batched graph.

Inside another ``jit`` (a graph being staged) the call is inlined, so the outer program is
compiled as one. With concrete arguments the graph runs compiled (the ``impl``).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..core.graph import Graph
from ..core.interpreter import eval_graph
from ..core.partial_eval import split_graph
from ..core.primitive import Primitive
from ..core.staging import GraphTrace, trace_to_graph
from ..core.trace import Tracer
from ..dtypes import is_float
from ..primitives._graph_transforms import batch_graph, jvp_graph, reverse_of_graph
from ..primitives._rules import move_batch_to_front, shape_of
from ..primitives.elementwise import zeros_like_value

call_p = Primitive("call", multiple_results=True)


def top_trace(args):
    """The trace of highest level among ``args`` (None when all are concrete)."""
    top = None
    for a in args:
        if isinstance(a, Tracer) and (top is None or a._trace.level > top.level):
            top = a._trace
    return top


def bind_call(graph: Graph, device: str, args):
    """Run ``graph`` on ``args`` as a compiled call: inlined when a graph is being staged."""
    if isinstance(top_trace(args), GraphTrace):
        return eval_graph(graph, graph.consts, args)
    return call_p.bind(*args, graph=graph, device=device)


@lru_cache(maxsize=256)
def _runner(graph, device):
    from .jit import _get_backend

    return _get_backend(device).compile(graph)


def _call_impl(*args, graph, device):
    # compiled programs take writeable arrays: a read-only one (reverse mode's shared seed of
    # ones, a user's frozen array) is copied here rather than failing the dispatch every call
    return _runner(graph, device)([a.copy() if isinstance(a, np.ndarray) and not a.flags.writeable else a
                                   for a in args])


def _call_abstract(*avals, graph, device):
    return graph.out_avals


def _call_jvp(primals, tangents, *, graph, device):
    nonzero = tuple(t is not None for t in tangents)
    g, out_nz = jvp_graph(graph, nonzero, (False,) * len(graph.outvars))
    outs = bind_call(g, device, list(primals) + [t for t in tangents if t is not None])
    n = len(graph.outvars)
    ts = iter(outs[n:])
    return outs[:n], [next(ts) if nz else None for nz in out_nz]


@lru_cache(maxsize=256)
def _vjp_split(graph, needs):
    """The forward and backward programs of ``graph``'s reverse mode (see the module text)."""
    n = len(graph.invars)
    float_out = [is_float(a) for a in graph.out_avals]

    def joint(*args):
        outs, backward = reverse_of_graph(graph, list(args[:n]), needs)
        cts = iter(args[n:])
        return list(outs) + backward([next(cts) if fl else None for fl in float_out], checked=True)

    avals = graph.in_avals + [a for a, fl in zip(graph.out_avals, float_out) if fl]
    return split_graph(trace_to_graph(joint, avals, source_info=False), n, len(graph.outvars))


def _call_vjp_fwd(primals, needs, *, graph, device):
    """Reverse mode (the only one: ``call`` has no plain ``vjp`` rule, since graphs never hold a
    ``call`` equation: staging inlines it)."""
    needs = tuple(bool(x) for x in needs)
    split = _vjp_split(graph, needs)
    n_out = len(graph.outvars)
    results = bind_call(split.known, device, list(primals))
    outs = list(results[:n_out])
    residuals = split.residuals(list(primals), results, n_out)

    def backward(cts, _needs):
        cts = [zeros_like_value(o) if c is None else c for c, o, a in zip(cts, outs, graph.out_avals)
               if is_float(a)]
        in_cts = iter(bind_call(split.unknown, device, residuals + cts))
        return [next(in_cts) if m else None for m in needs]

    return outs, backward


def _call_batch(args, dims, *, graph, device):
    size = next(shape_of(a)[d] for a, d in zip(args, dims) if d is not None)
    args = [move_batch_to_front(a, d) for a, d in zip(args, dims)]
    g, out_b = batch_graph(graph, size, tuple(d is not None for d in dims), None)
    return bind_call(g, device, args), [0 if b else None for b in out_b]


call_p.impl = _call_impl
call_p.abstract_eval = _call_abstract
call_p.jvp = _call_jvp
call_p.vjp_fwd = _call_vjp_fwd
call_p.batch = _call_batch
