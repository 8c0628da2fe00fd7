"""The CUDA backend's lowering table: what each primitive becomes on the device, keyed by the
``Primitive``.

The graph is partitioned by the shared fusion stage (``funcgrad/backends/fusion.py``) under
``RULES``: elementwise primitives with a device lowering (``scalar.device_expr``) join
clusters, views and reductions are planned from their structure, ``dot_general`` is a node.
What is left to the glue is run by the handler its entry names: ``dot`` (a tiled matmul
kernel), ``reshape`` (an alias of the operand's buffer), ``concatenate`` and ``pad``
(piecewise kernels) or ``host`` (its NumPy ``impl`` on host copies). A primitive without an
entry is an error naming it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.primitive import Kind, Primitive
from ...primitives import control_flow as cf
from ...primitives import conv, debug, linalg, reductions, structural
from ...primitives import elementwise as ew
from .. import fusion
from . import scalar


@dataclass(frozen=True)
class Rule:
    kind: str  # "elem", "view", "reshape", "reduce", "dot", "glue"
    glue: str = "host"  # the handler when the equation is left to the glue


def _elementwise() -> list:
    return [p for p in vars(ew).values() if isinstance(p, Primitive) and p.kind is Kind.ELEMENTWISE
            and p is not ew.stop_gradient_p]


TABLE: dict = {
    **{p: Rule("elem") for p in _elementwise()},
    ew.stop_gradient_p: Rule("view"), structural.broadcast_p: Rule("view"), structural.transpose_p: Rule("view"),
    structural.flip_p: Rule("view"), structural.getitem_p: Rule("view"),
    structural.reshape_p: Rule("reshape", glue="reshape"),
    **{p: Rule("reduce") for p in fusion.REDUCTIONS},
    linalg.dot_general_p: Rule("dot", glue="dot"),
    structural.concatenate_p: Rule("glue", glue="concatenate"), structural.pad_p: Rule("glue", glue="pad"),
    **{p: Rule("glue") for p in (
        reductions.argmax_p, reductions.argmin_p, reductions.cumsum_p, reductions.cumprod_p, structural.argsort_p,
        structural.index_add_p, structural.index_set_p, linalg.inv_p, linalg.solve_p, linalg.det_p,
        linalg.slogdet_p, linalg.cholesky_p, linalg.eigh_p, linalg.svd_p, linalg.qr_p,
        conv.conv2d_p, conv.conv2d_input_grad_p, conv.conv2d_kernel_grad_p,
        cf.scan_p, cf.while_p, cf.cond_p, debug.debug_print_p, debug.debug_cotangent_p)},
}


_OPAQUE = Rule("glue")


def rule(prim) -> Rule:
    """The table's entry for ``prim``."""
    return fusion.lookup(TABLE, prim, "numba_cuda", _OPAQUE)


class CudaRules(fusion.Rules):
    def classify(self, eqn, mode=None) -> str:
        r = rule(eqn.prim)
        if fusion.stays_glue(eqn, r.kind, scalar.SUPPORTED_DTYPES):
            return "glue"
        structure = fusion.structural_kind(eqn)
        if structure is not None or r.kind in ("view", "reshape", "reduce"):
            return structure or "glue"
        if r.kind == "dot":
            return "dot" if {np.dtype(v.aval.dtype).kind for v in eqn.inputs} <= {"f"} else "glue"
        return "elem" if scalar.lowerable(eqn) else "glue"


RULES = CudaRules()
