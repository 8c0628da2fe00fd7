"""``vmap``: add a batch axis to a function by running each primitive's batching rule."""
from __future__ import annotations

import numpy as np

from ..core.avals import ShapedArray
from ..core.trace import Trace, Tracer, bind, get_aval, innermost_concrete, new_main
from ..errors import FuncgradTypeError, FuncgradValueError, at_user_line
from ..primitives._rules import broadcast_batched, moveaxis_value
from ..tree_util import tree_flatten, tree_unflatten
from ._args import as_input, as_output, fun_name


class BatchTracer(Tracer):
    __slots__ = ("bdim", "val")

    def __init__(self, trace, val, bdim):
        self._trace = trace
        self.val = val
        self.bdim = bdim  # int, or None when the value is the same for the whole batch

    @property
    def aval(self):
        a = get_aval(self.val)
        if self.bdim is None:
            return a
        return ShapedArray(a.shape[: self.bdim] + a.shape[self.bdim + 1:], a.dtype)

    def concrete_value(self):
        if self.bdim is None:
            return innermost_concrete(self.val)
        return super().concrete_value()


class BatchTrace(Trace):
    __slots__ = ()

    def pure(self, val):
        return BatchTracer(self, val, None)

    lift = pure

    def process_primitive(self, prim, tracers, params):
        vals = [t.val for t in tracers]
        dims = [t.bdim for t in tracers]
        if all(d is None for d in dims):
            out = bind(prim, vals, params)
            if prim.multiple_results:
                return [BatchTracer(self, o, None) for o in out]
            return BatchTracer(self, out, None)
        if prim.batch is None:
            raise FuncgradTypeError(at_user_line(f"vmap: primitive '{prim.name}' has no batching rule"))
        out, out_dim = prim.batch(vals, dims, **params)
        if prim.multiple_results:
            return [BatchTracer(self, o, d) for o, d in zip(out, out_dim)]
        return BatchTracer(self, out, out_dim)


def _flat_axes(axes, tree, what):
    """Broadcast a pytree prefix of axes over ``tree``'s leaves."""
    leaves, _ = tree_flatten(tree)
    if axes is None or isinstance(axes, (int, np.integer)):
        return [axes] * len(leaves)
    out = []

    def walk(ax, sub):
        if ax is None or isinstance(ax, (int, np.integer)):
            out.extend([ax] * len(tree_flatten(sub)[0]))
            return
        sub_def = tree_flatten(sub)[1]
        if type(ax) is not type(sub) and not (isinstance(ax, (tuple, list)) and isinstance(sub, (tuple, list))):
            raise FuncgradValueError(f"vmap: {what} {ax!r} does not match the structure {sub_def}")
        if isinstance(ax, dict):
            if set(ax) != set(sub):
                raise FuncgradValueError(f"vmap: {what} keys {sorted(ax)} differ from {sorted(sub)}")
            for k in sorted(sub):
                walk(ax[k], sub[k])
            return
        if len(ax) != len(sub):
            raise FuncgradValueError(f"vmap: {what} has {len(ax)} entries for {len(sub)} values")
        for a, s in zip(ax, sub):
            walk(a, s)

    walk(axes, tree)
    return out


def vmap(fun, in_axes=0, out_axes=0):
    """Vectorise ``fun`` over axis ``in_axes`` of its arguments (``None``: not batched).

    >>> import funcgrad as fg, funcgrad.numpy as fnp
    >>> fg.vmap(lambda w, x: fnp.dot(w, x), in_axes=(None, 0))(np.ones(3), np.eye(3))
    array([1., 1., 1.])
    """
    if not (in_axes is None or isinstance(in_axes, (int, tuple, list, dict))):
        raise FuncgradTypeError(f"vmap: in_axes must be an int, None or a pytree of them, got {in_axes!r}")

    def batched(*args):
        if isinstance(in_axes, list):
            axes_tree = tuple(in_axes)
        else:
            axes_tree = in_axes
        if isinstance(axes_tree, tuple) and len(axes_tree) != len(args):
            raise FuncgradValueError(at_user_line(
                f"vmap({fun_name(fun)}): in_axes has {len(axes_tree)} entries but the function was "
                f"called with {len(args)} positional arguments"))
        leaves, in_def = tree_flatten(args)
        axes = _flat_axes(axes_tree, args, "in_axes")
        leaves = [as_input(x) for x in leaves]
        size = None
        norm_axes = []
        for x, ax in zip(leaves, axes):
            if ax is None:
                norm_axes.append(None)
                continue
            nd = len(get_aval(x).shape)
            if not -nd <= ax < nd:
                raise FuncgradValueError(at_user_line(
                    f"vmap({fun_name(fun)}): in_axes {ax} is out of range for an argument of shape "
                    f"{tuple(get_aval(x).shape)}"))
            ax = ax % nd
            n = get_aval(x).shape[ax]
            if size is None:
                size = n
            elif n != size:
                raise FuncgradValueError(at_user_line(
                    f"vmap({fun_name(fun)}): mapped axes have different sizes: {size} and {n}; every "
                    "batched argument must have the same size along its in_axes"))
            norm_axes.append(ax)
        if size is None:
            raise FuncgradValueError(f"vmap({fun_name(fun)}): no argument is batched (all in_axes are None)")
        with new_main(BatchTrace, size, name="vmap") as main:
            trace = main.trace
            ins = [x if ax is None else BatchTracer(trace, x, ax) for x, ax in zip(leaves, norm_axes)]
            out = fun(*tree_unflatten(in_def, ins))
            o_leaves, o_def = tree_flatten(out)
            o_axes = _flat_axes(out_axes, out, "out_axes")
            results = []
            for o, ax in zip(o_leaves, o_axes):
                if isinstance(o, BatchTracer) and o._trace is trace:
                    val, bd = o.val, o.bdim
                else:
                    val, bd = o, None
                if ax is None:
                    if bd is not None:
                        raise FuncgradValueError(at_user_line(
                            f"vmap({fun_name(fun)}): out_axes is None for an output that varies over the batch"))
                    results.append(val)
                    continue
                if bd is None:
                    val = as_input(val)
                    nd = len(get_aval(val).shape) + 1
                    results.append(broadcast_batched(val, size, ax % nd))
                else:
                    nd = len(get_aval(val).shape)
                    results.append(moveaxis_value(val, bd, ax % nd))
        return tree_unflatten(o_def, [as_output(r) for r in results])

    batched.__name__ = f"vmap({fun_name(fun)})"
    return batched
