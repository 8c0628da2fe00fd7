"""Indexing as compiled code: ``index_add`` / ``index_set`` with slices, ints and ``None``, and
``getitem`` / ``index_add`` / ``index_set`` whose index operands are integer scalars (``x[i]``,
``x.at[i].set(v)`` with a traced ``i``, as in a ``fori_loop`` body)::

    w3_0 = np.int64(s4)                                    # the scalar index: wrapped, checked
    if w3_0 < 0:
        w3_0 += 5
    if w3_0 < 0 or w3_0 >= 5:
        raise IndexError("index out of bounds for an axis of size 5")
    a7 = a2.copy()                                         # x.at[i, 1:].add(v)
    for i3_0 in range(3):
        a7[w3_0, (1 + i3_0)] = np.float64(a7[w3_0, (1 + i3_0)] + a5[i3_0])

A scatter copies its operand, then loops over the indexed region; a gather with scalar indices
stores the selected elements. Basic ``getitem`` is a view (``fusion.view_map``). Index arrays with
elements (not scalars) stay in the glue.
"""
from __future__ import annotations

import numpy as np

from ...primitives.structural import getitem_p, index_add_p, index_set_p
from ..fusion import VarInfo, getitem_map
from . import lowering
from .canonical import alloc, dim, value

SCATTERS = frozenset({index_add_p, index_set_p})


def _index_operands(eqn):
    return eqn.inputs[2:] if eqn.prim in SCATTERS else eqn.inputs[1:]


def lowerable(eqn) -> bool:
    """A scatter, or a gather with index operands, into an array of rank >= 1 whose index
    operands are all integer scalars."""
    if eqn.prim not in SCATTERS and eqn.prim is not getitem_p:
        return False
    idx = _index_operands(eqn)
    return (len(eqn.inputs[0].aval.shape) > 0
            and all(v.aval.shape == () and np.dtype(v.aval.dtype).kind in "iu" for v in idx)
            and all(e[0] in ("slice", "int", "none", "array") for e in eqn.params["spec"]))


def plan_node(planner, eqn):
    node = planner.new_node("index", eqns=[eqn])
    planner.uses_outside(node, eqn)
    planner.info[id(eqn.outvars[0])] = VarInfo("array", node=node.index, segment=planner.seg.index)


def _index_map(em, grp, node, e, shape):
    """``(lines, imap)``: statements wrapping and checking the scalar indices, and the map from
    indices of the indexed region to indices of the array."""
    spec, idx = e.params["spec"], _index_operands(e)
    lines, names, axis = [], {}, 0
    for entry in spec:
        if entry[0] == "array":
            n, w = shape[axis], f"w{node.index}_{axis}"
            lines += [f"{w} = np.int64({em.load(grp, idx[entry[1]], [])})", f"if {w} < 0:", f"    {w} += {n}",
                      f"if {w} < 0 or {w} >= {n}:",
                      f'    raise IndexError("index out of bounds for an axis of size {n}")']
            names[axis] = w
        axis += entry[0] != "none"
    static = getitem_map(tuple(("int", 0) if en[0] == "array" else en for en in spec), shape)

    def imap(loop):
        out = static(loop)
        for a, w in names.items():
            out[a] = w
        return out

    return lines, imap


def emit(em, grp, node):
    from ...primitives.structural import indexed_shape

    e = node.eqns[0]
    x, out = e.inputs[0], e.outvars[0]
    k, dt = em.n(out), out.aval.dtype
    shape = tuple(x.aval.shape)
    lines, imap = _index_map(em, grp, node, e, shape)
    if e.prim is getitem_p:
        target = tuple(out.aval.shape)
        loop = [f"i{node.index}_{d}" for d in range(len(target))]
        if target:
            lines.append(f"a{k} = {alloc(target, dt)}")
            lines += _nest(loop, target, f"a{k}[{', '.join(loop)}] = {em.load(grp, x, imap(loop))}")
        else:
            lines.append(f"s{k} = {em.load(grp, x, imap([]))}")
        grp.body += lines
        grp.produced.add(id(out))
        return
    v = e.inputs[1]
    lit = em.lit_of(x)
    if lit is not None:
        lines.append(f"a{k} = {alloc(shape, dt, value(lit.val, dt))}")
    elif em.plain_array(x):
        em.note_read(grp, x)
        lines.append(f"a{k} = a{em.n(x)}.copy()")
    else:
        loop = [f"i{node.index}_c{d}" for d in range(len(shape))]
        lines.append(f"a{k} = {alloc(shape, dt)}")
        lines += _nest(loop, shape, f"a{k}[{', '.join(loop)}] = {em.load(grp, x, loop)}")
    idx_avals = [a.aval for a in _index_operands(e)]
    target = tuple(indexed_shape(shape, e.params["spec"], idx_avals))
    loop = [f"i{node.index}_{d}" for d in range(len(target))]
    dst = f"a{k}[{', '.join(imap(loop))}]"
    vs = tuple(v.aval.shape)
    lead = len(target) - len(vs)
    val = em.load(grp, v, ["0" if d == 1 else loop[lead + j] for j, d in enumerate(vs)])
    if e.prim is index_add_p:
        val = lowering.wrap(f"{dst} + {val}", dt)
    elif v.aval.dtype != dt:
        val = lowering.wrap(val, dt)
    lines += _nest(loop, target, f"{dst} = {val}")
    grp.body += lines
    grp.produced.add(id(out))


def _nest(loop, shape, stmt):
    lines = ["    " * d + f"for {i} in range({dim(n)}):" for d, (i, n) in enumerate(zip(loop, shape))]
    return lines + ["    " * len(loop) + stmt]
