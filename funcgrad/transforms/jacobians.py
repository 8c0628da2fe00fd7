"""Jacobians, Hessians and linearization built from jvp and vjp."""
from __future__ import annotations

import numpy as np

from ..core.interpreter import eval_graph
from ..core.staging import trace_to_graph
from ..core.trace import get_aval
from ..tree_util import tree_flatten
from ._args import as_input, as_output, check_float_args, dtype_of, fun_name, normalize_argnums
from .jvp import jvp_flat
from .reverse import vjp_flat


def _fnp():
    from .. import numpy as fnp

    return fnp


def _partial(fun, args, kwargs, nums):
    def partial_fun(*dyn_args):
        full = list(args)
        for i, a in zip(nums, dyn_args):
            full[i] = a
        return fun(*full, **kwargs)

    return partial_fun


def _shape(x):
    return tuple(get_aval(x).shape)


def _size(x):
    return int(np.prod(_shape(x), dtype=np.int64))


def _stacked_basis(leaves, dtype_leaves=None):
    """The standard basis of the flattened leaves, stacked: one (total, *leaf.shape) array per leaf."""
    total = sum(_size(x) for x in leaves)
    eye = np.eye(total)
    out, offset = [], 0
    for x in leaves:
        n = _size(x)
        out.append(eye[:, offset:offset + n].reshape((total,) + _shape(x)).astype(dtype_of(x)))
        offset += n
    return out


def _jacobian(fun, argnums, mode):
    name = "jacfwd" if mode == "fwd" else "jacrev"

    def jac_fun(*args, **kwargs):
        from .batching import vmap

        fnp = _fnp()
        single, nums = normalize_argnums(argnums, len(args), fun, name)
        check_float_args(fun, args, nums, name)
        dyn = tuple(args[i] for i in nums)
        in_leaves, in_def = tree_flatten(dyn)
        in_leaves = [as_input(x) for x in in_leaves]
        partial_fun = _partial(fun, args, kwargs, nums)
        out_def = []

        def flat_fun(*leaves):
            o_leaves, d = tree_flatten(partial_fun(*in_def.unflatten(leaves)))
            out_def.append(d)
            return o_leaves

        blocks = []
        if mode == "fwd":
            out_leaves = flat_fun(*in_leaves)
            tans = vmap(lambda *ts: jvp_flat(flat_fun, in_leaves, list(ts))[1])(*_stacked_basis(in_leaves))
            for o, t in zip(out_leaves, tans):  # t: (n_in, *o.shape)
                cols = fnp.transpose(fnp.reshape(t, (t.shape[0], _size(o))))
                row, offset = [], 0
                for x in in_leaves:
                    n = _size(x)
                    row.append(fnp.reshape(cols[:, offset:offset + n], _shape(o) + _shape(x)))
                    offset += n
                blocks.append(row)
        else:
            out_leaves, backward_fn, _ = vjp_flat(lambda *ls: (flat_fun(*ls), None), in_leaves)
            cts = vmap(lambda *cs: backward_fn(list(cs)))(*_stacked_basis(out_leaves))
            offset = 0
            for o in out_leaves:
                n = _size(o)
                blocks.append([fnp.reshape(c[offset:offset + n], _shape(o) + _shape(x))
                               for c, x in zip(cts, in_leaves)])
                offset += n
        o_def = out_def[-1]
        per_out = []
        for row in blocks:
            tree = in_def.unflatten([as_output(b) for b in row])
            per_out.append(tree[0] if single else tree)
        return o_def.unflatten(per_out)

    jac_fun.__name__ = f"{name}({fun_name(fun)})"
    jac_fun.__wrapped__ = fun
    return jac_fun


def jacfwd(fun, argnums=0):
    """Jacobian by forward mode: shape ``out.shape + in.shape``.

    >>> import funcgrad as fg, funcgrad.numpy as fnp
    >>> fg.jacfwd(lambda x: x ** 2)(np.array([1.0, 2.0]))
    array([[2., 0.],
           [0., 4.]])
    """
    return _jacobian(fun, argnums, "fwd")


def jacrev(fun, argnums=0):
    """Jacobian by reverse mode: shape ``out.shape + in.shape``."""
    return _jacobian(fun, argnums, "rev")


jacobian = jacrev


def hessian(fun, argnums=0):
    """Matrix of second derivatives, ``jacfwd(jacrev(fun))``."""
    return jacfwd(jacrev(fun, argnums), argnums)


def linearize(fun, *primals):
    """``(fun(*primals), jvp_fn)``: the JVP is traced once into a graph, with
    everything that depends only on the primals computed up front.

    >>> import funcgrad as fg, funcgrad.numpy as fnp
    >>> y, f_jvp = fg.linearize(fnp.sin, 0.0)
    >>> f_jvp(2.0)
    array(2.)
    """
    p_leaves, p_def = tree_flatten(tuple(primals))
    p_leaves = [as_input(p) for p in p_leaves]
    captured = {}

    def flat_fun(*leaves):
        out = fun(*p_def.unflatten(leaves))
        o_leaves, d = tree_flatten(out)
        captured["def"] = d
        return o_leaves

    def tangent_fun(*t_leaves):
        out_p, out_t = jvp_flat(flat_fun, p_leaves, list(t_leaves))
        captured["out"] = out_p
        return out_t

    graph = trace_to_graph(tangent_fun, [get_aval(p) for p in p_leaves], source_info=False)
    o_def = captured["def"]
    out = o_def.unflatten([as_output(o) for o in captured["out"]])

    def jvp_fn(*tangents):
        t_leaves, t_def = tree_flatten(tuple(tangents))
        if t_def != p_def:
            from ..errors import FuncgradValueError

            raise FuncgradValueError(f"linearize: tangents have structure {t_def}, primals {p_def}")
        res = eval_graph(graph, graph.consts, [as_input(t) for t in t_leaves])
        return o_def.unflatten([as_output(r) for r in res])

    return out, jvp_fn
