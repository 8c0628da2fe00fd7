"""Partial evaluation: split a graph into the part that its *known* inputs determine and the
part that needs the others.

Reverse mode of a compiled call uses it on the joint graph ``(*primals, *cotangents) ->
(*outputs, *input cotangents)``: the known part becomes the forward program (the outputs plus
the residuals the backward part reads), the rest the backward program. Each value is computed
once, in the forward program, and nothing of the forward pass runs again in the backward one.
"""
from __future__ import annotations

from .graph import Graph, Literal, Var


class Split:
    """``known(*known_inputs) -> [*known_outputs, *residuals]`` and
    ``unknown(*residuals, *unknown_inputs) -> unknown_outputs``.

    ``residual_inputs[k]`` is the index of a known input that is passed to ``unknown`` as
    residual ``k`` directly, or None for one that ``known`` computes (its outputs after the
    known outputs, in order).
    """

    __slots__ = ("known", "residual_inputs", "unknown")

    def __init__(self, known, unknown, residual_inputs):
        self.known, self.unknown, self.residual_inputs = known, unknown, residual_inputs

    def residuals(self, known_args, known_results, num_known_outputs):
        """The residual values, from the known inputs and the known program's results."""
        computed = iter(known_results[num_known_outputs:])
        return [next(computed) if i is None else known_args[i] for i in self.residual_inputs]


def split_graph(graph: Graph, num_known_inputs: int, num_known_outputs: int) -> Split:
    """Split ``graph``, whose first ``num_known_inputs`` inputs are known, into a known
    program giving its first ``num_known_outputs`` outputs and an unknown program giving
    the rest. The known outputs must not depend on the unknown inputs."""
    known_in = graph.invars[:num_known_inputs]
    unknown_ids = {id(v) for v in graph.invars[num_known_inputs:]}
    const_ids = {id(v) for v in graph.constvars}
    known_eqns, unknown_eqns = [], []
    for e in graph.eqns:
        if any(isinstance(v, Var) and id(v) in unknown_ids for v in e.inputs):
            unknown_eqns.append(e)
            unknown_ids.update(id(v) for v in e.outvars)
        else:
            known_eqns.append(e)
    known_out, unknown_out = graph.outvars[:num_known_outputs], graph.outvars[num_known_outputs:]
    if any(isinstance(v, Var) and id(v) in unknown_ids for v in known_out):
        raise ValueError("split_graph: a known output depends on an unknown input")

    residuals, seen = [], set()

    def need(v):
        if isinstance(v, Var) and id(v) not in unknown_ids and id(v) not in const_ids and id(v) not in seen:
            seen.add(id(v))
            residuals.append(v)

    for e in unknown_eqns:
        for v in e.inputs:
            need(v)
    for v in unknown_out:
        need(v)
    position = {id(v): i for i, v in enumerate(known_in)}
    residual_inputs = [position.get(id(v)) for v in residuals]
    computed = [v for v, i in zip(residuals, residual_inputs) if i is None]

    known = _closed(graph, known_in, known_eqns, list(known_out) + computed)
    unknown = _closed(graph, residuals + graph.invars[num_known_inputs:], unknown_eqns, list(unknown_out))
    return Split(known, unknown, residual_inputs)


def _closed(graph, invars, eqns, outvars):
    """A graph of ``eqns`` with the constants of ``graph`` that it reads."""
    used = {id(v) for e in eqns for v in e.inputs if isinstance(v, Var)}
    used.update(id(v) for v in outvars if not isinstance(v, Literal))
    pairs = [(v, c) for v, c in zip(graph.constvars, graph.consts) if id(v) in used]
    return Graph([v for v, _ in pairs], [c for _, c in pairs], invars, eqns, outvars)
