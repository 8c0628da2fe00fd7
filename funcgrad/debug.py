"""Debugging inside transformed code: print real values from inside ``jit``, ``grad`` and
``vmap``, print cotangents in the backward pass, and find the line that made a NaN.

>>> import funcgrad as fg, funcgrad.numpy as fnp
>>> @fg.jit
... def f(x):
...     y = fnp.sin(x)
...     fg.debug.print("x = {x}, sin(x) = {y}", x=x, y=y)
...     return y * 2.0

``fg.config.update("debug_nans", True)`` (or ``FUNCGRAD_DEBUG_NANS=1``) makes the first
primitive that produces a NaN or Inf raise ``FloatingPointError`` with the user's line.
"""
from __future__ import annotations

import numpy as np

from .core import trace as _trace
from .core.trace import Tracer
from .errors import FuncgradTypeError, FuncgradValueError, at_user_line
from .primitives.debug import debug_cotangent_p, debug_print_p, format_values
from .tree_util import tree_flatten

__all__ = ["debug_nans", "print", "print_cotangents"]


def _check_format(fmt, tree, leaves, what):
    """Fail at trace time, at the user's line, when ``fmt`` does not fit the values."""
    if not isinstance(fmt, str):
        raise FuncgradTypeError(at_user_line(f"{what}: the format must be a str, got {type(fmt).__name__}"))
    samples = [np.zeros(x.shape, x.dtype) if isinstance(x, Tracer) else x for x in leaves]
    try:
        format_values(fmt, tree, samples)
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        shapes = ", ".join(_trace.get_aval(x).str_short() for x in leaves) or "no values"
        raise FuncgradValueError(at_user_line(
            f"{what}: format {fmt!r} does not fit the values given ({shapes}): "
            f"{type(exc).__name__}: {exc}. Name each placeholder after a keyword argument "
            "({x}) or number them after the positional ones ({0})")) from None


def _staged_leaves(leaves):
    """Leaves to bind: under a transformation, constants are lifted into its innermost trace
    so the print is part of the traced program (and runs each call, not once at trace time)."""
    if any(isinstance(x, Tracer) for x in leaves) or not _trace._stack:
        return list(leaves)
    top = _trace._stack[0].trace  # the outermost: a jit being traced stages the print
    return [top.pure(np.asarray(x)) for x in leaves] or [top.pure(np.zeros((), bool))]


def print(fmt: str, *args, ordered: bool = True, **kwargs) -> None:
    """Print ``fmt.format(*args, **kwargs)`` with the real values, also inside ``jit``,
    ``grad``, ``jvp`` and ``vmap`` (one line per batch element, in order).

    Prints run in program order each time the (compiled) function runs; ``ordered`` is
    accepted for JAX compatibility. Under ``grad`` the forward values are printed; use
    :func:`print_cotangents` for the backward pass.

    >>> import funcgrad as fg, numpy as np
    >>> fg.debug.print("x = {x:.2f}", x=np.float64(1.5))
    x = 1.50
    """
    del ordered
    leaves, tree = tree_flatten((args, kwargs))
    if any(isinstance(x, Tracer) for x in leaves):
        _check_format(fmt, tree, leaves, "debug.print")
    staged = _staged_leaves(leaves)
    debug_print_p.bind(*staged, fmt=fmt, tree=tree, nargs=len(leaves))


def print_cotangents(fmt: str, *args):
    """Return ``args`` unchanged (one argument: itself), and in the backward pass of
    ``grad``/``vjp`` print the cotangents that flow back into them, formatted by ``fmt``.

    >>> import funcgrad as fg, funcgrad.numpy as fnp
    >>> def loss(w):
    ...     h = fg.debug.print_cotangents("dL/dh = {}", fnp.tanh(w))
    ...     return fnp.sum(h ** 2)
    >>> g = fg.grad(loss)(np.ones(2))  # prints dL/dh = [1.52318831 1.52318831]
    """
    if not args:
        raise FuncgradTypeError(at_user_line("debug.print_cotangents: give at least one value"))
    leaves, tree = tree_flatten((args, {}))
    _check_format(fmt, tree, leaves, "debug.print_cotangents")
    outs = debug_cotangent_p.bind(*leaves, fmt=fmt, tree=tree)
    (out_args, _) = tree.unflatten(outs)
    return out_args[0] if len(out_args) == 1 else tuple(out_args)


def debug_nans(enabled: bool = True) -> None:
    """Shorthand for ``fg.config.update("debug_nans", enabled)``."""
    _trace.config.update("debug_nans", bool(enabled))
