"""Scalar lowerings: how one element of each primitive is written in Numba source.

Elementwise primitives carry a format template in ``prim.extra["numba"]`` (``"np.sin({0})"``,
``"({0} * {1})"``). A template is used only when every name in it is something Numba compiles
(a NumPy ufunc Numba supports, a ``math`` function, a builtin); the ``Element`` rule of a
primitive in ``table.py`` may choose a better lowering from here (NaN-propagating max/min,
expanded integer powers, and exp, log, tanh, sin, cos and logistic of floats through the
vectorisable approximations of ``vecmath.py``). Anything else runs through its NumPy ``impl`` in
the Python glue.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .. import fusion

SUPPORTED_DTYPES = frozenset(np.dtype(t) for t in (
    np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
    np.uint8, np.uint16, np.uint32, np.uint64, np.bool_))

_BUILTINS = frozenset({"if", "else", "not", "and", "or", "abs", "min", "max", "True", "False"})
_MATH_OK = frozenset({"erf", "erfc", "lgamma", "gamma", "exp", "expm1", "log", "log1p", "log10", "log2",
                      "sqrt", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh",
                      "asinh", "acosh", "atanh", "floor", "ceil", "trunc", "fabs", "copysign", "hypot",
                      "isnan", "isinf", "isfinite", "pow", "fmod"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9.]*")
# The NumPy ufuncs Numba compiles on scalars (numba.np.ufunc_db); listed here so that planning a
# graph does not import Numba's NumPy support (a few tenths of a second at start-up).
NUMBA_UFUNCS = frozenset([
    "absolute", "add", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh",
    "bitwise_and", "bitwise_or", "bitwise_xor", "cbrt", "ceil", "conjugate", "copysign", "cos", "cosh",
    "deg2rad", "degrees", "divide", "exp", "exp2", "expm1", "fabs", "float_power", "floor", "floor_divide",
    "fmax", "fmin", "fmod", "greater", "greater_equal", "hypot", "invert", "isfinite", "isinf", "isnan",
    "left_shift", "less", "less_equal", "log", "log10", "log1p", "log2", "logaddexp", "logaddexp2",
    "logical_and", "logical_not", "logical_or", "logical_xor", "maximum", "minimum", "multiply",
    "negative", "nextafter", "not_equal", "positive", "power", "rad2deg", "radians", "reciprocal",
    "remainder", "right_shift", "rint", "sign", "signbit", "sin", "sinh", "spacing", "sqrt", "square",
    "subtract", "tan", "tanh", "trunc", "equal",
])


def template_ok(template: str) -> bool:
    """Whether every name in a ``extra["numba"]`` template is one Numba compiles."""
    for name in _NAME.findall(re.sub(r"\{[^}]*\}", "", template)):
        if name in _BUILTINS:
            continue
        mod, _, attr = name.partition(".")
        if mod == "np" and attr in NUMBA_UFUNCS:
            continue
        if mod == "math" and attr in _MATH_OK:
            continue
        if mod == "np" and attr in _DTYPE_NAMES:
            continue
        return False
    return True


_DTYPE_NAMES = frozenset(d.name for d in SUPPORTED_DTYPES) | {"bool_"}


def np_type(dtype) -> str:
    dtype = np.dtype(dtype)
    return "np.bool_" if dtype == np.bool_ else f"np.{dtype.name}"


def literal(val, dtype) -> str:
    """Source text of the scalar ``val`` as a value of ``dtype`` (float32 stays float32)."""
    dtype = np.dtype(dtype)
    v = np.asarray(val).astype(dtype).item()
    if dtype == np.bool_:
        return "True" if v else "False"
    if dtype.kind == "f":
        if math.isnan(v):
            text = "np.nan"
        elif math.isinf(v):
            text = "np.inf" if v > 0 else "(-np.inf)"
        else:
            text = repr(float(v))
        return text if dtype == np.float64 else f"{np_type(dtype)}({text})"
    return str(int(v)) if dtype == np.int64 else f"{np_type(dtype)}({int(v)})"


def wrap(expr: str, dtype) -> str:
    """Pin the result of ``expr`` to ``dtype`` (Numba would widen float32 math to float64)."""
    return f"{np_type(dtype)}({expr})"


# -- element rules ---------------------------------------------------------------------------
def _ipow(args, params, dtype):
    x, y = args[0], int(params["y"])
    if y == 0:
        return literal(1, dtype)
    if 1 <= abs(y) <= 4:
        prod = "(" + " * ".join([x] * abs(y)) + ")"
        return prod if y > 0 else f"({literal(1, dtype)} / {prod})"
    return f"({x} ** {literal(y, dtype)})"


def _threefry(args, params, dtype):
    return f"_tf({', '.join(args)})"  # kernels.threefry2x32


def _not(args, params, dtype):
    return f"(not {args[0]})" if dtype == np.bool_ else f"(~{args[0]})"


def _convert(args, params, dtype):
    return f"{np_type(params['dtype'])}({args[0]})"


def _maximum(args, params, dtype):
    return f"np.maximum({args[0]}, {args[1]})"  # NaN-propagating, like NumPy


def _minimum(args, params, dtype):
    return f"np.minimum({args[0]}, {args[1]})"


SPECIAL = {"threefry": _threefry, "ipow": _ipow, "not": _not, "convert": _convert, "maximum": _maximum, "minimum": _minimum}

# Float exp, log, tanh, sin, cos and logistic call vecmath.py (imported as ``_vm`` by generated
# modules), which LLVM vectorises where libm runs one element at a time. sin and cos are exact
# only up to vecmath.TRIG_MAX: a loop using them counts the arguments beyond it
# (``fallback_check``) and, when there are any, runs again with ``Element.expr(..., libm=True)``.
_WIDTH = {np.dtype(np.float32): "32", np.dtype(np.float64): "64"}


@dataclass(frozen=True)
class Element:
    """How one element of an elementwise primitive is written (the ``elem`` entries of
    ``table.py``): through ``special`` (a ``SPECIAL`` name), else the primitive's
    ``extra["numba"]`` template; with ``vecmath``, float operands call that vecmath.py function
    instead (``bounded``: valid for arguments up to ``vecmath.TRIG_MAX`` only).
    ``transcendental`` marks the functions whose NumPy ufunc is much faster than a libm call
    per element (``chunked.py``). ``typed`` says when the text already has the output dtype, so
    no cast is written around it (each cast is a call Numba types and lowers): ``"float"``, a
    float result from operands of that dtype (Numba keeps float32 arithmetic float32);
    ``"bool"``, a bool result; ``"cast"``, always (the text is the cast)."""
    special: str | None = None
    vecmath: str | None = None
    bounded: bool = False
    transcendental: bool = False
    typed: str | None = None

    def vector_math(self, eqn) -> bool:
        """Whether ``eqn`` is lowered to a vecmath.py function."""
        dt = np.dtype(eqn.outvars[0].aval.dtype)
        return self.vecmath is not None and dt in _WIDTH and np.dtype(eqn.inputs[0].aval.dtype) == dt

    def needs_fallback(self, eqn) -> bool:
        """Whether the vecmath lowering of ``eqn`` holds only for bounded arguments."""
        return self.bounded and self.vector_math(eqn)

    def lowerable(self, eqn) -> bool:
        """Whether one element of ``eqn`` can be written in Numba source."""
        avals = [v.aval for v in eqn.inputs] + [v.aval for v in eqn.outvars]
        if any(np.dtype(a.dtype) not in SUPPORTED_DTYPES for a in avals):
            return False
        if self.special is not None or self.vector_math(eqn):
            return True
        template = eqn.prim.extra.get("numba")
        return isinstance(template, str) and template_ok(template)

    def expr(self, eqn, args: list[str], libm: bool = False) -> str:
        """Numba source computing one output element of ``eqn`` from its operands' element
        texts (``libm``: a bounded vecmath function through libm instead)."""
        in_dtype = np.dtype(eqn.inputs[0].aval.dtype) if eqn.inputs else None
        if self.vector_math(eqn) and not (libm and self.bounded):
            expr = self._vecmath_expr(eqn, args)
        elif self.special is not None:
            expr = SPECIAL[self.special](args, eqn.params, in_dtype)
        else:
            expr = eqn.prim.extra["numba"].format(*args, **eqn.params)
        return expr if self._has_out_dtype(eqn) else wrap(expr, eqn.outvars[0].aval.dtype)

    def _has_out_dtype(self, eqn) -> bool:
        out = np.dtype(eqn.outvars[0].aval.dtype)
        if self.typed == "cast":
            return True
        if self.typed == "bool":
            return out == np.bool_
        if self.typed == "float" and out in _WIDTH:
            values = [v for v in eqn.inputs if np.dtype(v.aval.dtype) != np.bool_] if len(eqn.inputs) == 3 \
                else eqn.inputs  # select: the condition is bool
            return all(np.dtype(v.aval.dtype) == out for v in values)
        return False

    def _vecmath_expr(self, eqn, args):
        name, width = self.vecmath, _WIDTH[np.dtype(eqn.outvars[0].aval.dtype)]
        if name == "logistic":
            one = literal(1, eqn.outvars[0].aval.dtype)
            return f"({one} / ({one} + _vm.exp{width}(-{args[0]})))"
        if name == "tanh" and width == "32":
            return f"_tanh32({args[0]})"
        return f"_vm.{name}{width}({args[0]})"


def fallback_check(eqn, args: list[str]) -> str:
    """Source of a bool: this element of ``eqn`` (``Element.needs_fallback``) needs libm."""
    return f"_vm.trig_fallback({args[0]})"


# -- reductions ------------------------------------------------------------------------------
REDUCTIONS = fusion.REDUCTIONS  # reduction primitive -> "sum" | "prod" | "max" | "min"


def reduce_identity(kind: str, dtype) -> str:
    dtype = np.dtype(dtype)
    if kind == "sum":
        return literal(0, dtype)
    if kind == "prod":
        return literal(1, dtype)
    if dtype == np.bool_:
        return "False" if kind == "max" else "True"
    if dtype.kind == "f":
        return literal(-np.inf if kind == "max" else np.inf, dtype)
    info = np.iinfo(dtype)
    return literal(info.min if kind == "max" else info.max, dtype)


def reduce_combine(kind: str, acc: str, x: str, dtype) -> str:
    if kind == "sum":
        return wrap(f"{acc} + {x}", dtype)
    if kind == "prod":
        return wrap(f"{acc} * {x}", dtype)
    return f"np.{'maximum' if kind == 'max' else 'minimum'}({acc}, {x})"
