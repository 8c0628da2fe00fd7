"""Fusion: partition a graph into compiled segments and glue (the first stage of a compiling
backend, shared by ``numba_cpu`` and ``numba_cuda``).

Every equation is either *lowered* (written into generated source) or *glue* (run in Python
between compiled segments); which, and as what kind of node, is the backend's call: its
lowering table (``Rules``) classifies each equation. Lowered equations are scheduled as early as
their inputs allow (glue keeps its order, so effects stay ordered), and each segment between two
glue steps becomes nodes:

- *clusters*: elementwise equations of one iteration shape, the broadcasts and views they read
  through, and the reductions that end them, emitted as one loop nest (one pass over memory;
  only values needed elsewhere are stored);
- small ``dot_general``s as loop nests, general reshapes as views of stored arrays;
- nodes a backend plans itself (``Rules.plan_node``: the CPU backend's loops and indexing).

Views (broadcast_to, transpose, size-1 reshapes, basic-slice getitem, flip) are virtual: a read
through them is an index remapping of the stored array below them. Index texts write every
array size as ``dim(n)``, a placeholder a backend resolves (``numba_cpu/canonical.py``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ..core.graph import Literal
from ..core.primitive import Kind
from ..errors import FuncgradError
from ..primitives import reductions, structural
from ..primitives.elementwise import stop_gradient_p

LOWERED = ("elem", "reduce", "view", "reshape", "dot")  # the kinds fusion plans itself
_VIEWS = (structural.broadcast_p, structural.transpose_p, structural.flip_p, stop_gradient_p)
REDUCTIONS = {reductions.reduce_sum_p: "sum", reductions.reduce_prod_p: "prod",
              reductions.reduce_max_p: "max", reductions.reduce_min_p: "min"}


def dim(n: int) -> str:
    """Source text of the array size ``n``: a placeholder ``_n<n>_``, except 0 and 1 (literal:
    they shape the code, through broadcasting)."""
    return str(n) if n <= 1 else f"_n{n}_"


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _ones_only_reshape(src, dst) -> bool:
    return [d for d in src if d != 1] == [d for d in dst if d != 1]


def structural_kind(eqn):
    """"view", "reshape" or "reduce" for the equations whose node kind follows from their
    structure alone (any backend that lowers them plans them so), else None."""
    prim = eqn.prim
    if prim in _VIEWS:
        return "view"
    if prim is structural.reshape_p:
        src, dst = eqn.inputs[0].aval.shape, eqn.outvars[0].aval.shape
        return "view" if _ones_only_reshape(src, dst) else "reshape"
    if prim is structural.getitem_p:
        basic = len(eqn.inputs) == 1 and all(e[0] in ("slice", "int", "none") for e in eqn.params["spec"])
        return "view" if basic else None
    if prim in REDUCTIONS:
        return "reduce" if eqn.params["axes"] else "view"
    return None


def lookup(table: dict, prim, backend: str, opaque):
    """``table[prim]``; ``opaque`` for a primitive defined outside funcgrad (``Kind.OPAQUE``:
    its NumPy impl in the glue); an error naming the primitive and the table otherwise."""
    entry = table.get(prim)
    if entry is not None:
        return entry
    if prim.kind is Kind.OPAQUE:
        return opaque
    raise FuncgradError(f"the {backend} backend has no lowering rule for primitive {prim.name!r}: add an entry "
                        f"for it to TABLE in funcgrad/backends/{backend}/table.py (kind 'glue' runs its NumPy impl)")


def stays_glue(eqn, kind: str, dtypes) -> bool:
    """Whether an equation whose table entry has ``kind`` runs in the glue whatever its
    structure: a glue entry, several results, effects, or a dtype outside ``dtypes``."""
    prim = eqn.prim
    if kind == "glue" or prim.multiple_results or prim.effectful:
        return True
    return any(np.dtype(v.aval.dtype) not in dtypes for v in list(eqn.inputs) + list(eqn.outvars))


class Rules(ABC):
    """A backend's lowering table, as fusion sees it.

    ``classify(eqn, mode)`` names the node kind of an equation: one of ``LOWERED``, "glue", or
    a kind the backend plans itself with ``plan_node(planner, eqn, kind)``; ``finish(plan,
    mode)`` may annotate the finished plan (threads, chunking)."""

    @abstractmethod
    def classify(self, eqn, mode=None) -> str:
        """The node kind of ``eqn`` (each backend's table answers)."""

    def plan_node(self, planner, eqn, kind):
        raise FuncgradError(f"fusion has no node kind {kind!r} (primitive {eqn.prim.name!r})")

    def finish(self, plan, mode):
        return None


# -- view index maps ----------------------------------------------------------------------------
def view_map(eqn):
    """``f(out_index_texts) -> in_index_texts`` for a view equation."""
    prim = eqn.prim
    src = tuple(eqn.inputs[0].aval.shape)
    dst = tuple(eqn.outvars[0].aval.shape)
    if prim is structural.broadcast_p:
        lead = len(dst) - len(src)
        return lambda idx: ["0" if d == 1 else idx[lead + j] for j, d in enumerate(src)]
    if prim is structural.transpose_p:
        perm = eqn.params["perm"]

        def tmap(idx):
            out = [None] * len(perm)
            for j, p in enumerate(perm):
                out[p] = idx[j]
            return out

        return tmap
    if prim is structural.flip_p:
        axes = {a % len(src) for a in eqn.params["axes"]}
        return lambda idx: [f"({dim(src[d])} - 1 - {i})" if d in axes else i for d, i in enumerate(idx)]
    if prim is structural.reshape_p:
        s_non1 = [j for j, d in enumerate(src) if d != 1]
        d_non1 = [j for j, d in enumerate(dst) if d != 1]

        def rmap(idx):
            out = ["0"] * len(src)
            for a, b in zip(s_non1, d_non1):
                out[a] = idx[b]
            return out

        return rmap
    if prim is structural.getitem_p:
        return getitem_map(eqn.params["spec"], src)
    return lambda idx: list(idx)  # stop_gradient, reductions over no axes


def _start_text(start: int, given, step: int, n: int) -> str:
    """Source text of a slice's first index: in terms of the axis size when it is counted from
    the end (``x[::-1]``, ``x[-3:]``), so the text holds no size."""
    if given is None and step < 0 and start == n - 1:
        return f"({dim(n)} - 1)"
    if given is not None and given < 0 and start == n + given:
        return f"({dim(n)} - {-given})"
    return str(start)


def getitem_map(spec, src):
    entries = []
    p = 0
    for e in spec:
        if e[0] == "slice":
            start, _, step = slice(e[1], e[2], e[3]).indices(src[p])
            entries.append(("slice", _start_text(start, e[1], step, src[p]), step))
            p += 1
        elif e[0] == "int":
            entries.append(("int", e[1] + src[p] if e[1] < 0 else e[1]))
            p += 1
        else:
            entries.append(("none",))
    entries.extend(("slice", "0", 1) for _ in range(p, len(src)))

    def gmap(idx):
        out, q = [], 0
        for e in entries:
            if e[0] == "slice":
                i = idx[q]
                q += 1
                term = i if e[2] == 1 else f"{e[2]} * {i}"
                out.append(term if e[1] == "0" else f"({e[1]} + {term})")
            elif e[0] == "int":
                out.append(str(e[1]))
            else:
                q += 1
        return out

    return gmap


# -- the plan -------------------------------------------------------------------------------------
@dataclass
class Node:
    kind: str  # "cluster", "dot", "reshape", "copy"
    index: int
    segment: int = -1
    shape: tuple = ()
    eqns: list = field(default_factory=list)
    var: object = None  # copy: the view variable it stores
    parallel: bool = False
    parallel_reduce: bool = False  # a large reduction to scalars, in fixed chunks on threads
    chunked: bool = False


@dataclass
class VarInfo:
    form: str  # "input" (produced outside the segment), "elem", "array", "view", "lit"
    node: int = -1  # producing node within its segment (-1: outside)
    segment: int = -1
    base: object = None  # view: the stored variable below it
    imap: object = None  # view: out index texts -> base index texts
    stored: bool = False  # elem: written to an array (needed outside its loop)


@dataclass
class Segment:
    index: int
    eqns: list = field(default_factory=list)
    nodes: list = field(default_factory=list)
    copies: dict = field(default_factory=dict)  # id(view var) -> copy Node


@dataclass
class Plan:
    graph: object
    steps: list  # ("segment", Segment) | ("glue", eqn) in execution order
    info: dict  # id(var) -> VarInfo
    glue_uses: set  # ids of variables read by glue steps or returned
    splats: dict = field(default_factory=dict)  # id(const var) -> Literal


def schedule(graph, rules, forced_glue=frozenset(), mode=None):
    """Lowered equations as early as their inputs allow; glue in its original order.

    Segment k sits at position 2k and the k-th glue step at 2k + 1.
    """
    pos: dict = {}
    buckets: dict[int, list] = {}
    n_glue = 0
    for e in graph.eqns:
        if id(e) in forced_glue or rules.classify(e, mode) == "glue":
            at = 2 * n_glue + 1
            n_glue += 1
        else:
            at = 0
            for v in e.inputs:
                if not isinstance(v, Literal):
                    p = pos.get(id(v), 0)
                    at = max(at, p + (p % 2))
        for v in e.outvars:
            pos[id(v)] = at
        buckets.setdefault(at, []).append(e)
    steps = []
    for at in sorted(buckets):
        if at % 2:
            steps.extend(("glue", e) for e in buckets[at])
        else:
            steps.append(("segment", buckets[at]))
    return steps


class _SegmentPlanner:
    def __init__(self, plan, seg, rules):
        self.plan, self.seg, self.info, self.rules = plan, seg, plan.info, rules

    def avail_node(self, v):
        """Index of the node after which ``v`` (stored) can be read in this segment."""
        if isinstance(v, Literal):
            return -1
        inf = self.info.get(id(v))
        if inf is None or inf.segment != self.seg.index:
            return -1
        if inf.form == "view":
            return self.avail_node(inf.base)
        return inf.node

    def need_stored(self, v):
        inf = self.info.get(id(v))
        if inf is not None and inf.form == "elem":
            inf.stored = True

    def valid_cluster(self, node, eqn):
        for v in eqn.inputs:
            if isinstance(v, Literal):
                continue
            inf = self.info.get(id(v))
            if inf is not None and inf.segment == self.seg.index and inf.form == "elem" and inf.node == node.index:
                continue
            if self.avail_node(v) >= node.index:
                return False
        return True

    def pick_cluster(self, shape, eqn):
        best = None
        for node in reversed(self.seg.nodes):
            if node.kind != "cluster" or node.shape != shape or not self.valid_cluster(node, eqn):
                continue
            direct = any(not isinstance(v, Literal) and self.info.get(id(v)) is not None
                         and self.info[id(v)].form == "elem" and self.info[id(v)].node == node.index
                         and self.info[id(v)].segment == self.seg.index for v in eqn.inputs)
            if direct:
                return node
            best = best or node
        if best is None:
            best = self.new_node("cluster", shape=shape)
        return best

    def new_node(self, kind, **kw):
        node = Node(kind, len(self.seg.nodes), self.seg.index, **kw)
        self.seg.nodes.append(node)
        return node

    def uses_outside(self, node, eqn):
        """Mark inputs read from another node as stored."""
        for v in eqn.inputs:
            if isinstance(v, Literal):
                continue
            inf = self.info.get(id(v))
            if inf is None:
                continue
            if inf.form == "elem" and (inf.node != node.index or inf.segment != self.seg.index):
                inf.stored = True
            elif inf.form == "view":
                self.need_stored(inf.base)

    def add(self, eqn, kind):
        if kind not in LOWERED:
            self.rules.plan_node(self, eqn, kind)
            return
        out = eqn.outvars[0]
        segi = self.seg.index
        if kind == "view":
            src = eqn.inputs[0]
            imap = view_map(eqn)
            if isinstance(src, Literal):
                self.info[id(out)] = VarInfo("lit", segment=segi, base=src)
                return
            inf = self.info.get(id(src))
            if inf is not None and inf.form == "lit":
                self.info[id(out)] = VarInfo("lit", segment=segi, base=inf.base)
                return
            if inf is not None and inf.form == "view":
                inner = inf.imap
                base, full = inf.base, (lambda idx, a=imap, b=inner: b(a(idx)))
            else:
                base, full = src, imap
                self.need_stored(src)
            self.info[id(out)] = VarInfo("view", segment=segi, base=base, imap=full)
            return
        if kind in ("elem", "reduce"):  # a reduction joins the cluster of its operand
            x = eqn.inputs[0]
            inf = self.info.get(id(x))
            if kind == "reduce" and inf is not None and inf.form == "elem" and inf.segment == segi:
                node = self.seg.nodes[inf.node]
            else:
                node = self.pick_cluster(tuple((out if kind == "elem" else x).aval.shape), eqn)
            node.eqns.append(eqn)
            self.uses_outside(node, eqn)
            self.info[id(out)] = VarInfo("elem" if kind == "elem" else "array", node=node.index, segment=segi)
            return
        if kind == "reshape":
            src = eqn.inputs[0]
            inf = self.info.get(id(src))
            if isinstance(src, Literal) or (inf is not None and inf.form == "lit"):
                self.info[id(out)] = VarInfo("lit", segment=segi, base=src if isinstance(src, Literal) else inf.base)
                return
            self.require_array(src)
            node = self.new_node("reshape", eqns=[eqn])
            self.info[id(out)] = VarInfo("array", node=node.index, segment=segi)
            return
        # dot
        node = self.new_node("dot", eqns=[eqn])
        self.uses_outside(node, eqn)
        self.info[id(out)] = VarInfo("array", node=node.index, segment=segi)

    def materialize(self, v):
        """A copy node in this segment storing the view ``v`` as a C-contiguous array."""
        if id(v) not in self.seg.copies:
            self.need_stored(self.info[id(v)].base)
            self.seg.copies[id(v)] = self.new_node("copy", shape=tuple(v.aval.shape), var=v)

    def require_array(self, v):
        """``v`` must exist as a stored C-contiguous array (a view gets a copy node)."""
        inf = self.info.get(id(v))
        if inf is None:
            return
        if inf.form == "view" and id(v) not in self.seg.copies:
            if inf.segment == self.seg.index:
                self.need_stored(inf.base)
                self.seg.copies[id(v)] = self.new_node("copy", shape=tuple(v.aval.shape), var=v)
        else:
            self.need_stored(v)


def splat_consts(graph) -> dict:
    """Constants whose elements are all equal (folded broadcasts): id(var) -> Literal."""
    out = {}
    for v, c in zip(graph.constvars, graph.consts):
        a = np.asarray(c)
        if a.ndim == 0 or a.size == 0 or a.dtype.kind not in "biuf":
            continue
        first = a.reshape(-1)[:1] if a.flags.c_contiguous else a[(0,) * a.ndim][None]
        if all(s == 0 for s in a.strides) or bool(np.all(a == first[0])):
            if a.dtype.kind == "f" and np.isnan(first[0]):
                continue
            out[id(v)] = Literal(first[0], _scalar_aval(a.dtype))
    return out


def _scalar_aval(dtype):
    from ..core.avals import ShapedArray

    return ShapedArray((), np.dtype(dtype))


def _plan_once(graph, rules, splats, forced_glue, mode):
    info: dict = {vid: VarInfo("lit", base=lit) for vid, lit in splats.items()}
    steps = []
    segments = []
    for kind, item in schedule(graph, rules, forced_glue, mode):
        if kind == "glue":
            steps.append(("glue", item))
            continue
        seg = Segment(len(segments), eqns=item)
        segments.append(seg)
        steps.append(("segment", seg))
    plan = Plan(graph, steps, info, set())
    for seg in segments:
        planner = _SegmentPlanner(plan, seg, rules)
        for e in seg.eqns:
            planner.add(e, rules.classify(e, mode))
    _mark_stored(plan, segments, rules)
    return plan, segments


def _mark_stored(plan, segments, rules):
    """Values read by glue, returned, or read by a later segment must be stored arrays."""
    later_readers: dict = {}
    for seg in segments:
        for e in seg.eqns:
            for v in e.inputs:
                if not isinstance(v, Literal):
                    later_readers.setdefault(id(v), set()).add(seg.index)
    plan.glue_uses.update(id(v) for v in plan.graph.outvars if not isinstance(v, Literal))
    for kind, item in plan.steps:
        if kind == "glue":
            plan.glue_uses.update(id(v) for v in item.inputs if not isinstance(v, Literal))
    for seg in segments:
        planner = _SegmentPlanner(plan, seg, rules)
        for e in seg.eqns:
            for v in e.outvars:
                inf = plan.info[id(v)]
                if id(v) in plan.glue_uses:
                    planner.require_array(v)
                elif later_readers.get(id(v), set()) - {seg.index}:
                    planner.need_stored(inf.base if inf.form == "view" else v)


def make_plan(graph, rules: Rules, mode=None, extra_splats=None) -> Plan:
    """Partition ``graph`` (see the module docstring) by the backend's ``rules``; ``mode`` is
    passed to ``rules.classify``; ``extra_splats`` (id(var) -> Literal) are inputs known to have
    all elements equal."""
    splats = {**splat_consts(graph), **(extra_splats or {})}
    forced: set = set()
    while True:
        plan, segments = _plan_once(graph, rules, splats, frozenset(forced), mode)
        # a segment that only moves data is cheaper as NumPy views than as a compiled function
        idle = [s for s in segments if all(n.kind in ("copy", "reshape") for n in s.nodes)]
        if not idle or mode == "body":
            break
        for s in idle:
            forced.update(id(e) for e in s.eqns)
    plan.splats = splats
    rules.finish(plan, mode)
    return plan
