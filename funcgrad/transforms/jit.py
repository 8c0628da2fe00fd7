"""``jit``: trace once per signature, compile the graph with a backend, cache it."""
from __future__ import annotations

import functools
import inspect
import logging
from contextlib import contextmanager

import numpy as np

from ..config import config
from ..core.avals import ShapedArray
from ..core.interpreter import eval_graph
from ..core.staging import trace_to_graph
from ..core.trace import Tracer
from ..errors import FuncgradTypeError, FuncgradValueError, at_user_line
from ..tree_util import tree_flatten
from ._args import fun_name

log = logging.getLogger("funcgrad")

_BACKENDS = ("cpu", "interpreter", "cuda")


def _leaf_array(x):
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, Tracer):
        return x
    if hasattr(x, "__cuda_array_interface__") or type(x).__name__ == "DeviceArray":
        return x
    arr = np.asarray(x)
    if arr.dtype == object:
        raise FuncgradTypeError(at_user_line(
            f"jit: an argument leaf of type {type(x).__name__} is not an array; mark it static "
            "(static_argnums/static_argnames) or pass arrays"))
    return arr


def _get_backend(device):
    if device == "interpreter":
        from ..backends import interpreter

        return interpreter
    if device == "cpu":
        from ..backends import numba_cpu

        return numba_cpu
    if device == "cuda":
        from ..backends import numba_cuda

        return numba_cuda
    raise FuncgradValueError(f"jit: unknown device {device!r}; choose one of {', '.join(_BACKENDS)}")


class Compiled:
    __slots__ = ("graph", "run", "out_def")

    def __init__(self, graph, run, out_def):
        self.graph, self.run, self.out_def = graph, run, out_def


class JitFunction:
    """A jitted function; call it like the original. ``.lower(*args)`` gives the Graph."""

    def __init__(self, fun, static_argnums=(), static_argnames=(), device="cpu"):
        functools.update_wrapper(self, fun)
        self.fun = fun
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        self.static_argnums = tuple(static_argnums)
        self.static_argnames = tuple(static_argnames)
        try:
            self._sig = inspect.signature(fun)
        except (TypeError, ValueError):
            self._sig = None
        if self._sig is not None:
            names = list(self._sig.parameters)
            for n in self.static_argnames:
                if n in names and names.index(n) not in self.static_argnums:
                    self.static_argnums += (names.index(n),)
        if device not in _BACKENDS:
            raise FuncgradValueError(at_user_line(
                f"jit: unknown device {device!r}; choose one of {', '.join(_BACKENDS)}"))
        self.device = device
        self._cache: dict = {}
        self._checked: dict = {}  # graphs run equation by equation under debug_nans
        self._last_key = None
        self.trace_count = 0

    def _split(self, args, kwargs):
        static, dyn = [], []
        for i, a in enumerate(args):
            if i in self.static_argnums or i - len(args) in self.static_argnums:
                static.append((i, self._hashable(a, f"argument {i}")))
            else:
                dyn.append(a)
        skw, dkw = [], {}
        for k, v in kwargs.items():
            if k in self.static_argnames:
                skw.append((k, self._hashable(v, f"argument '{k}'")))
            else:
                dkw[k] = v
        return tuple(static), tuple(sorted(skw)), dyn, dkw

    def _hashable(self, v, what):
        try:
            hash(v)
        except TypeError:
            raise FuncgradTypeError(at_user_line(
                f"jit({fun_name(self.fun)}): static {what} of type {type(v).__name__} is not hashable; "
                "static arguments must be hashable (use a tuple instead of a list, or pass arrays as "
                "non-static arguments)")) from None
        return v

    def __call__(self, *args, **kwargs):
        if config._values["disable_jit"]:
            return self.fun(*args, **kwargs)
        static, skw, dyn, dkw = self._split(args, kwargs)
        leaves, in_def = tree_flatten((dyn, dkw))
        for x in leaves:
            if isinstance(x, Tracer):
                # inside another transformation: trace through (the outer one compiles it)
                return self.fun(*args, **kwargs)
        leaves = [_leaf_array(x) for x in leaves]
        sig = tuple((tuple(x.shape), np.dtype(x.dtype)) for x in leaves)
        key = (in_def, sig, static, skw)
        if config._values["debug_nans"]:
            return self._call_checked(key, args, static, skw, in_def, leaves)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._compile(key, args, static, skw, in_def, leaves)
        outs = entry.run(leaves)
        return entry.out_def.unflatten(outs)

    def _call_checked(self, key, args, static, skw, in_def, leaves):
        """debug_nans: run the graph one equation at a time on the NumPy interpreter, each
        attributed to its user line, so the first NaN/Inf names the line that made it."""
        traced = self._checked.get(key)
        if traced is None:  # traced with debug_nans on, so backward-pass equations carry
            # the line of the forward operation they differentiate
            traced = self._checked[key] = self._trace(
                args, static, skw, in_def, [ShapedArray(x.shape, x.dtype) for x in leaves])
        graph, out_def = traced
        outs = eval_graph(graph, graph.consts, leaves, track_source=True)
        return out_def.unflatten([np.asarray(o) for o in outs])

    def _compile(self, key, args, static, skw, in_def, leaves):
        if config._values["log_compiles"]:
            log.warning("jit: compiling %s for %s (%s)", fun_name(self.fun),
                        ", ".join(f"{np.dtype(d).name}{list(s)}" for s, d in key[1]) or "no arrays",
                        self._reason(key))
        graph, out_def = self._trace(args, static, skw, in_def, [ShapedArray(x.shape, x.dtype) for x in leaves])
        run = _get_backend(self.device).compile(graph)
        entry = Compiled(graph, run, out_def)
        self._cache[key] = entry
        self._last_key = key
        return entry

    def _reason(self, key):
        prev = self._last_key
        if prev is None:
            return "first call"
        reasons = []
        if prev[0] != key[0]:
            reasons.append("new pytree structure of the arguments")
        elif prev[1] != key[1]:
            changed = [f"leaf {i}: {np.dtype(a[1]).name}{list(a[0])} -> {np.dtype(b[1]).name}{list(b[0])}"
                       for i, (a, b) in enumerate(zip(prev[1], key[1])) if a != b]
            reasons.append("new shapes/dtypes (" + "; ".join(changed) + ")")
        if prev[2] != key[2] or prev[3] != key[3]:
            reasons.append(f"new static argument values {dict(key[2]) | dict(key[3])}")
        return ", ".join(reasons) or "cache miss"

    def _trace(self, args, static, skw, in_def, avals):
        self.trace_count += 1
        out_defs = []
        static_pos = dict(static)
        n = len(args)

        def flat_fun(*leaf_tracers):
            dyn, dkw = in_def.unflatten(leaf_tracers)
            it = iter(dyn)
            full = [static_pos[i] if i in static_pos else next(it) for i in range(n)]
            kw = dict(dkw)
            kw.update(skw)
            out = self.fun(*full, **kw)
            o_leaves, o_def = tree_flatten(out)
            out_defs.append(o_def)
            return o_leaves

        graph = trace_to_graph(flat_fun, avals)
        return graph, out_defs[0]

    def lower(self, *args, **kwargs):
        """The traced Graph for these arguments (no compilation)."""
        static, skw, dyn, dkw = self._split(args, kwargs)
        leaves, in_def = tree_flatten((dyn, dkw))
        leaves = [_leaf_array(x) for x in leaves]
        return self._trace(args, static, skw, in_def, [ShapedArray(x.shape, x.dtype) for x in leaves])[0]


def jit(fun=None, *, static_argnums=(), static_argnames=(), device="cpu"):
    """Compile ``fun``: traced once per (shapes, dtypes, static values, pytree structure).

    >>> import funcgrad as fg, funcgrad.numpy as fnp
    >>> @fg.jit
    ... def f(x):
    ...     return fnp.sum(fnp.tanh(x) ** 2)
    """
    if fun is None:
        return lambda f: JitFunction(f, static_argnums, static_argnames, device)
    return JitFunction(fun, static_argnums, static_argnames, device)


@contextmanager
def disable_jit():
    """Run jitted functions eagerly inside this block (for print and pdb)."""
    old = config._values["disable_jit"]
    config._values["disable_jit"] = True
    try:
        yield
    finally:
        config._values["disable_jit"] = old


def make_graph(fun, static_argnums=(), source_info=False):
    """``make_graph(f)(*args)`` returns the traced ``Graph`` of ``f`` at these arguments.

    With ``source_info=True``, ``print(graph)`` ends each equation with the user's
    ``file:line`` and code that created it (``graph.to_text(source=True)`` does so on demand).

    >>> import funcgrad as fg, funcgrad.numpy as fnp
    >>> print(fg.make_graph(lambda x: fnp.sin(x) * 2.0)(1.0))
    { lambda ; a:f64[] . let
        b:f64[] = sin a
        c:f64[] = mul b 2.0:f64[]
      in ( c ) }
    """
    jf = JitFunction(fun, static_argnums, device="interpreter")

    def graph_of(*args, **kwargs):
        graph = jf.lower(*args, **kwargs)
        graph.show_source = source_info
        return graph

    return graph_of
