"""The last stage: a lowered program's kernels and glue bound into ``run(args) -> outputs``.

``compile(graph)`` runs the stages in order: ``compiler.lower`` (fusion by ``table.py``'s
rules, the emitters, canonical kernels), ``compiler.load_kernels`` (the kernel cache), then
``bind``: the runner text (``emit.Emitter.runner_text``) exec'd with the compiled kernels, the
glue steps (``glue.py``; control flow left to the glue runs as Python loops over its sub-graphs
compiled by this same function) and the graph's constants.
"""
from __future__ import annotations

import builtins

import numpy as np

from ...core.graph import Graph
from ...primitives import control_flow as cf
from . import compiler, loops, table
from .emit import call_values, glue_eqns, glue_literals
from .glue import _fix, make_glue


def compile(graph: Graph):
    """``run(args) -> outputs`` for ``graph``, with every lowerable part compiled by Numba."""
    compiler.stats["compiles"] += 1
    program = compiler.lower(graph)
    return bind(program, compiler.load_kernels(program.kernels))


def bind(program, fns, runner: str | None = None, values=None):
    """The callable running ``program`` (a ``compiler.Program``) with the groups' functions
    ``fns``. ``runner`` and ``values`` default to the program's (calls in the canonical kernels'
    argument order)."""
    plan = program.plan
    graph = plan.graph
    scope = {"np": np}
    exec(builtins.compile(runner or program.runner, "<funcgrad runner>", "exec"), scope)  # noqa: S102  (generated)
    glue = [control_flow_glue(e) if e.prim in loops.CONTROL_FLOW else make_glue(e, table.RULES.classify)
            for e in glue_eqns(plan)]
    consts = [_fix(c, v.aval.dtype) for v, c in zip(graph.constvars, graph.consts)]
    values = call_values(program.kernels) if values is None else values
    run = scope["make_run"](glue, glue_literals(plan), consts, fns, values)
    effectful = any(loops.effectful(e) for e in glue_eqns(plan))
    return _guard(run, effectful, [v.aval.dtype for v in graph.invars])


def _guard(run, effectful, dtypes):
    """Compiled functions take writeable C-contiguous arrays; others are copied first (up
    front when the graph has effects, else on the rare dispatch failure)."""
    def normalize(args):
        return [_fix(a, d) for a, d in zip(args, dtypes)]

    if effectful:
        return lambda args: run(normalize(args))

    def guarded(args):
        try:
            return run(args)
        except TypeError as exc:
            if "No matching definition" not in str(exc):
                raise
            return run(normalize(args))

    return guarded


def control_flow_glue(eqn):
    """``call(*arrays) -> outputs`` for a control-flow equation that is not a loop node: the
    loop (or branch) runs in Python, calling its sub-graphs compiled by this backend (compiled
    segments with their own glue between them)."""
    p = eqn.params
    dtypes = [np.dtype(v.aval.dtype) for v in eqn.inputs]

    def fixed(args):
        return [_fix(a, d) for a, d in zip(args, dtypes)]

    if eqn.prim is cf.scan_p:
        return _scan_glue(compile(p["body"]), p, fixed)
    if eqn.prim is cf.while_p:
        test, step = compile(p["cond_graph"]), compile(p["body_graph"])
        ncc, nbc = p["cond_nconsts"], p["body_nconsts"]

        def run_while(*args):
            args = fixed(args)
            cc, bc, carry = args[:ncc], args[ncc:ncc + nbc], args[ncc + nbc:]
            carry = [c.copy() for c in carry]
            while bool(test(cc + carry)[0]):
                carry = step(bc + carry)
            return carry

        return run_while
    branches = [compile(g) for g in p["branches"]]
    alias = [[loops.passes_through(g, k) for k in range(len(g.outvars))] for g in p["branches"]]

    def run_cond(*args):
        args = fixed(args)
        i = min(max(int(args[0]), 0), len(branches) - 1)
        outs = branches[i](args[1:])
        return [o.copy() if a else o for o, a in zip(outs, alias[i])]

    return run_cond


def _scan_glue(step, p, fixed):
    nk, nc, length, body = p["num_consts"], p["num_carry"], p["length"], p["body"]
    y_avals = body.out_avals[nc:]
    alias = [length == 0 or loops.passes_through(body, k) for k in range(nc)]

    def run_scan(*args):
        args = fixed(args)
        consts, carry, xs = args[:nk], args[nk:nk + nc], args[nk + nc:]
        ys = [np.empty((length,) + a.shape, a.dtype) for a in y_avals]
        for k in range(length):
            t = length - 1 - k if p["reverse"] else k
            out = step(consts + carry + [x[t, ...] for x in xs])
            carry = out[:nc]
            for y, o in zip(ys, out[nc:]):
                y[t] = o
        return [c.copy() if a else c for c, a in zip(carry, alias)] + ys

    return run_scan


