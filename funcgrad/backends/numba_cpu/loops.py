"""Structured control flow compiled to real loops: ``scan``, ``while`` and ``cond`` equations.

A control-flow equation whose sub-graphs lower completely (no glue inside, recursively) is a
*loop node* of its segment. Each sub-graph is planned and emitted by the same planner and emitter
(``make_plan(graph, mode="body")``: every float contraction compiled, matrix products through
BLAS, no chunked NumPy blocks, no threads) and its code is written inline, inside a loop of the
enclosing compiled function::

    a12 = a3                                  # the carry, under the output's name
    a13 = np.empty((100, 32, 64), np.float32)  # the stacked ys
    for it5 in range(100):
        a20 = a12                             # the body's inputs
        a21 = a4[it5]
        ...                                   # the body's code
        a13[it5] = a27
        a12 = a27

so the carries are local arrays or scalars and nothing returns to Python between steps; nested
control flow becomes nested loops. (Inline rather than a separate ``@njit`` function per body:
Numba re-optimises a callee inside every caller, so a function per body compiles its code twice.)

A control-flow equation left to the glue (a body needing glue: a primitive without a lowering,
an effect; or a body so large it would use threads or NumPy's SIMD ufuncs) runs as a Python
loop over its sub-graphs compiled on their own (``runner.control_flow_glue``).

Before planning, the constants of every sub-graph are hoisted into constants of the top-level
graph (``hoist``), passed to the loop as loop-invariant operands: the generated source then
depends on the sub-graphs' structure only, and constants whose elements are all equal become
literals inside the body (``splat_consts``).
"""
from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from ...core.graph import Eqn, Graph, Literal, Var
from ...primitives import control_flow as cf
from ...primitives.structural import reshape_p
from ..fusion import VarInfo
from . import lowering
from .canonical import alloc, dim, value
from .glue import matmul_plan

CONTROL_FLOW = frozenset({cf.scan_p, cf.while_p, cf.cond_p})


# -- sub-graphs ------------------------------------------------------------------------------------
def subgraphs(eqn) -> list:
    p = eqn.params
    if eqn.prim is cf.scan_p:
        return [p["body"]]
    if eqn.prim is cf.while_p:
        return [p["cond_graph"], p["body_graph"]]
    return list(p["branches"])


def all_eqns(graph):
    """Every equation of ``graph`` and, recursively, of its control-flow sub-graphs."""
    for e in graph.eqns:
        yield e
        if e.prim in CONTROL_FLOW:
            for g in subgraphs(e):
                yield from all_eqns(g)


def _closed(g):
    """``g`` with its constants turned into leading inputs."""
    return Graph([], [], list(g.constvars) + list(g.invars), g.eqns, g.outvars)


def _hoist_eqn(e):
    """``(eqn, pulled)``: the equation with its sub-graphs' constants as leading operands of the
    right groups, and the constant values pulled out (in the order of the new operands)."""
    p = e.params
    subs = [hoist(g) for g in subgraphs(e)]
    if all(not g.constvars for g in subs) and all(a is b for a, b in zip(subs, subgraphs(e))):
        return e, []
    fresh = [[Var(v.aval) for v in g.constvars] for g in subs]
    pulled = [list(g.consts) for g in subs]
    if e.prim is cf.scan_p:
        params = {**p, "body": _closed(subs[0]), "num_consts": p["num_consts"] + len(fresh[0])}
        inputs = fresh[0] + list(e.inputs)
    elif e.prim is cf.while_p:
        nc = p["cond_nconsts"]
        params = {**p, "cond_graph": _closed(subs[0]), "body_graph": _closed(subs[1]),
                  "cond_nconsts": nc + len(fresh[0]), "body_nconsts": p["body_nconsts"] + len(fresh[1])}
        inputs = fresh[0] + list(e.inputs[:nc]) + fresh[1] + list(e.inputs[nc:])
    else:  # cond: every branch takes every hoisted constant, using its own
        branches, start = [], 0
        total = [v for f in fresh for v in f]
        for g in subs:
            n = len(g.constvars)
            before = [Var(v.aval) for v in total[:start]]
            after = [Var(v.aval) for v in total[start + n:]]
            branches.append(Graph([], [], before + list(g.constvars) + after + list(g.invars), g.eqns, g.outvars))
            start += n
        params = {**p, "branches": tuple(branches)}
        inputs = [e.inputs[0]] + total + list(e.inputs[1:])
    vars_ = [v for f in fresh for v in f]
    return Eqn(e.prim, inputs, params, e.outvars, e.source), list(zip(vars_, [c for cs in pulled for c in cs]))


def hoist(graph):
    """``graph`` with the constants of all control-flow sub-graphs hoisted into its own (the
    same object when there is nothing to hoist)."""
    if not any(e.prim in CONTROL_FLOW for e in graph.eqns):
        return graph
    eqns, cvars, consts, changed = [], list(graph.constvars), list(graph.consts), False
    for e in graph.eqns:
        if e.prim in CONTROL_FLOW:
            new, pulled = _hoist_eqn(e)
            changed |= new is not e
            for v, c in pulled:
                cvars.append(v)
                consts.append(c)
            e = new
        eqns.append(e)
    if not changed:
        return graph
    return Graph(cvars, consts, graph.invars, eqns, graph.outvars)


@lru_cache(maxsize=512)
def _body_compiles(graph, rules) -> bool:
    """No glue in the body, and nothing in it large enough that, compiled on its own, it would
    use threads or NumPy's SIMD ufuncs (then a Python loop over the compiled body is faster)."""
    if not all(kind == "segment" for kind, _ in rules.make_plan(graph, mode="body").steps):
        return False
    alone = rules.make_plan(graph, mode="top")
    return not any(n.parallel or n.chunked for kind, seg in alone.steps if kind == "segment" for n in seg.nodes)


def compilable(eqn, rules) -> bool:
    """Whether every sub-graph of a control-flow equation lowers without glue (recursively),
    by the lowering table ``rules``."""
    avals = [v.aval for v in eqn.inputs] + [v.aval for v in eqn.outvars]
    if any(np.dtype(a.dtype) not in lowering.SUPPORTED_DTYPES for a in avals):
        return False
    return all(not g.constvars and _body_compiles(g, rules) for g in subgraphs(eqn))


# -- the glue fallback ---------------------------------------------------------------------------
def effectful(eqn) -> bool:
    """Whether ``eqn`` or anything in its sub-graphs has effects."""
    if eqn.prim.effectful:
        return True
    return eqn.prim in CONTROL_FLOW and any(e.prim.effectful for g in subgraphs(eqn) for e in all_eqns(g))


# -- planning ------------------------------------------------------------------------------------
def plan_node(planner, eqn):
    """Add a loop node for ``eqn`` to the segment: operands become stored arrays (views are
    copied first), outputs are stored arrays (scalars for 0-d values)."""
    for v in eqn.inputs:
        if isinstance(v, Literal):
            continue
        inf = planner.info.get(id(v))
        if inf is None or inf.form == "lit":
            continue
        if inf.form == "view":
            if v.aval.shape:
                planner.materialize(v)
            else:
                planner.need_stored(inf.base)
        else:
            planner.need_stored(v)
    node = planner.new_node("loop", eqns=[eqn])
    for v in eqn.outvars:
        planner.info[id(v)] = VarInfo("array", node=node.index, segment=planner.seg.index)


# -- emission ------------------------------------------------------------------------------------
BODY_BLAS_MIN = 1 << 12  # multiply-adds from which a matrix product in a body calls BLAS (np.dot)


def blas_dot(em, grp, node, macs: int) -> bool:
    """Write a body's matrix product (``macs`` multiply-adds) as a BLAS call from compiled code
    (``kernels.matmul``) when it is one, large enough, of stored arrays; False leaves it to the
    emitter's loop nest."""
    e = node.eqns[0]
    x, y = e.inputs
    plan = matmul_plan(e.params["spec"], len(x.aval.shape), len(y.aval.shape))
    if plan is None or macs < BODY_BLAS_MIN or not (em.plain_array(x) and em.plain_array(y)):
        return False
    swap, ta, tb = plan
    xs, ys = value_text(em, grp, x), value_text(em, grp, y)
    if swap:
        left, right = (f"{ys}.T" if ta else ys), (f"{xs}.T" if tb and len(x.aval.shape) == 2 else xs)
    else:
        left, right = (f"{xs}.T" if ta else xs), (f"{ys}.T" if tb else ys)
    out = e.outvars[0]
    grp.body.append(f"{_out_name(em, out)} = _mm({left}, {right})")
    grp.produced.add(id(out))
    return True


def value_text(em, grp, v) -> str:
    """Source text of the whole value ``v`` (a scalar, or a C-contiguous array)."""
    lit = em.lit_of(v)
    shape = tuple(v.aval.shape)
    if lit is not None:
        text = value(lit.val, v.aval.dtype)
        return alloc(shape, v.aval.dtype, text) if shape else text
    if not shape:
        return em.load(grp, v, [])
    em.note_read(grp, v)
    return f"a{em.n(v)}"


def _out_name(em, v) -> str:
    return f"a{em.n(v)}" if v.aval.shape else f"s{em.n(v)}"


def passes_through(graph, k) -> bool:
    """Whether output ``k`` of ``graph`` may be (a view of) one of its inputs."""
    v = graph.outvars[k]
    if isinstance(v, Literal):
        return False
    if any(v is x for x in graph.invars):
        return True
    for e in graph.eqns:
        if any(v is o for o in e.outvars):
            return e.prim is reshape_p or e.prim in CONTROL_FLOW
    return False


def emit(em, grp, node):
    """Write the loop node's equation into ``grp`` (the emitter's ``emit_loop``)."""
    e = node.eqns[0]
    em.module.next_vid = max(em.module.next_vid, max(em.vid.values(), default=-1) + 1)
    {cf.scan_p: _emit_scan, cf.while_p: _emit_while, cf.cond_p: _emit_cond}[e.prim](em, grp, e)
    for v in e.outvars:
        grp.produced.add(id(v))


def _inline(em, grp, graph, operands, fixed):
    """``(lines, results)``: statements computing ``graph`` on ``operands`` (source texts, or
    variables of ``em``) and the texts of its outputs. ``fixed`` are the operand positions whose
    value is the same at every step (loop-invariant): candidates for splatting."""
    splats = {}
    for i in fixed:
        lit = em.lit_of(operands[i])
        if lit is not None:
            splats[i] = lit
    sub = em.module.body(graph, splats)
    lines = []
    for i, (v, a) in enumerate(zip(graph.invars, operands)):
        if i not in splats:
            lines.append(f"{_out_name(sub, v)} = {a if isinstance(a, str) else value_text(em, grp, a)}")
    for g in sub.groups:
        lines += g.body
    sink = SimpleNamespace(produced=set(), reads={})  # the outputs only read the lines above
    return lines, [value_text(sub, sink, v) for v in graph.outvars]


def _assign(names, values) -> list:
    if not names:
        return []
    return [f"{', '.join(names)} = {', '.join(values)}"]


def _indent(lines, n=1) -> list:
    return ["    " * n + s for s in lines]


def _copy_if(text, v, alias):
    return f"{text}.copy()" if alias and v.aval.shape else text


def _emit_scan(em, grp, e):
    p = e.params
    nk, nc, length, body = p["num_consts"], p["num_carry"], p["length"], p["body"]
    consts, init, xs = e.inputs[:nk], e.inputs[nk:nk + nc], e.inputs[nk + nc:]
    carry, ys = e.outvars[:nc], e.outvars[nc:]
    cnames = [_out_name(em, v) for v in carry]
    lines = []
    for k, (v, x0) in enumerate(zip(carry, init)):
        alias = length == 0 or passes_through(body, k)
        lines.append(f"{cnames[k]} = {_copy_if(value_text(em, grp, x0), v, alias)}")
    for v in ys:
        lines.append(f"a{em.n(v)} = {alloc(v.aval.shape, v.aval.dtype)}")
    i = em.module.fresh("it")
    t = f"({dim(length)} - 1 - {i})" if p["reverse"] else i
    rows = [x if em.lit_of(x) is not None else f"{value_text(em, grp, x)}[{t}]" for x in xs]
    fixed = list(range(nk)) + [nk + nc + j for j in range(len(xs))]
    step, res = _inline(em, grp, body, list(consts) + cnames + rows, fixed)
    for v, r in zip(ys, res[nc:]):
        step += _store_row(em, f"a{em.n(v)}", t, r, tuple(v.aval.shape[1:]))
    step += _assign(cnames, res[:nc])
    lines.append(f"for {i} in range({dim(length)}):")
    grp.body += lines + _indent(step)


def _store_row(em, name, t, value, shape) -> list:
    """``name[t] = value`` as a loop nest (Numba's array-into-slice assignment compiles slowly)."""
    if not shape:
        return [f"{name}[{t}] = {value}"]
    idx = [em.module.fresh("q") for _ in shape]
    lines = ["    " * d + f"for {q} in range({dim(n)}):" for d, (q, n) in enumerate(zip(idx, shape))]
    return lines + ["    " * len(shape) + f"{name}[{t}, {', '.join(idx)}] = {value}[{', '.join(idx)}]"]


def _emit_while(em, grp, e):
    p = e.params
    ncc, nbc = p["cond_nconsts"], p["body_nconsts"]
    cc, bc, init = e.inputs[:ncc], e.inputs[ncc:ncc + nbc], e.inputs[ncc + nbc:]
    cnames = [_out_name(em, v) for v in e.outvars]
    lines = [f"{n} = {_copy_if(value_text(em, grp, x0), v, True)}" for n, v, x0 in zip(cnames, e.outvars, init)]
    test, pred = _inline(em, grp, p["cond_graph"], list(cc) + cnames, range(ncc))
    step, res = _inline(em, grp, p["body_graph"], list(bc) + cnames, range(nbc))
    lines.append("while True:")
    lines += _indent(test + [f"if not {pred[0]}:", "    break"] + step + _assign(cnames, res))
    grp.body += lines


def _emit_cond(em, grp, e):
    branches = e.params["branches"]
    index, ops = e.inputs[0], e.inputs[1:]
    outs = [_out_name(em, v) for v in e.outvars]
    idx = value_text(em, grp, index)
    lines = []
    for b, g in enumerate(branches):
        code, res = _inline(em, grp, g, list(ops), range(len(ops)))
        res = [_copy_if(r, v, passes_through(g, k)) for k, (r, v) in enumerate(zip(res, e.outvars))]
        if b == len(branches) - 1:
            lines.append("else:" if b else "if True:")
        else:
            lines.append(f"{'if' if b == 0 else 'elif'} {idx} <= {b}:")
        lines += _indent(code + _assign(outs, res) or ["pass"])
    grp.body += lines
