"""Structured control flow that ``jit`` stages without unrolling and every
transform (``grad``, ``jvp``, ``vmap``) understands.

Each construct traces its Python functions once, over abstract values, into
sub-graphs carried by a single primitive (``cond``, ``while``, ``scan``): a
10,000-step ``fori_loop`` is one equation of the jitted graph. Carries,
operands, ``xs`` and ``ys`` may be pytrees. A carry must keep its pytree
structure, shapes and dtypes from one iteration to the next. Derivatives of a
loop or branch come from the primitives of its body, ``custom_jvp`` and
``custom_vjp`` rules included.

>>> import funcgrad as fg, funcgrad.numpy as fnp
>>> from funcgrad import lax
>>> lax.fori_loop(0, 10, lambda i, x: x + i, 0)
array(45)
"""
from __future__ import annotations

import operator

import numpy as np

from .core.graph import Graph, Var
from .core.trace import Tracer, get_aval
from .errors import FuncgradTypeError, FuncgradValueError, at_user_line
from .primitives import control_flow as cf
from .primitives import stop_gradient
from .primitives._graph_transforms import trace_closed
from .transforms._args import as_input, fun_name
from .tree_util import tree_flatten

__all__ = ["cond", "fori_loop", "scan", "stop_gradient", "switch", "while_loop"]


def _flat(tree):
    leaves, treedef = tree_flatten(tree)
    return [as_input(x) for x in leaves], treedef


def _avals_text(avals):
    return "(" + ", ".join(a.str_short() for a in avals) + ")"


def _trace(fun, in_avals):
    """Trace ``fun`` (flat leaves in, pytree out) into a closed graph.
    Returns ``(graph, consts, out_treedef)``."""
    out_tree = []

    def flat_fun(*args):
        leaves, treedef = _flat(fun(*args))
        out_tree.append(treedef)
        return leaves

    graph, consts = trace_closed(flat_fun, in_avals)
    return graph, consts, out_tree[0]


def _check_carry(op, what, in_tree, in_avals, out_tree, out_avals):
    if out_tree != in_tree:
        raise FuncgradTypeError(at_user_line(
            f"{op}: {what} must return a carry with the same pytree structure as the initial value: "
            f"got {out_tree}, expected {in_tree}"))
    bad = [f"leaf {i}: {a.str_short()} in, {b.str_short()} out"
           for i, (a, b) in enumerate(zip(in_avals, out_avals)) if a != b]
    if bad:
        raise FuncgradTypeError(at_user_line(
            f"{op}: {what} changed the shape or dtype of the carry ({'; '.join(bad)}). The carry must "
            "keep its shapes and dtypes across iterations: start from an initial value of the right "
            "dtype or cast inside the function (x.astype(...))"))


def _scalar_pred(p, op, what):
    p = as_input(p)
    aval = get_aval(p)
    if aval.shape != ():
        raise FuncgradTypeError(at_user_line(
            f"{op}: {what} must be a scalar, got {aval.str_short()}; for elementwise choice use "
            "fnp.where"))
    if aval.dtype.kind not in "biuf":
        raise FuncgradTypeError(at_user_line(f"{op}: {what} must be a bool or a number, got {aval.dtype}"))
    if aval.dtype.kind != "b":
        from . import numpy as fnp

        p = fnp.not_equal(p, 0)
    return p


# -- cond / switch ------------------------------------------------------------------------------
def cond(pred, true_fun, false_fun, *operands):
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``; both branches are traced
    and must return the same pytree of shapes and dtypes. Under ``vmap`` with a batched ``pred``
    both branches run and the result is selected per element.

    >>> lax.cond(3.0 > 0, lambda v: v * 2.0, lambda v: -v, 3.0)
    array(6.)
    """
    p = _scalar_pred(pred, "lax.cond", "the predicate")
    from .primitives import convert

    return _switch(convert(p, cf.INDEX_DTYPE), (false_fun, true_fun), operands, "lax.cond",
                   ("false_fun", "true_fun"))


def switch(index, branches, *operands):
    """``branches[index](*operands)``, with ``index`` clamped to ``[0, len(branches) - 1]``.

    >>> lax.switch(1, [fnp.sin, fnp.cos, fnp.tanh], 0.0)
    array(1.)
    """
    branches = tuple(branches)
    if not branches:
        raise FuncgradValueError(at_user_line("lax.switch: branches is empty"))
    idx = as_input(index)
    aval = get_aval(idx)
    if aval.shape != () or aval.dtype.kind not in "iub":
        raise FuncgradTypeError(at_user_line(
            f"lax.switch: the index must be an integer scalar, got {aval.str_short()}"))
    from . import numpy as fnp

    idx = fnp.clip(fnp.asarray(idx, cf.INDEX_DTYPE), 0, len(branches) - 1)
    if len(branches) == 1:
        return branches[0](*operands)
    return _switch(idx, branches, operands, "lax.switch", [f"branch {i}" for i in range(len(branches))])


def _switch(index, branches, operands, op, names):
    ops, in_tree = _flat(operands)
    avals = [get_aval(x) for x in ops]
    traced = [_trace(lambda *a, b=b: b(*in_tree.unflatten(a)), avals) for b in branches]
    g0, _, tree0 = traced[0]
    for i, (g, _, tree) in enumerate(traced[1:], 1):
        if tree != tree0 or g.out_avals != g0.out_avals:
            raise FuncgradTypeError(at_user_line(
                f"{op}: the branches must return the same pytree of shapes and dtypes; {names[i]} "
                f"({fun_name(branches[i])}) returned {tree} {_avals_text(g.out_avals)} but {names[0]} "
                f"({fun_name(branches[0])}) returned {tree0} {_avals_text(g0.out_avals)}"))
    consts = [c for _, cs, _ in traced for c in cs]
    joined, start = [], 0
    for g, cs, _ in traced:
        before = [Var(get_aval(c)) for c in consts[:start]]
        after = [Var(get_aval(c)) for c in consts[start + len(cs):]]
        n = len(cs)
        joined.append(Graph(g.constvars, g.consts, before + g.invars[:n] + after + g.invars[n:],
                            g.eqns, g.outvars))
        start += n
    outs = cf.cond_p.bind(index, *consts, *ops, branches=tuple(joined))
    return tree0.unflatten(outs)


# -- loops ------------------------------------------------------------------------------------------
def while_loop(cond_fun, body_fun, init_val):
    """``val = init_val; while cond_fun(val): val = body_fun(val)``, staged as one primitive.

    Differentiable in forward mode (``jvp``, ``jacfwd``); reverse mode needs a static trip
    count: use :func:`fori_loop` with Python int bounds or :func:`scan`.

    >>> lax.while_loop(lambda v: v < 100.0, lambda v: v * 2.0, 1.0)
    array(128.)
    """
    init, tree = _flat(init_val)
    avals = [get_aval(x) for x in init]

    def cond_flat(*c):
        return _scalar_pred(cond_fun(tree.unflatten(c)), "lax.while_loop", "cond_fun's result")

    cond_graph, cc, _ = _trace(cond_flat, avals)
    body_graph, bc, out_tree = _trace(lambda *c: body_fun(tree.unflatten(c)), avals)
    _check_carry("lax.while_loop", f"body_fun ({fun_name(body_fun)})", tree, avals, out_tree,
                 body_graph.out_avals)
    outs = cf.while_p.bind(*cc, *bc, *init, cond_graph=cond_graph, body_graph=body_graph,
                           cond_nconsts=len(cc), body_nconsts=len(bc))
    return tree.unflatten(outs)


def fori_loop(lower, upper, body_fun, init_val):
    """``val = init_val; for i in range(lower, upper): val = body_fun(i, val)``.

    With concrete bounds (Python or NumPy ints) this is a :func:`scan` of static length, so it
    is reverse-differentiable; with traced bounds it is a :func:`while_loop`. ``i`` has the
    bounds' dtype (int64 for Python ints).

    >>> lax.fori_loop(0, 5, lambda i, x: x * 2.0, 1.0)
    array(32.)
    """
    lo, hi = as_input(lower), as_input(upper)
    for b, name in ((lo, "lower"), (hi, "upper")):
        a = get_aval(b)
        if a.shape != () or a.dtype.kind not in "iu":
            raise FuncgradTypeError(at_user_line(
                f"lax.fori_loop: {name} must be an integer scalar, got {a.str_short()}"))
    dtype = np.result_type(get_aval(lo).dtype, get_aval(hi).dtype)

    def step(i, x):
        return i + np.asarray(1, dtype), body_fun(i, x)

    if not isinstance(lo, Tracer) and not isinstance(hi, Tracer):
        n = max(int(hi) - int(lo), 0)
        (_, out), _ = scan(lambda c, _: (step(*c), None), (np.asarray(lo, dtype), init_val), None, length=n)
        return out
    from . import numpy as fnp

    lo, hi = fnp.asarray(lo, dtype), fnp.asarray(hi, dtype)
    _, out = while_loop(lambda c: c[0] < hi, lambda c: step(*c), (lo, init_val))
    return out


def scan(f, init, xs, length=None, reverse=False):
    """Loop ``f(carry, x) -> (carry, y)`` over the leading axis of ``xs``; returns
    ``(final carry, ys)`` with the ``y`` stacked along a new leading axis.

    ``xs`` may be None (then ``length`` is required); ``reverse=True`` walks ``xs`` from the
    end (``ys`` keep the order of ``xs``).

    >>> lax.scan(lambda c, x: (c + x, c + x), 0.0, fnp.arange(4.0))
    (array(6.), array([0., 1., 3., 6.]))
    """
    init_l, init_tree = _flat(init)
    xs_l, xs_tree = _flat(xs)
    n = _scan_length(xs_l, length)
    carry_avals = [get_aval(x) for x in init_l]
    x_avals = [_row_aval(get_aval(x)) for x in xs_l]
    nc = len(init_l)
    y_tree = []

    def body(*args):
        out = f(init_tree.unflatten(args[:nc]), xs_tree.unflatten(args[nc:]))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise FuncgradTypeError(at_user_line(
                f"lax.scan: f ({fun_name(f)}) must return a pair (carry, y), got {type(out).__name__}"))
        c, c_tree = _flat(out[0])
        y, yt = _flat(out[1])
        y_tree.append((c_tree, yt))
        return c + y

    graph, consts, _ = _trace(body, carry_avals + x_avals)
    c_tree, yt = y_tree[0]
    _check_carry("lax.scan", f"f ({fun_name(f)})", init_tree, carry_avals, c_tree, graph.out_avals[:nc])
    outs = cf.scan_p.bind(*consts, *init_l, *xs_l, body=graph, num_consts=len(consts), num_carry=nc,
                          length=n, reverse=bool(reverse))
    return init_tree.unflatten(outs[:nc]), yt.unflatten(outs[nc:])


def _row_aval(a):
    from .core.avals import ShapedArray

    return ShapedArray(a.shape[1:], a.dtype)


def _scan_length(xs, length):
    sizes = []
    for x in xs:
        shape = get_aval(x).shape
        if not shape:
            raise FuncgradValueError(at_user_line(
                "lax.scan: every leaf of xs must have a leading axis to scan over; got a scalar"))
        sizes.append(shape[0])
    if length is not None:
        length = operator.index(length)
        if length < 0:
            raise FuncgradValueError(at_user_line(f"lax.scan: length must be >= 0, got {length}"))
    if sizes and (len(set(sizes)) > 1 or (length is not None and sizes[0] != length)):
        shown = sorted(set(sizes)) + ([] if length is None else [f"length={length}"])
        raise FuncgradValueError(at_user_line(
            f"lax.scan: the leaves of xs have different leading sizes ({', '.join(map(str, shown))}); "
            "all must equal the scan length"))
    if length is None:
        if not sizes:
            raise FuncgradValueError(at_user_line("lax.scan: xs has no arrays, so pass length="))
        length = sizes[0]
    return length
