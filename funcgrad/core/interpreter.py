"""Evaluate a graph by binding its primitives: NumPy when values are concrete,
or the active transformation's rules when they are traced. The one interpreter of graphs:
transforms, loop bodies, the inliner and the NumPy backend all run graphs through it."""
from __future__ import annotations

from .graph import Literal
from .trace import bind, provenance


def _plan(graph):
    """The graph as slots of one list, built once per graph: ``(size, literals, const_slots,
    in_slots, steps, out_slots)``; each step is ``(eqn, in_slots, out_slots)``."""
    plan = graph._plan
    if plan is None:
        slots, literals = {}, []

        def slot(v):
            if isinstance(v, Literal):
                literals.append((len(slots), v.val))
                slots[("lit", len(slots))] = len(slots)
                return len(slots) - 1
            return slots.setdefault(id(v), len(slots))

        const_slots = [slot(v) for v in graph.constvars]
        in_slots = [slot(v) for v in graph.invars]
        steps = [(e, [slot(v) for v in e.inputs], [slot(v) for v in e.outvars]) for e in graph.eqns]
        out_slots = [slot(v) for v in graph.outvars]
        plan = graph._plan = (len(slots), literals, const_slots, in_slots, steps, out_slots)
    return plan


def eval_graph(graph, consts, args, track_source=False, apply=bind):
    """Run ``graph`` on ``consts`` and ``args``; returns the list of outputs.

    With ``track_source`` each equation runs attributed to its user line (``Eqn.source``),
    so errors and debug_nans reports name the line that created it. ``apply(prim, inputs,
    params)`` runs one equation (``bind`` unless a caller rewrites equations as it goes).
    """
    size, literals, const_slots, in_slots, steps, out_slots = _plan(graph)
    env = [None] * size
    for i, v in literals:
        env[i] = v
    for i, v in zip(const_slots, consts):
        env[i] = v
    for i, v in zip(in_slots, args):
        env[i] = v
    for e, ins, outs in steps:
        vals = [env[i] for i in ins]
        if track_source and e.source:
            with provenance(e.source):
                out = apply(e.prim, vals, e.params)
        else:
            out = apply(e.prim, vals, e.params)
        if e.prim.multiple_results:
            for i, o in zip(outs, out):
                env[i] = o
        else:
            env[outs[0]] = out
    return [env[i] for i in out_slots]
