"""Debugging primitives: print concrete values from inside transformed and compiled code.

- ``debug_print[fmt, tree, nargs, nbatch]`` is effectful (dead-code elimination keeps it)
  and has no outputs. Its implementation formats its operands and prints them, so it runs
  wherever the graph runs: eagerly, in the NumPy interpreter, or in a compiled program
  whose backend calls primitives it cannot lower through their implementation.
- ``debug_cotangent[fmt, tree]`` is the identity; its VJP prints the cotangents flowing
  back into its operands (by binding ``debug_print`` in the backward pass).
"""
from __future__ import annotations

import builtins

import numpy as np

from ..core.avals import ShapedArray
from ..core.primitive import Kind, Primitive
from ._rules import move_batch_to_front, shape_of


def _value(a):
    a = np.asarray(a)
    return a[()] if a.ndim == 0 else a


def format_values(fmt, tree, leaves):
    """``fmt.format(*args, **kwargs)`` with ``(args, kwargs)`` rebuilt from ``leaves``."""
    args, kwargs = tree.unflatten([_value(x) for x in leaves])
    return fmt.format(*args, **kwargs)


def _print_impl(*leaves, fmt, tree, nargs, nbatch=0):
    leaves = leaves[:nargs]
    if nbatch == 0 or not leaves:
        builtins.print(format_values(fmt, tree, leaves), flush=True)
        return []
    arrays = [np.asarray(x) for x in leaves]
    for idx in np.ndindex(*arrays[0].shape[:nbatch]):
        builtins.print(format_values(fmt, tree, [a[idx] for a in arrays]), flush=True)
    return []


def _print_batch(args, dims, *, fmt, tree, nargs, nbatch=0):
    """vmap: one line per batch element, in order (the batch axis leads every operand)."""
    from . import broadcast_to, reshape

    size = next(shape_of(a)[d] for a, d in zip(args, dims) if d is not None)
    moved = [move_batch_to_front(a, d) if d is not None else
             broadcast_to(reshape(a, (1,) + shape_of(a)), (size,) + shape_of(a))
             for a, d in zip(args, dims)]
    debug_print_p.bind(*moved, fmt=fmt, tree=tree, nargs=nargs, nbatch=nbatch + 1)
    return [], []


debug_print_p = Primitive("debug_print", multiple_results=True, kind=Kind.OPAQUE,
                          differentiable=False, effectful=True)
debug_print_p.impl = _print_impl
debug_print_p.abstract_eval = lambda *avals, **params: []
debug_print_p.batch = _print_batch


def _ct_vjp(g, ans, primals, needs, *, fmt, tree):
    from . import zeros_like_value

    cts = [zeros_like_value(p) if c is None else c for c, p in zip(g, primals)]
    debug_print_p.bind(*cts, fmt=fmt, tree=tree, nargs=len(cts))
    return list(g)


debug_cotangent_p = Primitive("debug_cotangent", multiple_results=True, kind=Kind.OPAQUE)
debug_cotangent_p.impl = lambda *xs, fmt, tree: list(xs)
debug_cotangent_p.abstract_eval = lambda *avals, fmt, tree: [ShapedArray(a.shape, a.dtype) for a in avals]
debug_cotangent_p.jvp = lambda primals, tangents, *, fmt, tree: (
    debug_cotangent_p.bind(*primals, fmt=fmt, tree=tree), list(tangents))
debug_cotangent_p.vjp = _ct_vjp
debug_cotangent_p.batch = lambda args, dims, *, fmt, tree: (
    debug_cotangent_p.bind(*args, fmt=fmt, tree=tree), list(dims))
