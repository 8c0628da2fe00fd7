"""User-defined derivative rules: ``custom_jvp`` and ``custom_vjp``.

A call dispatches on the innermost transformation among its arguments: jvp runs the JVP rule,
reverse mode records one tape node whose backward pass is the rule, and vmap batches the
function *and its rules* (each vmapped) and calls the batched custom function on the values
one level down, so the transformations below still see the rule: ``grad(vmap(f))`` uses it as
``grad(f)`` does. Under the others (staging, no transformation) the function runs as written.
"""
from __future__ import annotations

import functools

from ..core.trace import Tracer
from ..errors import FuncgradTypeError, FuncgradValueError, at_user_line
from ..tree_util import tree_flatten
from ._args import as_input, zeros_like_leaf
from .batching import BatchTrace, BatchTracer, moveaxis_value, vmap
from .jvp import JVPTrace, JVPTracer
from .reverse import CustomRule, Node, ReverseTrace, RevTracer, vjp


def _defined_at(fn):
    """``"file:line"`` where a user's rule is defined (its errors surface in the backward pass)."""
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None


def _top_trace(leaves):
    top = None
    for x in leaves:
        if isinstance(x, Tracer) and (top is None or x._trace.level > top.level):
            top = x._trace
    return top


def _lower(x, trace, attr="primal"):
    if isinstance(x, Tracer) and x._trace is trace:
        return getattr(x, attr)
    return x


class custom_jvp:
    """A function with a hand-written JVP rule (JAX semantics).

    >>> @custom_jvp
    ... def f(x):
    ...     return fnp.log1p(fnp.exp(x))
    >>> @f.defjvp
    ... def f_jvp(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return f(x), t * fg.scipy.special.expit(x)

    Reverse mode uses the transpose of the rule, so ``grad`` sees it too.
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.jvp_rule = None
        self.nondiff_argnums = tuple(nondiff_argnums)

    def defjvp(self, jvp_rule):
        self.jvp_rule = jvp_rule
        return jvp_rule

    def defjvps(self, *tangent_fns):
        """One function per argument: ``fn(t, ans, *primals) -> tangent contribution``."""
        def rule(primals, tangents):
            ans = self.fun(*primals)
            out = None
            for fn, t in zip(tangent_fns, tangents):
                if fn is None:
                    continue
                c = fn(t, ans, *primals)
                out = c if out is None else out + c
            return ans, out

        self.jvp_rule = rule

    def __call__(self, *args):
        if self.jvp_rule is None:
            raise FuncgradTypeError(f"custom_jvp function {self.__name__} has no rule: call .defjvp first")
        if self.nondiff_argnums:
            static = {i: args[i] for i in self.nondiff_argnums}
            dyn_idx = [i for i in range(len(args)) if i not in static]
            return _custom_jvp_call(self, [args[i] for i in dyn_idx], static, dyn_idx)
        return _custom_jvp_call(self, list(args), {}, list(range(len(args))))


def _merge(dyn, static, dyn_idx):
    full = [None] * (len(dyn) + len(static))
    for i, a in zip(dyn_idx, dyn):
        full[i] = a
    for i, a in static.items():
        full[i] = a
    return full


def _custom_jvp_call(cf, dyn, static, dyn_idx):
    leaves, _ = tree_flatten(dyn)
    top = _top_trace(leaves)

    def call_rule(primals, tangents):
        if static:
            args_static = [static[i] for i in sorted(static)]
            return cf.jvp_rule(*args_static, tuple(primals), tuple(tangents))
        return cf.jvp_rule(tuple(primals), tuple(tangents))

    if isinstance(top, BatchTrace):
        return _batched_jvp_call(cf, top, dyn, static, dyn_idx, call_rule)
    if isinstance(top, JVPTrace):
        primals = [_lower_tree(a, top) for a in dyn]
        tangents = [_tangent_tree(a, top) for a in dyn]
        out, tout = call_rule(primals, tangents)
        o_leaves, o_def = tree_flatten(out)
        t_leaves, t_def = tree_flatten(tout)
        if o_def != t_def:
            raise FuncgradValueError(f"custom_jvp rule of {cf.__name__}: primal output {o_def} and "
                                     f"tangent output {t_def} differ in structure")
        return o_def.unflatten(JVPTracer(top, o, t) for o, t in zip(o_leaves, t_leaves))
    if isinstance(top, ReverseTrace):
        primals = [_lower_tree(a, top) for a in dyn]
        out = _custom_jvp_call(cf, primals, static, dyn_idx)  # the levels below see the rule too

        def lin(*ts):
            return call_rule(primals, ts)[1]

        def rule_vjp(g, ans, in_primals, needs):
            zeros = [_zeros_tree(p) for p in primals]
            _, f_vjp = vjp(lin, *zeros)
            g = [zeros_like_leaf(o) if c is None else c for c, o in zip(g, o_leaves)]  # unused outputs
            cts = f_vjp(o_def.unflatten(g))
            return tree_flatten(list(cts))[0]

        o_leaves, o_def = tree_flatten(out)
        return _record(top, dyn, o_leaves, o_def, rule_vjp, cf.__name__)
    return cf.fun(*_merge(dyn, static, dyn_idx))


def _lower_tree(a, trace):
    leaves, d = tree_flatten(a)
    return d.unflatten([_lower(x, trace) for x in leaves])


def _tangent_tree(a, trace):
    leaves, d = tree_flatten(a)
    out = []
    for x in leaves:
        if isinstance(x, JVPTracer) and x._trace is trace:
            out.append(x.tangent if x.tangent is not None else zeros_like_leaf(x.primal))
        else:
            out.append(zeros_like_leaf(x))
    return d.unflatten(out)


def _zeros_tree(a):
    leaves, d = tree_flatten(a)
    return d.unflatten([zeros_like_leaf(as_input(x)) for x in leaves])


def _record(trace, dyn, o_leaves, o_def, rule_vjp, name):
    """Put one custom node on the reverse-mode tape."""
    in_leaves, _ = tree_flatten(dyn)
    parents = [x.key if isinstance(x, RevTracer) and x._trace is trace else None for x in in_leaves]
    if all(p is None for p in parents):
        return o_def.unflatten(o_leaves)
    rule = CustomRule(rule_vjp, name)
    node = Node(rule, {}, parents, [_lower(x, trace) for x in in_leaves], o_leaves, len(o_leaves))
    trace.main.data.append(node)
    return o_def.unflatten(RevTracer(trace, o, (node, i)) for i, o in enumerate(o_leaves))


class custom_vjp:
    """A function with a hand-written VJP (JAX semantics): ``f.defvjp(fwd, bwd)`` where
    ``fwd(*args) -> (out, residuals)`` and ``bwd(residuals, g) -> tuple of cotangents``.

    >>> @custom_vjp
    ... def clip_grad(x):
    ...     return x
    >>> clip_grad.defvjp(lambda x: (x, None), lambda res, g: (fnp.clip(g, -1, 1),))
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd = None
        self.bwd = None
        self.nondiff_argnums = tuple(nondiff_argnums)

    def defvjp(self, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        if self.fwd is None:
            raise FuncgradTypeError(f"custom_vjp function {self.__name__} has no rule: call .defvjp first")
        static = {i: args[i] for i in self.nondiff_argnums}
        dyn_idx = [i for i in range(len(args)) if i not in static]
        dyn = [args[i] for i in dyn_idx]
        leaves, _ = tree_flatten(dyn)
        top = _top_trace(leaves)
        if isinstance(top, BatchTrace):
            return _batched_vjp_call(self, top, dyn, static, dyn_idx)
        if not isinstance(top, ReverseTrace):
            return self.fun(*args)
        primals = [_lower_tree(a, top) for a in dyn]
        res = self.fwd(*_merge(primals, static, dyn_idx))
        if not (isinstance(res, tuple) and len(res) == 2):
            raise FuncgradTypeError(at_user_line(
                f"custom_vjp fwd of {self.__name__} must return a pair (output, residuals), got "
                + (f"a tuple of length {len(res)}" if isinstance(res, tuple) else f"a {type(res).__name__}")
                + "; write `return out, (values the bwd rule needs)`"))
        out, residuals = res
        o_leaves, o_def = tree_flatten(out)
        static_args = [static[i] for i in sorted(static)]

        def rule_vjp(g, ans, in_primals, needs):
            g = [zeros_like_leaf(o) if c is None else c for c, o in zip(g, o_leaves)]
            return _flat_cotangents(self, self.bwd(*static_args, residuals, o_def.unflatten(g)), primals)

        return _record(top, dyn, o_leaves, o_def, rule_vjp, self.__name__)


def _flat_cotangents(cf, cts, primals):
    """The cotangents ``cf.bwd`` returned, checked against the differentiable arguments
    ``primals``, as one list of leaves (None, for an argument or a leaf: no gradient)."""
    fname = cf.__name__
    if not isinstance(cts, (tuple, list)) or len(cts) != len(primals):
        raise FuncgradValueError(at_user_line(
            f"custom_vjp bwd of {fname} must return a tuple with one cotangent per "
            f"differentiable argument ({len(primals)}), got {type(cts).__name__}"
            + (f" of length {len(cts)}" if isinstance(cts, (tuple, list)) else "")
            + "; return (ct_x, ct_y, ...) in argument order, None for an argument without "
            "a gradient", _defined_at(cf.bwd)))
    flat = []
    for c, p in zip(cts, primals):
        c_leaves, c_def = tree_flatten(c, is_leaf=lambda x: x is None)  # None: a zero cotangent
        p_leaves, p_def = tree_flatten(p)
        if c is None:
            c_leaves = [None] * len(p_leaves)
        elif c_def != p_def:
            raise FuncgradValueError(at_user_line(
                f"custom_vjp bwd of {fname}: cotangent structure {c_def} does not match the "
                f"argument's {p_def}", _defined_at(cf.bwd)))
        flat.extend(c_leaves)
    return flat


# -- vmap of a custom function: the function and its rules batched, one level down --------------
def _unbatch(top, dyn, static, cf, kind):
    """The leaves of ``dyn`` one level below vmap's trace ``top``, each one's batch axis (None:
    the same for the whole batch), and their tree."""
    for i, a in static.items():
        if any(isinstance(x, BatchTracer) and x._trace is top for x in tree_flatten(a)[0]):
            raise FuncgradValueError(at_user_line(
                f"vmap of {kind} {cf.__name__}: argument {i} is in nondiff_argnums but varies over "
                "the batch; make it a differentiable argument (its cotangent may be None)"))
    leaves, tree = tree_flatten(dyn)
    vals, axes = [], []
    for x in leaves:
        batched = isinstance(x, BatchTracer) and x._trace is top
        vals.append(x.val if batched else x)
        axes.append(x.bdim if batched else None)
    return vals, tuple(axes), tree


def _batched(top, out, bdim):
    leaves, tree = tree_flatten(out)
    return tree.unflatten(BatchTracer(top, as_input(o), bdim) for o in leaves)


def _batched_jvp_call(cf, top, dyn, static, dyn_idx, call_rule):
    vals, axes, tree = _unbatch(top, dyn, static, cf, "custom_jvp")
    if all(a is None for a in axes):
        return _batched(top, _custom_jvp_call(cf, tree.unflatten(vals), static, dyn_idx), None)

    def fun(*leaves):
        return cf.fun(*_merge(tree.unflatten(leaves), static, dyn_idx))

    def one_rule(primals, tangents):
        return call_rule(tree.unflatten(primals), tree.unflatten(tangents))

    def rule(primals, tangents):
        return vmap(one_rule, in_axes=(axes, axes))(tuple(primals), tuple(tangents))

    fun.__name__ = one_rule.__name__ = cf.__name__
    batched = custom_jvp(vmap(fun, in_axes=axes))
    batched.defjvp(rule)
    return _batched(top, batched(*vals), 0)


def _batched_vjp_call(cf, top, dyn, static, dyn_idx):
    vals, axes, tree = _unbatch(top, dyn, static, cf, "custom_vjp")
    if all(a is None for a in axes):
        return _batched(top, cf(*_merge(tree.unflatten(vals), static, dyn_idx)), None)
    static_args = [static[i] for i in sorted(static)]

    def fun(*leaves):
        return cf.fun(*_merge(tree.unflatten(leaves), static, dyn_idx))

    def fwd(*leaves):
        return cf.fwd(*_merge(tree.unflatten(leaves), static, dyn_idx))

    def one_bwd(res, g):
        return cf.bwd(*static_args, res, g)

    def bwd(res, g):
        cts = _flat_cotangents(cf, vmap(one_bwd)(res, g), tree.unflatten(vals))
        return tuple(None if c is None else _at_axis(c, ax) for c, ax in zip(cts, axes))

    fun.__name__ = fwd.__name__ = one_bwd.__name__ = cf.__name__
    batched = custom_vjp(vmap(fun, in_axes=axes))
    batched.defvjp(vmap(fwd, in_axes=axes), bwd)
    return _batched(top, batched(*vals), 0)


def _at_axis(ct, axis):
    """A cotangent batched on axis 0, for an argument batched on ``axis``; summed over the
    batch for an argument the whole batch shared."""
    from ..primitives import reduce_sum

    return reduce_sum(ct, (0,)) if axis is None else moveaxis_value(ct, 0, axis)
