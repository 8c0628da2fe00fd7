"""User-defined derivative rules: ``custom_jvp`` and ``custom_vjp`` as primitives.

Called under any transformation, a custom function binds ``custom_jvp_call`` or
``custom_vjp_call``: its primal function as a closed graph plus the user's rules, which the
primitives' own rules call under whatever transformations are active. No composition loses
the rule:

- ``custom_jvp_call[fun, rule]``: forward mode calls the rule; reverse mode transposes it (the
  VJP of its tangent part at zero tangents); vmap batches the function graph, vmaps the rule,
  and binds again, so the transformations below still see it.
- ``custom_vjp_call[fun, fwd, bwd]``: reverse mode runs ``fwd`` and keeps its residuals for
  ``bwd``; forward mode transposes ``bwd`` (it is linear in the output cotangents), so ``jvp``,
  ``jacfwd`` and ``hessian`` see the rule as well; vmap batches all three.
- Inside ``jit`` the equation is staged with its rules, so derivatives of a staged graph (scan
  and cond bodies, the ``call`` of a jitted function) keep them; compilers inline ``fun``
  (:mod:`funcgrad.core.inline`).

Without any transformation the function runs as written. Operands are ``[*closure,
*leaves]``: traced values of outer transformations that the function closes over come first
(differentiating through them is an error; pass them as arguments).
"""
from __future__ import annotations

import functools
import itertools

from ..core.interpreter import eval_graph
from ..core.primitive import Primitive
from ..core.trace import Tracer, get_aval
from ..dtypes import is_float
from ..errors import FuncgradTypeError, FuncgradValueError, at_user_line
from ..primitives import reduce_sum
from ..primitives._graph_transforms import batch_graph, trace_closed
from ..primitives._rules import move_batch_to_front, shape_of
from ..primitives.elementwise import zeros_like_value
from ..tree_util import tree_flatten
from ._args import as_input
from .batching import vmap
from .reverse import vjp_flat

custom_jvp_call_p = Primitive("custom_jvp_call", multiple_results=True)
custom_vjp_call_p = Primitive("custom_vjp_call", multiple_results=True)


def _defined_at(fn):
    """``"file:line"`` where a user's rule is defined (its errors surface in the backward pass)."""
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None


def _traced(leaves):
    return any(isinstance(x, Tracer) for x in leaves)


def _merge(dyn, static, dyn_idx):
    full = [None] * (len(dyn) + len(static))
    for i, a in zip(dyn_idx, dyn):
        full[i] = a
    for i, a in static.items():
        full[i] = a
    return full


def _check_static(cf, static, kind):
    for i, a in static.items():
        if _traced(tree_flatten(a)[0]):
            raise FuncgradValueError(at_user_line(
                f"{kind} {cf.__name__}: argument {i} is in nondiff_argnums but is a traced value (it "
                "varies under vmap, or jit/grad traces it); make it a differentiable argument (its "
                "cotangent may be None)"))


class _Rule:
    """A user's rule as a primitive parameter: called by the primitive's rules under the
    transformations active then (so it may close over their values). Each call of a custom
    function makes a new one; it prints and hashes by a serial number."""

    __slots__ = ("fn", "name", "serial")
    _serials = itertools.count()

    def __init__(self, fn, name):
        self.fn, self.name, self.serial = fn, name, next(self._serials)

    def __call__(self, *args):
        return self.fn(*args)

    def __repr__(self):
        return f"<rule of {self.name} #{self.serial}>"


def _fun_graph(cf, tree, static, dyn_idx, leaves):
    """The primal function as a closed graph of the leaves (for staging, inlining and vmap),
    the values of outer transforms it closes over, and its output tree."""
    trees = []

    def flat(*ls):
        o_leaves, o_def = tree_flatten(cf.fun(*_merge(tree.unflatten(ls), static, dyn_idx)))
        trees.append(o_def)
        return o_leaves

    graph, consts = trace_closed(flat, [get_aval(x) for x in leaves])
    return graph, consts, trees[0]


def _prepare(cf, args, kind):
    """``(leaves, tree, static, dyn_idx)``, or None when no argument is traced."""
    static = {i: args[i] for i in cf.nondiff_argnums}
    dyn_idx = [i for i in range(len(args)) if i not in static]
    leaves, tree = tree_flatten([args[i] for i in dyn_idx])
    if not _traced(leaves):
        return None
    _check_static(cf, static, kind)
    return [x if isinstance(x, Tracer) else as_input(x) for x in leaves], tree, static, dyn_idx


def _no_closure_derivative(name, kind, nconsts, marks):
    if any(marks[:nconsts]):
        raise FuncgradTypeError(at_user_line(
            f"{kind} {name} closes over a value that is being differentiated (a traced value of "
            "an outer grad/jvp); its rule cannot give that value's derivative. Pass it to the "
            "function as an argument instead"))


class custom_jvp:
    """A function with a hand-written JVP rule (JAX semantics).

    >>> @custom_jvp
    ... def f(x):
    ...     return fnp.log1p(fnp.exp(x))
    >>> @f.defjvp
    ... def f_jvp(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return f(x), t * fg.scipy.special.expit(x)

    Reverse mode uses the transpose of the rule, so ``grad`` sees it too; so do ``vmap`` and
    ``jit`` in any composition. Tangents of arguments without one arrive as zeros.
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
        prepared = _prepare(self, args, "custom_jvp")
        if prepared is None:
            return self.fun(*args)
        leaves, tree, static, dyn_idx = prepared
        static_args = [static[i] for i in sorted(static)]

        def rule(primals, tangents):
            """Leaves in (a tangent per leaf), ``(out leaves, tangents of the float outputs)``."""
            out, tout = self.jvp_rule(*static_args, tuple(tree.unflatten(primals)), tuple(tree.unflatten(tangents)))
            o_leaves, o_def = tree_flatten(out)
            t_leaves, t_def = tree_flatten(tout)
            if o_def != t_def:
                raise FuncgradValueError(f"custom_jvp rule of {self.__name__}: primal output {o_def} and "
                                         f"tangent output {t_def} differ in structure")
            return o_leaves, [t for t, o in zip(t_leaves, o_leaves) if is_float(get_aval(o))]

        graph, consts, out_tree = _fun_graph(self, tree, static, dyn_idx, leaves)
        outs = custom_jvp_call_p.bind(*consts, *leaves, fun=graph, rule=_Rule(rule, self.__name__),
                                      num_consts=len(consts), name=self.__name__)
        return out_tree.unflatten(outs)


class custom_vjp:
    """A function with a hand-written VJP (JAX semantics): ``f.defvjp(fwd, bwd)`` where
    ``fwd(*args) -> (out, residuals)`` and ``bwd(residuals, g) -> tuple of cotangents``.

    >>> @custom_vjp
    ... def clip_grad(x):
    ...     return x
    >>> clip_grad.defvjp(lambda x: (x, None), lambda res, g: (fnp.clip(g, -1, 1),))

    The rule is used by every transformation: reverse mode directly, forward mode (``jvp``,
    ``jacfwd``, ``hessian``) through the transpose of ``bwd`` (it is linear in ``g``), and
    ``vmap`` and ``jit`` in any composition.
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
        prepared = _prepare(self, args, "custom_vjp")
        if prepared is None:
            return self.fun(*args)
        leaves, tree, static, dyn_idx = prepared
        static_args = [static[i] for i in sorted(static)]
        graph, consts, out_tree = _fun_graph(self, tree, static, dyn_idx, leaves)

        def fwd(primals):
            """Leaves in, ``(out leaves, residuals)``."""
            res = self.fwd(*_merge(tree.unflatten(primals), static, dyn_idx))
            if not (isinstance(res, tuple) and len(res) == 2):
                raise FuncgradTypeError(at_user_line(
                    f"custom_vjp fwd of {self.__name__} must return a pair (output, residuals), got "
                    + (f"a tuple of length {len(res)}" if isinstance(res, tuple) else f"a {type(res).__name__}")
                    + "; write `return out, (values the bwd rule needs)`"))
            o_leaves, o_def = tree_flatten(res[0])
            if o_def != out_tree:
                raise FuncgradValueError(at_user_line(
                    f"custom_vjp fwd of {self.__name__} returns an output of structure {o_def}, but "
                    f"the function returns {out_tree}", _defined_at(self.fwd)))
            return o_leaves, res[1]

        def bwd(residuals, g, primals):
            """A cotangent per output leaf in, one per input leaf out (None: zero)."""
            return _flat_cotangents(self, self.bwd(*static_args, residuals, out_tree.unflatten(g)),
                                    tree.unflatten(primals))

        outs = custom_vjp_call_p.bind(*consts, *leaves, fun=graph, fwd=_Rule(fwd, self.__name__),
                                      bwd=_Rule(bwd, self.__name__), num_consts=len(consts),
                                      name=self.__name__)
        return out_tree.unflatten(outs)


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


# -- the rules of custom_jvp_call ---------------------------------------------------------------
def _leaves_of(args, num_consts):
    return list(args[num_consts:])


def _impl(*args, fun, **params):
    return eval_graph(fun, fun.consts, args)


def _abstract(*avals, fun, **params):
    return fun.out_avals


def _all_tangents(tangents, leaves):
    return [zeros_like_value(p) if t is None else t for t, p in zip(tangents, leaves)]


def _per_output(float_values, fun):
    it = iter(float_values)
    return [next(it) if is_float(a) else None for a in fun.out_avals]


def _float_flags(values):
    return [is_float(get_aval(v)) for v in values]


def _jvp_jvp(primals, tangents, *, fun, rule, num_consts, name):
    _no_closure_derivative(name, "custom_jvp function", num_consts, [t is not None for t in tangents])
    leaves = _leaves_of(primals, num_consts)
    outs, touts = rule(leaves, _all_tangents(tangents[num_consts:], leaves))
    return outs, _per_output(touts, fun)


def _jvp_vjp_fwd(primals, needs, *, fun, rule, num_consts, name):
    _no_closure_derivative(name, "custom_jvp function", num_consts, needs)
    outs = custom_jvp_call_p.bind(*primals, fun=fun, rule=rule, num_consts=num_consts, name=name)
    leaves = _leaves_of(primals, num_consts)
    float_in = _float_flags(leaves)

    def tangent_part(*float_ts):
        ts = iter(float_ts)
        return rule(leaves, [next(ts) if f else zeros_like_value(p) for p, f in zip(leaves, float_in)])[1], None

    def backward(g, needs):
        g = [zeros_like_value(o) if c is None else c for c, o, a in zip(g, outs, fun.out_avals) if is_float(a)]
        _, transpose, _ = vjp_flat(tangent_part, [zeros_like_value(p) for p, f in zip(leaves, float_in) if f])
        cts = iter(transpose(g, checked=True))
        return [None] * num_consts + [next(cts) if f else None for f in float_in]

    return outs, backward


def _to_front(args, dims):
    size = next(shape_of(a)[d] for a, d in zip(args, dims) if d is not None)
    return size, [move_batch_to_front(a, d) for a, d in zip(args, dims)], tuple(d is not None for d in dims)


def _jvp_batch(args, dims, *, fun, rule, num_consts, name):
    size, args, in_b = _to_front(args, dims)
    fun_b, _ = batch_graph(fun, size, in_b, (True,) * len(fun.outvars))
    axes = tuple(0 if b else None for b in in_b[num_consts:])

    def one(primals, tangents):
        return tuple(rule(list(primals), list(tangents)))

    def batched(primals, tangents):
        outs, touts = vmap(one, in_axes=(axes, axes))(tuple(primals), tuple(tangents))
        return list(outs), list(touts)

    outs = custom_jvp_call_p.bind(*args, fun=fun_b, rule=_Rule(batched, name), num_consts=num_consts, name=name)
    return outs, [0] * len(outs)


def _inline_fun(params):
    return params["fun"]


def _define(p, jvp, vjp_fwd, batch):
    p.impl, p.abstract_eval, p.jvp, p.vjp_fwd, p.batch = _impl, _abstract, jvp, vjp_fwd, batch
    p.extra.update(inline=_inline_fun, user_rules=True)


_define(custom_jvp_call_p, _jvp_jvp, _jvp_vjp_fwd, _jvp_batch)


# -- the rules of custom_vjp_call ---------------------------------------------------------------
def _cotangents(bwd, residuals, g, outs, leaves):
    """``bwd`` on the output cotangents ``g`` (None: zero): a cotangent per leaf (None: zero)."""
    return bwd(residuals, [zeros_like_value(o) if c is None else c for c, o in zip(g, outs)], leaves)


def _vjp_vjp_fwd(primals, needs, *, fun, fwd, bwd, num_consts, name):
    _no_closure_derivative(name, "custom_vjp function", num_consts, needs)
    leaves = _leaves_of(primals, num_consts)
    outs, residuals = fwd(leaves)

    def backward(g, needs):
        return [None] * num_consts + list(_cotangents(bwd, residuals, g, outs, leaves))

    return outs, backward


def _vjp_jvp(primals, tangents, *, fun, fwd, bwd, num_consts, name):
    """Forward mode from the VJP rule: ``bwd`` is linear in the output cotangents, so the
    tangent of the outputs is the transpose of ``bwd`` applied to the input tangents."""
    _no_closure_derivative(name, "custom_vjp function", num_consts, [t is not None for t in tangents])
    leaves = _leaves_of(primals, num_consts)
    outs, residuals = fwd(leaves)
    float_in, float_out = _float_flags(leaves), [is_float(a) for a in fun.out_avals]

    def cotangents_of(*g):
        it = iter(g)
        cts = _cotangents(bwd, residuals, [next(it) if f else None for f in float_out], outs, leaves)
        return [zeros_like_value(p) if c is None else c for c, p, f in zip(cts, leaves, float_in) if f], None

    _, transpose, _ = vjp_flat(cotangents_of, [zeros_like_value(o) for o, f in zip(outs, float_out) if f])
    ts = [t for t, f in zip(_all_tangents(tangents[num_consts:], leaves), float_in) if f]
    return outs, _per_output(transpose(ts, checked=True), fun)


def _vjp_batch(args, dims, *, fun, fwd, bwd, num_consts, name):
    size, args, in_b = _to_front(args, dims)
    fun_b, _ = batch_graph(fun, size, in_b, (True,) * len(fun.outvars))
    axes = tuple(0 if b else None for b in in_b[num_consts:])

    def fwd_b(primals):
        outs, residuals = vmap(lambda p: fwd(list(p)), in_axes=(axes,))(tuple(primals))
        return list(outs), residuals

    def bwd_b(residuals, g, primals):
        cts = vmap(lambda r, c, p: tuple(bwd(r, list(c), list(p))), in_axes=(0, 0, axes))(
            residuals, tuple(g), tuple(primals))
        return [c if c is None or ax is not None else reduce_sum(c, (0,)) for c, ax in zip(cts, axes)]

    outs = custom_vjp_call_p.bind(*args, fun=fun_b, fwd=_Rule(fwd_b, name), bwd=_Rule(bwd_b, name),
                                  num_consts=num_consts, name=name)
    return outs, [0] * len(outs)


_define(custom_vjp_call_p, _vjp_jvp, _vjp_vjp_fwd, _vjp_batch)
