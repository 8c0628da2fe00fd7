"""Partition a graph into compiled segments and Python glue.

Every equation is either *lowered* (written into generated Numba source) or *glue* (run in
Python between compiled segments: large ``dot_general``s through BLAS, and every primitive
without a lowering through its NumPy ``impl``). Lowered equations are scheduled as early as
their inputs allow (glue keeps its order, so effects stay ordered), and each segment between
two glue steps becomes nodes:

- *clusters*: elementwise equations of one iteration shape, the broadcasts and views they read
  through, and the reductions that end them, emitted as one loop nest (one pass over memory;
  only values needed elsewhere are stored);
- small ``dot_general``s as loop nests, general reshapes as views of stored arrays;
- with ``mode="top"``, control-flow equations (``scan``, ``while``, ``cond``) whose sub-graphs
  lower completely, as compiled loops calling their bodies' functions (``loops.py``).

Views (broadcast_to, transpose, size-1 reshapes, basic-slice getitem, flip) are virtual: a read
through them is an index remapping of the stored array below them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.graph import Literal
from . import lowering
from .canonical import dim

DOT_INLINE_MAX = 1 << 14  # multiply-adds up to which a dot_general is a loop nest, not a BLAS call
PARALLEL_MIN = 1 << 20  # elements from which a cluster's outer loop runs on several threads
CHUNKED_MIN = 1 << 15  # elements from which a transcendental-heavy cluster uses NumPy's SIMD ufuncs
CHUNK_ROW_MAX = 1 << 16  # largest row (elements past the first axis) a chunked cluster handles

_CONTROL_FLOW = frozenset({"scan", "while", "cond"})  # lowered by loops.py
_VIEW_PRIMS = ("broadcast_to", "transpose", "flip", "stop_gradient")
TRANSCENDENTAL = frozenset({"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan",
                            "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
                            "pow", "atan2", "logistic", "erf", "cbrt"})


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _ones_only_reshape(src, dst) -> bool:
    return [d for d in src if d != 1] == [d for d in dst if d != 1]


def _dot_macs(eqn) -> int:
    from ...primitives.linalg import parse_spec

    a, b, _ = parse_spec(eqn.params["spec"])
    sizes = {}
    for letters, v in ((a, eqn.inputs[0]), (b, eqn.inputs[1])):
        sizes.update(zip(letters, v.aval.shape))
    return _size(sizes.values())


def classify(eqn, mode=None) -> str:
    """'elem', 'reduce', 'view', 'reshape', 'dot', 'loop', 'index' (lowered) or 'glue'.

    ``mode``: None (no loop or index nodes), "top" (control flow as loop nodes, see ``loops.py``;
    scatters, and gathers with scalar index operands, as index nodes, ``indexing.py``) or "body"
    (a loop body: the same, and every float contraction lowered).
    """
    prim = eqn.prim
    if mode is not None and prim.name in _CONTROL_FLOW:
        from .loops import compilable

        return "loop" if compilable(eqn) else "glue"
    if prim.multiple_results or prim.effectful:
        return "glue"
    avals = [v.aval for v in eqn.inputs] + [v.aval for v in eqn.outvars]
    if any(np.dtype(a.dtype) not in lowering.SUPPORTED_DTYPES for a in avals):
        return "glue"
    name = prim.name
    if name in _VIEW_PRIMS:
        return "view"
    if mode is not None and (name in ("index_add", "index_set") or (name == "getitem" and len(eqn.inputs) > 1)):
        from .indexing import lowerable

        return "index" if lowerable(eqn) else "glue"
    if name == "reshape":
        src, dst = eqn.inputs[0].aval.shape, eqn.outvars[0].aval.shape
        return "view" if _ones_only_reshape(src, dst) else "reshape"
    if name == "getitem":
        spec = eqn.params["spec"]
        basic = len(eqn.inputs) == 1 and all(e[0] in ("slice", "int", "none") for e in spec)
        return "view" if basic else "glue"
    if name in lowering.REDUCTIONS:
        return "view" if not eqn.params["axes"] else "reduce"
    if name == "dot_general":
        kinds = {np.dtype(v.aval.dtype).kind for v in eqn.inputs}
        return "dot" if kinds <= {"f"} and (mode == "body" or _dot_macs(eqn) <= DOT_INLINE_MAX) else "glue"
    if prim.kind == "elementwise" and lowering.lowerable(eqn):
        return "elem"
    return "glue"


# -- view index maps ----------------------------------------------------------------------------
def view_map(eqn):
    """``f(out_index_texts) -> in_index_texts`` for a view equation."""
    name = eqn.prim.name
    src = tuple(eqn.inputs[0].aval.shape)
    dst = tuple(eqn.outvars[0].aval.shape)
    if name == "broadcast_to":
        lead = len(dst) - len(src)
        return lambda idx: ["0" if d == 1 else idx[lead + j] for j, d in enumerate(src)]
    if name == "transpose":
        perm = eqn.params["perm"]

        def tmap(idx):
            out = [None] * len(perm)
            for j, p in enumerate(perm):
                out[p] = idx[j]
            return out

        return tmap
    if name == "flip":
        axes = {a % len(src) for a in eqn.params["axes"]}
        return lambda idx: [f"({dim(src[d])} - 1 - {i})" if d in axes else i for d, i in enumerate(idx)]
    if name == "reshape":
        s_non1 = [j for j, d in enumerate(src) if d != 1]
        d_non1 = [j for j, d in enumerate(dst) if d != 1]

        def rmap(idx):
            out = ["0"] * len(src)
            for a, b in zip(s_non1, d_non1):
                out[a] = idx[b]
            return out

        return rmap
    if name == "getitem":
        return _getitem_map(eqn.params["spec"], src)
    return lambda idx: list(idx)  # stop_gradient, reductions over no axes


def _start_text(start: int, given, step: int, n: int) -> str:
    """Source text of a slice's first index: in terms of the axis size when it is counted from
    the end (``x[::-1]``, ``x[-3:]``), so the text holds no size."""
    if given is None and step < 0 and start == n - 1:
        return f"({dim(n)} - 1)"
    if given is not None and given < 0 and start == n + given:
        return f"({dim(n)} - {-given})"
    return str(start)


def _getitem_map(spec, src):
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


def schedule(graph, forced_glue=frozenset(), mode=None):
    """Lowered equations as early as their inputs allow; glue in its original order.

    Segment k sits at position 2k and the k-th glue step at 2k + 1.
    """
    pos: dict = {}
    buckets: dict[int, list] = {}
    n_glue = 0
    for e in graph.eqns:
        if id(e) in forced_glue or classify(e, mode) == "glue":
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
    def __init__(self, plan, seg):
        self.plan, self.seg, self.info = plan, seg, plan.info

    def base_of(self, v):
        inf = self.info.get(id(v))
        return inf.base if inf is not None and inf.form == "view" else v

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
        if kind in ("loop", "index"):
            from . import indexing, loops

            (loops if kind == "loop" else indexing).plan_node(self, eqn)
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
        if a.ndim == 0 or a.size == 0 or np.dtype(a.dtype) not in lowering.SUPPORTED_DTYPES:
            continue
        first = a.reshape(-1)[:1] if a.flags.c_contiguous else a[(0,) * a.ndim][None]
        if all(s == 0 for s in a.strides) or bool(np.all(a == first[0])):
            if a.dtype.kind == "f" and np.isnan(first[0]):
                continue
            out[id(v)] = Literal(first[0], _scalar_aval(a.dtype))
    return out


def _scalar_aval(dtype):
    from ...core.avals import ShapedArray

    return ShapedArray((), np.dtype(dtype))


def _plan_once(graph, splats, forced_glue, mode):
    info: dict = {vid: VarInfo("lit", base=lit) for vid, lit in splats.items()}
    steps = []
    segments = []
    for kind, item in schedule(graph, forced_glue, mode):
        if kind == "glue":
            steps.append(("glue", item))
            continue
        seg = Segment(len(segments), eqns=item)
        segments.append(seg)
        steps.append(("segment", seg))
    plan = Plan(graph, steps, info, set())
    for seg in segments:
        planner = _SegmentPlanner(plan, seg)
        for e in seg.eqns:
            planner.add(e, classify(e, mode))
    _mark_stored(plan, segments)
    return plan, segments


def _mark_stored(plan, segments):
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
        planner = _SegmentPlanner(plan, seg)
        for e in seg.eqns:
            for v in e.outvars:
                inf = plan.info[id(v)]
                if id(v) in plan.glue_uses:
                    planner.require_array(v)
                elif later_readers.get(id(v), set()) - {seg.index}:
                    planner.need_stored(inf.base if inf.form == "view" else v)


def make_plan(graph, mode=None, extra_splats=None) -> Plan:
    """Partition ``graph`` (see the module docstring); ``mode`` as for ``classify``;
    ``extra_splats`` (id(var) -> Literal) are inputs known to have all elements equal."""
    splats = {**splat_consts(graph), **(extra_splats or {})}
    forced: set = set()
    while True:
        plan, segments = _plan_once(graph, splats, frozenset(forced), mode)
        # a segment that only moves data is cheaper as NumPy views than as a compiled function
        idle = [s for s in segments if all(n.kind in ("copy", "reshape") for n in s.nodes)]
        if not idle or mode == "body":
            break
        for s in idle:
            forced.update(id(e) for e in s.eqns)
    plan.splats = splats
    if mode != "body":
        _mark_parallel_and_chunked(plan)
    return plan


def _mark_parallel_and_chunked(plan):
    for kind, seg in plan.steps:
        if kind != "segment":
            continue
        for node in seg.nodes:
            if node.kind not in ("cluster", "copy") or len(node.shape) == 0:
                continue
            n = _size(node.shape)
            reduces_outer = any(e.prim.name in lowering.REDUCTIONS and 0 in e.params["axes"] for e in node.eqns)
            if node.kind == "cluster" and n >= CHUNKED_MIN and chunkable(node, plan):
                node.chunked = True
            elif n >= PARALLEL_MIN and not reduces_outer and node.shape[0] >= 4:
                node.parallel = True


def chunkable(node, plan) -> bool:
    """A large cluster dominated by transcendental functions without a vecmath.py lowering, all
    with NumPy ufunc impls, reading only stored arrays (no views) and chunkable along its first axis."""
    from .chunked import supported

    n_trans = sum(e.prim.name in TRANSCENDENTAL and not lowering.vector_math(e) for e in node.eqns)
    if n_trans == 0 or not all(supported(e) for e in node.eqns):
        return False
    if len(node.shape) == 0 or node.shape[0] < 8 or _size(node.shape[1:]) > CHUNK_ROW_MAX:
        return False
    for e in node.eqns:
        for v in e.inputs:
            inf = plan.info.get(id(v)) if not isinstance(v, Literal) else None
            if inf is not None and inf.form == "view":
                return False
    dtypes = {np.dtype(e.outvars[0].aval.dtype) for e in node.eqns}
    if not dtypes <= {np.dtype(np.float32), np.dtype(np.float64)}:
        return False
    return n_trans * 4 >= len(node.eqns) or n_trans >= 2
