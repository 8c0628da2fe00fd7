"""Reverse mode: record a tape of primitive applications, then run their VJP
rules backwards. The VJP rules are themselves traceable, so reverse mode nests
(``grad(grad(f))``) and composes with ``jvp``, ``vmap`` and ``jit``."""
from __future__ import annotations

import numpy as np

from ..config import config
from ..core.trace import (
    Trace,
    Tracer,
    current_source,
    eval_primitive,
    get_aval,
    innermost_concrete,
    nan_error,
    new_main,
    nonfinite_kind,
    provenance,
)
from ..dtypes import is_float
from ..errors import FuncgradTypeError, FuncgradValueError, at_user_line
from ..tree_util import tree_flatten, tree_map
from ._args import (
    as_input,
    as_output,
    check_float_args,
    dtype_of,
    fun_name,
    normalize_argnums,
    zeros_like_leaf,
)


class Node:
    """One recorded application: ``rule`` maps output cotangents to input cotangents."""

    __slots__ = ("nout", "out", "params", "parents", "prim", "primals", "source")

    def __init__(self, prim, params, parents, primals, out, nout):
        self.prim = prim
        self.params = params
        self.parents = parents  # per input: (Node, output index) or None
        self.primals = primals
        self.out = out
        self.nout = nout


class RevTracer(Tracer):
    __slots__ = ("key", "primal")

    def __init__(self, trace, primal, key):
        self._trace = trace
        self.primal = primal
        self.key = key  # (Node, output index), or None for a constant

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


class ReverseTrace(Trace):
    __slots__ = ()

    def pure(self, val):
        return RevTracer(self, val, None)

    lift = pure

    def process_primitive(self, prim, tracers, params):
        primals = [t.primal for t in tracers]
        parents = [t.key for t in tracers]
        if prim.vjp_fwd is not None and prim.differentiable and any(parents):
            return self._with_residuals(prim, primals, parents, params)
        # at level 1 the values under the tracers are concrete: run NumPy directly
        out = eval_primitive(prim, primals, params) if self.level == 1 else prim.bind(*primals, **params)
        if not prim.differentiable or not any(parents):
            if prim.multiple_results:
                return [RevTracer(self, o, None) for o in out]
            return RevTracer(self, out, None)
        if prim.multiple_results:
            node = Node(prim, params, parents, primals, out, len(out))
            keys = [(node, i) if is_float(o) else None for i, o in enumerate(out)]
        else:
            node = Node(prim, params, parents, primals, out, 1)
            keys = None
        self.main.data.append(node)
        if _config_values["debug_nans"]:
            node.source = current_source()  # the user's line, for NaNs in the backward pass
        if keys is not None:
            return [RevTracer(self, o, k) for o, k in zip(out, keys)]
        return RevTracer(self, out, (node, 0) if is_float(out) else None)

    def _with_residuals(self, prim, primals, parents, params):
        """A primitive that keeps its own residuals: its forward pass returns the outputs and
        the backward function that the tape then runs in place of ``prim.vjp``."""
        out, backward_rule = prim.vjp_fwd(primals, [p is not None for p in parents], **params)
        outs = out if prim.multiple_results else [out]
        rule = CustomRule(lambda g, _out, _primals, needs: backward_rule(g, needs), params.get("name", prim.name),
                          single=not prim.multiple_results, user=prim.extra.get("user_rules", False))
        node = Node(rule, {}, parents, primals, out, len(outs))
        self.main.data.append(node)
        if _config_values["debug_nans"]:
            node.source = current_source()
        tracers = [RevTracer(self, o, (node, i) if is_float(o) else None) for i, o in enumerate(outs)]
        return tracers if prim.multiple_results else tracers[0]


_config_values = config._values


class CustomRule:
    """Stands in for a primitive on the tape when a custom VJP was given."""

    __slots__ = ("multiple_results", "name", "user", "vjp")

    def __init__(self, vjp, name, single=False, user=True):
        self.vjp = vjp
        self.multiple_results = not single
        self.name = name
        self.user = user  # the user's own rule: runs under the user's floating-point settings


def _accumulate(cts, key, g):
    prev = cts.get(key)
    cts[key] = g if prev is None else prev + g




def backward(tape, seeds):
    """Run the tape backwards from ``seeds`` [(key, cotangent)]; returns the cotangent dict.

    The primitives' rules run with NumPy's floating-point warnings off (``sqrt``'s derivative
    at 0 is ``inf`` without a "divide by zero"); a custom rule runs under the caller's settings,
    so warnings of the user's own code still show."""
    user = np.geterr()
    with np.errstate(all="ignore"):
        return _backward(tape, seeds, user)


def _backward(tape, seeds, user):
    cts: dict = {}  # keyed by (node, output index), the keys that tracers carry
    for key, g in seeds:
        if key is not None:
            _accumulate(cts, key, g)
    debug_nans = _config_values["debug_nans"]
    pop = cts.pop
    for node in reversed(tape):
        if node.prim is None:  # an input leaf
            continue
        if node.nout == 1 and not node.prim.multiple_results:
            g = pop((node, 0), None)
            if g is None:
                continue
        else:
            g = [pop((node, i), None) for i in range(node.nout)]
            if all(x is None for x in g):
                continue
        needs = [p is not None for p in node.parents]
        if isinstance(node.prim, CustomRule) and node.prim.user:
            with np.errstate(**user):
                in_cts = _vjp_checked(node, g, needs) if debug_nans else node.prim.vjp(g, node.out, node.primals,
                                                                                       needs, **node.params)
        elif debug_nans:
            in_cts = _vjp_checked(node, g, needs)
        else:
            in_cts = node.prim.vjp(g, node.out, node.primals, needs, **node.params)
        for parent, c in zip(node.parents, in_cts):
            if parent is not None and c is not None:
                prev = cts.get(parent)
                cts[parent] = c if prev is None else prev + c
    return cts


def _vjp_checked(node, g, needs):
    """``node``'s VJP under debug_nans: the primitives it runs are attributed to the user's
    line of the forward operation, and the cotangents it returns are checked for NaN/Inf."""
    source = getattr(node, "source", None)
    if isinstance(node.prim, CustomRule) and node.prim.user:
        note = f"the backward rule of custom function '{node.prim.name}'"
    else:
        note = f"the backward pass of '{node.prim.name}'"
    if source is None:
        in_cts = node.prim.vjp(g, node.out, node.primals, needs, **node.params)
    else:
        with provenance(source, note):
            in_cts = node.prim.vjp(g, node.out, node.primals, needs, **node.params)
    for i, c in enumerate(in_cts):
        kind = None if c is None or isinstance(c, Tracer) else nonfinite_kind(c)
        if kind:
            raise nan_error(f"the cotangent of input {i}", kind, (), note, source)
    return in_cts


def _check_cotangent(ct, primal, i):
    if isinstance(ct, Tracer) or isinstance(primal, Tracer):
        cs, ps = tuple(ct.shape) if hasattr(ct, "shape") else np.shape(ct), tuple(get_aval(primal).shape)
    else:
        cs, ps = np.shape(ct), np.shape(primal)
    if cs != ps:
        raise FuncgradValueError(at_user_line(
            f"vjp: cotangent {i} has shape {cs} but the output it pairs with has shape {ps}; pass "
            "cotangents shaped like the outputs (e.g. np.ones_like(out))"))


def vjp_flat(fun, primals):
    """``fun`` on flat lists. Returns (flat outputs, backward_fn, trace); ``backward_fn(cts)``
    gives one cotangent per primal (zeros where no path exists)."""
    tape: list = []
    with new_main(ReverseTrace, tape, name="grad") as main:
        trace = main.trace
        ins = []
        for p in primals:
            if dtype_of(p).kind == "f":
                leaf = Node(None, None, (), (), p, 1)
                tape.append(leaf)
                ins.append(RevTracer(trace, p, (leaf, 0)))
            else:
                ins.append(RevTracer(trace, p, None))
        outs, extra = fun(*ins)
        out_primals, out_keys = [], []
        for o in outs:
            if isinstance(o, RevTracer) and o._trace is trace:
                out_primals.append(o.primal)
                out_keys.append(o.key)
            else:
                out_primals.append(o)
                out_keys.append(None)
        extra = lower_aux(extra, trace)
    in_keys = [t.key for t in ins]

    def backward_fn(cts, checked=False):
        seeds = []
        for i, (key, ct, p) in enumerate(zip(out_keys, cts, out_primals)):
            if not checked:
                _check_cotangent(ct, p, i)
            if key is not None:
                seeds.append((key, ct))
        res = backward(tape, seeds)
        grads = []
        for key, p in zip(in_keys, primals):
            g = None if key is None else res.get(key)
            if g is None:
                g = zeros_like_leaf(p)
            elif dtype_of(g) != dtype_of(p):
                from ..primitives import convert

                g = convert(g, dtype_of(p))
            grads.append(g)
        return grads

    return out_primals, backward_fn, extra


def lower_aux(tree, trace):
    """Replace this trace's tracers in ``tree`` by the values under them."""
    def lower(x):
        while isinstance(x, Tracer) and x._trace is trace:
            x = x.primal
        return np.asarray(x) if isinstance(x, np.generic) else x  # arrays out, 0-d for scalars

    if trace is None or tree is None:
        return tree
    return tree_map(lower, tree)


def vjp(fun, *primals, has_aux=False):
    """Reverse-mode derivative: ``(out, vjp_fn)`` (plus ``aux`` with ``has_aux``).

    ``vjp_fn(cotangent)`` returns a tuple with one cotangent per primal.

    >>> import funcgrad as fg, funcgrad.numpy as fnp
    >>> out, f_vjp = fg.vjp(fnp.sin, 0.0)
    >>> f_vjp(1.0)
    (array(1.),)
    """
    p_leaves, p_def = tree_flatten(tuple(primals))
    p_leaves = [as_input(p) for p in p_leaves]
    out_def = []

    def flat_fun(*leaves):
        out = fun(*p_def.unflatten(leaves))
        aux = None
        if has_aux:
            out, aux = _split_aux(fun, out)
        o_leaves, d = tree_flatten(out)
        out_def.append(d)
        return o_leaves, aux

    out_leaves, backward_fn, aux = vjp_flat(flat_fun, p_leaves)
    o_def = out_def[0]

    def vjp_fn(ct):
        c_leaves, c_def = tree_flatten(ct)
        if c_def != o_def:
            raise FuncgradValueError(at_user_line(
                f"vjp: the cotangent has tree structure {c_def} but {fun_name(fun)}'s output has "
                f"structure {o_def}; pass a cotangent shaped like the output"))
        grads = backward_fn([as_input(c) for c in c_leaves])
        return tuple(p_def.unflatten([as_output(g) for g in grads]))

    out = o_def.unflatten([as_output(o) for o in out_leaves])
    if has_aux:
        return out, vjp_fn, aux
    return out, vjp_fn


def _value_and_grad_impl(fun, argnums, has_aux, transform, args, kwargs):
    single, nums = normalize_argnums(argnums, len(args), fun, transform)
    check_float_args(fun, args, nums, transform)
    if single and type(args[nums[0]]) is np.ndarray:  # one array argument: no pytree to flatten
        leaves, in_def = [args[nums[0]]], None
    else:
        leaves, in_def = tree_flatten(tuple(args[i] for i in nums))
        leaves = [as_input(p) for p in leaves]

    def flat_fun(*dyn_leaves):
        full = list(args)
        for i, a in zip(nums, dyn_leaves if in_def is None else in_def.unflatten(dyn_leaves)):
            full[i] = a
        out = fun(*full, **kwargs)
        aux = None
        if has_aux:
            out, aux = _split_aux(fun, out)
        return [out], aux

    out_leaves, backward_fn, aux = vjp_flat(flat_fun, leaves)
    out = out_leaves[0]
    if type(out) is float:  # a constant Python float (as JAX: its gradient is zero)
        out = np.asarray(out)
    if not (hasattr(out, "shape") and hasattr(out, "dtype")) or tuple(out.shape) != ():
        shape = getattr(out, "shape", None)
        raise FuncgradTypeError(at_user_line(
            f"{transform}: {fun_name(fun)} must return a scalar (0-d) value, got "
            + (f"an array of shape {tuple(shape)}" if shape is not None else f"a {type(out).__name__}")
            + "; use jacrev/vjp for non-scalar outputs, or reduce (e.g. .sum()) first"))
    if dtype_of(out).kind != "f":
        raise FuncgradTypeError(at_user_line(
            f"{transform}: {fun_name(fun)} returned a {dtype_of(out)} value; grad needs a float output"))
    grads = backward_fn([_one(out.dtype)], checked=True)
    if in_def is None:
        g = as_output(grads[0])
    else:
        g = in_def.unflatten([as_output(x) for x in grads])
        g = g[0] if single else g
    out = as_output(out)
    if has_aux:
        return (out, aux), g
    return out, g


_ONES: dict = {}


def _one(dtype):
    """A shared 0-d one of ``dtype`` (the seed of a gradient; never written to)."""
    one = _ONES.get(dtype)
    if one is None:
        one = _ONES[dtype] = np.ones((), dtype=dtype)
        one.flags.writeable = False
    return one


def _split_aux(fun, out):
    if not (isinstance(out, tuple) and len(out) == 2):
        got = (f"a tuple of length {len(out)}" if isinstance(out, tuple) else
               f"an array of shape {tuple(out.shape)}" if hasattr(out, "shape") else
               f"a {type(out).__name__}")
        raise FuncgradTypeError(at_user_line(
            f"has_aux=True: {fun_name(fun)} must return a pair (output, aux), got {got}; "
            "return (loss, aux), or drop has_aux=True"))
    return out


def value_and_grad(fun, argnums=0, has_aux=False):
    """``fun``'s value and its gradient with respect to ``argnums``.

    >>> import funcgrad as fg, funcgrad.numpy as fnp
    >>> fg.value_and_grad(lambda x: fnp.sum(x ** 2))(np.array([1.0, 2.0]))
    (array(5.), array([2., 4.]))
    """
    def wrapped(*args, **kwargs):
        return _value_and_grad_impl(fun, argnums, has_aux, "value_and_grad", args, kwargs)

    wrapped.__name__ = f"value_and_grad({fun_name(fun)})"
    wrapped.__wrapped__ = fun
    return wrapped


def grad(fun, argnums=0, has_aux=False):
    """The gradient of scalar-valued ``fun`` with respect to argument(s) ``argnums``.

    >>> import funcgrad as fg, funcgrad.numpy as fnp
    >>> fg.grad(fnp.tanh)(0.0)
    array(1.)
    """
    def wrapped(*args, **kwargs):
        (out_aux, g) = _value_and_grad_impl(fun, argnums, has_aux, "grad", args, kwargs)
        if has_aux:
            return g, out_aux[1]
        return g

    wrapped.__name__ = f"grad({fun_name(fun)})"
    wrapped.__wrapped__ = fun
    return wrapped
