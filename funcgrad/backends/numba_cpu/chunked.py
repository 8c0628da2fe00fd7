"""Large transcendental-heavy clusters, evaluated block by block with NumPy's SIMD ufuncs.

Numba calls libm one element at a time for ``np.tanh``/``np.exp``/``np.sin``; NumPy's ufuncs
use SIMD kernels that are several times faster. A chunked cluster walks its first axis in
blocks of about ``CHUNK`` elements, evaluating each equation with ``out=`` into small buffers
that stay in cache (as numexpr does), and splits the blocks over threads (ufuncs release the
GIL).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import lowering

CHUNK = 8192
_REDUCE_UFUNC = {"sum": "np.add", "prod": "np.multiply", "max": "np.maximum", "min": "np.minimum"}
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def n_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_rows(work, n0: int, rows: int):
    """``[work(lo, hi), ...]`` over a split of ``range(n0)`` in multiples of ``rows``, on threads."""
    global _pool
    parts = min(n_threads(), max(1, n0 // rows))
    if parts == 1:
        return [work(0, n0)]
    per = -(-n0 // parts)
    per = -(-per // rows) * rows
    bounds = [(lo, min(lo + per, n0)) for lo in range(0, n0, per)]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=n_threads(), thread_name_prefix="funcgrad")
    futures = [_pool.submit(work, lo, hi) for lo, hi in bounds[1:]]
    first = work(*bounds[0])
    return [first] + [f.result() for f in futures]


def supported(eqn) -> bool:
    name = eqn.prim.name
    if name in lowering.REDUCTIONS or name in ("integer_pow", "convert_element_type", "select"):
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
        if e.prim.name in lowering.REDUCTIONS:
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
    name = e.prim.name
    dt = np.dtype(e.outvars[0].aval.dtype)
    if name == "convert_element_type":
        return [f"np.copyto({dst}, {args[0]}, casting='unsafe')"]
    if name == "select":
        return [f"np.copyto({dst}, {args[2]})", f"np.copyto({dst}, {args[1]}, where={args[0]})"]
    if name == "integer_pow":
        y = int(e.params["y"])
        if y == 2:
            return [f"np.square({args[0]}, out={dst})"]
        return [f"np.power({args[0]}, {lowering.literal(y, dt)}, out={dst})"]
    return [f"_u_{name}({', '.join(args)}, out={dst})"]


def _reduce(em, e, k, dt, x, shape, pre, body, post, partials):
    kind = lowering.REDUCTIONS[e.prim.name]
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
