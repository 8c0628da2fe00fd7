"""Lower a Graph to a CUDA program: generated kernels plus a list of steps over buffer slots.

The graph is partitioned by the shared fusion stage (``fusion.make_plan`` with ``table.RULES``): segments of
clusters (elementwise equations of one iteration shape and the reductions that end them), small
``dot_general``s, reshapes and copies of views, separated by glue equations. Here

- a cluster becomes one elementwise kernel writing the values it stores, plus one reduction
  kernel per distinct set of reduced axes (reading stored values, recomputing the rest);
- every ``dot_general`` (cluster-sized or BLAS-sized on the CPU) becomes a tiled matmul kernel;
- a reshape aliases its operand's buffer; a view that must exist as an array is copied by a
  kernel;
- every other glue equation (primitives without a device lowering) runs on the host: its
  operands are copied to the host, its NumPy ``impl`` runs, the results are copied back.

Lowering needs no GPU: ``lower(graph)`` returns a ``Program`` whose kernels are source text.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ...core.avals import ShapedArray
from ...core.graph import Literal, Var
from ...core.inline import inline_calls
from ...primitives.linalg import contraction_plan, parse_spec
from ..fusion import make_plan
from . import matmul, scalar, table
from .codegen import (
    Buf,
    Kernel,
    Lit,
    Local,
    elementwise_kernel,
    piecewise_kernel,
    reduction_kernel,
    reduction_mode,
    size_of,
)


@dataclass
class Slot:
    """One device buffer: ``kind`` is "input", "const", "scratch" (kept between calls),
    "fresh" (allocated each call: it is returned) or "host" (made by a host step)."""
    size: int
    dtype: np.dtype
    kind: str
    index: int = -1  # input: argument position; const: index into Program.consts


@dataclass
class Launch:
    kernel: Kernel


@dataclass
class HostStep:
    eqn: object
    inputs: list  # per operand: ("slot", slot, shape) or ("value", ndarray)
    outputs: list  # slots


@dataclass
class Program:
    kernels: list
    steps: list
    slots: list
    consts: list
    outputs: list  # per graph output: ("slot", slot, aval) or ("value", ndarray)
    source: str = ""

    def kernel_table(self):
        return {k.name: k for k in self.kernels}


@dataclass
class _Lowering:
    graph: object
    plan: object = None
    slots: list = field(default_factory=list)
    consts: list = field(default_factory=list)
    var_slot: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)
    kernels: list = field(default_factory=list)
    n_names: int = 0

    # -- slots ------------------------------------------------------------------------------
    def new_slot(self, aval, kind="scratch", index=-1):
        self.slots.append(Slot(size_of(aval.shape), np.dtype(aval.dtype), kind, index))
        return len(self.slots) - 1

    def kernel_name(self):
        self.n_names += 1
        return f"k{self.n_names - 1}"

    def add_kernel(self, kernel):
        self.kernels.append(kernel)
        if kernel.grid[0] > 0:  # nothing to do for empty arrays
            self.steps.append(Launch(kernel))

    # -- where values live --------------------------------------------------------------------
    def info(self, v):
        return self.plan.info.get(id(v))

    def lit_text(self, v):
        if isinstance(v, Literal):
            return scalar.literal(v.val, v.aval.dtype)
        inf = self.info(v)
        if inf is not None and inf.form == "lit":
            return scalar.literal(inf.base.val, v.aval.dtype)
        return None

    def constant(self, v):
        """("value", ndarray) for a literal or a splat constant, else None."""
        if self.lit_text(v) is None:
            return None
        val = v.val if isinstance(v, Literal) else self.info(v).base.val
        return ("value", np.full(v.aval.shape, val, dtype=v.aval.dtype))

    def source_for(self, node_key, stored_readable):
        """``source_of`` for kernels of cluster ``node_key`` = (segment, node) (None: a copy)."""
        def source_of(v):
            text = self.lit_text(v)
            if text is not None:
                return Lit(text)
            inf = self.info(v)
            if inf is not None and inf.form == "elem":
                slot = self.var_slot.get(id(v))
                here = (inf.segment, inf.node) == node_key
                if slot is not None and (stored_readable or not here):
                    return Buf(slot, tuple(v.aval.shape))
                return Local(self.producer[id(v)])  # computed here (or recomputed: never stored)
            if inf is not None and inf.form == "view":
                base = inf.base
                return Buf(self.array(base), tuple(base.aval.shape), inf.imap)
            return Buf(self.array(v), tuple(v.aval.shape))

        return source_of

    def array(self, v):
        """The slot holding ``v`` as a contiguous array (copied by a kernel when it is a view)."""
        slot = self.var_slot.get(id(v))
        if slot is not None:
            return slot
        inf = self.info(v)
        if inf is None or inf.form not in ("elem", "view", "lit"):
            raise AssertionError(f"cuda lowering: no buffer holds {v} ({inf and inf.form})")
        slot = self.new_slot(v.aval)
        kernel = elementwise_kernel(self.kernel_name(), v.aval.shape, [(v, slot)], self.source_for(None, False))
        if kernel is None:  # a value without a device lowering: compute it on the host
            self.host(self.producer[id(v)])
            return self.var_slot[id(v)]
        self.add_kernel(kernel)
        self.var_slot[id(v)] = slot
        return slot

    # -- the walk ------------------------------------------------------------------------------
    def run(self):
        g = self.graph
        self.plan = make_plan(g, table.RULES)
        self.producer = {id(o): e for e in g.eqns for o in e.outvars}
        for i, v in enumerate(g.invars):
            self.var_slot[id(v)] = self.new_slot(v.aval, "input", i)
        for v, c in zip(g.constvars, g.consts):
            if id(v) in self.plan.splats:
                continue
            self.consts.append(np.ascontiguousarray(c, dtype=v.aval.dtype).reshape(-1))
            self.var_slot[id(v)] = self.new_slot(v.aval, "const", len(self.consts) - 1)
        for kind, item in self.plan.steps:
            if kind == "glue":
                self.glue(item)
                continue
            for node in item.nodes:
                self.node(item, node)
        outputs = []
        for v in g.outvars:
            const = self.constant(v)
            if const is not None:
                outputs.append(const)
                continue
            slot = self.array(v)
            if self.slots[slot].kind == "scratch":
                self.slots[slot].kind = "fresh"
            outputs.append(("slot", slot, v.aval))
        return Program(self.kernels, self.steps, self.slots, self.consts, outputs)

    def node(self, seg, node):
        if node.kind == "cluster":
            self.cluster(seg, node)
        elif node.kind == "dot":
            self.dot(node.eqns[0])
        elif node.kind == "reshape":
            e = node.eqns[0]
            self.var_slot[id(e.outvars[0])] = self.array(e.inputs[0])
        elif node.kind == "copy":
            self.array(node.var)
        else:
            raise AssertionError(f"unknown plan node {node.kind!r}")

    def cluster(self, seg, node):
        key = (seg.index, node.index)
        elems = [e for e in node.eqns if e.prim not in scalar.REDUCTIONS]
        reds = [e for e in node.eqns if e.prim in scalar.REDUCTIONS]
        stored = [e.outvars[0] for e in elems if self.info(e.outvars[0]).stored]
        slots = [self.new_slot(v.aval) for v in stored]
        kernels = []
        if stored:
            kernels.append(elementwise_kernel(self.kernel_name(), node.shape, list(zip(stored, slots)),
                                              self.source_for(key, False)))
        if all(k is not None for k in kernels):
            for v, s in zip(stored, slots):
                self.var_slot[id(v)] = s
            by_axes: dict = {}
            for e in reds:
                by_axes.setdefault(tuple(e.params["axes"]), []).append(e)
            for axes, group in by_axes.items():
                outs = [self.new_slot(e.outvars[0].aval) for e in group]
                mode, split = reduction_mode(node.shape, axes)
                parts = outs if split == 1 else [
                    self.new_slot(ShapedArray((split,) + e.outvars[0].aval.shape, e.outvars[0].aval.dtype))
                    for e in group]
                todo = [(scalar.REDUCTIONS[e.prim], e.inputs[0], e.outvars[0], s)
                        for e, s in zip(group, parts)]
                k = reduction_kernel(self.kernel_name(), node.shape, axes, todo, self.source_for(key, True),
                                     mode, split)
                kernels.append(k)
                if k is None:
                    break
                for (kind, _, out, part), slot in zip(todo, outs):
                    if split > 1:
                        kernels.append(self.combine_partials(kind, part, split, out, slot))
                    self.var_slot[id(out)] = slot
        if all(k is not None for k in kernels):
            for k in kernels:
                self.add_kernel(k)
            return
        # some value has no device lowering: run the cluster's equations on the host
        for e in node.eqns:
            for v in e.outvars:
                self.var_slot.pop(id(v), None)
        for e in node.eqns:
            self.host(e)

    def combine_partials(self, kind, part_slot, split, out, out_slot):
        """Kernel reducing ``split`` partial results per element of ``out`` into ``out_slot``."""
        shape = (split,) + tuple(out.aval.shape)
        part = Var(ShapedArray(shape, out.aval.dtype))

        def source_of(v):
            return Buf(part_slot, shape)

        return reduction_kernel(self.kernel_name(), shape, (0,), [(kind, part, out, out_slot)], source_of,
                                "serial")

    def glue(self, eqn):
        avals = [v.aval for v in eqn.inputs] + [v.aval for v in eqn.outvars]
        handler = table.rule(eqn.prim).glue
        supported = all(np.dtype(a.dtype) in scalar.SUPPORTED_DTYPES for a in avals)
        if handler == "dot" and supported and all(np.dtype(a.dtype) != np.bool_ for a in avals):
            self.dot(eqn)
        elif handler == "reshape":
            self.var_slot[id(eqn.outvars[0])] = self.array(eqn.inputs[0])
        elif handler in ("concatenate", "pad") and supported:
            getattr(self, handler)(eqn)
        else:
            self.host(eqn)

    def concatenate(self, eqn):
        axis = eqn.params["axis"]
        out = eqn.outvars[0]
        pieces, start = [], 0
        for v in eqn.inputs:
            size = v.aval.shape[axis]
            if size == 0:
                continue
            end = start + size

            def cond(idx, end=end):
                return f"{idx[axis]} < {end}"

            def imap(idx, start=start):
                return [f"({i} - {start})" if d == axis and start else i for d, i in enumerate(idx)]

            pieces.append((cond, self.array(v), tuple(v.aval.shape), imap))
            start = end
        if pieces:
            pieces[-1] = (lambda idx: None,) + pieces[-1][1:]
        self.emit_piecewise(out, pieces)

    def pad(self, eqn):
        (x,), out = eqn.inputs, eqn.outvars[0]
        widths = [tuple(w) for w in eqn.params["widths"]]
        shape = tuple(x.aval.shape)

        def cond(idx):
            tests = [f"{lo} <= {i} < {lo + n}" for i, (lo, hi), n in zip(idx, widths, shape) if lo or hi]
            return " and ".join(tests) or None

        def imap(idx):
            return [f"({i} - {lo})" if lo else i for i, (lo, _) in zip(idx, widths)]

        pieces = [(cond, self.array(x), shape, imap)] if size_of(shape) else []
        self.emit_piecewise(out, pieces, scalar.literal(0, out.aval.dtype))

    def emit_piecewise(self, out, pieces, default=None):
        slot = self.new_slot(out.aval)
        self.add_kernel(piecewise_kernel(self.kernel_name(), out, slot, pieces, default))
        self.var_slot[id(out)] = slot

    def host(self, eqn):
        ins = [self.constant(v) or ("slot", self.array(v), tuple(v.aval.shape)) for v in eqn.inputs]
        outs = []
        for v in eqn.outvars:
            s = self.new_slot(v.aval, "host")
            self.var_slot[id(v)] = s
            outs.append(s)
        self.steps.append(HostStep(eqn, ins, outs))

    # -- dot_general -------------------------------------------------------------------------
    def dot(self, eqn):
        x, y = eqn.inputs
        out = eqn.outvars[0]
        spec = eqn.params["spec"]
        a, b, o = parse_spec(spec)
        pa, (nb, m, k), pb, (_, _, n), mid_shape, out_perm, out_shape = contraction_plan(
            spec, tuple(x.aval.shape), tuple(y.aval.shape))
        batch = [c for c in o if c in a and c in b]
        free_a = [c for c in a if c not in b]
        contract = [c for c in a if c in b and c not in o]
        mid = batch + free_a + [c for c in b if c not in a]
        a_slot, a_strides = self.operand(x, pa, [len(batch), len(free_a)])
        b_slot, b_strides = self.operand(y, pb, [len(batch), len(contract)])
        out_slot = self.new_slot(out.aval)
        groups = [len(batch), len(free_a)]
        c_strides = _group_strides(out_shape, [o.index(c) for c in mid], groups)
        target = out_slot
        if c_strides is None:  # write a contiguous (batch, free_a, free_b) result, then permute it
            target = self.new_slot(ShapedArray(mid_shape, out.aval.dtype))
            c_strides = _group_strides(mid_shape, list(range(len(mid))), groups)
        split = matmul.split_k(nb, m, n, k)
        if split > 1:  # few output tiles, long contraction: partial products over k-chunks, then summed
            chunk = k // split
            part = self.new_slot(ShapedArray((split, m, n), out.aval.dtype))
            self.add_matmul(out.aval.dtype, (part, a_slot, b_slot), split, m, n, chunk,
                            (chunk * a_strides[2], a_strides[1], a_strides[2]),
                            (chunk * b_strides[1], b_strides[1], b_strides[2]), (m * n, n, 1))
            contiguous = (m == 1 or c_strides[1] == n) and (n == 1 or c_strides[2] == 1)
            if target == out_slot and not contiguous:
                target = self.new_slot(ShapedArray(mid_shape, out.aval.dtype))
            self.add_kernel(self.combine_partials("sum", part, split, Var(ShapedArray((m, n), out.aval.dtype)),
                                                  target))
        else:
            self.add_matmul(out.aval.dtype, (target, a_slot, b_slot), nb, m, n, k, a_strides, b_strides, c_strides)
        if target != out_slot:
            tmp = Var(ShapedArray(mid_shape, out.aval.dtype))
            self.var_slot[id(tmp)] = target
            self.copy_transposed(tmp, out_perm, out, out_slot)
        self.var_slot[id(out)] = out_slot

    def add_matmul(self, dtype, slots, nb, m, n, k, a_strides, b_strides, c_strides):
        kern = matmul.matmul_kernel(self.kernel_name(), dtype, nb, m, n, k, a_strides, b_strides, c_strides)
        kern.slots = list(slots)
        kern.dtypes = [np.dtype(dtype)] * 3
        self.kernels.append(kern)
        if nb * m * n > 0:
            self.steps.append(Launch(kern))

    def operand(self, v, perm, group_sizes):
        """(slot, (batch, row, col) strides) of ``transpose(v, perm)`` viewed as 3-D: a view of a
        stored array (a transpose, size-1 reshape or broadcast) is read in place through strides."""
        shape = tuple(v.aval.shape)
        inf = self.info(v)
        if inf is not None and inf.form == "view" and id(v) not in self.var_slot:
            strides = _view_strides(inf.imap, shape, tuple(inf.base.aval.shape))
            merged = strides and _group_strides(shape, list(perm), group_sizes, strides)
            if merged:
                return self.array(inf.base), merged
        slot = self.array(v)
        merged = _group_strides(shape, list(perm), group_sizes)
        if merged is not None:
            return slot, merged
        tshape = tuple(shape[p] for p in perm)
        tv = Var(ShapedArray(tshape, v.aval.dtype))
        tslot = self.new_slot(tv.aval)
        self.copy_transposed(v, perm, tv, tslot)
        return tslot, _group_strides(tshape, list(range(len(tshape))), group_sizes)

    def copy_transposed(self, src, perm, dst, dst_slot):
        """Write ``transpose(src, perm)`` (a var with a slot) into ``dst_slot`` (shape of ``dst``)."""
        src_slot, src_shape = self.array(src), tuple(src.aval.shape)

        def imap(idx):
            out = [None] * len(perm)
            for j, p in enumerate(perm):
                out[p] = idx[j]
            return out

        def source_of(v):
            return Buf(src_slot, src_shape, imap)

        self.add_kernel(elementwise_kernel(self.kernel_name(), dst.aval.shape, [(dst, dst_slot)], source_of))


def _c_strides(shape):
    strides, acc = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = acc
        acc *= shape[d]
    return strides


def _view_strides(imap, shape, base_shape):
    """Element strides of a view's axes in its base array, when each base index is one view
    index or 0 (transposes, size-1 reshapes, broadcasts); None otherwise."""
    names = [f"d{i}" for i in range(len(shape))]
    strides = [0] * len(shape)
    for text, stride in zip(imap(names), _c_strides(base_shape)):
        if text in names:
            strides[names.index(text)] += stride
        elif text != "0":
            return None
    return strides


def _group_strides(shape, dims, group_sizes, strides=None):
    """Strides of the axes ``dims`` of an array of ``shape`` (C-contiguous unless ``strides``),
    split into consecutive groups of ``group_sizes`` (the rest is the last group), each merged
    into one axis; None when a group's axes cannot be merged."""
    strides = _c_strides(shape) if strides is None else strides
    bounds = [0]
    for s in group_sizes:
        bounds.append(bounds[-1] + s)
    bounds.append(len(dims))
    out = []
    for lo, hi in itertools.pairwise(bounds):
        live = [d for d in dims[lo:hi] if shape[d] != 1]
        for d0, d1 in itertools.pairwise(live):
            if strides[d0] != strides[d1] * shape[d1]:
                return None
        out.append(strides[live[-1]] if live else 0)
    return tuple(out)


def lower(graph) -> Program:
    """The CUDA program of ``graph`` (kernels as source text; no GPU needed)."""
    from .module import program_source

    prog = _Lowering(inline_calls(graph)).run()
    prog.source = program_source(prog.kernels)
    return prog
