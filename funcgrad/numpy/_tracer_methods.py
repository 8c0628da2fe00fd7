"""The array API of traced values: ``Tracer``'s operators and methods, which call ``funcgrad.numpy``.

``funcgrad.core`` knows nothing of ``funcgrad.numpy``; importing ``funcgrad.numpy`` (which
``import funcgrad`` does) installs these on :class:`funcgrad.core.trace.Tracer`, so ``x + y``,
``x.sum()``, ``x.T``, ``x[i]``, ``x.at[i].set(v)`` and NumPy ufuncs on traced values run
funcgrad.numpy's functions. Each looks its function up on the module when called.
"""
from __future__ import annotations

from .. import numpy as fnp
from ..core.trace import Tracer
from ..errors import ConcretizationError, FuncgradTypeError, at_user_line


def _no_out(out, name):
    """NumPy's reductions (np.sum(x), ...) call these methods with ``out=None``."""
    if out is not None:
        raise FuncgradTypeError(at_user_line(
            f"{name}(..., out=...) is not supported on traced arrays (they are immutable); use the "
            "returned array instead"))


class _TracerMethods:
    """Holder of the definitions; ``install`` copies them onto ``Tracer``."""

    @property
    def T(self):
        return fnp.transpose(self)

    @property
    def at(self):
        return fnp._index_update_helper(self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        f = getattr(fnp, ufunc.__name__, None)
        if method != "__call__" or f is None or kwargs:
            return NotImplemented
        return f(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        """A NumPy function called on a traced value runs funcgrad.numpy's function of the same
        name; where there is none, the error names the NumPy function."""
        module = func.__module__ or "numpy"
        sub = module.split(".", 1)[1] if module.startswith("numpy.") else ""
        space = fnp
        for part in sub.split(".") if sub else ():
            space = getattr(space, part, None)
        f = getattr(space, func.__name__, None) if space is not None else None
        if f is None or not callable(f):
            raise ConcretizationError(at_user_line(
                f"{module}.{func.__name__} was called on a traced value ({self.aval.str_short()}): NumPy "
                "cannot see through funcgrad's transformations, and funcgrad.numpy has no "
                f"{(sub + '.') if sub else ''}{func.__name__}. Write the computation with funcgrad.numpy "
                "functions (import funcgrad.numpy as fnp), or pass concrete arrays"))
        return f(*args, **kwargs)

    # -- operators ------------------------------------------------------------
    def __neg__(self): return fnp.negative(self)
    def __abs__(self): return fnp.abs(self)
    def __invert__(self): return fnp.invert(self)
    def __add__(self, o): return fnp.add(self, o)
    def __radd__(self, o): return fnp.add(o, self)
    def __sub__(self, o): return fnp.subtract(self, o)
    def __rsub__(self, o): return fnp.subtract(o, self)
    def __mul__(self, o): return fnp.multiply(self, o)
    def __rmul__(self, o): return fnp.multiply(o, self)
    def __truediv__(self, o): return fnp.true_divide(self, o)
    def __rtruediv__(self, o): return fnp.true_divide(o, self)
    def __floordiv__(self, o): return fnp.floor_divide(self, o)
    def __rfloordiv__(self, o): return fnp.floor_divide(o, self)
    def __mod__(self, o): return fnp.mod(self, o)
    def __rmod__(self, o): return fnp.mod(o, self)
    def __pow__(self, o): return fnp.power(self, o)
    def __rpow__(self, o): return fnp.power(o, self)
    def __matmul__(self, o): return fnp.matmul(self, o)
    def __rmatmul__(self, o): return fnp.matmul(o, self)
    def __and__(self, o): return fnp.bitwise_and(self, o)
    def __rand__(self, o): return fnp.bitwise_and(o, self)
    def __or__(self, o): return fnp.bitwise_or(self, o)
    def __ror__(self, o): return fnp.bitwise_or(o, self)
    def __xor__(self, o): return fnp.bitwise_xor(self, o)
    def __rxor__(self, o): return fnp.bitwise_xor(o, self)
    def __lshift__(self, o): return fnp.left_shift(self, o)
    def __rshift__(self, o): return fnp.right_shift(self, o)
    def __eq__(self, o): return fnp.equal(self, o)
    def __ne__(self, o): return fnp.not_equal(self, o)
    def __lt__(self, o): return fnp.less(self, o)
    def __le__(self, o): return fnp.less_equal(self, o)
    def __gt__(self, o): return fnp.greater(self, o)
    def __ge__(self, o): return fnp.greater_equal(self, o)
    def __getitem__(self, idx): return fnp._getitem(self, idx)

    # -- array methods --------------------------------------------------------
    def sum(self, axis=None, dtype=None, keepdims=False, *, out=None): return _no_out(out, "sum") or fnp.sum(self, axis, dtype, keepdims=keepdims)
    def mean(self, axis=None, dtype=None, keepdims=False, *, out=None): return _no_out(out, "mean") or fnp.mean(self, axis, dtype, keepdims=keepdims)
    def prod(self, axis=None, dtype=None, keepdims=False, *, out=None): return _no_out(out, "prod") or fnp.prod(self, axis, dtype, keepdims=keepdims)
    def max(self, axis=None, keepdims=False, *, out=None): return _no_out(out, "max") or fnp.max(self, axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False, *, out=None): return _no_out(out, "min") or fnp.min(self, axis, keepdims=keepdims)
    def var(self, axis=None, ddof=0, keepdims=False, *, out=None, dtype=None): return _no_out(out, "var") or fnp.var(self, axis, dtype, ddof=ddof, keepdims=keepdims)
    def std(self, axis=None, ddof=0, keepdims=False, *, out=None, dtype=None): return _no_out(out, "std") or fnp.std(self, axis, dtype, ddof=ddof, keepdims=keepdims)
    def argmax(self, axis=None, *, out=None): return _no_out(out, "argmax") or fnp.argmax(self, axis)
    def argmin(self, axis=None, *, out=None): return _no_out(out, "argmin") or fnp.argmin(self, axis)
    def cumsum(self, axis=None, *, out=None): return _no_out(out, "cumsum") or fnp.cumsum(self, axis)
    def all(self, axis=None, keepdims=False, *, out=None): return _no_out(out, "all") or fnp.all(self, axis, keepdims=keepdims)
    def any(self, axis=None, keepdims=False, *, out=None): return _no_out(out, "any") or fnp.any(self, axis, keepdims=keepdims)
    def dot(self, o): return fnp.dot(self, o)
    def clip(self, a_min=None, a_max=None): return fnp.clip(self, a_min, a_max)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = shape[0]
        return fnp.reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = axes[0]
        return fnp.transpose(self, axes or None)

    def astype(self, dtype): return fnp.asarray(self, dtype)
    def ravel(self): return fnp.ravel(self)
    def flatten(self): return fnp.ravel(self)
    def squeeze(self, axis=None): return fnp.squeeze(self, axis)
    def swapaxes(self, a, b): return fnp.swapaxes(self, a, b)


# ``__hash__`` is None in the holder's namespace because it defines ``__eq__``: Tracer keeps its own
_SKIP = {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__hash__"}
METHODS = {name: v for name, v in vars(_TracerMethods).items() if name not in _SKIP}


def install(cls=Tracer):
    """Set the array API on ``cls`` (``Tracer``)."""
    for name, value in METHODS.items():
        fn = value.fget if isinstance(value, property) else value
        fn.__qualname__ = f"{cls.__name__}.{name}"
        setattr(cls, name, value)


install()
