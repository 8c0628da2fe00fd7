"""Tracing: the stack of active transformations, tracers, and ``bind``.

Every transformation (jvp, reverse mode, vmap, staging into a graph) pushes a
``MainTrace`` on a stack. A value seen by a transformation is wrapped in a
``Tracer`` of that transformation's trace. ``bind`` sends a primitive to the
trace of highest level among its arguments; the trace's rule computes the
result by binding primitives on the lower-level values, so transformations
nest to any depth (this is the design of JAX's Autodidax).
"""
from __future__ import annotations

import itertools
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
_counter = itertools.count(1)


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


_fnp = None


def fnp():
    global _fnp
    if _fnp is None:
        from .. import numpy as m

        _fnp = m
    return _fnp


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

    @property
    def T(self):
        return fnp().transpose(self)

    @property
    def at(self):
        return fnp()._index_update_helper(self)

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

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        f = getattr(fnp(), ufunc.__name__, None)
        if method != "__call__" or f is None or kwargs:
            return NotImplemented
        return f(*inputs)

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

    # -- operators ------------------------------------------------------------
    def __neg__(self): return fnp().negative(self)
    def __pos__(self): return self
    def __abs__(self): return fnp().abs(self)
    def __invert__(self): return fnp().invert(self)
    def __add__(self, o): return fnp().add(self, o)
    def __radd__(self, o): return fnp().add(o, self)
    def __sub__(self, o): return fnp().subtract(self, o)
    def __rsub__(self, o): return fnp().subtract(o, self)
    def __mul__(self, o): return fnp().multiply(self, o)
    def __rmul__(self, o): return fnp().multiply(o, self)
    def __truediv__(self, o): return fnp().true_divide(self, o)
    def __rtruediv__(self, o): return fnp().true_divide(o, self)
    def __floordiv__(self, o): return fnp().floor_divide(self, o)
    def __rfloordiv__(self, o): return fnp().floor_divide(o, self)
    def __mod__(self, o): return fnp().mod(self, o)
    def __rmod__(self, o): return fnp().mod(o, self)
    def __pow__(self, o): return fnp().power(self, o)
    def __rpow__(self, o): return fnp().power(o, self)
    def __matmul__(self, o): return fnp().matmul(self, o)
    def __rmatmul__(self, o): return fnp().matmul(o, self)
    def __and__(self, o): return fnp().bitwise_and(self, o)
    def __rand__(self, o): return fnp().bitwise_and(o, self)
    def __or__(self, o): return fnp().bitwise_or(self, o)
    def __ror__(self, o): return fnp().bitwise_or(o, self)
    def __xor__(self, o): return fnp().bitwise_xor(self, o)
    def __rxor__(self, o): return fnp().bitwise_xor(o, self)
    def __lshift__(self, o): return fnp().left_shift(self, o)
    def __rshift__(self, o): return fnp().right_shift(self, o)
    def __eq__(self, o): return fnp().equal(self, o)
    def __ne__(self, o): return fnp().not_equal(self, o)
    def __lt__(self, o): return fnp().less(self, o)
    def __le__(self, o): return fnp().less_equal(self, o)
    def __gt__(self, o): return fnp().greater(self, o)
    def __ge__(self, o): return fnp().greater_equal(self, o)
    def __getitem__(self, idx): return fnp()._getitem(self, idx)

    # -- array methods --------------------------------------------------------
    def sum(self, axis=None, dtype=None, keepdims=False, *, out=None): return _no_out(out, "sum") or fnp().sum(self, axis, dtype, keepdims=keepdims)
    def mean(self, axis=None, dtype=None, keepdims=False, *, out=None): return _no_out(out, "mean") or fnp().mean(self, axis, dtype, keepdims=keepdims)
    def prod(self, axis=None, dtype=None, keepdims=False, *, out=None): return _no_out(out, "prod") or fnp().prod(self, axis, dtype, keepdims=keepdims)
    def max(self, axis=None, keepdims=False, *, out=None): return _no_out(out, "max") or fnp().max(self, axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False, *, out=None): return _no_out(out, "min") or fnp().min(self, axis, keepdims=keepdims)
    def var(self, axis=None, ddof=0, keepdims=False, *, out=None, dtype=None): return _no_out(out, "var") or fnp().var(self, axis, dtype, ddof=ddof, keepdims=keepdims)
    def std(self, axis=None, ddof=0, keepdims=False, *, out=None, dtype=None): return _no_out(out, "std") or fnp().std(self, axis, dtype, ddof=ddof, keepdims=keepdims)
    def argmax(self, axis=None, *, out=None): return _no_out(out, "argmax") or fnp().argmax(self, axis)
    def argmin(self, axis=None, *, out=None): return _no_out(out, "argmin") or fnp().argmin(self, axis)
    def cumsum(self, axis=None, *, out=None): return _no_out(out, "cumsum") or fnp().cumsum(self, axis)
    def all(self, axis=None, keepdims=False, *, out=None): return _no_out(out, "all") or fnp().all(self, axis, keepdims=keepdims)
    def any(self, axis=None, keepdims=False, *, out=None): return _no_out(out, "any") or fnp().any(self, axis, keepdims=keepdims)
    def dot(self, o): return fnp().dot(self, o)
    def clip(self, a_min=None, a_max=None): return fnp().clip(self, a_min, a_max)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = shape[0]
        return fnp().reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = axes[0]
        return fnp().transpose(self, axes or None)

    def astype(self, dtype): return fnp().asarray(self, dtype)
    def ravel(self): return fnp().ravel(self)
    def flatten(self): return fnp().ravel(self)
    def squeeze(self, axis=None): return fnp().squeeze(self, axis)
    def swapaxes(self, a, b): return fnp().swapaxes(self, a, b)
    def copy(self): return self


def _no_out(out, name):
    """NumPy's reductions (np.sum(x), ...) call these methods with ``out=None``."""
    if out is not None:
        raise FuncgradTypeError(at_user_line(
            f"{name}(..., out=...) is not supported on traced arrays (they are immutable); use the "
            "returned array instead"))


def get_aval(x) -> ShapedArray:
    if isinstance(x, Tracer):
        return x.aval
    return aval_of_value(x)


def new_id() -> int:
    return next(_counter)


def is_tracer(x) -> bool:
    return isinstance(x, Tracer)


def current_level() -> int:
    return len(_stack)


def innermost_concrete(x):
    """Strip tracers down to a concrete NumPy value, or raise ConcretizationError."""
    while isinstance(x, Tracer):
        x = x.concrete_value()
    return x


def user_source():
    return user_location(2)
