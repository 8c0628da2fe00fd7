"""Inlining: replace the equations of primitives that stand for a sub-graph (a custom
derivative rule's function) by that sub-graph's equations, so compilers see plain code.

A primitive opts in with ``prim.extra["inline"] = lambda params: graph``; the graph takes the
equation's inputs and gives its outputs. Sub-graphs of control flow are inlined too.
"""
from __future__ import annotations

from functools import lru_cache

from .graph import Graph
from .interpreter import eval_graph
from .staging import trace_to_graph
from .trace import bind


def _sub_graphs(v):
    if isinstance(v, Graph):
        yield v
    elif isinstance(v, tuple):
        for x in v:
            yield from _sub_graphs(x)


@lru_cache(maxsize=1024)
def needs_inlining(graph: Graph) -> bool:
    return any("inline" in e.prim.extra or any(needs_inlining(g) for p in e.params.values()
                                                for g in _sub_graphs(p))
               for e in graph.eqns)


def _inlined_param(v):
    if isinstance(v, Graph):
        return inline_calls(v)
    if isinstance(v, tuple):
        return tuple(_inlined_param(x) for x in v)
    return v


def _apply(prim, ins, params):
    inline = prim.extra.get("inline")
    if inline is not None:
        sub = inline(params)
        return eval_graph(sub, sub.consts, ins, track_source=True, apply=_apply)
    return bind(prim, ins, {k: _inlined_param(p) for k, p in params.items()})


def inline_calls(graph: Graph) -> Graph:
    """``graph`` with every inlinable equation (at any depth) replaced by its sub-graph."""
    if not needs_inlining(graph):
        return graph
    return trace_to_graph(lambda *args: eval_graph(graph, graph.consts, args, track_source=True, apply=_apply),
                          graph.in_avals)
