"""The CPU backend's lowering table: what each primitive becomes, keyed by the ``Primitive``.

Every funcgrad primitive has one entry (``TABLE``); one without an entry is an error naming it
(``rule``), so a new primitive is added here once. A primitive defined outside funcgrad
(``kind=Kind.OPAQUE``) runs through its NumPy ``impl`` in the glue. An entry's kind says how fusion plans an
equation and which stage writes it:

- ``elem``: one element at a time inside a cluster's loop nest; its ``Element`` (``lowering.py``)
  writes the element's text;
- ``view``, ``reshape``, ``reduce``: planned by fusion from their structure (``fusion.py``);
- ``dot``: ``dot_general``, a loop nest up to ``DOT_INLINE_MAX`` multiply-adds, else BLAS in
  the glue;
- ``loop``: ``scan``, ``while``, ``cond`` compiled as loops calling their bodies (``loops.py``);
- ``index``: scatters, and gathers with scalar index operands (``indexing.py``);
- ``glue``: run through the primitive's NumPy ``impl`` between compiled segments.

``RULES`` is this table as fusion's ``Rules``: it classifies equations, plans loop and index
nodes, marks large clusters parallel or chunked, and gives the emitter the writers of those
nodes. Imports run one way: fusion, the writers of each kind, then this table.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.graph import Literal
from ...primitives import control_flow as cf
from ...primitives import conv, debug, linalg, reductions, structural
from ...primitives import elementwise as ew
from .. import fusion
from . import chunked, indexing, loops, lowering
from .lowering import Element

DOT_INLINE_MAX = 1 << 14  # multiply-adds up to which a dot_general is a loop nest, not a BLAS call
PARALLEL_MIN = 1 << 20  # elements from which a cluster's outer loop runs on several threads
PARALLEL_REDUCE_MIN = 1 << 17  # elements from which a reduction to scalars runs in chunks on threads
CHUNKED_MIN = 1 << 15  # elements from which a transcendental-heavy cluster uses NumPy's SIMD ufuncs
CHUNK_ROW_MAX = 1 << 16  # largest row (elements past the first axis) a chunked cluster handles


@dataclass(frozen=True)
class Rule:
    kind: str  # "elem", "view", "reshape", "reduce", "dot", "loop", "index", "glue"
    element: Element | None = None  # elem: how one element is written


_PLAIN = Rule("elem", Element())
_TRANS = Rule("elem", Element(transcendental=True))


def _vec(name, bounded=False):
    return Rule("elem", Element(vecmath=name, bounded=bounded, transcendental=True))


def _special(name, typed=None):
    return Rule("elem", Element(special=name, typed=typed))


TABLE: dict = {
    # arithmetic, comparisons, bits: the primitive's template
    **{p: Rule("elem", Element(typed="float")) for p in (
        ew.add_p, ew.sub_p, ew.mul_p, ew.div_p, ew.neg_p, ew.select_p)},
    **{p: Rule("elem", Element(typed="bool")) for p in (
        ew.eq_p, ew.ne_p, ew.lt_p, ew.le_p, ew.gt_p, ew.ge_p, ew.and_p, ew.or_p, ew.xor_p, ew.logical_not_p,
        ew.isfinite_p, ew.isnan_p, ew.isinf_p)},
    **{p: _PLAIN for p in (
        ew.abs_p, ew.square_p, ew.sqrt_p, ew.sign_p,
        ew.floor_p, ew.ceil_p, ew.round_p, ew.trunc_p, ew.fmod_p, ew.rem_p, ew.floordiv_p, ew.nextafter_p,
        ew.shift_left_p, ew.shift_right_p,
        ew.digamma_p, ew.trigamma_p, ew.lgamma_p, ew.polygamma_p)},
    ew.max_p: _special("maximum"), ew.min_p: _special("minimum"), ew.integer_pow_p: _special("ipow"),
    ew.not_p: _special("not"), ew.convert_p: _special("convert", typed="cast"),
    ew.threefry2x32_p: _special("threefry", typed="cast"),
    # transcendental: vecmath.py where it has the function, else the template
    ew.exp_p: _vec("exp"), ew.log_p: _vec("log"), ew.tanh_p: _vec("tanh"), ew.logistic_p: _vec("logistic"),
    ew.sin_p: _vec("sin", bounded=True), ew.cos_p: _vec("cos", bounded=True),
    **{p: _TRANS for p in (
        ew.exp2_p, ew.expm1_p, ew.log2_p, ew.log10_p, ew.log1p_p, ew.tan_p, ew.asin_p, ew.acos_p, ew.atan_p,
        ew.sinh_p, ew.cosh_p, ew.asinh_p, ew.acosh_p, ew.atanh_p, ew.pow_p, ew.atan2_p, ew.erf_p, ew.cbrt_p)},
    # structure
    ew.stop_gradient_p: Rule("view"), structural.broadcast_p: Rule("view"), structural.transpose_p: Rule("view"),
    structural.flip_p: Rule("view"), structural.reshape_p: Rule("reshape"),
    **{p: Rule("reduce") for p in fusion.REDUCTIONS},
    linalg.dot_general_p: Rule("dot"),
    structural.getitem_p: Rule("index"), structural.index_add_p: Rule("index"),
    structural.index_set_p: Rule("index"),
    cf.scan_p: Rule("loop"), cf.while_p: Rule("loop"), cf.cond_p: Rule("loop"),
    # NumPy in the glue
    **{p: Rule("glue") for p in (
        reductions.argmax_p, reductions.argmin_p, reductions.cumsum_p, reductions.cumprod_p,
        structural.argsort_p, structural.concatenate_p, structural.pad_p,
        linalg.inv_p, linalg.solve_p, linalg.det_p, linalg.slogdet_p, linalg.cholesky_p,
        linalg.eigh_p, linalg.svd_p, linalg.qr_p,
        conv.conv2d_p, conv.conv2d_input_grad_p, conv.conv2d_kernel_grad_p,
        debug.debug_print_p, debug.debug_cotangent_p)},
}


_OPAQUE = Rule("glue")


def rule(prim) -> Rule:
    """The table's entry for ``prim``."""
    return fusion.lookup(TABLE, prim, "numba_cpu", _OPAQUE)


def element(eqn) -> Element:
    """How one element of the elementwise ``eqn`` is written."""
    return rule(eqn.prim).element


def dot_macs(eqn) -> int:
    """Multiply-adds of a ``dot_general``."""
    a, b, _ = linalg.parse_spec(eqn.params["spec"])
    sizes = {}
    for letters, v in ((a, eqn.inputs[0]), (b, eqn.inputs[1])):
        sizes.update(zip(letters, v.aval.shape))
    return fusion._size(sizes.values())


def reduces_everything(node) -> bool:
    """Whether every reduction of a cluster reduces all its axes (and there is one)."""
    reductions = [e for e in node.eqns if e.prim in fusion.REDUCTIONS]
    nd = len(node.shape)
    return bool(reductions) and all({a % nd for a in e.params["axes"]} == set(range(nd)) for e in reductions)


class CpuRules(fusion.Rules):
    """``TABLE`` as fusion's rules, and the writers of the nodes the emitter does not write."""

    def classify(self, eqn, mode=None) -> str:
        """'elem', 'reduce', 'view', 'reshape', 'dot', 'loop', 'index' (lowered) or 'glue'.

        ``mode``: None (no loop or index nodes), "top" (control flow as loop nodes; scatters,
        and gathers with scalar index operands, as index nodes) or "body" (a loop body: the
        same, and every float contraction lowered)."""
        r = rule(eqn.prim)
        if r.kind == "loop":
            return "loop" if mode is not None and loops.compilable(eqn, self) else "glue"
        prim = eqn.prim
        if fusion.stays_glue(eqn, r.kind, lowering.SUPPORTED_DTYPES):
            return "glue"
        structure = fusion.structural_kind(eqn)
        if r.kind == "index":
            if structure is not None:
                return structure
            if mode is None or (prim is structural.getitem_p and len(eqn.inputs) == 1):
                return "glue"
            return "index" if indexing.lowerable(eqn) else "glue"
        if structure is not None:
            return structure
        if r.kind == "dot":
            kinds = {np.dtype(v.aval.dtype).kind for v in eqn.inputs}
            return "dot" if kinds <= {"f"} and (mode == "body" or dot_macs(eqn) <= DOT_INLINE_MAX) else "glue"
        return "elem" if r.element.lowerable(eqn) else "glue"

    def plan_node(self, planner, eqn, kind):
        (loops if kind == "loop" else indexing).plan_node(planner, eqn)

    def finish(self, plan, mode):
        """Mark large clusters to run on threads or chunked through NumPy (not in loop bodies)."""
        if mode == "body":
            return
        for kind, seg in plan.steps:
            if kind != "segment":
                continue
            for node in seg.nodes:
                if node.kind not in ("cluster", "copy") or len(node.shape) == 0:
                    continue
                n = fusion._size(node.shape)
                reduces_outer = any(e.prim in fusion.REDUCTIONS and 0 in e.params["axes"] for e in node.eqns)
                if node.kind == "cluster" and n >= CHUNKED_MIN and chunkable(node, plan):
                    node.chunked = True
                elif n >= PARALLEL_MIN and not reduces_outer and node.shape[0] >= 4:
                    node.parallel = True
                elif n >= PARALLEL_REDUCE_MIN and node.kind == "cluster" and reduces_everything(node):
                    node.parallel_reduce = True

    # -- for the emitter -----------------------------------------------------------------------
    element = staticmethod(element)
    dot_macs = staticmethod(dot_macs)

    def emit_node(self, em, grp, node):
        """Write a loop or index node."""
        (loops if node.kind == "loop" else indexing).emit(em, grp, node)

    def body_dot(self, em, grp, node) -> bool:
        """A loop body's large matrix product as a BLAS call (False: the emitter's loop nest)."""
        return loops.blas_dot(em, grp, node, dot_macs(node.eqns[0]))

    def make_plan(self, graph, mode=None, extra_splats=None):
        return fusion.make_plan(graph, self, mode, extra_splats)


RULES = CpuRules()


def make_plan(graph, mode=None, extra_splats=None):
    """``fusion.make_plan`` with this table (``mode`` as for ``CpuRules.classify``)."""
    return fusion.make_plan(graph, RULES, mode, extra_splats)


def chunkable(node, plan) -> bool:
    """A large cluster dominated by transcendental functions without a vecmath.py lowering, all
    with NumPy ufunc impls, reading only stored arrays (no views) and chunkable along its first axis."""
    n_trans = sum(_transcendental(e) and not element(e).vector_math(e) for e in node.eqns)
    if n_trans == 0 or not all(chunked.supported(e) for e in node.eqns):
        return False
    if len(node.shape) == 0 or node.shape[0] < 8 or fusion._size(node.shape[1:]) > CHUNK_ROW_MAX:
        return False
    for e in node.eqns:
        for v in e.inputs:
            inf = None if isinstance(v, Literal) else plan.info.get(id(v))
            if inf is not None and inf.form == "view":
                return False
    dtypes = {np.dtype(e.outvars[0].aval.dtype) for e in node.eqns}
    if not dtypes <= {np.dtype(np.float32), np.dtype(np.float64)}:
        return False
    return n_trans * 4 >= len(node.eqns) or n_trans >= 2


def _transcendental(eqn) -> bool:
    r = rule(eqn.prim)
    return r.element is not None and r.element.transcendental
