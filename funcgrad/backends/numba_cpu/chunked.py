"""Large transcendental-heavy clusters, evaluated block by block with NumPy's SIMD ufuncs.

Numba calls libm one element at a time for ``np.tanh``/``np.exp``/``np.sin``; NumPy's ufuncs
use SIMD kernels that are several times faster. A chunked cluster walks its first axis in
blocks of about ``CHUNK`` elements, evaluating each equation with ``out=`` into small buffers
that stay in cache (as numexpr does), and splits the blocks over threads (ufuncs release the
GIL).
"""
from __future__ import annotations

import numpy as np

from ...primitives.elementwise import convert_p, integer_pow_p, select_p
from . import lowering, threads

CHUNK = 8192
PART_BLOCKS = 8  # blocks of CHUNK elements per task of the pool
MAX_PARTS = 64
_REDUCE_UFUNC = {"sum": "np.add", "prod": "np.multiply", "max": "np.maximum", "min": "np.minimum"}


def parts(n0: int, rows: int) -> list[tuple[int, int]]:
    """A split of ``range(n0)`` in multiples of ``rows`` that depends on the sizes only (never on
    the thread count), so partial reductions combine in the same order on any machine."""
    blocks = -(-n0 // rows)
    per = max(PART_BLOCKS, -(-blocks // MAX_PARTS)) * rows
    return [(lo, min(lo + per, n0)) for lo in range(0, n0, per)] or [(0, n0)]


def run_rows(work, n0: int, rows: int):
    """``[work(lo, hi), ...]`` over ``parts(n0, rows)``, on funcgrad's pool (``threads.py``)."""
    bounds = parts(n0, rows)
    results = [None] * len(bounds)

    def task(i):
        results[i] = work(*bounds[i])

    threads.parallel_for(task, len(bounds))
    return results


def supported(eqn) -> bool:
    if eqn.prim in lowering.REDUCTIONS or eqn.prim in (integer_pow_p, convert_p, select_p):
        return True
    return isinstance(eqn.prim.impl, np.ufunc) and eqn.prim.impl.nout == 1


class _Buffers:
    """Linear-scan reuse of chunk buffers by dtype."""

    def __init__(self):
        self.free: dict = {}
        self.all: list = []

    def take(self, dtype):
        pool = self.free.setdefault(np.dtype(dtype), [])
        if pool:
            return pool.pop()
        name = f"b{len(self.all)}"
        self.all.append((name, np.dtype(dtype)))
        return name

    def give(self, name, dtype):
        self.free.setdefault(np.dtype(dtype), []).append(name)


def emit(em, grp, node):
    """Record the reads of a chunked cluster and build its loop body (kept on ``grp``)."""
    if hybrid_ok(em, node):
        emit_hybrid(em, grp, node)
        return
    shape = node.shape
    last_use: dict = {}
    for i, e in enumerate(node.eqns):
        for v in e.inputs:
            if em.in_node(node, v):
                last_use[id(v)] = i
    bufs = _Buffers()
    where: dict = {}  # id(var) -> text of its current block
    pre, body, post, partials = [], [], [], []
    for i, e in enumerate(node.eqns):
        out = e.outvars[0]
        k = em.n(out)
        dt = np.dtype(out.aval.dtype)
        args = [_operand(em, grp, node, v, where) for v in e.inputs]
        if e.prim in lowering.REDUCTIONS:
            _reduce(em, e, k, dt, args[0], shape, pre, body, post, partials)
            grp.produced.add(id(out))
            _release(em, node, e, i, last_use, where, bufs)
            continue
        stored = em.info[id(out)].stored
        inplace = isinstance(e.prim.impl, np.ufunc)
        if inplace:
            _release(em, node, e, i, last_use, where, bufs)
        if stored:
            pre.append(f"a{k} = np.empty({shape!r}, {lowering.np_type(dt)})")
            dst = f"o{k}"
            body.append(f"{dst} = a{k}[r0:r1]")
        else:
            dst = bufs.take(dt)
            where[id(out)] = dst
        body.extend(_op_lines(e, args, dst))
        where.setdefault(id(out), dst)
        if not inplace:
            _release(em, node, e, i, last_use, where, bufs)
        grp.produced.add(id(out))
    grp.chunk = {"pre": pre, "body": body, "post": post, "partials": partials, "buffers": bufs.all, "shape": shape}


def _release(em, node, e, i, last_use, where, bufs):
    for v in e.inputs:
        if last_use.get(id(v)) == i and not em.info[id(v)].stored and id(v) in where:
            bufs.give(where.pop(id(v)), v.aval.dtype)
            last_use.pop(id(v))


def _operand(em, grp, node, v, where):
    lit = em.lit_of(v)
    if lit is not None:
        return lowering.literal(lit.val, v.aval.dtype)
    if em.in_node(node, v):
        return where[id(v)] if id(v) in where else f"o{em.n(v)}"
    em.note_read(grp, v)
    vs = tuple(v.aval.shape)
    rowwise = len(vs) == len(node.shape) and vs[0] == node.shape[0] and vs[0] > 1
    return f"a{em.n(v)}[r0:r1]" if rowwise else f"a{em.n(v)}"


def _op_lines(e, args, dst):
    dt = np.dtype(e.outvars[0].aval.dtype)
    if e.prim is convert_p:
        return [f"np.copyto({dst}, {args[0]}, casting='unsafe')"]
    if e.prim is select_p:
        return [f"np.copyto({dst}, {args[2]})", f"np.copyto({dst}, {args[1]}, where={args[0]})"]
    if e.prim is integer_pow_p:
        y = int(e.params["y"])
        if y == 2:
            return [f"np.square({args[0]}, out={dst})"]
        return [f"np.power({args[0]}, {lowering.literal(y, dt)}, out={dst})"]
    return [f"_u_{e.prim.name}({', '.join(args)}, out={dst})"]  # _u_<name>: the primitive's ufunc


def _reduce(em, e, k, dt, x, shape, pre, body, post, partials):
    kind = lowering.REDUCTIONS[e.prim]
    axes = tuple(sorted(a % len(shape) for a in e.params["axes"]))
    uf = _REDUCE_UFUNC[kind]
    out_shape = tuple(e.outvars[0].aval.shape)
    ident = lowering.reduce_identity(kind, dt)
    if 0 in axes:
        pre.append(f"a{k} = np.full({out_shape!r}, {ident}, {lowering.np_type(dt)})")
        partials.append((f"p{k}", f"np.full({out_shape!r}, {ident}, {lowering.np_type(dt)})"))
        body.append(f"{uf}(p{k}, {uf}.reduce({x}, axis={axes!r}), out=p{k})")
        post.append((f"a{k}", f"p{k}", uf))
    else:
        pre.append(f"a{k} = np.empty({out_shape!r}, {lowering.np_type(dt)})")
        body.append(f"{uf}.reduce({x}, axis={axes!r}, out=a{k}[r0:r1])")


def function_text(em, grp, byid) -> str:
    c = grp.chunk
    if c.get("hybrid"):
        return hybrid_text(em, grp, byid)
    shape = c["shape"]
    row = 1
    for d in shape[1:]:
        row *= d
    rows = max(1, CHUNK // row)
    names = sorted({n for n in _ufunc_names(c["body"])})
    lines = [f"_u_{n} = _R[{n!r}].impl" for n in names]
    params = [f"a{em.n(v)}" for v in grp.args]
    lines.append(f"def {grp.name}({', '.join(params)}):")
    body = list(c["pre"])
    body.append("def work(lo, hi):")
    inner = [f"{name} = np.empty(({rows},) + {tuple(shape[1:])!r}, {lowering.np_type(dt)})"
             for name, dt in c["buffers"]]
    inner += [f"{p} = {init}" for p, init in c["partials"]]
    inner.append(f"for r0 in range(lo, hi, {rows}):")
    inner.append(f"    r1 = min(r0 + {rows}, hi)")
    inner.append("    m = r1 - r0")
    loop = [f"{name}_ = {name}[:m]" for name, _ in c["buffers"]]
    loop += [_rename_buffers(s, c["buffers"]) for s in c["body"]]
    inner += ["    " + s for s in loop]
    inner.append(f"return ({''.join(p + ', ' for p, _ in c['partials'])})")
    body += ["    " + s for s in inner]
    body.append(f"parts = _rows(work, {shape[0]}, {rows})")
    for a, p, uf in c["post"]:
        i = [pp for pp, _ in c["partials"]].index(p)
        body.append("for part in parts:")
        body.append(f"    {uf}({a}, part[{i}], out={a})")
    rets = []
    for vid in grp.exports:
        rets.append(f"a{em.n(byid[vid])}")
    body.append(f"return ({''.join(r + ', ' for r in rets)})")
    lines += ["    " + s for s in body]
    return "\n\n" + "\n".join(lines) + "\n"


def _ufunc_names(body):
    import re

    out = set()
    for s in body:
        out.update(re.findall(r"\b_u_([A-Za-z0-9_]+)\(", s))
    return out


def _rename_buffers(line, buffers):
    import re

    for name, _ in buffers:
        line = re.sub(rf"\b{name}\b", f"{name}_", line)
    return line


# -- hybrid: NumPy for the transcendental functions, Numba for the arithmetic around them -------------
def hybrid_ok(em, node) -> bool:
    """Every operand from outside is a full-shape array or a scalar literal, and nothing is reduced:
    the cluster can then be walked as one flat range."""
    for e in node.eqns:
        if e.prim in lowering.REDUCTIONS:
            return False
        for v in e.inputs:
            if em.lit_of(v) is None and not em.in_node(node, v) and tuple(v.aval.shape) != node.shape:
                return False
    return True


def _is_simd(em, e) -> bool:
    element = em.rules.element(e)
    if element is None or (element.vector_math(e) and not element.needs_fallback(e)):
        return False  # a reduction; or vecmath.py, inside the compiled blocks
    return element.transcendental and isinstance(e.prim.impl, np.ufunc) and e.prim.impl.nout == 1


def _stages(em, node):
    """[("nb", [eqns]) | ("np", eqn)]: arithmetic feeding a transcendental as early as it can
    go, transcendental calls level by level, the remaining arithmetic in one final block."""
    level, feeds = {}, set()
    for e in node.eqns:
        lv = max((level.get(id(v), 0) for v in e.inputs if em.in_node(node, v)), default=0)
        level[id(e.outvars[0])] = lv + 1 if _is_simd(em, e) else lv
    for e in reversed(node.eqns):
        if _is_simd(em, e) or id(e.outvars[0]) in feeds:
            feeds.update(id(v) for v in e.inputs if em.in_node(node, v))
    top = max((level[id(e.outvars[0])] for e in node.eqns if _is_simd(em, e)), default=0)
    stages = []
    for lv in range(top):
        block = [e for e in node.eqns if not _is_simd(em, e) and id(e.outvars[0]) in feeds
                 and level[id(e.outvars[0])] == lv]
        if block:
            stages.append(("nb", block))
        stages += [("np", e) for e in node.eqns if _is_simd(em, e) and level[id(e.outvars[0])] == lv + 1]
    rest = [e for e in node.eqns if not _is_simd(em, e) and id(e.outvars[0]) not in feeds]
    if rest:
        stages.append(("nb", rest))
    return stages


def emit_hybrid(em, grp, node):
    stages = _stages(em, node)
    produced_at, used_at = {}, {}
    for s, (kind, item) in enumerate(stages):
        for e in (item if kind == "nb" else [item]):
            produced_at[id(e.outvars[0])] = s
            for v in e.inputs:
                if em.in_node(node, v):
                    used_at.setdefault(id(v), set()).add(s)
    loc = {}  # id(var) -> name of the 1-D chunk array holding it
    buffers, stored = [], []
    for e in node.eqns:
        v = e.outvars[0]
        k = em.n(v)
        if em.info[id(v)].stored:
            loc[id(v)] = f"o{k}"
            stored.append((k, np.dtype(v.aval.dtype)))
        elif used_at.get(id(v), set()) - {produced_at[id(v)]}:
            loc[id(v)] = f"t{k}"
            buffers.append((f"t{k}", np.dtype(v.aval.dtype)))
        grp.produced.add(id(v))
    externals = {}
    body, kernels = [], []
    for s, (kind, item) in enumerate(stages):
        if kind == "np":
            args = [_flat_operand(em, grp, node, v, loc, externals) for v in item.inputs]
            body.append(f"_u_{item.prim.name}({', '.join(args)}, out={loc[id(item.outvars[0])]})")
            continue
        name = f"{grp.name}_h{s}"
        params, lines = [], []
        reads = {}
        for e in item:
            args = []
            for v in e.inputs:
                lit = em.lit_of(v)
                if lit is not None:
                    args.append(lowering.literal(lit.val, v.aval.dtype))
                elif em.in_node(node, v) and produced_at[id(v)] == s:
                    args.append(f"v{em.n(v)}")
                else:
                    src = _flat_operand(em, grp, node, v, loc, externals)
                    reads[src] = v.aval.dtype
                    args.append(f"{src}[i]")
            k = em.n(e.outvars[0])
            lines.append(f"v{k} = {em.rules.element(e).expr(e, args)}")
            if id(e.outvars[0]) in loc:
                lines.append(f"{loc[id(e.outvars[0])]}[i] = v{k}")
                reads[loc[id(e.outvars[0])]] = e.outvars[0].aval.dtype
        params = sorted(reads)
        sig = ", ".join(f"_A({np.dtype(reads[p]).name!r}, 1)" for p in params)
        kernels.append("\n".join([f"@njit(({sig},), **_OPTS)", f"def {name}({', '.join(params)}):",
                                  f"    for i in range({params[0]}.shape[0]):"]
                                 + ["        " + s for s in lines]))
        body.append(f"{name}({', '.join(params)})")
    grp.chunk = {"hybrid": True, "body": body, "kernels": kernels, "buffers": buffers, "stored": stored,
                 "externals": externals, "shape": node.shape}


def _flat_operand(em, grp, node, v, loc, externals):
    lit = em.lit_of(v)
    if lit is not None:
        return lowering.literal(lit.val, v.aval.dtype)
    if em.in_node(node, v):
        return loc[id(v)]
    em.note_read(grp, v)
    k = em.n(v)
    externals[k] = np.dtype(v.aval.dtype)
    return f"x{k}"


def hybrid_text(em, grp, byid) -> str:
    c = grp.chunk
    size = 1
    for d in c["shape"]:
        size *= d
    names = sorted(_ufunc_names(c["body"]))
    lines = [f"_u_{n} = _R[{n!r}].impl" for n in names] + ["", ""]
    lines += [k + "\n\n" for k in c["kernels"]]
    lines.append(f"def {grp.name}({', '.join(f'a{em.n(v)}' for v in grp.args)}):")
    body = [f"a{k} = np.empty({c['shape']!r}, {lowering.np_type(dt)})" for k, dt in c["stored"]]
    body += [f"f{k} = a{k}.reshape(-1)" for k in sorted(c["externals"])]
    body += [f"g{k} = a{k}.reshape(-1)" for k, _ in c["stored"]]
    body.append("def work(lo, hi):")
    inner = [f"{name}b = np.empty({CHUNK}, {lowering.np_type(dt)})" for name, dt in c["buffers"]]
    inner.append(f"for r0 in range(lo, hi, {CHUNK}):")
    loop = [f"r1 = min(r0 + {CHUNK}, hi)"]
    loop += [f"{name} = {name}b[:r1 - r0]" for name, _ in c["buffers"]]
    loop += [f"x{k} = f{k}[r0:r1]" for k in sorted(c["externals"])]
    loop += [f"o{k} = g{k}[r0:r1]" for k, _ in c["stored"]]
    loop += c["body"]
    inner += ["    " + s for s in loop]
    body += ["    " + s for s in inner]
    body.append(f"_rows(work, {size}, {CHUNK})")
    body.append(f"return ({''.join(f'a{em.n(byid[vid])}, ' for vid in grp.exports)})")
    lines += ["    " + s for s in body]
    return "\n\n" + "\n".join(lines) + "\n"
