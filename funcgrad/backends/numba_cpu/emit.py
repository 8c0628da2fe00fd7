"""Generate the Python/Numba source of a plan: one ``@njit`` function per group of nodes, one
NumPy function per chunked cluster, and ``make_run``, the straight-line glue that calls them.

Names in the source: ``a<n>`` a stored array, ``s<n>`` a 0-d value (a scalar inside kernels),
``v<n>`` one element of a value inside a loop nest, ``r<n>`` a value in the glue.
"""
from __future__ import annotations

import numpy as np

from ...core.graph import Literal
from ..fusion import Plan
from ..fusion import _size as _prod
from . import canonical, chunked, lowering
from .canonical import alloc, dim, shape_text

REDUCE_BLOCK = 256  # elements per block of a reduction whose functions vectorise (see blocked_reduction)
REDUCE_CHUNK = 1 << 15  # elements per chunk of a parallel reduction (fixed: results do not depend on threads)

HEADER = '''import math  # noqa: F401
import numpy as np
from numba import njit, prange, types as _t, from_dtype as _fd  # noqa: F401


def _A(dt, nd):
    return _t.Array(_fd(np.dtype(dt)), nd, "C")


_OPTS = dict(cache=True, nogil=True, error_model="numpy")  # no FMA contraction: results match NumPy
from funcgrad.backends.numba_cpu.kernels import bmm_nt as _bmm, matmul as _mm, threefry2x32 as _tf  # noqa: E402, F401
from funcgrad.backends.numba_cpu import vecmath as _vm  # noqa: E402, F401
from funcgrad.backends.numba_cpu.chunked import run_rows as _rows  # noqa: E402, F401
from funcgrad.core.primitive import registry as _R  # noqa: E402, F401

_tanh32 = _vm.tanh32
'''


def _flat(loop_vars, sizes) -> str:
    """Row-major flat index text of ``loop_vars`` over ``sizes``."""
    if not loop_vars:
        return "0"
    text = loop_vars[0]
    for v, s in zip(loop_vars[1:], sizes[1:]):
        text = f"({text} * {dim(s)} + {v})"
    return text


class _Group:
    def __init__(self, seg, nodes, name, chunked_node=False):
        self.seg, self.nodes, self.name, self.chunked = seg, nodes, name, chunked_node
        self.reads: dict = {}  # id -> var read from outside the group
        self.produced: set = set()
        self.body: list[str] = []
        self.parallel = any(n.parallel or n.parallel_reduce for n in nodes)


class Module:
    """What the emitters of one generated module share: the lowering table (``rules``, see
    ``table.py``) and fresh numbers for the variables of inlined sub-graphs and loop counters."""

    def __init__(self, rules):
        self.rules = rules
        self.next_vid = 0
        self.counter = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def body(self, graph, splats: dict):
        """An emitter holding ``graph`` lowered as straight-line code whose names do not clash
        with the module's; ``splats`` maps input positions to Literals (inputs with all elements
        equal: not bound, written inline)."""
        extra = {id(graph.invars[i]): lit for i, lit in splats.items()}
        em = Emitter(self.rules.make_plan(graph, mode="body", extra_splats=extra), self.rules, module=self, body=True)
        em.vid = {k: n + self.next_vid for k, n in em.vid.items()}
        self.next_vid += len(em.vid)
        em.build()
        return em


class Emitter:
    """Writes a plan's groups and glue. ``rules``: the lowering table (``table.RULES``), which
    says how each element is written and writes the loop and index nodes."""

    def __init__(self, plan: Plan, rules, module=None, body=False):
        self.plan = plan
        self.rules = rules
        self.module = module if module is not None else Module(rules)  # shared with sub-graphs
        self.body = body  # a loop body's function (loops.py): BLAS products are compiled calls
        self.info = plan.info
        self.vid: dict = {}
        g = plan.graph
        for v in list(g.constvars) + list(g.invars):
            self.vid[id(v)] = len(self.vid)
        for e in g.eqns:
            for v in e.outvars:
                self.vid[id(v)] = len(self.vid)
        self.groups: list[_Group] = []
        self.group_of_var: dict = {}  # id(var) -> group producing it
        self.glue: list = []  # glue equations in order

    # -- names and reads ------------------------------------------------------------------------
    def n(self, v) -> int:
        return self.vid[id(v)]

    def lit_of(self, v):
        if isinstance(v, Literal):
            return v
        inf = self.info.get(id(v))
        return inf.base if inf is not None and inf.form == "lit" else None

    def load(self, grp, v, idx):
        """Source text reading element ``idx`` (index texts) of ``v``."""
        lit = self.lit_of(v)
        if lit is not None:
            return canonical.value(lit.val, v.aval.dtype)
        inf = self.info.get(id(v))
        if inf is not None and inf.form == "view":
            return self.load(grp, inf.base, inf.imap(list(idx)))
        self.note_read(grp, v)
        if len(v.aval.shape) == 0:
            return f"s{self.n(v)}"
        return f"a{self.n(v)}[{', '.join(idx)}]"

    def note_read(self, grp, v):
        if id(v) not in grp.produced:
            grp.reads[id(v)] = v

    def in_node(self, node, v) -> bool:
        inf = None if isinstance(v, Literal) else self.info.get(id(v))
        return (inf is not None and inf.form == "elem" and inf.node == node.index
                and inf.segment == node.segment)

    def operand(self, grp, node, v, loop):
        """Element text of operand ``v`` of an equation of cluster ``node``."""
        if self.in_node(node, v):
            return f"v{self.n(v)}" if loop else f"s{self.n(v)}"
        shape, vs = node.shape, tuple(v.aval.shape)
        lead = len(shape) - len(vs)
        idx = ["0" if d == 1 else loop[lead + j] for j, d in enumerate(vs)]
        return self.load(grp, v, idx)

    # -- nodes ---------------------------------------------------------------------------------
    def emit_cluster(self, grp, node):
        """One loop nest; when it uses vecmath's sin/cos, it counts the arguments beyond their
        range, and a second (serial, rarely run) nest through libm recomputes everything when
        there are any. A scalar cluster (no loop to vectorise) calls libm's sin/cos directly."""
        if not node.shape:
            self.cluster_nest(grp, node, libm=True)
            return
        if not any(self.needs_fallback(e) for e in node.eqns):
            self.cluster_nest(grp, node)
            return
        flag = f"fb{node.index}"
        grp.body.append(f"{flag} = 0")
        self.cluster_nest(grp, node, flag=flag)
        start = len(grp.body)
        self.cluster_nest(grp, node, libm=True, again=True)
        grp.body[start:] = [f"if {flag}:"] + ["    " + s for s in grp.body[start:]]

    def needs_fallback(self, e) -> bool:
        element = self.rules.element(e)
        return element is not None and element.needs_fallback(e)

    def cluster_nest(self, grp, node, flag=None, libm=False, again=False):
        """``again``: the nest recomputes one already run (the libm pass), into its arrays."""
        shape = node.shape
        nd = len(shape)
        loop = [f"i{node.index}_{d}" for d in range(nd)]
        pre, body = [], []
        opens: list[list[str]] = [[] for _ in range(nd + 1)]
        closes: list[list[str]] = [[] for _ in range(nd + 1)]
        combines: list = []  # (index in body, kind, accumulator, operand, dtype) of each reduction
        for e in node.eqns:
            out = e.outvars[0]
            k = self.n(out)
            dt = out.aval.dtype
            if e.prim in lowering.REDUCTIONS:
                self.emit_reduce(grp, node, e, loop, pre, body, opens, closes, again, combines)
                continue
            args = [self.operand(grp, node, v, loop) for v in e.inputs]
            name = f"v{k}" if nd else f"s{k}"
            body.append(f"{name} = {self.rules.element(e).expr(e, args, libm)}")
            if flag and self.needs_fallback(e):
                body.append(f"{flag} += {lowering.fallback_check(e, args)}")
            if nd and self.info[id(out)].stored:
                if not again:
                    pre.append(f"a{k} = {alloc(shape, dt)}")
                body.append(f"a{k}[{', '.join(loop)}] = v{k}")
            grp.produced.add(id(out))
        if not libm and self.blocked_reduction(node, body, opens, closes, combines):
            parallel = node.parallel_reduce and flag is None and self.only_full_reductions(node, combines, opens)
            self.nest_blocked(grp, node, pre, body, opens, closes, loop, combines, parallel)
        else:
            self.nest(grp, node, pre, body, opens, closes, loop, serial=libm)

    @staticmethod
    def blocked_reduction(node, body, opens, closes, combines) -> bool:
        """Whether a cluster reducing all its elements to scalars computes vecmath functions
        (exp, log, tanh, ...): then its innermost loop runs in blocks, the functions in a loop
        of their own that vectorises and the serial accumulation after it, in the same order
        (bit-identical to one loop)."""
        return (bool(combines) and bool(node.shape) and not node.parallel
                and not opens[len(node.shape)] and not closes[len(node.shape)]
                and any("_vm." in line for line in body))

    @staticmethod
    def only_full_reductions(node, combines, opens) -> bool:
        """Every reduction of the cluster reduces all of it (none keeps an axis)."""
        n_reduce = sum(e.prim in lowering.REDUCTIONS for e in node.eqns)
        return n_reduce == len(combines) and not any(opens[1:])

    def nest_blocked(self, grp, node, pre, body, opens, closes, loop, combines, parallel=False):
        """The blocked nest (see ``blocked_reduction``). ``parallel``: the outermost loop runs
        in chunks of about ``REDUCE_CHUNK`` elements on threads, each chunk accumulating its
        own partial result in order, and the partials are combined in chunk order: the result
        depends on the shape only, not on the number of threads."""
        nd, shape, x = len(loop), node.shape, node.index
        inner, block = loop[-1], REDUCE_BLOCK
        combine_at = {i for i, *_ in combines}
        types = {i: lowering.np_type(dt) for i, _, _, _, dt in combines}
        lines = list(pre)
        if parallel:
            rest = " * ".join(dim(d) for d in shape[1:]) or "1"
            rows, chunks, ch = f"rw{x}", f"nc{x}", f"ch{x}"
            lines += [f"{rows} = max(1, {REDUCE_CHUNK} // max(1, {rest}))",
                      f"{chunks} = ({dim(shape[0])} + {rows} - 1) // {rows}"]
            lines += [f"t{i} = np.empty({chunks} * {block}, {types[i]})" for i in types]  # a block per chunk
            lines += [f"p{i} = np.empty({chunks}, {types[i]})" for i in types]
            lines.append(f"for {ch} in prange({chunks}):")
            lines += [f"    q{i} = {lowering.reduce_identity(kind, dt)}" for i, kind, _, _, dt in combines]
            lo, hi = f"{ch} * {rows}", f"min({dim(shape[0])}, {ch} * {rows} + {rows})"
            base, slot = 1, (lambda i, j: f"t{i}[{ch} * {block} + {j}]")
            acc_of = {i: f"q{i}" for i in types}
        else:
            lines += [f"t{i} = np.empty({block}, {types[i]})" for i in types]
            lo, hi = "0", dim(shape[0])
            base, slot = 0, (lambda i, j: f"t{i}[{j}]")
            acc_of = {i: acc for i, _, acc, _, _ in combines}
        for d in range(nd - 1):
            pad = "    " * (base + d)
            if not parallel:
                lines += [pad + s for s in opens[d]]
            rng = f"range({lo}, {hi})" if d == 0 else f"range({dim(shape[d])})"
            lines.append(f"{pad}for {loop[d]} in {rng}:")
        pad = "    " * (base + nd - 1)
        if not parallel:
            lines += [pad + s for s in opens[nd - 1]]
        b_lo, b_hi = (lo, hi) if nd == 1 else ("0", dim(shape[-1]))
        j = f"{inner}j"
        lines += [f"{pad}for {inner}b in range({b_lo}, {b_hi}, {block}):",
                  f"{pad}    {inner}m = min({block}, {b_hi} - {inner}b)",
                  f"{pad}    for {j} in range({inner}m):",
                  f"{pad}        {inner} = {inner}b + {j}"]
        lines += [f"{pad}        {s}" for i, s in enumerate(body) if i not in combine_at]
        lines += [f"{pad}        {slot(i, j)} = {xv}" for i, _, _, xv, _ in combines]
        lines.append(f"{pad}    for {j} in range({inner}m):")
        lines += [f"{pad}        {acc_of[i]} = {lowering.reduce_combine(kind, acc_of[i], slot(i, j), dt)}"
                  for i, kind, _, _, dt in combines]
        if parallel:
            lines += [f"    p{i}[{ch}] = q{i}" for i in types]
            lines += opens[0]
            lines.append(f"for {ch} in range({chunks}):")
            lines += [f"    {acc} = {lowering.reduce_combine(kind, acc, f'p{i}[{ch}]', dt)}"
                      for i, kind, acc, _, dt in combines]
            lines += closes[0]
        else:
            for d in reversed(range(nd)):
                lines += ["    " * d + s for s in closes[d]]
        grp.body += lines

    def emit_reduce(self, grp, node, e, loop, pre, body, opens, closes, again=False, combines=None):
        out, x = e.outvars[0], e.inputs[0]
        k = self.n(out)
        dt = out.aval.dtype
        kind = lowering.REDUCTIONS[e.prim]
        axes = {a % len(node.shape) for a in e.params["axes"]}
        nd = len(node.shape)
        depth = nd
        while depth > 0 and depth - 1 in axes:
            depth -= 1
        xv = self.operand(grp, node, x, loop)
        kept = [loop[d] for d in range(nd) if d not in axes]
        target = f"a{k}[{', '.join(kept)}]" if kept else f"s{k}"
        ident = lowering.reduce_identity(kind, dt)
        whole = all(a >= depth for a in axes)  # the accumulator sees every reduced element
        if kept:
            fill = None if whole and depth < nd else ident
            if not again:
                pre.append(f"a{k} = {alloc(out.aval.shape, dt, fill)}")
            elif fill is not None:
                pre.append(f"a{k}.fill({fill})")
        if depth == nd:
            body.append(f"{target} = {lowering.reduce_combine(kind, target, xv, dt)}")
        else:
            acc = f"c{k}"
            opens[depth].append(f"{acc} = {ident}")
            if combines is not None and depth == 0:
                combines.append((len(body), kind, acc, xv, dt))
            body.append(f"{acc} = {lowering.reduce_combine(kind, acc, xv, dt)}")
            closes[depth].append(f"{target} = {acc}" if whole
                                 else f"{target} = {lowering.reduce_combine(kind, target, acc, dt)}")
        grp.produced.add(id(out))

    def nest(self, grp, node, pre, body, opens, closes, loop, serial=False):
        lines = list(pre)
        nd = len(loop)
        for d in range(nd):
            pad = "    " * d
            lines += [pad + s for s in opens[d]]
            rng = "prange" if d == 0 and node.parallel and not serial else "range"
            lines.append(f"{pad}for {loop[d]} in {rng}({dim(node.shape[d])}):")
        pad = "    " * nd
        lines += [pad + s for s in opens[nd]]
        lines += [pad + s for s in body]
        lines += [pad + s for s in closes[nd]]
        for d in reversed(range(nd)):
            lines += ["    " * d + s for s in closes[d]]
        grp.body += lines

    def emit_dot(self, grp, node):
        """A small contraction: operands packed as (batch, free, contracted) matrices (a free
        reshape when they already are), multiplied by the shared ``kernels.bmm_nt``."""
        from ...primitives.linalg import parse_spec

        if self.body and self.rules.body_dot(self, grp, node):
            return
        e = node.eqns[0]
        out = e.outvars[0]
        k = self.n(out)
        dt = out.aval.dtype
        a, b, o = parse_spec(e.params["spec"])
        sizes = {}
        for letters, v in ((a, e.inputs[0]), (b, e.inputs[1])):
            sizes.update(zip(letters, v.aval.shape))
        batch = [c for c in o if c in a and c in b]
        contract = [c for c in a if c in b and c not in o]
        free_a = [c for c in a if c not in b]
        free_b = [c for c in b if c not in a]
        lv = {c: f"j{node.index}_{c}" for c in sizes}
        lines = []
        for name, letters, v, free in ((f"pa{k}", a, e.inputs[0], free_a), (f"pb{k}", b, e.inputs[1], free_b)):
            dims = tuple(_prod(sizes[c] for c in g) for g in (batch, free, contract))
            if self.plain_array(v) and list(letters) == batch + free + contract and letters:
                self.note_read(grp, v)
                lines.append(f"{name} = a{self.n(v)}.reshape({shape_text(dims)})")
                continue
            lines.append(f"{name} = {alloc(dims, dt)}")
            for d, c in enumerate(letters):
                lines.append("    " * d + f"for {lv[c]} in range({dim(sizes[c])}):")
            idx = ", ".join(_flat([lv[c] for c in g], [sizes[c] for c in g]) for g in (batch, free, contract))
            lines.append("    " * len(letters) + f"{name}[{idx}] = {self.load(grp, v, [lv[c] for c in letters])}")
        mid = (_prod(sizes[c] for c in batch), _prod(sizes[c] for c in free_a), _prod(sizes[c] for c in free_b))
        lines.append(f"o{k} = {alloc(mid, dt, lowering.literal(0, dt))}")
        lines.append(f"_bmm(pa{k}, pb{k}, o{k})")
        if not o:
            lines.append(f"s{k} = o{k}[0, 0, 0]")
        elif list(o) == batch + free_a + free_b:
            lines.append(f"a{k} = o{k}.reshape({shape_text(out.aval.shape)})")
        else:
            lines.append(f"a{k} = {alloc(out.aval.shape, dt)}")
            for d, c in enumerate(o):
                lines.append("    " * d + f"for {lv[c]} in range({dim(sizes[c])}):")
            src_idx = ", ".join(_flat([lv[c] for c in g], [sizes[c] for c in g]) for g in (batch, free_a, free_b))
            lines.append("    " * len(o) + f"a{k}[{', '.join(lv[c] for c in o)}] = o{k}[{src_idx}]")
        grp.body += lines
        grp.produced.add(id(out))

    def emit_loop(self, grp, node):
        self.rules.emit_node(self, grp, node)

    emit_index = emit_loop

    def plain_array(self, v) -> bool:
        """A stored (or argument) array, read without any view in between."""
        if isinstance(v, Literal) or len(v.aval.shape) == 0:
            return False
        inf = self.info.get(id(v))
        return inf is None or inf.form in ("array", "elem", "input")

    def emit_reshape(self, grp, node):
        e = node.eqns[0]
        src, out = e.inputs[0], e.outvars[0]
        self.note_read(grp, src)
        grp.body.append(f"a{self.n(out)} = a{self.n(src)}.reshape({shape_text(out.aval.shape)})")
        grp.produced.add(id(out))

    def emit_copy(self, grp, node):
        v = node.var
        k = self.n(v)
        nd = len(node.shape)
        loop = [f"i{node.index}_{d}" for d in range(nd)]
        if nd == 0:
            grp.body.append(f"s{k} = {self.load(grp, v, [])}")
        else:
            pre = [f"a{k} = {alloc(node.shape, v.aval.dtype)}"]
            body = [f"a{k}[{', '.join(loop)}] = {self.load(grp, v, loop)}"]
            empty = [[] for _ in range(nd + 1)]
            self.nest(grp, node, pre, body, empty, [[] for _ in range(nd + 1)], loop)
        grp.produced.add(id(v))

    # -- groups --------------------------------------------------------------------------------
    def build(self):
        order = []  # ("group", _Group) | ("glue", eqn)
        for kind, item in self.plan.steps:
            if kind == "glue":
                order.append(("glue", item))
                self.glue.append(item)
                continue
            run: list = []
            for node in item.nodes:
                if node.chunked:
                    if run:
                        order.append(("group", self.new_group(item, run)))
                        run = []
                    order.append(("group", self.new_group(item, [node], chunked_node=True)))
                else:
                    run.append(node)
            if run:
                order.append(("group", self.new_group(item, run)))
        for kind, grp in order:
            if kind != "group":
                continue
            if grp.chunked:
                chunked.emit(self, grp, grp.nodes[0])
                continue
            for node in grp.nodes:
                getattr(self, f"emit_{node.kind}")(grp, node)
        self.order = order
        self.resolve_exports()
        return self

    def new_group(self, seg, nodes, chunked_node=False):
        grp = _Group(seg, nodes, f"k{len(self.groups)}", chunked_node)
        self.groups.append(grp)
        return grp

    def resolve_exports(self):
        needed = set(self.plan.glue_uses)
        for g in self.groups:
            needed.update(g.reads)
        for g in self.groups:
            g.exports = [vid for vid in sorted(g.produced, key=lambda i: self.vid[i]) if vid in needed]
            g.args = sorted(g.reads.values(), key=self.n)
            for vid in g.exports:
                self.group_of_var[vid] = g

    # -- source text ---------------------------------------------------------------------------
    def var_by_id(self):
        out = {}
        g = self.plan.graph
        for v in list(g.constvars) + list(g.invars):
            out[id(v)] = v
        for e in g.eqns:
            for v in e.outvars:
                out[id(v)] = v
        return out

    def source(self) -> str:
        """The program as one readable module (sizes and constants written as literals, the
        emitter's names kept): what ``kernels()`` and ``runner_text`` compile, for reading."""
        byid = self.var_by_id()
        parts = [HEADER]
        for g in self.groups:
            text = chunked.function_text(self, g, byid) if g.chunked else self.njit_text(g, byid)
            parts.append(canonical.specialise(text))
        parts.append(self.runner_text(byid, [None] * len(self.groups)))
        return "\n".join(parts) + "\n"

    def kernels(self) -> list:
        """One ``canonical.Kernel`` per group, in the order of ``self.groups``."""
        byid = self.var_by_id()
        out = []
        for g in self.groups:
            if g.chunked:
                out.append(canonical.python_text(g.name, chunked.function_text(self, g, byid), g.args))
            else:
                params, body, tail = self.njit_parts(g, byid)
                par = ", parallel=True" if g.parallel else ""
                out.append(canonical.kernel_text(params, body, tail, options=f"**_OPTS{par}"))
        return out

    def njit_parts(self, g, byid):
        """``(params, body, tail)`` of a group's function (``canonical.kernel_text``)."""
        params = [(f"a{self.n(v)}" if v.aval.shape else f"s{self.n(v)}", v) for v in g.args]
        rets, tail = [], []
        for vid in g.exports:
            v = byid[vid]
            k = self.n(v)
            if len(v.aval.shape) == 0:
                tail += [f"z{k} = {alloc((), v.aval.dtype)}", f"z{k}[()] = s{k}"]
                rets.append(f"z{k}")
            else:
                rets.append(f"a{k}")
        tail.append(f"return ({', '.join(rets)}{',' if rets else ''})")
        return params, g.body, tail

    def njit_text(self, g, byid):
        """A group's function with the emitter's names and the group's own argument order."""
        params, body, tail = self.njit_parts(g, byid)
        sig = ", ".join(f"_A({np.dtype(v.aval.dtype).name!r}, {len(v.aval.shape)})" for _, v in params)
        names = [name if v.aval.shape else "x" + name[1:] for name, v in params]
        prologue = [f"{name} = x{name[1:]}[()]" for name, v in params if not v.aval.shape]
        par = ", parallel=True" if g.parallel else ""
        lines = [f"@njit(({sig}{',' if params else ''}), **_OPTS{par})", f"def {g.name}({', '.join(names)}):"]
        lines += ["    " + s for s in prologue + body + tail]
        return "\n\n" + "\n".join(lines) + "\n"

    def runner_text(self, byid, kernels):
        """``make_run(G, K, C, F, V)``: glue ``G``, glue literals ``K``, constants ``C``, the
        groups' functions ``F`` (in the order of ``self.groups``) and the constants their calls
        pass ``V`` (``call_values``). ``kernels[i]`` is the group's ``canonical.Kernel`` (None:
        its own argument order, as in ``njit_text``)."""
        g = self.plan.graph
        lines = ["", "def make_run(G, K, C, F, V):",
                 "    " + "".join(f"r{self.n(v)}, " for v in g.constvars) + "_ = list(C) + [None]"]
        lines.append("    " + "".join(f"g{i}, " for i in range(len(self.glue))) + "_ = list(G) + [None]")
        lines.append("    " + "".join(f"l{i}, " for i in range(self.n_literals())) + "_ = list(K) + [None]")
        lines.append("    " + "".join(f"{grp.name}, " for grp in self.groups) + "_ = list(F) + [None]")
        n_values = sum(kind == "value" for k in kernels if k is not None for kind, _ in k.args)
        lines.append("    " + "".join(f"w{i}, " for i in range(n_values)) + "_ = list(V) + [None]")
        lines.append("")
        lines.append("    def run(args):")
        body = ["    " + "".join(f"r{self.n(v)}, " for v in g.invars) + "= args" if g.invars else "    pass"]
        lit_i = 0
        glue_i = 0
        value_i = 0
        kernel_of = {id(grp): k for grp, k in zip(self.groups, kernels)}
        for kind, item in self.order:
            if kind == "glue":
                ins = []
                for v in item.inputs:
                    if isinstance(v, Literal):
                        ins.append(f"l{lit_i}")
                        lit_i += 1
                    else:
                        ins.append(f"r{self.n(v)}")
                outs = "".join(f"r{self.n(v)}, " for v in item.outvars)
                if item.outvars and not item.prim.multiple_results:
                    outs = f"r{self.n(item.outvars[0])} "
                call = f"g{glue_i}({', '.join(ins)})"
                body.append(f"    {outs}= {call}" if outs else f"    {call}")  # effects: no outputs
                glue_i += 1
            else:
                exports = [f"r{self.n(byid[vid])}" for vid in item.exports]
                kern = kernel_of[id(item)]
                args = []
                for a_kind, a in (kern.args if kern is not None else [("var", v) for v in item.args]):
                    if a_kind == "var":
                        args.append(f"r{self.n(a)}")
                    elif a_kind == "size":
                        args.append(str(a))
                    elif a_kind == "alloc":
                        args.append(a.expr)
                    else:
                        args.append(f"w{value_i}")
                        value_i += 1
                outs = None if kern is None else kern.outs
                filled = [] if outs is None else [(name, i) for name, (src, i) in zip(exports, outs) if src == "arg"]
                for name, i in filled:  # arrays the kernel fills: allocated here, under their names
                    body.append(f"    {name} = {args[i]}")
                    args[i] = name
                returned = exports if outs is None else [n for n, (src, _) in zip(exports, outs) if src == "ret"]
                call = f"{item.name}({', '.join(args)})"
                body.append(f"    {''.join(n + ', ' for n in returned)}= {call}" if returned else f"    {call}")
        rets = []
        for v in g.outvars:
            if isinstance(v, Literal):
                rets.append(f"np.array(l{lit_i})")
                lit_i += 1
            elif id(v) in {id(c) for c in g.constvars}:
                rets.append(f"r{self.n(v)}.copy()")
            else:
                rets.append(f"r{self.n(v)}")
        body.append(f"    return [{', '.join(rets)}]")
        lines += ["    " + s for s in body]
        lines.append("")
        lines.append("    return run")
        return "\n".join(lines)

    def n_literals(self) -> int:
        return len(glue_literals(self.plan))


def call_values(kernels) -> list:
    """The constants the groups' calls pass, in the order ``make_run``'s ``V`` expects."""
    return [a for k in kernels for kind, a in k.args if kind == "value"]


def glue_eqns(plan) -> list:
    """The glue equations in execution order (``make_run``'s ``G``)."""
    return [item for kind, item in plan.steps if kind == "glue"]


def glue_literals(plan) -> list:
    """Literal values the glue passes and returns, in the order ``make_run``'s ``K`` expects."""
    out = []
    for e in glue_eqns(plan):
        out += [np.asarray(v.val, dtype=v.aval.dtype) for v in e.inputs if isinstance(v, Literal)]
    out += [np.asarray(v.val, dtype=v.aval.dtype) for v in plan.graph.outvars if isinstance(v, Literal)]
    return out
