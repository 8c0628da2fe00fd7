"""Forward mode: push tangents through each primitive's JVP rule."""
from __future__ import annotations

import numpy as np

from ..core.trace import Trace, Tracer, bind, get_aval, innermost_concrete, new_main
from ..errors import FuncgradTypeError, FuncgradValueError, at_user_line
from ..tree_util import tree_flatten
from ._args import as_input, as_output, dtype_of, zeros_like_leaf


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent")

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent  # None is a symbolic zero

    @property
    def aval(self):
        return get_aval(self.primal)

    @property
    def shape(self):
        return self.primal.shape

    @property
    def dtype(self):
        return self.primal.dtype

    def concrete_value(self):
        return innermost_concrete(self.primal)


class JVPTrace(Trace):
    __slots__ = ()

    def pure(self, val):
        return JVPTracer(self, val, None)

    lift = pure

    def process_primitive(self, prim, tracers, params):
        primals = [t.primal for t in tracers]
        tangents = [t.tangent for t in tracers]
        if not prim.differentiable or all(t is None for t in tangents):
            out = bind(prim, primals, params)
            if prim.multiple_results:
                return [JVPTracer(self, o, None) for o in out]
            return JVPTracer(self, out, None)
        out, tout = prim.jvp(primals, tangents, **params)
        if prim.multiple_results:
            return [JVPTracer(self, o, _float_tangent(o, t)) for o, t in zip(out, tout)]
        return JVPTracer(self, out, _float_tangent(out, tout))


def _float_tangent(o, t):
    if t is None or dtype_of(o).kind != "f":
        return None
    return t


def jvp_flat(fun, primals, tangents):
    """``fun`` on flat lists; returns (flat outputs, flat output tangents)."""
    with new_main(JVPTrace, name="jvp") as main:
        trace = main.trace
        ins = [JVPTracer(trace, p, t if dtype_of(p).kind == "f" else None) for p, t in zip(primals, tangents)]
        outs = fun(*ins)
        out_p, out_t = [], []
        for o in outs:
            if isinstance(o, JVPTracer) and o._trace is trace:
                out_p.append(o.primal)
                out_t.append(o.tangent if o.tangent is not None else zeros_like_leaf(o.primal))
            else:
                out_p.append(o)
                out_t.append(zeros_like_leaf(o))
    return out_p, out_t


def jvp(fun, primals, tangents, has_aux=False):
    """Forward-mode derivative: ``(fun(*primals), d fun(primals)[tangents])``.

    >>> import funcgrad as fg, funcgrad.numpy as fnp
    >>> fg.jvp(fnp.sin, (0.0,), (1.0,))
    (array(0.), array(1.))
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise FuncgradTypeError(at_user_line(
            f"jvp: primals and tangents must be tuples with one entry per argument, got "
            f"{type(primals).__name__} and {type(tangents).__name__}; for one argument write "
            "jvp(f, (x,), (t,))"))
    p_leaves, p_def = tree_flatten(tuple(primals))
    t_leaves, t_def = tree_flatten(tuple(tangents))
    if p_def != t_def:
        raise FuncgradValueError(at_user_line(
            f"jvp: primals {p_def} and tangents {t_def} have different structures; give one tangent "
            "per primal leaf, arranged the same way"))
    p_leaves = [as_input(p) for p in p_leaves]
    t_leaves = [as_input(t) for t in t_leaves]
    for p, t in zip(p_leaves, t_leaves):
        if np.shape(p) != np.shape(t):
            raise FuncgradValueError(at_user_line(
                f"jvp: tangent of shape {np.shape(t)} ({dtype_of(t)}) for a primal of shape "
                f"{np.shape(p)} ({dtype_of(p)}); each tangent must have its primal's shape"))
    # a tangent takes its primal's float dtype (float32 primals keep float32 tangents)
    t_leaves = [t.astype(dtype_of(p)) if dtype_of(p).kind == "f" and dtype_of(t) != dtype_of(p) else t
                for p, t in zip(p_leaves, t_leaves)]
    out_def = []

    def flat_fun(*leaves):
        args = p_def.unflatten(leaves)
        out = fun(*args)
        if has_aux:
            from .reverse import lower_aux

            out, aux = out
            out_def.append(lower_aux(aux, leaves[0]._trace if leaves else None))
        leaves_out, d = tree_flatten(out)
        out_def.insert(0, d)
        return leaves_out

    out_p, out_t = jvp_flat(flat_fun, p_leaves, t_leaves)
    d = out_def[0]
    res = (d.unflatten([as_output(o) for o in out_p]), d.unflatten([as_output(t) for t in out_t]))
    if has_aux:
        return res + (out_def[1],)
    return res
