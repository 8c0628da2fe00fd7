"""Structured control flow: ``cond``, ``while`` and ``scan`` primitives whose
params carry sub-graphs (traced once, never unrolled).

Operand layouts (every sub-graph is closed: what its Python function closed
over was hoisted into explicit operands, so outer transforms see it):

- ``cond[branches](index, *ops)``: each branch graph maps ``ops`` to the outputs;
  ``index`` is an int32 scalar in ``[0, len(branches))``.
- ``while[cond_graph, body_graph, cond_nconsts, body_nconsts](*cond_consts,
  *body_consts, *carry)``: ``cond_graph(*cond_consts, *carry) -> [pred]``,
  ``body_graph(*body_consts, *carry) -> carry``.
- ``scan[body, num_consts, num_carry, length, reverse](*consts, *carry, *xs)``:
  ``body(*consts, *carry, *x) -> [*carry, *y]``; returns ``[*carry, *ys]``, the
  ``ys`` stacked along a new leading axis of size ``length``.

The graph-to-graph transforms the rules need (``jvp_graph``, ``vjp_graph``,
``batch_graph``) live in :mod:`funcgrad.primitives._graph_transforms`.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..config import config
from ..core.avals import ShapedArray
from ..core.graph import Graph, Var
from ..core.interpreter import eval_graph
from ..core.primitive import Primitive
from ..core.staging import trace_to_graph
from ..dtypes import is_float
from ..errors import FuncgradValueError, at_user_line
from ._graph_transforms import batch_graph, jvp_graph, permute_graph, vjp_graph
from ._rules import broadcast_batched, move_batch_to_front, moveaxis_value, shape_of
from .elementwise import equal, select, zeros_like_value
from .reductions import reduce_max
from .structural import reshape

INDEX_DTYPE = np.dtype(np.int32)


def _split(seq, *sizes):
    out, start = [], 0
    for n in sizes:
        out.append(list(seq[start:start + n]))
        start += n
    out.append(list(seq[start:]))
    return out


def _run(graph, args):
    """Evaluate a sub-graph on concrete arrays (the loop bodies' hot path)."""
    outs = eval_graph(graph, graph.consts, args, track_source=config._values["debug_nans"])
    return [np.asarray(o) for o in outs]


def _batch_size(args, dims):
    return next(shape_of(a)[d] for a, d in zip(args, dims) if d is not None)


def _to_front(args, dims):
    return [move_batch_to_front(a, d) for a, d in zip(args, dims)], tuple(d is not None for d in dims)


def _instantiate(ts, primals):
    return [zeros_like_value(p) if t is None else t for t, p in zip(ts, primals)]


def _assign_tangents(outs, mask):
    """Split ``[*primals, *tangents]`` where only outputs with ``mask`` have a tangent."""
    n = len(mask)
    it = iter(outs[n:])
    return list(outs[:n]), [next(it) if m else None for m in mask]


def _fixpoint(mask, step):
    """Grow a boolean mask until ``step(mask)`` (the mask the body produces) adds nothing."""
    mask = tuple(mask)
    while True:
        new = tuple(a or b for a, b in zip(mask, step(mask)))
        if new == mask:
            return mask
        mask = new


def _set_rules(p, impl, abstract_eval, jvp, vjp, batch):
    p.impl, p.abstract_eval, p.jvp, p.vjp, p.batch = impl, abstract_eval, jvp, vjp, batch


def _with_unused_inputs(graph, avals):
    """The same graph taking extra trailing inputs it ignores."""
    invars = graph.invars + [Var(a) for a in avals]
    return Graph(graph.constvars, graph.consts, invars, graph.eqns, graph.outvars)


# =====================================================================================
# cond
# =====================================================================================
cond_p = Primitive("cond", multiple_results=True)


def _cond_impl(index, *ops, branches):
    i = min(max(int(index), 0), len(branches) - 1)
    return _run(branches[i], ops)


def _cond_abstract(index, *ops, branches):
    return branches[0].out_avals


def _cond_jvp(primals, tangents, *, branches):
    index, *ops = primals
    ts = tangents[1:]
    nz = tuple(t is not None for t in ts)
    float_out = tuple(is_float(a) for a in branches[0].out_avals)
    new = tuple(jvp_graph(b, nz, float_out)[0] for b in branches)
    outs = cond_p.bind(index, *ops, *[t for t in ts if t is not None], branches=new)
    return _assign_tangents(outs, float_out)


def _cond_vjp(cts, ans, primals, needs, *, branches):
    index, *ops = primals
    need = tuple(bool(n) for n in needs[1:])
    ct_mask = tuple(c is not None for c in cts)
    bwd = tuple(vjp_graph(b, need, ct_mask) for b in branches)
    res = iter(cond_p.bind(index, *ops, *[c for c in cts if c is not None], branches=bwd))
    return [None] + [next(res) if n else None for n in need]


def _cond_batch(args, dims, *, branches):
    size = _batch_size(args, dims)
    (index, *ops), (index_b, *ops_b) = _to_front(args, dims)
    ops_b = tuple(ops_b)
    if not index_b:
        out_b = tuple(any(m) for m in zip(*(batch_graph(b, size, ops_b, None)[1] for b in branches)))
        new = tuple(batch_graph(b, size, ops_b, out_b)[0] for b in branches)
        return cond_p.bind(index, *ops, branches=new), [0 if b else None for b in out_b]
    # a batched predicate: every branch runs on the whole batch and select picks per element
    force = (True,) * len(branches[0].outvars)
    results = []
    for b in branches:
        g = batch_graph(b, size, ops_b, force)[0]
        results.append(eval_graph(g, g.consts, ops))
    outs = []
    for k in range(len(force)):
        out = results[-1][k]
        rank = len(shape_of(out)) - 1
        idx = reshape(index, (size,) + (1,) * rank)
        for i in range(len(branches) - 2, -1, -1):
            out = select(equal(idx, np.asarray(i, INDEX_DTYPE)), results[i][k], out)
        outs.append(out)
    return outs, [0] * len(outs)


_set_rules(cond_p, _cond_impl, _cond_abstract, _cond_jvp, _cond_vjp, _cond_batch)


# =====================================================================================
# while
# =====================================================================================
while_p = Primitive("while", multiple_results=True)


def _while_impl(*args, cond_graph, body_graph, cond_nconsts, body_nconsts):
    cc, bc, carry = _split(args, cond_nconsts, body_nconsts)
    while bool(_run(cond_graph, cc + carry)[0]):
        carry = _run(body_graph, bc + carry)
    return [np.asarray(c) for c in carry]


def _while_abstract(*avals, cond_graph, body_graph, cond_nconsts, body_nconsts):
    return body_graph.out_avals


def _while_jvp(primals, tangents, *, cond_graph, body_graph, cond_nconsts, body_nconsts):
    cc, bc, init = _split(primals, cond_nconsts, body_nconsts)
    _, bct, init_t = _split(tangents, cond_nconsts, body_nconsts)
    bc_nz = tuple(t is not None for t in bct)
    carry_nz = _fixpoint((t is not None for t in init_t),
                         lambda m: jvp_graph(body_graph, bc_nz + m, m)[1])
    body, _ = jvp_graph(body_graph, bc_nz + carry_nz, carry_nz)
    nb, nc = len(bc), len(init)
    nbt, nct = sum(bc_nz), sum(carry_nz)
    # jvp_graph orders inputs (bc, carry, bc_t, carry_t); while wants (bc, bc_t, carry, carry_t)
    order = (list(range(nb)) + list(range(nb + nc, nb + nc + nbt)) + list(range(nb, nb + nc))
             + list(range(nb + nc + nbt, nb + nc + nbt + nct)))
    body = permute_graph(body, order, None)
    carry_avals = body_graph.out_avals
    cond = _with_unused_inputs(cond_graph, [a for a, m in zip(carry_avals, carry_nz) if m])
    init_t = [t for t, m in zip(_instantiate(init_t, init), carry_nz) if m]
    outs = while_p.bind(*cc, *bc, *[t for t in bct if t is not None], *init, *init_t,
                        cond_graph=cond, body_graph=body, cond_nconsts=cond_nconsts,
                        body_nconsts=nb + nbt)
    return _assign_tangents(outs, carry_nz)


def _while_vjp(cts, ans, primals, needs, **params):
    raise FuncgradValueError(at_user_line(
        "reverse-mode differentiation (grad, vjp, jacrev) of lax.while_loop is not supported: its "
        "trip count is only known at run time, so the values of every iteration cannot be stored for "
        "the backward pass. Use lax.scan, or lax.fori_loop with static (Python int) bounds, which are "
        "reverse-differentiable; forward mode (jvp, jacfwd) works with while_loop"))


def _while_batch(args, dims, *, cond_graph, body_graph, cond_nconsts, body_nconsts):
    size = _batch_size(args, dims)
    args, mask = _to_front(args, dims)
    cc, bc, init = _split(args, cond_nconsts, body_nconsts)
    cc_b, bc_b, init_b = (tuple(m) for m in _split(mask, cond_nconsts, body_nconsts))

    def step(m):
        out = batch_graph(body_graph, size, bc_b + m, None)[1]
        if batch_graph(cond_graph, size, cc_b + m, None)[1][0]:
            return (True,) * len(m)
        return out

    carry_b = _fixpoint(init_b, step)
    init = [broadcast_batched(x, size, 0) if m and not b else x for x, m, b in zip(init, carry_b, init_b)]
    body, _ = batch_graph(body_graph, size, bc_b + carry_b, carry_b)
    cond, pred_b = batch_graph(cond_graph, size, cc_b + carry_b, None)
    if not pred_b[0]:
        outs = while_p.bind(*cc, *bc, *init, cond_graph=cond, body_graph=body,
                            cond_nconsts=cond_nconsts, body_nconsts=body_nconsts)
        return outs, [0 if m else None for m in carry_b]
    cond, body = _masked_while_graphs(cond, body, cond_nconsts, body_nconsts)
    outs = while_p.bind(*cc, *cc, *bc, *init, cond_graph=cond, body_graph=body,
                        cond_nconsts=cond_nconsts, body_nconsts=cond_nconsts + body_nconsts)
    return outs, [0] * len(outs)


@lru_cache(maxsize=256)
def _masked_while_graphs(cond, body, cond_nconsts, body_nconsts):
    """A batched loop whose predicate differs per element: run while any element is
    active, and let the finished ones keep their carry (``select`` on the predicate)."""
    def any_cond(*args):
        pred = eval_graph(cond, cond.consts, args)[0]
        return [reduce_max(pred, (0,))]

    def masked_body(*args):
        cc, bc, carry = _split(args, cond_nconsts, body_nconsts)
        pred = eval_graph(cond, cond.consts, cc + carry)[0]
        new = eval_graph(body, body.consts, bc + carry)
        out = []
        for n, old in zip(new, carry):
            rank = len(shape_of(old)) - 1
            out.append(select(reshape(pred, shape_of(pred) + (1,) * rank), n, old))
        return out

    cc_avals = cond.in_avals[:cond_nconsts]
    any_graph = trace_to_graph(any_cond, cond.in_avals, source_info=False)
    body_graph = trace_to_graph(masked_body, cc_avals + body.in_avals, source_info=False)
    return any_graph, body_graph


_set_rules(while_p, _while_impl, _while_abstract, _while_jvp, _while_vjp, _while_batch)


# =====================================================================================
# scan
# =====================================================================================
scan_p = Primitive("scan", multiple_results=True)


def _scan_impl(*args, body, num_consts, num_carry, length, reverse):
    consts, carry, xs = _split(args, num_consts, num_carry)
    y_avals = body.out_avals[num_carry:]
    ys = [np.empty((length,) + a.shape, dtype=a.dtype) for a in y_avals]
    for k in range(length):
        t = length - 1 - k if reverse else k
        out = _run(body, consts + carry + [x[t] for x in xs])
        carry = out[:num_carry]
        for y, o in zip(ys, out[num_carry:]):
            y[t] = o
    return list(carry) + ys


def _scan_abstract(*avals, body, num_consts, num_carry, length, reverse):
    outs = body.out_avals
    return outs[:num_carry] + [ShapedArray((length,) + a.shape, a.dtype) for a in outs[num_carry:]]


def _scan_jvp(primals, tangents, *, body, num_consts, num_carry, length, reverse):
    consts, init, xs = _split(primals, num_consts, num_carry)
    const_t, init_t, xs_t = _split(tangents, num_consts, num_carry)
    c_nz = tuple(t is not None for t in const_t)
    x_nz = tuple(t is not None for t in xs_t)
    ny = len(body.outvars) - num_carry
    carry_nz = _fixpoint((t is not None for t in init_t),
                         lambda m: jvp_graph(body, c_nz + m + x_nz, m + (False,) * ny)[1][:num_carry])
    g, out_nz = jvp_graph(body, c_nz + carry_nz + x_nz, carry_nz + (False,) * ny)
    y_nz = out_nz[num_carry:]
    nk, nc, nx = num_consts, num_carry, len(xs)
    nkt, nct, nxt = sum(c_nz), sum(carry_nz), sum(x_nz)
    # jvp_graph's inputs: (consts, carry, xs, consts_t, carry_t, xs_t) -> scan's order
    p0 = nk + nc + nx
    ins = (list(range(nk)) + list(range(p0, p0 + nkt))
           + list(range(nk, nk + nc)) + list(range(p0 + nkt, p0 + nkt + nct))
           + list(range(nk + nc, p0)) + list(range(p0 + nkt + nct, p0 + nkt + nct + nxt)))
    # outputs: (carry, ys, carry_t, ys_t) -> (carry, carry_t, ys, ys_t)
    q0 = nc + ny
    nyt = sum(y_nz)
    outs_order = (list(range(nc)) + list(range(q0, q0 + nct)) + list(range(nc, q0))
                  + list(range(q0 + nct, q0 + nct + nyt)))
    g = permute_graph(g, ins, outs_order)
    init_t = [t for t, m in zip(_instantiate(init_t, init), carry_nz) if m]
    outs = scan_p.bind(*consts, *[t for t in const_t if t is not None], *init, *init_t, *xs,
                       *[t for t in xs_t if t is not None], body=g, num_consts=nk + nkt,
                       num_carry=nc + nct, length=length, reverse=reverse)
    carry, carry_t = _assign_tangents(outs[:nc + nct], carry_nz)
    ys, ys_t = _assign_tangents(outs[nc + nct:], y_nz)
    return carry + ys, carry_t + ys_t


def scan_residual_body(body, num_consts, num_carry):
    """``body`` that also returns the carries entering each step, as extra ``ys``."""
    extra = body.invars[num_consts:num_consts + num_carry]
    return Graph(body.constvars, body.consts, body.invars, body.eqns, body.outvars + extra)


@lru_cache(maxsize=256)
def _scan_carries_graph(body, num_consts, num_carry):
    """``(*consts, *carry, *x) -> [*carry, *carry_in]``: the forward pass of reverse mode when
    the primal scan did not keep its carries (only the carries are computed)."""
    def fwd(*args):
        outs = eval_graph(body, body.consts, args)
        return list(outs[:num_carry]) + list(args[num_consts:num_consts + num_carry])

    return trace_to_graph(fwd, body.in_avals, source_info=False)


@lru_cache(maxsize=256)
def _scan_reverse_graph(body, num_consts, num_carry, needs, ct_ys):
    """One backward step, run as a reverse scan:
    ``(*consts, *acc, *ct_carry, *carry_in, *x, *ct_y) -> [*acc, *ct_carry, *ct_x]``;
    ``acc`` sums the cotangents of the needed constants over the steps."""
    c_avals, carry_avals, x_avals = _split(body.in_avals, num_consts, num_carry)
    need_c, _, need_x = _split(needs, num_consts, num_carry)
    carry_f = tuple(is_float(a) for a in carry_avals)
    bwd = vjp_graph(body, tuple(need_c) + carry_f + tuple(need_x), carry_f + tuple(ct_ys))
    acc_avals = [a for a, m in zip(c_avals, need_c) if m]
    ctc_avals = [a for a, m in zip(carry_avals, carry_f) if m]
    y_avals = [a for a, m in zip(body.out_avals[num_carry:], ct_ys) if m]
    na, nf = len(acc_avals), len(ctc_avals)

    def rev(*args):
        consts, acc, ct_carry, carry, xs, ct_y = _split(args, num_consts, na, nf, num_carry, len(x_avals))
        g = eval_graph(bwd, bwd.consts, consts + carry + xs + ct_carry + ct_y)
        g_c, g_carry, g_x = _split(g, na, nf)
        return [a + b for a, b in zip(acc, g_c)] + g_carry + g_x

    avals = c_avals + acc_avals + ctc_avals + carry_avals + x_avals + y_avals
    return trace_to_graph(rev, avals, source_info=False)


def scan_backward(cts, primals, carries, needs, *, body, num_consts, num_carry, length, reverse):
    """Cotangents of a scan's inputs from its outputs' ``cts``, given ``carries`` (the carries
    entering each step, stacked): a reverse scan of the body's VJP."""
    consts, init, xs = _split(primals, num_consts, num_carry)
    ct_carry, ct_ys = cts[:num_carry], cts[num_carry:]
    needs = tuple(bool(n) for n in needs)
    rev = _scan_reverse_graph(body, num_consts, num_carry, needs, tuple(c is not None for c in ct_ys))
    need_c, need_init, need_x = _split(needs, num_consts, num_carry)
    acc = [zeros_like_value(c) for c, m in zip(consts, need_c) if m]
    ct_carry = [zeros_like_value(p) if c is None else c for c, p in zip(ct_carry, init) if is_float(p)]
    res = scan_p.bind(*consts, *acc, *ct_carry, *carries, *xs, *[c for c in ct_ys if c is not None],
                      body=rev, num_consts=num_consts, num_carry=len(acc) + len(ct_carry),
                      length=length, reverse=not reverse)
    g_c, g_carry, g_x = (iter(r) for r in _split(res, len(acc), len(ct_carry)))
    out = [next(g_c) if m else None for m in need_c]
    for p, m in zip(init, need_init):
        g = next(g_carry) if is_float(p) else None
        out.append(g if m else None)
    return out + [next(g_x) if m else None for m in need_x]


def _scan_vjp(cts, ans, primals, needs, **params):
    nk, nc = params["num_consts"], params["num_carry"]
    fwd = _scan_carries_graph(params["body"], nk, nc)
    carries = scan_p.bind(*primals, **{**params, "body": fwd})[nc:]
    return scan_backward(cts, primals, carries, needs, **params)


def _scan_vjp_fwd(primals, needs, **params):
    """Under reverse mode the forward scan also keeps the carries of every step, so the
    backward pass does not run the loop forward a second time."""
    body, nc = params["body"], params["num_carry"]
    outs = scan_p.bind(*primals, **{**params, "body": scan_residual_body(body, params["num_consts"], nc)})
    outs, carries = outs[:len(body.outvars)], outs[len(body.outvars):]

    def backward(g, needs):
        return scan_backward(g, primals, carries, needs, **params)

    return outs, backward


def _scan_batch(args, dims, *, body, num_consts, num_carry, length, reverse):
    size = _batch_size(args, dims)
    consts, init, xs = _split(args, num_consts, num_carry)
    c_d, init_d, xs_d = _split(dims, num_consts, num_carry)
    consts, c_b = _to_front(consts, c_d)
    init, init_b = _to_front(init, init_d)
    xs = [x if d is None else moveaxis_value(x, d, 1) for x, d in zip(xs, xs_d)]
    x_b = tuple(d is not None for d in xs_d)
    ny = len(body.outvars) - num_carry
    carry_b = _fixpoint(init_b, lambda m: batch_graph(body, size, c_b + m + x_b, None)[1][:num_carry])
    g, out_b = batch_graph(body, size, c_b + carry_b + x_b, carry_b + (False,) * ny)
    init = [broadcast_batched(x, size, 0) if m and not b else x for x, m, b in zip(init, carry_b, init_b)]
    outs = scan_p.bind(*consts, *init, *xs, body=g, num_consts=num_consts, num_carry=num_carry,
                       length=length, reverse=reverse)
    return outs, [0 if m else None for m in carry_b] + [1 if m else None for m in out_b[num_carry:]]


_set_rules(scan_p, _scan_impl, _scan_abstract, _scan_jvp, _scan_vjp, _scan_batch)
scan_p.vjp_fwd = _scan_vjp_fwd
