"""Jacobians, Hessians and linearization built from jvp and vjp."""
from __future__ import annotations

import numpy as np

from ..core.staging import trace_to_graph
from ..core.interpreter import eval_graph
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


def _basis(leaves, k):
    """The k-th standard basis vector of the flattened leaves, as one array per leaf."""
    out = []
    offset = 0
    for x in leaves:
        shape = _shape(x)
        n = int(np.prod(shape, dtype=np.int64))
        e = np.zeros(n, dtype=dtype_of(x))
        if offset <= k < offset + n:
            e[k - offset] = 1
        out.append(e.reshape(shape))
        offset += n
    return out


def _assemble(rows, out_leaves, in_leaves, out_first):
    """Stack per-basis results into Jacobian blocks jac[out][in] of shape out.shape + in.shape."""
    fnp = _fnp()
    blocks = []
    if out_first:  # rows[k][j]: derivative of out leaf j along input basis k
        for j, o in enumerate(out_leaves):
            row = []
            offset = 0
            for x in in_leaves:
                n = int(np.prod(_shape(x), dtype=np.int64))
                cols = [fnp.reshape(rows[k][j], (-1,)) for k in range(offset, offset + n)]
                m = fnp.stack(cols, axis=-1) if cols else fnp.zeros((int(np.prod(_shape(o))), 0))
                row.append(fnp.reshape(m, _shape(o) + _shape(x)))
                offset += n
            blocks.append(row)
    else:  # rows[k][i]: cotangent of input leaf i for output basis k
        offset = 0
        for o in out_leaves:
            n = int(np.prod(_shape(o), dtype=np.int64))
            row = []
            for i, x in enumerate(in_leaves):
                rs = [fnp.reshape(rows[k][i], (-1,)) for k in range(offset, offset + n)]
                m = fnp.stack(rs, axis=0) if rs else fnp.zeros((0, int(np.prod(_shape(x)))))
                row.append(fnp.reshape(m, _shape(o) + _shape(x)))
            blocks.append(row)
            offset += n
    return blocks


def _jacobian(fun, argnums, mode):
    name = "jacfwd" if mode == "fwd" else "jacrev"

    def jac_fun(*args, **kwargs):
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

        if mode == "fwd":
            total = sum(int(np.prod(_shape(x), dtype=np.int64)) for x in in_leaves)
            rows = []
            out_leaves = None
            for k in range(total):
                out_leaves, tans = jvp_flat(flat_fun, in_leaves, _basis(in_leaves, k))
                rows.append(tans)
            if out_leaves is None:
                out_leaves = flat_fun(*in_leaves)
            blocks = _assemble(rows, out_leaves, in_leaves, out_first=True)
        else:
            out_leaves, backward_fn, _ = vjp_flat(lambda *ls: (flat_fun(*ls), None), in_leaves)
            total = sum(int(np.prod(_shape(o), dtype=np.int64)) for o in out_leaves)
            rows = [backward_fn(_basis(out_leaves, k)) for k in range(total)]
            blocks = _assemble(rows, out_leaves, in_leaves, out_first=False)
        o_def = out_def[-1]
        per_out = []
        for row in blocks:
            tree = in_def.unflatten([as_output(b) for b in row])
            per_out.append(tree[0] if single else tree)
        return o_def.unflatten(per_out)

    jac_fun.__name__ = f"{name}({fun_name(fun)})"
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
