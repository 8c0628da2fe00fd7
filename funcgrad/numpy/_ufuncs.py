"""Elementwise functions with NumPy's names, broadcasting and dtype rules."""
from __future__ import annotations

import math

import numpy as np

from ..primitives import elementwise as E
from ._util import asarray_arg, cast, dtype_of, is_traced, promote, promote_float, shape_of


def _binary(p, name, float_only=False):
    def f(x, y):
        x, y = (promote_float if float_only else promote)(x, y)
        return p.bind(x, y)

    f.__name__ = name
    f.__doc__ = f"Elementwise ``numpy.{name}`` (broadcasting, NumPy 2 promotion)."
    return f


def _unary_float(p, name):
    def f(x):
        dt = getattr(x, "dtype", None)
        if dt is None or dt.kind != "f":
            x, = promote_float(x)
        return p.bind(x)

    f.__name__ = name
    f.__doc__ = f"Elementwise ``numpy.{name}``; integer inputs compute in float64."
    return f


def _unary(p, name, int_identity=False):
    def f(x):
        x = asarray_arg(x)
        if not is_traced(x):
            x = np.asarray(x)
        if int_identity and dtype_of(x).kind in "iub":
            return x
        return p.bind(x)

    f.__name__ = name
    f.__doc__ = f"Elementwise ``numpy.{name}``."
    return f


add = _binary(E.add_p, "add")
subtract = _binary(E.sub_p, "subtract")
multiply = _binary(E.mul_p, "multiply")
true_divide = _binary(E.div_p, "true_divide", float_only=True)
divide = true_divide
floor_divide = _binary(E.floordiv_p, "floor_divide")
maximum = _binary(E.max_p, "maximum")
minimum = _binary(E.min_p, "minimum")
arctan2 = _binary(E.atan2_p, "arctan2", float_only=True)
fmod = _binary(E.fmod_p, "fmod")
remainder = _binary(E.rem_p, "remainder")
mod = remainder
nextafter = _binary(E.nextafter_p, "nextafter", float_only=True)
equal = _binary(E.eq_p, "equal")
not_equal = _binary(E.ne_p, "not_equal")
less = _binary(E.lt_p, "less")
less_equal = _binary(E.le_p, "less_equal")
greater = _binary(E.gt_p, "greater")
greater_equal = _binary(E.ge_p, "greater_equal")
bitwise_and = _binary(E.and_p, "bitwise_and")
bitwise_or = _binary(E.or_p, "bitwise_or")
bitwise_xor = _binary(E.xor_p, "bitwise_xor")
left_shift = _binary(E.shift_left_p, "left_shift")
right_shift = _binary(E.shift_right_p, "right_shift")
invert = _unary(E.not_p, "invert")
bitwise_not = invert


def _logical(p, name):
    def f(x, y):
        return p.bind(cast(asarray_arg(x), bool), cast(asarray_arg(y), bool))

    f.__name__ = name
    return f


logical_and = _logical(E.and_p, "logical_and")
logical_or = _logical(E.or_p, "logical_or")
logical_xor = _logical(E.xor_p, "logical_xor")


def logical_not(x):
    return E.logical_not_p.bind(cast(asarray_arg(x), bool))


exp = _unary_float(E.exp_p, "exp")
exp2 = _unary_float(E.exp2_p, "exp2")
expm1 = _unary_float(E.expm1_p, "expm1")
log = _unary_float(E.log_p, "log")
log2 = _unary_float(E.log2_p, "log2")
log10 = _unary_float(E.log10_p, "log10")
log1p = _unary_float(E.log1p_p, "log1p")
sqrt = _unary_float(E.sqrt_p, "sqrt")
cbrt = _unary_float(E.cbrt_p, "cbrt")
sin = _unary_float(E.sin_p, "sin")
cos = _unary_float(E.cos_p, "cos")
tan = _unary_float(E.tan_p, "tan")
arcsin = _unary_float(E.asin_p, "arcsin")
arccos = _unary_float(E.acos_p, "arccos")
arctan = _unary_float(E.atan_p, "arctan")
sinh = _unary_float(E.sinh_p, "sinh")
cosh = _unary_float(E.cosh_p, "cosh")
tanh = _unary_float(E.tanh_p, "tanh")
arcsinh = _unary_float(E.asinh_p, "arcsinh")
arccosh = _unary_float(E.acosh_p, "arccosh")
arctanh = _unary_float(E.atanh_p, "arctanh")
negative = _unary(E.neg_p, "negative")
absolute = _unary(E.abs_p, "absolute")
abs = absolute
fabs = absolute
sign = _unary(E.sign_p, "sign")
square = _unary(E.square_p, "square")
floor = _unary(E.floor_p, "floor", int_identity=True)
ceil = _unary(E.ceil_p, "ceil", int_identity=True)
trunc = _unary(E.trunc_p, "trunc", int_identity=True)
rint = _unary(E.round_p, "rint", int_identity=True)
isfinite = _unary(E.isfinite_p, "isfinite")
isnan = _unary(E.isnan_p, "isnan")
isinf = _unary(E.isinf_p, "isinf")
deg2rad = lambda x: multiply(x, math.pi / 180.0)
rad2deg = lambda x: multiply(x, 180.0 / math.pi)


def positive(x):
    return asarray_arg(x)


def reciprocal(x):
    return true_divide(1.0, x)


def round(x, decimals=0):
    """``numpy.round``: halves to even; ``decimals`` as in NumPy (integers stay integers)."""
    if decimals == 0:
        return rint(x)
    if decimals > 0:
        if dtype_of(x).kind in "iub":
            return asarray_arg(x)
        scale = 10.0 ** decimals
        return true_divide(rint(multiply(x, scale)), scale)
    scale = 10.0 ** -decimals  # NumPy divides first when decimals < 0
    out = multiply(rint(true_divide(x, scale)), scale)
    return cast(out, dtype_of(x)) if dtype_of(x).kind in "iu" else out


around = round


def power(x, y):
    """``x ** y``. An integer exponent uses repeated multiplication (exact for negative bases)."""
    if type(y) is int and y == 2:
        dt = getattr(x, "dtype", None)
        if dt is not None and dt.kind == "f":  # the common case, x ** 2 of a float array
            return E.square_p.bind(x)
    x = asarray_arg(x)
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
        if isinstance(x, (int, float)):
            x = np.asarray(x)
        if dtype_of(x).kind == "f" or (y >= 0 and dtype_of(x).kind in "iu"):
            if y == 1:
                return x
            if y == 2:
                return E.square_p.bind(x)
            return E.integer_pow(x, int(y))
    x, y = promote(x, y)
    return E.pow_p.bind(x, y)


def float_power(x, y):
    x, y = promote_float(x, y)
    return E.pow_p.bind(cast(x, np.float64), cast(y, np.float64))


def where(condition, x=None, y=None):
    """``numpy.where(condition, x, y)`` (the three-argument form)."""
    if x is None or y is None:
        from ..errors import FuncgradValueError

        raise FuncgradValueError("fnp.where: the one-argument form has a data-dependent shape; "
                                 "use fnp.nonzero outside traced code, or pass x and y")
    c = cast(asarray_arg(condition), bool)
    x, y = promote(x, y)
    return E.select_p.bind(c, x, y)


def clip(a, a_min=None, a_max=None):
    """``numpy.clip``; either bound may be None."""
    out = asarray_arg(a)
    if isinstance(out, (int, float, bool)):
        out = np.asarray(out)
    if a_min is not None:
        out = maximum(out, cast_weak(a_min, out))
    if a_max is not None:
        out = minimum(out, cast_weak(a_max, out))
    return out


def cast_weak(v, like):
    if isinstance(v, (int, float)) and dtype_of(like).kind == "f":
        return v
    return v


def fmax(x, y):
    x, y = promote(x, y)
    return where(isnan(y), x, where(isnan(x), y, maximum(x, y)))


def fmin(x, y):
    x, y = promote(x, y)
    return where(isnan(y), x, where(isnan(x), y, minimum(x, y)))


def hypot(x, y):
    """``sqrt(x**2 + y**2)`` without overflow or underflow (scaled by the larger magnitude).

    The larger operand is chosen by one comparison and the value written as a smooth function
    of the chosen pair, so derivatives of every order are right at ties ``|x| == |y|``; at the
    origin the gradient is 0."""
    x, y = promote_float(x, y)
    x_big = greater_equal(absolute(x), absolute(y))
    big, small = where(x_big, x, y), where(x_big, y, x)
    zero = equal(big, 0.0)
    r = true_divide(small, where(zero, 1.0, big))
    return where(zero, 0.0, multiply(absolute(big), sqrt(add(1.0, multiply(r, r)))))


def logaddexp(x, y):
    """``log(exp(x) + exp(y))`` without overflow: ``big + log1p(exp(small - big))`` with the
    larger operand chosen by one comparison, so every derivative is that of the smooth
    function, at ties too."""
    x, y = promote_float(x, y)
    x_big = greater_equal(x, y)
    big = where(x_big, x, y)
    with np.errstate(invalid="ignore"):  # inf - inf, answered by x + y below (as np.logaddexp, silently)
        below = where(x_big, subtract(y, x), subtract(x, y))  # -|x - y|, differentiable through the branch
    nan = isnan(below)  # both infinite with one sign, or a NaN operand
    safe = add(big, log1p(exp(where(nan, 0.0, below))))
    return where(nan, add(x, y), safe)


def logaddexp2(x, y):
    ln2 = math.log(2.0)
    return true_divide(logaddexp(multiply(x, ln2), multiply(y, ln2)), ln2)


def sinc(x):
    """Normalized sinc, ``sin(pi x) / (pi x)``, with value and derivatives exact at 0."""
    x, = promote_float(x)
    px = multiply(x, math.pi)
    zero = equal(x, 0.0)
    safe = where(zero, 1.0, px)
    # near 0 use the Taylor series 1 - (pi x)^2 / 6, which has the right derivatives
    return where(zero, subtract(1.0, true_divide(multiply(px, px), 6.0)), true_divide(sin(safe), safe))


def isclose(a, b, rtol=1e-05, atol=1e-08):
    a, b = promote_float(a, b)
    return less_equal(absolute(subtract(a, b)), add(atol, multiply(rtol, absolute(b))))


def copysign(x, y):
    x, y = promote_float(x, y)
    dt = dtype_of(x)
    return multiply(absolute(x), where(less(y, 0.0), np.asarray(-1, dt), np.asarray(1, dt)))


def signbit(x):
    return less(x, 0)


def heaviside(x, h0):
    x, = promote_float(x)
    return where(less(x, 0.0), 0.0, where(equal(x, 0.0), h0, 1.0))


def sigmoid_stable(x):
    x, = promote_float(x)
    return E.logistic_p.bind(x)


def _shape(x):
    return shape_of(x)


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("np", "math", "E", "P")]
