"""Evaluate a graph by binding its primitives: NumPy when values are concrete,
or the active transformation's rules when they are traced."""
from __future__ import annotations

from .graph import Literal
from .trace import bind, provenance


def eval_graph(graph, consts, args, track_source=False):
    """Run ``graph`` on ``consts`` and ``args``; returns the list of outputs.

    With ``track_source`` each equation runs attributed to its user line (``Eqn.source``),
    so errors and debug_nans reports name the line that created it.
    """
    env = {}
    for v, x in zip(graph.constvars, consts):
        env[id(v)] = x
    for v, x in zip(graph.invars, args):
        env[id(v)] = x
    for e in graph.eqns:
        ins = [x.val if isinstance(x, Literal) else env[id(x)] for x in e.inputs]
        if track_source and e.source:
            with provenance(e.source):
                out = bind(e.prim, ins, e.params)
        else:
            out = bind(e.prim, ins, e.params)
        if e.prim.multiple_results:
            for v, o in zip(e.outvars, out):
                env[id(v)] = o
        else:
            env[id(e.outvars[0])] = out
    return [x.val if isinstance(x, Literal) else env[id(x)] for x in graph.outvars]
