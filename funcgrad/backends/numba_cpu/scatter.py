"""``index_add`` / ``index_set`` with a static index (slices, ints, ``None``; no index arrays)
as compiled code: a copy of the operand, then one loop nest over the indexed region::

    a7 = np.full((32, 96), np.float32(0.0), np.float32)   # x: zeros (the VJP of a slice)
    for i3_0 in range(32):
        for i3_1 in range(32):
            a7[i3_0, (64 + i3_1)] = np.float32(a7[i3_0, (64 + i3_1)] + a5[i3_0, i3_1])

These are the transposes of basic slicing, so they appear in every backward pass through a
slice (a recurrent cell splitting its gates); lowering them keeps such bodies compilable.
"""
from __future__ import annotations

from . import lowering
from .plan import VarInfo, _getitem_map

PRIMS = frozenset({"index_add", "index_set"})


def lowerable(eqn) -> bool:
    """A static index into an array of rank >= 1 (index operands are dynamic: glue)."""
    return (eqn.prim.name in PRIMS and len(eqn.inputs) == 2 and len(eqn.inputs[0].aval.shape) > 0
            and all(e[0] in ("slice", "int", "none") for e in eqn.params["spec"]))


def plan_node(planner, eqn):
    node = planner.new_node("scatter", eqns=[eqn])
    planner.uses_outside(node, eqn)
    planner.info[id(eqn.outvars[0])] = VarInfo("array", node=node.index, segment=planner.seg.index)


def emit(em, grp, node):
    from ...primitives.structural import indexed_shape

    e = node.eqns[0]
    x, v = e.inputs
    out = e.outvars[0]
    k, dt = em.n(out), out.aval.dtype
    shape = tuple(out.aval.shape)
    lit = em.lit_of(x)
    lines = []
    if lit is not None:
        lines.append(f"a{k} = np.full({shape!r}, {lowering.literal(lit.val, dt)}, {lowering.np_type(dt)})")
    elif em.plain_array(x):
        em.note_read(grp, x)
        lines.append(f"a{k} = a{em.n(x)}.copy()")
    else:
        loop = [f"i{node.index}_c{d}" for d in range(len(shape))]
        lines.append(f"a{k} = np.empty({shape!r}, {lowering.np_type(dt)})")
        lines += _nest(loop, shape, f"a{k}[{', '.join(loop)}] = {em.load(grp, x, loop)}")
    target = tuple(indexed_shape(shape, e.params["spec"], ()))
    loop = [f"i{node.index}_{d}" for d in range(len(target))]
    dst = f"a{k}[{', '.join(_getitem_map(e.params['spec'], shape)(loop)) or '()'}]"
    vs = tuple(v.aval.shape)
    lead = len(target) - len(vs)
    val = em.load(grp, v, ["0" if d == 1 else loop[lead + j] for j, d in enumerate(vs)])
    if e.prim.name == "index_add":
        val = lowering.wrap(f"{dst} + {val}", dt)
    elif v.aval.dtype != dt:
        val = lowering.wrap(val, dt)
    lines += _nest(loop, target, f"{dst} = {val}")
    grp.body += lines
    grp.produced.add(id(out))


def _nest(loop, shape, stmt):
    lines = ["    " * d + f"for {i} in range({n}):" for d, (i, n) in enumerate(zip(loop, shape))]
    return lines + ["    " * len(loop) + stmt]
