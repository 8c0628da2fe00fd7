"""Argument handling shared by the transforms: argnums, dtype checks, outputs."""
from __future__ import annotations

import inspect

import numpy as np

from ..core.trace import Tracer
from ..errors import FuncgradTypeError, FuncgradValueError, at_user_line
from ..tree_util import tree_flatten


def normalize_argnums(argnums, nargs, fun, transform):
    if type(argnums) is int and 0 <= argnums < nargs:
        return True, (argnums,)
    single = isinstance(argnums, (int, np.integer))
    nums = (int(argnums),) if single else tuple(argnums)
    if not nums:
        raise FuncgradValueError(f"{transform}: argnums is empty")
    out = []
    for a in nums:
        if not isinstance(a, (int, np.integer)):
            raise FuncgradTypeError(f"{transform}: argnums must be ints, got {a!r}")
        if not -nargs <= a < nargs:
            raise FuncgradValueError(at_user_line(
                f"{transform}: argnums={argnums!r} but {fun_name(fun)} was called with {nargs} "
                f"positional argument{'s' if nargs != 1 else ''}; argnums counts positional "
                f"arguments from 0, so it must be in {-nargs}..{nargs - 1}"))
        out.append(a % nargs)
    return single, tuple(out)


def fun_name(fun):
    return getattr(fun, "__name__", None) or repr(fun)


def arg_name(fun, i):
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return f"argument {i}"
    if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY, params[i].POSITIONAL_OR_KEYWORD):
        return f"argument {i} ('{params[i].name}')"
    return f"argument {i}"


def dtype_of(x):
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return x.dtype
    if isinstance(x, bool):
        return np.dtype(bool)
    if isinstance(x, int):
        return np.dtype(np.int64)
    if isinstance(x, float):
        return np.dtype(np.float64)
    return np.asarray(x).dtype


def check_float_args(fun, args, argnums, transform):
    for i in argnums:
        leaves, _ = tree_flatten(args[i])
        for leaf in leaves:
            dt = leaf.dtype if isinstance(leaf, np.ndarray) else dtype_of(leaf)
            if dt.kind != "f":
                raise FuncgradTypeError(at_user_line(
                    f"{transform}: {arg_name(fun, i)} of {fun_name(fun)} has dtype {dt}; funcgrad only "
                    "differentiates with respect to floating-point inputs. Pass it as a float array "
                    "(e.g. x.astype(np.float64)) or leave it out of argnums"))


def as_input(x):
    """Convert a leaf handed to a transform into an array (tracers pass through)."""
    if isinstance(x, Tracer):
        return x
    if isinstance(x, np.ndarray):
        return x
    arr = np.asarray(x)
    if arr.dtype == object:
        raise FuncgradTypeError(f"funcgrad cannot use a value of type {type(x).__name__} as an array")
    return arr


def as_output(x):
    """Leaves returned to the user: NumPy arrays (0-d for scalars), or tracers when nested."""
    if isinstance(x, (Tracer, np.ndarray)):
        return x
    return np.asarray(x)


def zeros_like_leaf(x):
    from ..primitives import zeros_like_value

    if isinstance(x, Tracer):
        return zeros_like_value(x)
    return np.zeros(np.shape(x), dtype=dtype_of(x))
