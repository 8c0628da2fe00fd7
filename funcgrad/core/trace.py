"""Tracing: the stack of active transformations, tracers, and ``bind``.

Every transformation (jvp, reverse mode, vmap, staging into a graph) pushes a
``MainTrace`` on a stack. A value seen by a transformation is wrapped in a
``Tracer`` of that transformation's trace. ``bind`` sends a primitive to the
trace of highest level among its arguments; the trace's rule computes the
result by binding primitives on the lower-level values, so transformations
nest to any depth (this is the design of JAX's Autodidax).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..config import config
from ..errors import (
    ConcretizationError,
    FuncgradError,
    FuncgradFloatingPointError,
    FuncgradIndexError,
    FuncgradTypeError,
    FuncgradValueError,
    UnexpectedTracerError,
    at_user_line,
    user_location,
)
from .avals import ShapedArray, aval_of_value
from .primitive import Primitive


class MainTrace:
    __slots__ = ("alive", "data", "level", "name", "trace")

    def __init__(self, level, trace_type, data, name):
        self.level = level
        self.alive = True
        self.data = data
        self.name = name
        self.trace = trace_type(self)

    def __repr__(self):
        return f"MainTrace({self.name}, level={self.level})"


class Trace:
    """Base class of the interpreters of a transformation."""

    __slots__ = ("level", "main")

    def __init__(self, main):
        self.main = main
        self.level = main.level

    def pure(self, val):
        raise NotImplementedError(type(self).__name__ + ".pure")

    def lift(self, tracer):
        return self.pure(tracer)

    def process_primitive(self, prim, tracers, params):
        raise NotImplementedError(type(self).__name__ + ".process_primitive")


_stack: list[MainTrace] = []


class new_main:
    """``with new_main(TraceType, data) as main:`` pushes a transformation on the stack."""

    __slots__ = ("main",)

    def __init__(self, trace_type, data=None, name=None):
        self.main = MainTrace(len(_stack) + 1, trace_type, data, name or trace_type.__name__)

    def __enter__(self):
        _stack.append(self.main)
        return self.main

    def __exit__(self, *exc):
        self.main.alive = False
        _stack.pop()
        return False


# -- provenance: which user line an operation belongs to ----------------------------------
# While a backward rule (or a jitted equation under debug_nans) runs, the innermost entry
# says which user line the work belongs to: (source "file:line", note such as
# "the backward pass of 'sqrt'"). Empty otherwise, so the normal path never looks at it.
_provenance: list[tuple] = []


@contextmanager
def provenance(source, note=None):
    """Attribute the primitives run inside this block to ``source`` (a "file:line")."""
    _provenance.append((source, note))
    try:
        yield
    finally:
        _provenance.pop()


def current_source():
    """The user line that work done now belongs to: the active provenance or the caller's."""
    if _provenance and _provenance[-1][0]:
        return _provenance[-1][0]
    return user_location(1)


def _where():
    if _provenance and _provenance[-1][0]:
        return _provenance[-1]
    return user_location(1), None


def source_text(location):
    """``"file:line"`` followed by that line of code (when the file can be read)."""
    import linecache

    path, _, line = location.rpartition(":")
    code = linecache.getline(path, int(line)).strip() if line.isdigit() else ""
    return f"{location}\n    {code}" if code else location


def nonfinite_kind(value):
    """``"NaN"``, ``"Inf"`` or None for a concrete value of any dtype."""
    a = np.asarray(value)
    if a.dtype.kind not in "fc" or np.isfinite(a).all():
        return None
    return "NaN" if np.isnan(a).any() else "Inf"


def nan_error(what, kind, args=(), note=None, location=None):
    """The FloatingPointError that debug_nans raises for ``what`` (e.g. "primitive 'log'")."""
    shapes = ", ".join(aval_of_value(x).str_short() for x in args)
    msg = f"debug_nans: {what} produced {kind}" + (f" from inputs ({shapes})" if args else "")
    if note:
        msg += f" in {note}"
    bad_in = [i for i, x in enumerate(args) if nonfinite_kind(x)]
    if bad_in:
        msg += (f"; input {bad_in[0]} already held NaN/Inf, so it was made outside funcgrad's "
                "primitives (check the function's arguments)")
    if location:
        msg += "\n  at " + source_text(location)
    msg += "\nTurn the check off with fg.config.update('debug_nans', False)"
    return FuncgradFloatingPointError(msg)


def _check_nans(prim, args, out):
    outs = out if prim.multiple_results else (out,)
    for o in outs:
        kind = nonfinite_kind(o)
        if kind:
            location, note = _where()
            raise nan_error(f"primitive '{prim.name}'", kind, args, note, location)


# -- errors from a primitive's NumPy implementation ----------------------------------------
_ERROR_CLASSES: dict = {ValueError: FuncgradValueError, TypeError: FuncgradTypeError,
                        IndexError: FuncgradIndexError}


def _funcgrad_class(t):
    cls = _ERROR_CLASSES.get(t)
    if cls is None:
        cls = _ERROR_CLASSES[t] = type("Funcgrad" + t.__name__, (FuncgradError, t),
                                       {"__module__": "funcgrad.errors"})
    return cls


def with_user_line(exc, location=None):
    """``exc`` again, its message ending with the user's file:line (if it does not yet)."""
    msg = str(exc)
    if "\n  at " in msg:
        return exc
    loc = location or user_location(1)
    if loc is None:
        return exc
    try:
        return type(exc)(at_user_line(msg, loc))
    except TypeError:
        return exc


def _abstract_eval_error(prim, args, params):
    """The FuncgradError that ``prim``'s abstract evaluation raises for these values, if any."""
    try:
        prim.abstract_eval(*[aval_of_value(x) for x in args], **params)
    except FuncgradError as exc:
        return exc
    except Exception:  # noqa: BLE001 - no better message: NumPy's is used
        return None
    return None


def impl_error(prim, args, params, exc):
    """A funcgrad error for ``exc`` raised by ``prim``'s NumPy implementation."""
    location, note = _where()
    better = _abstract_eval_error(prim, args, params)
    if better is not None:  # the shape/dtype checks say it best
        return with_user_line(better, location)
    shapes = ", ".join(aval_of_value(x).str_short() for x in args)
    msg = f"{prim.name}: {exc} (inputs {shapes})"
    if note:
        msg += f" in {note}"
    try:
        return _funcgrad_class(type(exc))(at_user_line(msg, location))
    except TypeError:
        base = FuncgradTypeError if isinstance(exc, TypeError) else FuncgradValueError
        return base(at_user_line(msg, location))


def eval_primitive(prim, args, params):
    try:
        out = prim.impl(*args, **params)
    except FuncgradError:
        raise
    except (ValueError, TypeError, IndexError, ArithmeticError) as exc:
        raise impl_error(prim, args, params, exc) from None
    if _config_values["debug_nans"]:
        _check_nans(prim, args, out)
    return out


def bind(prim, args, params):
    top = None
    level = 0
    for a in args:
        if isinstance(a, Tracer):
            lv = a._trace.level
            if lv > level:
                top, level = a._trace, lv
    if top is None:
        return eval_primitive(prim, args, params)
    main = top.main
    if not main.alive:
        raise UnexpectedTracerError(at_user_line(
            f"a traced value of an ended transformation ({main.name}) was passed to '{prim.name}'. "
            "A value computed inside grad/jit/vmap escaped it (stored in a global or a closure "
            "and used later); return it from the function instead"
        ))
    tracers = [a if isinstance(a, Tracer) and a._trace is top else full_raise(top, a) for a in args]
    return top.process_primitive(prim, tracers, params)


def _primitive_bind(prim, *args, **params):
    """``prim.bind(*args, **params)``: NumPy straight away when no argument is traced."""
    for a in args:
        if isinstance(a, Tracer):
            return bind(prim, args, params)
    return eval_primitive(prim, args, params)


Primitive.bind = _primitive_bind
_config_values = config._values


def full_raise(trace, val):
    if not isinstance(val, Tracer):
        return trace.pure(val)
    t = val._trace
    if t is trace:
        return val
    if not t.main.alive:
        raise UnexpectedTracerError(at_user_line(
            f"a traced value of an ended transformation ({t.main.name}) was used. A value computed "
            "inside grad/jit/vmap escaped it (stored in a global or a closure); return it instead"
        ))
    if t.level < trace.level:
        return trace.lift(val)
    raise UnexpectedTracerError(at_user_line(
        f"a traced value of {t.main.name} (level {t.level}) met {trace.main.name} (level {trace.level})"
    ))


class Tracer:
    """A value seen by a transformation. Behaves like an array in traced code."""

    __slots__ = ("_trace",)
    __array_priority__ = 1000

    # -- abstract properties ------------------------------------------------
    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError

    @property
    def shape(self):
        return self.aval.shape

    @property
    def dtype(self):
        return self.aval.dtype

    @property
    def ndim(self):
        return len(self.aval.shape)

    @property
    def size(self):
        return self.aval.size

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.shape[0]))

    # -- concrete values (eager transforms only) ------------------------------
    def concrete_value(self):
        """The NumPy value under this tracer, or raise ConcretizationError."""
        raise ConcretizationError(at_user_line(
            f"a traced value ({self.aval.str_short()}) was used where a concrete value is needed "
            "(Python if/while, bool(), float(), int(), np.asarray). Inside jit the value is not known "
            "at trace time: pass the argument in static_argnums, or use funcgrad.lax.cond / "
            "funcgrad.lax.while_loop / fnp.where"
        ))

    def __bool__(self):
        return bool(self.concrete_value())

    def __float__(self):
        return float(self.concrete_value())

    def __int__(self):
        return int(self.concrete_value())

    def __index__(self):
        return int(self.concrete_value())

    def __complex__(self):
        return complex(self.concrete_value())

    def __array__(self, dtype=None, copy=None):
        raise ConcretizationError(at_user_line(
            f"np.asarray / a NumPy function was called on a traced value ({self.aval.str_short()}), "
            "or a NumPy array was indexed with one. Use funcgrad.numpy (import funcgrad.numpy as fnp) "
            "inside functions that funcgrad transforms, so derivatives and compilation can see the "
            "operation; to index a NumPy array `a` with a traced value, write fnp.asarray(a)[i] "
            "(arrays made by fnp.zeros, fnp.eye, fnp.arange ... take traced indices as they are)"
        ))

    def __hash__(self):
        raise FuncgradTypeError(at_user_line(
            f"a traced array ({self.aval.str_short()}) is unhashable; static arguments of jit must "
            "be hashable Python values"
        ))

    def __setitem__(self, idx, value):
        raise FuncgradTypeError(at_user_line(
            f"traced arrays are immutable: x[{idx!r}] = ... is not allowed on {self.aval.str_short()}. "
            "Use x = x.at[idx].set(value) (or .add(value)), which returns the updated array"
        ))

    def __repr__(self):
        return f"{type(self).__name__}<{self.aval.str_short()}>"

    # -- the array API ---------------------------------------------------------
    # Operators (x + y, x[i], ...), array methods (x.sum(), x.reshape(...), x.astype(...)), x.T,
    # x.at[...] and __array_ufunc__ call funcgrad.numpy, so funcgrad.numpy installs them on this class
    # when it is imported (funcgrad/numpy/_tracer_methods.py); ``import funcgrad`` always does.
    def __pos__(self): return self
    def copy(self): return self


def get_aval(x) -> ShapedArray:
    if isinstance(x, Tracer):
        return x.aval
    return aval_of_value(x)


def innermost_concrete(x):
    """Strip tracers down to a concrete NumPy value, or raise ConcretizationError."""
    while isinstance(x, Tracer):
        x = x.concrete_value()
    return x
