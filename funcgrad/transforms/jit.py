"""``jit``: trace once per signature, compile the graph with a backend, cache it."""
from __future__ import annotations

import functools
import inspect
import logging
import threading
import warnings
from contextlib import contextmanager

import numpy as np

from ..config import config
from ..core.avals import ShapedArray
from ..core.interpreter import eval_graph
from ..core.staging import GraphTrace, trace_to_graph
from ..core.trace import Tracer
from ..errors import FuncgradTypeError, FuncgradValueError, at_user_line
from ..primitives._graph_transforms import hoist_traced_consts
from ..tree_util import _registry as pytree_registry
from ..tree_util import tree_flatten, treedef_is_leaf
from ._args import fun_name
from .call import bind_call, top_trace

log = logging.getLogger("funcgrad")

_BACKENDS = ("cpu", "interpreter", "cuda")

# Tiered compilation (``fg.config.update("async_compile", True)`` or FUNCGRAD_ASYNC_COMPILE=1):
# the first calls of a new signature run on the NumPy interpreter while Numba compiles in a
# background thread; later calls use the compiled code once it is ready. Off by default, since
# interpreted and compiled results may differ in the last bits.


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


def _unflattener(treedef):
    """A function ``outs -> pytree`` for ``treedef`` (generated once: cheaper than a walk).
    Registered nodes and namedtuples are rebuilt by their own functions, bound by name."""
    counter = [0]
    names: dict = {}

    def bind(value):
        name = f"n{len(names)}"
        names[name] = value
        return name

    def expr(td):
        kind = td.kind
        if treedef_is_leaf(td):
            counter[0] += 1
            return f"o[{counter[0] - 1}]"
        inner = [expr(c) for c in td.children]
        if kind is tuple:
            return "(" + "".join(x + ", " for x in inner) + ")"
        if kind is list:
            return "[" + ", ".join(inner) + "]"
        if kind is type(None):
            return "None"
        if kind is dict:
            return "{" + ", ".join(f"{bind(k)}: {x}" for k, x in zip(td.aux, inner)) + "}"
        if kind in pytree_registry:
            unflatten = pytree_registry[kind][1]
            specialize = getattr(unflatten, "specialize", None)  # a builder for this structure
            if specialize is not None:
                return f"{bind(specialize(td.aux))}({', '.join(inner)})"
            return f"{bind(unflatten)}({bind(td.aux)}, [{', '.join(inner)}])"
        if isinstance(td.aux, type) and issubclass(td.aux, tuple):  # a namedtuple: aux is its class
            return f"{bind(td.aux)}({', '.join(inner)})"
        raise LookupError(kind)

    try:
        text = expr(treedef)
    except LookupError:
        return treedef.unflatten
    return eval(f"lambda o: {text}", names)  # text built above from the tree's shape only


class Compiled:
    """One traced and compiled signature: ``call(leaves)`` runs it and rebuilds the outputs.

    ``run`` may be swapped from the interpreter to compiled code by a background compile."""

    __slots__ = ("graph", "out_def", "ready", "run", "unflat")

    def __init__(self, graph, run, out_def):
        self.graph, self.run, self.out_def = graph, run, out_def
        self.unflat = _unflattener(out_def)
        self.ready = threading.Event()

    def call(self, leaves):
        return self.unflat(self.run(leaves))


def _fast_key(args, leaves, key):
    """Flatten positional ndarray/list/tuple/namedtuple/dict/registered-node/scalar arguments (in
    ``tree_flatten``'s order) and build their signature key; False for anything else (the
    general path handles it)."""
    for a in args:
        t = type(a)
        if t is np.ndarray:
            leaves.append(a)
            key.append(a.shape)
            key.append(a.dtype)
        elif t is list or t is tuple:
            key.append(t)
            key.append(len(a))
            if not _fast_key(a, leaves, key):
                return False
        elif t in pytree_registry:  # modules and other registered nodes
            children, aux = pytree_registry[t][0](a)
            key.append(t)
            key.append(aux)
            key.append(len(children))
            if not _fast_key(children, leaves, key):
                return False
        elif t is dict:
            names = sorted(a)
            key.append(t)
            key.append(tuple(names))
            if not _fast_key([a[k] for k in names], leaves, key):
                return False
        elif isinstance(a, tuple) and hasattr(t, "_fields"):  # namedtuples
            key.append(t)
            key.append(len(a))
            if not _fast_key(a, leaves, key):
                return False
        elif isinstance(a, np.ndarray):  # a subclass (funcgrad.numpy's Array): as its NumPy array
            leaves.append(a.view(np.ndarray))
            key.append(a.shape)
            key.append(a.dtype)
        elif t is float or t is int or t is bool:
            leaves.append(np.asarray(a))
            key.append(t)
        else:
            return False
    return True


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
        self._fast: dict = {}  # positional-only signature key -> Compiled
        self._fast_ok = not self.static_argnums and not self.static_argnames
        self._checked: dict = {}  # graphs run equation by equation under debug_nans
        self._graphs: dict = {}  # signature key -> (graph, out_def, ()) for the call primitive
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
        cfg = config._values
        if self._fast_ok and not kwargs and not cfg["disable_jit"] and not cfg["debug_nans"]:
            leaves, key = [], []
            if _fast_key(args, leaves, key):
                key = tuple(key)
                entry = self._fast.get(key)
                if entry is None:
                    entry = self._entry(args, kwargs)
                    if entry is None:  # closes over values of an outer transformation
                        return self._call(args, kwargs)
                    self._fast[key] = entry
                return entry.call(leaves)
        return self._call(args, kwargs)

    def _entry(self, args, kwargs):
        """The Compiled entry for these arguments (tracing and compiling on a miss)."""
        static, skw, dyn, dkw = self._split(args, kwargs)
        leaves, in_def = tree_flatten((dyn, dkw))
        leaves = [_leaf_array(x) for x in leaves]
        sig = tuple((tuple(x.shape), np.dtype(x.dtype)) for x in leaves)
        key = (in_def, sig, static, skw)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._compile(key, args, static, skw, in_def, leaves)
        return entry

    def _call(self, args, kwargs):
        if config._values["disable_jit"]:
            return self.fun(*args, **kwargs)
        static, skw, dyn, dkw = self._split(args, kwargs)
        leaves, in_def = tree_flatten((dyn, dkw))
        for x in leaves:
            if isinstance(x, Tracer):
                return self._call_traced(args, kwargs, static, skw, in_def, leaves)
        leaves = [_leaf_array(x) for x in leaves]
        sig = tuple((tuple(x.shape), np.dtype(x.dtype)) for x in leaves)
        key = (in_def, sig, static, skw)
        if config._values["debug_nans"]:
            return self._call_checked(key, args, static, skw, in_def, leaves)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._compile(key, args, static, skw, in_def, leaves)
            if entry is None:  # the function closes over values of an outer transformation
                return self._call_traced(args, kwargs, static, skw, in_def, leaves)
        return entry.call(leaves)

    def _call_traced(self, args, kwargs, static, skw, in_def, leaves):
        """Called inside another transformation (or closing over its values): inside another
        jit trace through, so the outer program compiles it as a whole; under grad, jvp and
        vmap bind the ``call`` primitive, whose rules transform the traced graph as a whole
        and keep it compiled."""
        if isinstance(top_trace(leaves), GraphTrace) or self.device == "cuda" or config._values["debug_nans"]:
            return self.fun(*args, **kwargs)
        sig = tuple((tuple(x.shape), np.dtype(x.dtype)) for x in leaves)
        key = (in_def, sig, static, skw)
        traced = self._graphs.get(key)
        if traced is None:
            graph, out_def = self._trace(args, static, skw, in_def, [ShapedArray(x.shape, x.dtype) for x in leaves])
            graph, consts = hoist_traced_consts(graph)
            traced = (graph, out_def, consts)
            if not consts:
                self._graphs[key] = traced
        graph, out_def, consts = traced
        if isinstance(top_trace(consts), GraphTrace):
            return self.fun(*args, **kwargs)
        return out_def.unflatten(bind_call(graph, self.device, [*consts, *leaves]))

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
        if any(isinstance(c, Tracer) for c in graph.consts):
            return None
        if self.device == "cpu" and config._values["async_compile"] and not _fast_compile(graph):
            from ..backends import interpreter

            entry = Compiled(graph, None, out_def)
            entry.run = _then_compile(entry, interpreter.compile(graph), fun_name(self.fun))
        else:
            entry = Compiled(graph, _get_backend(self.device).compile(graph), out_def)
            entry.ready.set()
        self._cache[key] = entry
        self._last_key = key
        return entry

    def wait_compiled(self, timeout=None) -> bool:
        """Block until every signature traced so far runs compiled code (tiered compilation
        compiles in the background); returns False on timeout."""
        return all(e.ready.wait(timeout) for e in list(self._cache.values()))

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


def _fast_compile(graph) -> bool:
    """Whether the CPU backend already holds this graph's kernels (compiling is then cheap)."""
    from ..backends.numba_cpu import compiler

    return compiler.in_memory(graph)


def _then_compile(entry, interpreted, name):
    """A first ``run`` that answers on the interpreter, then starts the background compile (after
    the call, so the compile does not compete with it for the interpreter lock)."""
    def first(leaves):
        entry.run = interpreted
        try:
            return interpreted(leaves)
        finally:  # not a daemon: exiting waits for it (LLVM aborts if torn down mid-compile)
            threading.Thread(target=_compile_in_background, args=(entry, name), name="funcgrad-jit",
                             daemon=False).start()

    return first


def _compile_in_background(entry, name):
    from ..backends import numba_cpu

    try:
        entry.run = numba_cpu.compile(entry.graph)
    except Exception as exc:  # noqa: BLE001  (the interpreter keeps serving the signature, correctly)
        warnings.warn(f"jit({name}): the Numba backend failed to compile ({type(exc).__name__}: {exc}); "
                      "running on the NumPy interpreter instead", RuntimeWarning, stacklevel=1)
    finally:
        entry.ready.set()


def jit(fun=None, *, static_argnums=(), static_argnames=(), device="cpu"):
    """Compile ``fun``: traced once per (shapes, dtypes, static values, pytree structure).

    On ``device="cpu"`` the first call of a new signature compiles with Numba (kernels are
    cached on disk, so a later process skips code generation and LLVM). With
    ``fg.config.update("async_compile", True)`` the first calls run on the NumPy interpreter
    while Numba compiles in a background thread instead (lower latency; early and later calls
    may then differ in the last bits).

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
