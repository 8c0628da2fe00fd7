"""How one element of each elementwise primitive is written in CUDA device code.

The primitives' ``extra["numba"]`` templates are written for Numba on the CPU (``np.sin({0})``);
device code calls ``math`` functions instead, so ``np.NAME`` is mapped to its device spelling
(``math.sin``) and a few primitives get a lowering of their own (NaN-propagating max/min,
round-half-even, integer powers as products). Every result is cast back to the output dtype, so
``uint32`` arithmetic wraps and ``float32`` stays ``float32`` exactly as in NumPy (Numba widens
small integers to 64 bits and Python floats to float64). A primitive with no device spelling
returns ``None`` and runs on the host through its NumPy ``impl``.

>>> cast("(a + b)", np.uint32)
'uint32((a + b))'
"""
from __future__ import annotations

import math
import re

import numpy as np

from ...primitives import elementwise as ew
from ..numba_cpu import lowering

SUPPORTED_DTYPES = frozenset(np.dtype(t) for t in (
    np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
    np.uint8, np.uint16, np.uint32, np.uint64, np.bool_))

# np.NAME in a template -> device function (all exist in numba.cuda's math support)
_NP_TO_MATH = {
    "sin": "math.sin", "cos": "math.cos", "tan": "math.tan", "arcsin": "math.asin",
    "arccos": "math.acos", "arctan": "math.atan", "sinh": "math.sinh", "cosh": "math.cosh",
    "tanh": "math.tanh", "arcsinh": "math.asinh", "arccosh": "math.acosh", "arctanh": "math.atanh",
    "exp": "math.exp", "expm1": "math.expm1", "log": "math.log", "log2": "math.log2",
    "log10": "math.log10", "log1p": "math.log1p", "sqrt": "math.sqrt", "arctan2": "math.atan2",
    "floor": "math.floor", "ceil": "math.ceil", "trunc": "_trunc", "isnan": "math.isnan",
    "isinf": "math.isinf", "isfinite": "math.isfinite", "rint": "_rint", "sign": "_sign",
    "remainder": "_remainder", "floor_divide": "_floordiv",
}
_FLOAT_ONLY = frozenset(_NP_TO_MATH) - {"remainder", "floor_divide", "sign", "isnan", "isinf", "isfinite"}
_MATH_OK = frozenset({"erf", "erfc", "lgamma", "exp", "expm1", "log", "log1p", "log10", "log2", "sqrt",
                      "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh",
                      "asinh", "acosh", "atanh", "floor", "ceil", "trunc", "fabs", "isnan", "isinf",
                      "isfinite", "pow"})
_BUILTINS = frozenset({"if", "else", "not", "and", "or", "abs", "True", "False"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9.]*")

# Device helpers every kernel module defines (generic over the dtypes they are called with).
HELPERS = '''
@cuda.jit(device=True)
def _rint(x):
    f = math.floor(x)
    d = x - f
    if d > 0.5:
        return f + 1
    if d < 0.5:
        return f
    return f + 1 if f % 2 != 0 else f


@cuda.jit(device=True)
def _trunc(x):
    return math.floor(x) if x >= 0 else math.ceil(x)


@cuda.jit(device=True)
def _sign(x):
    if x > 0:
        return 1
    if x < 0:
        return -1
    return 0 if x == 0 else x


@cuda.jit(device=True)
def _cbrt(x, third):
    ax = math.fabs(x)
    y = math.pow(ax, third)
    if y != 0 and not math.isinf(y):
        y = y - (y * y * y - ax) / (3 * y * y)
    return -y if x < 0 else y


@cuda.jit(device=True)
def _remainder(x, y):
    if y == 0:
        return (x - x) / (y - y) if x == x else x
    return x % y


@cuda.jit(device=True)
def _floordiv(x, y):
    if y == 0:
        return x / y if x != 0 else (x - x) / (y - y)
    return x // y
'''

# integer versions: NumPy gives 0 where the divisor is 0
HELPERS += '''

@cuda.jit(device=True)
def _fmod_int(x, y):
    if y == 0:
        return x - x
    r = x % y
    if r != 0 and (r < 0) != (x < 0):
        r -= y
    return r


@cuda.jit(device=True)
def _remainder_int(x, y):
    return x - x if y == 0 else x % y


@cuda.jit(device=True)
def _floordiv_int(x, y):
    return x - x if y == 0 else x // y
'''



def _threefry_helper() -> str:
    """``_threefry2x32(k0, k1, c0, c1)``: Threefry-2x32 (20 rounds), the two words packed in a
    uint64 as ``x0 << 32 | x1``, written out round by round from the cipher's constants."""
    rot, m = ew.THREEFRY_ROTATIONS, "uint64(0xFFFFFFFF)"
    lines = ["@cuda.jit(device=True)", "def _threefry2x32(k0, k1, c0, c1):",
             "    ks0 = uint64(k0)", "    ks1 = uint64(k1)", f"    ks2 = ks0 ^ ks1 ^ uint64({ew.THREEFRY_PARITY})",
             f"    x0 = (uint64(c0) + ks0) & {m}", f"    x1 = (uint64(c1) + ks1) & {m}"]
    for i in range(5):
        for r in rot[i % 2]:
            lines += [f"    x0 = (x0 + x1) & {m}",
                      f"    x1 = (((x1 << uint64({r})) | (x1 >> uint64({32 - r}))) & {m}) ^ x0"]
        lines += [f"    x0 = (x0 + ks{(i + 1) % 3}) & {m}", f"    x1 = (x1 + ks{(i + 2) % 3} + uint64({i + 1})) & {m}"]
    lines.append("    return (x0 << uint64(32)) | x1")
    return "\n\n" + "\n".join(lines) + "\n"


HELPERS += _threefry_helper()

def type_name(dtype) -> str:
    """Name of the Numba type (bound in every kernel module) that casts to ``dtype``."""
    dtype = np.dtype(dtype)
    return "bool" if dtype == np.bool_ else dtype.name


def array_type_name(dtype) -> str:
    """Name of the Numba type for the element type of a shared or local array of ``dtype``."""
    dtype = np.dtype(dtype)
    return "boolean" if dtype == np.bool_ else dtype.name


def cast(expr: str, dtype) -> str:
    """Pin ``expr`` to ``dtype``: wraps integers, keeps float32 float32."""
    return f"{type_name(dtype)}({expr})"


literal = lowering.literal  # source text of a scalar of a dtype (np.float32(0.5)): the same on the device


def _template_ok(template: str) -> bool:
    for name in _NAME.findall(re.sub(r"\{[^}]*\}", "", template)):
        mod, _, attr = name.partition(".")
        if name in _BUILTINS or (mod == "math" and attr in _MATH_OK) or (mod == "np" and attr in _NP_TO_MATH):
            continue
        return False
    return True


def _device_template(template: str, is_float: bool) -> str | None:
    if not _template_ok(template):
        return None
    names = re.findall(r"np\.([A-Za-z_0-9]+)", template)
    if not is_float and any(n in _FLOAT_ONLY for n in names):
        return None
    out = template
    for n in sorted(set(names), key=len, reverse=True):
        fn = _NP_TO_MATH[n]
        if not is_float and fn in ("_remainder", "_floordiv"):
            fn += "_int"
        out = re.sub(rf"np\.{n}\(", fn + "(", out)
    return out


# -- special lowerings: (args, params, in_dtype, out_dtype) -> expression ----------------------
def _maximum(a, p, d, o):
    return f"({a[0]} if ({a[0]} >= {a[1]} or {a[0]} != {a[0]}) else {a[1]})"


def _minimum(a, p, d, o):
    return f"({a[0]} if ({a[0]} <= {a[1]} or {a[0]} != {a[0]}) else {a[1]})"


def _ipow(a, p, d, o):
    x, y = a[0], int(p["y"])
    if y == 0:
        return literal(1, d)
    if 1 <= abs(y) <= 4:
        prod = "(" + " * ".join([x] * abs(y)) + ")"
        return prod if y > 0 else f"({literal(1, d)} / {prod})"
    if d.kind == "f":
        return f"math.pow({x}, {literal(y, d)})"
    return f"({x} ** {y})" if y > 0 else None


def _pow(a, p, d, o):
    return f"math.pow({a[0]}, {a[1]})" if d.kind == "f" else None


def _logistic(a, p, d, o):
    one = literal(1, d)
    return f"({one} / ({one} + math.exp(-{a[0]})))" if d.kind == "f" else None


def _not(a, p, d, o):
    return f"(not {a[0]})" if d == np.bool_ else f"(~{a[0]})"


def _convert(a, p, d, o):
    return a[0]  # the cast to the output dtype does it


def _is_check(fn, other):
    def lower(a, p, d, o):
        return f"math.{fn}({a[0]})" if d.kind == "f" else other

    return lower


def _exp2(a, p, d, o):
    return f"math.pow({literal(2, d)}, {a[0]})" if d.kind == "f" else None


def _cbrt(a, p, d, o):
    return f"_cbrt({a[0]}, {literal(1 / 3, d)})" if d.kind == "f" else None


def _fmod(a, p, d, o):
    return f"math.fmod({a[0]}, {a[1]})" if d.kind == "f" else f"_fmod_int({a[0]}, {a[1]})"


def _threefry(a, p, d, o):
    return f"_threefry2x32({', '.join(a)})"


def _div(a, p, d, o):
    return f"({a[0]} / {a[1]})" if d.kind == "f" else None


_SPECIAL = {  # primitive -> device lowering, where the shared template does not fit the device
    ew.max_p: _maximum,
    ew.min_p: _minimum,
    ew.integer_pow_p: _ipow,
    ew.pow_p: _pow,
    ew.logistic_p: _logistic,
    ew.not_p: _not,
    ew.convert_p: _convert,
    ew.div_p: _div,
    ew.threefry2x32_p: _threefry,
    ew.exp2_p: _exp2,
    ew.cbrt_p: _cbrt,
    ew.fmod_p: _fmod,
    ew.isnan_p: _is_check("isnan", "False"),
    ew.isinf_p: _is_check("isinf", "False"),
    ew.isfinite_p: _is_check("isfinite", "True"),
}


def device_expr(eqn, args: list[str]) -> str | None:
    """CUDA source for one output element of elementwise ``eqn`` (operand texts ``args``),
    cast to the output dtype; ``None`` when the primitive has no device lowering."""
    avals = [v.aval for v in eqn.inputs] + [v.aval for v in eqn.outvars]
    if any(np.dtype(a.dtype) not in SUPPORTED_DTYPES for a in avals):
        return None
    in_dtype = np.dtype(eqn.inputs[0].aval.dtype) if eqn.inputs else None
    if eqn.prim is ew.select_p and len(eqn.inputs) == 3:
        in_dtype = np.dtype(eqn.inputs[1].aval.dtype)
    out_dtype = np.dtype(eqn.outvars[0].aval.dtype)
    special = _SPECIAL.get(eqn.prim)
    if special is not None:
        expr = special(args, eqn.params, in_dtype, out_dtype)
    else:
        template = eqn.prim.extra.get("numba")
        if not isinstance(template, str):
            return None
        template = _device_template(template, in_dtype is not None and in_dtype.kind == "f")
        if template is None:
            return None
        expr = template.format(*args, **eqn.params)
    return None if expr is None else cast(expr, out_dtype)


def lowerable(eqn) -> bool:
    """Whether ``device_expr`` can write this elementwise equation."""
    return device_expr(eqn, [f"a{i}" for i in range(len(eqn.inputs))]) is not None


# -- reductions ----------------------------------------------------------------------------------
REDUCTIONS = lowering.REDUCTIONS  # reduction primitive -> "sum" | "prod" | "max" | "min"


def reduce_identity(kind: str, dtype) -> str:
    dtype = np.dtype(dtype)
    if kind in ("sum", "prod"):
        value = int(kind == "prod")
    elif dtype.kind == "f":
        value = -math.inf if kind == "max" else math.inf
    elif dtype == np.bool_:
        value = kind == "min"
    else:
        info = np.iinfo(dtype)
        value = info.min if kind == "max" else info.max
    return literal(value, dtype)


def reduce_combine(kind: str, acc: str, x: str, dtype) -> str:
    if kind == "sum":
        return cast(f"{acc} + {x}", dtype)
    if kind == "prod":
        return cast(f"{acc} * {x}", dtype)
    lower = _maximum if kind == "max" else _minimum
    return lower([acc, x], {}, np.dtype(dtype), np.dtype(dtype))
