"""Elementwise primitives: each with its NumPy implementation and derivative."""
from __future__ import annotations

import math

import numpy as np
import scipy.special as sps

from ..core.avals import ShapedArray
from ..core.primitive import Kind, Primitive
from ..errors import FuncgradTypeError
from ._rules import (
    batch_elementwise,
    binary,
    broadcast_shapes,
    broadcast_to_shape,
    shape_of,
    unary,
    unbroadcast,
)

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
BOOL = np.dtype(bool)

# -- linear ops, written out so their derivatives cost nothing extra -----------------
neg_p = Primitive("neg", kind=Kind.ELEMENTWISE)
neg_p.impl = np.negative
neg_p.abstract_eval = lambda x: x
neg_p.jvp = lambda primals, tangents: (neg(primals[0]), neg(tangents[0]))
neg_p.vjp = lambda g, ans, primals, needs: [neg(g)]
neg_p.batch = batch_elementwise(neg_p)
neg_p.extra["numba"] = "(-{0})"


def _lin2(name, np_fn, sign_y, numba):
    p = binary(name, np_fn, numba=numba)
    p.differentiable = True

    def jvp(primals, tangents):
        x, y = primals
        tx, ty = tangents
        ans = p.bind(x, y)
        if ty is not None and sign_y < 0:
            ty = neg(ty)
        t = tx if ty is None else (ty if tx is None else tx + ty)
        return ans, broadcast_to_shape(t, shape_of(ans))

    def vjp(g, ans, primals, needs):
        x, y = primals
        gx = unbroadcast(g, shape_of(x)) if needs[0] else None
        gy = None
        if needs[1]:
            gy = unbroadcast(g if sign_y > 0 else neg(g), shape_of(y))
        return [gx, gy]

    p.jvp, p.vjp = jvp, vjp
    return p


add_p = _lin2("add", np.add, +1, "({0} + {1})")
sub_p = _lin2("sub", np.subtract, -1, "({0} - {1})")

# -- arithmetic -------------------------------------------------------------------
mul_p = binary("mul", np.multiply, lambda x, y, a: y, lambda x, y, a: x, numba="({0} * {1})")
div_p = binary("div", np.true_divide, lambda x, y, a: 1.0 / y, lambda x, y, a: neg(a) / y,
               numba="({0} / {1})")


def _pow_dx(x, y, a):
    safe = select(equal(y, _zero(y)), _zero(a), y * power(x, y - 1.0))
    return safe


def _pow_dy(x, y, a):
    xzero = equal(x, _zero(x))
    return select(xzero, _zero(a), a * log(select(xzero, _one(x), x)))


pow_p = binary("pow", np.power, _pow_dx, _pow_dy, numba="({0} ** {1})")


def _zero(x):
    return np.zeros((), dtype=x.dtype)


def _one(x):
    return np.ones((), dtype=x.dtype)


def _max_dx(x, y, a):
    return select(greater(x, y), _one(x), select(equal(x, y), np.asarray(0.5, x.dtype), _zero(x)))


def _min_dx(x, y, a):
    return select(less(x, y), _one(x), select(equal(x, y), np.asarray(0.5, x.dtype), _zero(x)))


max_p = binary("max", np.maximum, _max_dx, lambda x, y, a: _max_dx(y, x, a), numba="max({0}, {1})")
min_p = binary("min", np.minimum, _min_dx, lambda x, y, a: _min_dx(y, x, a), numba="min({0}, {1})")
atan2_p = binary("atan2", np.arctan2, lambda y, x, a: x / (x * x + y * y),
                 lambda y, x, a: neg(y) / (x * x + y * y), numba="np.arctan2({0}, {1})")
fmod_p = binary("fmod", np.fmod, lambda x, y, a: _one(a), lambda x, y, a: neg(trunc(x / y)))
rem_p = binary("rem", np.remainder, lambda x, y, a: _one(a), lambda x, y, a: neg(floor(x / y)))
floordiv_p = binary("floordiv", np.floor_divide)
nextafter_p = binary("nextafter", np.nextafter)

# -- comparisons and logic ------------------------------------------------------------
eq_p = binary("eq", np.equal, out_dtype=BOOL, numba="({0} == {1})")
ne_p = binary("ne", np.not_equal, out_dtype=BOOL, numba="({0} != {1})")
lt_p = binary("lt", np.less, out_dtype=BOOL, numba="({0} < {1})")
le_p = binary("le", np.less_equal, out_dtype=BOOL, numba="({0} <= {1})")
gt_p = binary("gt", np.greater, out_dtype=BOOL, numba="({0} > {1})")
ge_p = binary("ge", np.greater_equal, out_dtype=BOOL, numba="({0} >= {1})")
and_p = binary("and", np.bitwise_and, numba="({0} & {1})")
or_p = binary("or", np.bitwise_or, numba="({0} | {1})")
xor_p = binary("xor", np.bitwise_xor, numba="({0} ^ {1})")
shift_left_p = binary("shift_left", np.left_shift, numba="({0} << {1})")
shift_right_p = binary("shift_right", np.right_shift, numba="({0} >> {1})")
not_p = unary("not", np.invert, numba="(~{0})")

# -- the Threefry-2x32 block cipher (funcgrad.random) ------------------------------------------
THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
THREEFRY_PARITY = 0x1BD11BDA
_U32, _U64 = np.dtype(np.uint32), np.dtype(np.uint64)


def _threefry_impl(k0, k1, c0, c1):
    """Threefry-2x32, 20 rounds, on uint32 arrays (broadcast): the two words packed as
    ``x0 << 32 | x1`` in a uint64."""
    with np.errstate(over="ignore"):
        k0, k1, c0, c1 = (np.asarray(a, _U32) for a in (k0, k1, c0, c1))
        ks = (k0, k1, k0 ^ k1 ^ np.uint32(THREEFRY_PARITY))
        x0, x1 = c0 + ks[0], c1 + ks[1]
        for i in range(5):
            for r in THREEFRY_ROTATIONS[i % 2]:
                x0 = x0 + x1
                x1 = ((x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))) ^ x0
            x0 = x0 + ks[(i + 1) % 3]
            x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return (np.asarray(x0, _U64) << np.uint64(32)) | np.asarray(x1, _U64)


def _threefry_abstract(*avals):
    for a in avals:
        if np.dtype(a.dtype) != _U32:
            raise FuncgradTypeError(f"threefry2x32: operands must be uint32, got {np.dtype(a.dtype).name}")
    return ShapedArray(broadcast_shapes(*(a.shape for a in avals), op="threefry2x32"), _U64)


threefry2x32_p = Primitive("threefry2x32", kind=Kind.ELEMENTWISE, differentiable=False)
threefry2x32_p.impl = _threefry_impl
threefry2x32_p.abstract_eval = _threefry_abstract
threefry2x32_p.batch = batch_elementwise(threefry2x32_p)
logical_not_p = unary("logical_not", np.logical_not, out_dtype=BOOL, numba="(not {0})")

# -- transcendental and rounding -------------------------------------------------------
def _one_minus_sq(x):
    """1 - x^2 as (1 - x)(1 + x): no cancellation near |x| = 1."""
    return (1.0 - x) * (1.0 + x)


exp_p = unary("exp", np.exp, lambda x, a: a)
exp2_p = unary("exp2", np.exp2, lambda x, a: a * _LN2)
expm1_p = unary("expm1", np.expm1, lambda x, a: a + 1.0)
log_p = unary("log", np.log, lambda x, a: 1.0 / x)
log2_p = unary("log2", np.log2, lambda x, a: 1.0 / (x * _LN2))
log10_p = unary("log10", np.log10, lambda x, a: 1.0 / (x * _LN10))
log1p_p = unary("log1p", np.log1p, lambda x, a: 1.0 / (x + 1.0))
sqrt_p = unary("sqrt", np.sqrt, lambda x, a: 0.5 / a)
cbrt_p = unary("cbrt", np.cbrt, lambda x, a: 1.0 / (3.0 * a * a))
sin_p = unary("sin", np.sin, lambda x, a: cos(x))
cos_p = unary("cos", np.cos, lambda x, a: -sin(x))
tan_p = unary("tan", np.tan, lambda x, a: 1.0 + a * a)
asin_p = unary("asin", np.arcsin, lambda x, a: 1.0 / sqrt(_one_minus_sq(x)))
acos_p = unary("acos", np.arccos, lambda x, a: -1.0 / sqrt(_one_minus_sq(x)))
atan_p = unary("atan", np.arctan, lambda x, a: 1.0 / (1.0 + x * x))
sinh_p = unary("sinh", np.sinh, lambda x, a: cosh(x))
cosh_p = unary("cosh", np.cosh, lambda x, a: sinh(x))
tanh_p = unary("tanh", np.tanh, lambda x, a: 1.0 - a * a)
asinh_p = unary("asinh", np.arcsinh, lambda x, a: 1.0 / sqrt(x * x + 1.0))
acosh_p = unary("acosh", np.arccosh, lambda x, a: 1.0 / sqrt((x - 1.0) * (x + 1.0)))
atanh_p = unary("atanh", np.arctanh, lambda x, a: 1.0 / _one_minus_sq(x))
abs_p = unary("abs", np.abs, lambda x, a: sign(x), numba="abs({0})")
square_p = unary("square", np.square, lambda x, a: 2.0 * x, numba="({0} * {0})")
logistic_p = unary("logistic", sps.expit, lambda x, a: a * (1.0 - a))
erf_p = unary("erf", sps.erf, lambda x, a: _TWO_OVER_SQRT_PI * exp(neg(x * x)), numba="math.erf({0})")
lgamma_p = unary("lgamma", sps.gammaln, lambda x, a: digamma(x), numba="math.lgamma({0})")
digamma_p = unary("digamma", sps.digamma, lambda x, a: trigamma(x))
trigamma_p = unary("trigamma", lambda x: sps.polygamma(1, x).astype(np.result_type(x)),
                   lambda x, a: polygamma(x, 2))
sign_p = unary("sign", np.sign)
floor_p = unary("floor", np.floor)
ceil_p = unary("ceil", np.ceil)
round_p = unary("round", np.rint)
trunc_p = unary("trunc", np.trunc)
isfinite_p = unary("isfinite", np.isfinite, out_dtype=BOOL)
isnan_p = unary("isnan", np.isnan, out_dtype=BOOL)
isinf_p = unary("isinf", np.isinf, out_dtype=BOOL)

# -- integer powers (x ** 2 and friends: no log of a negative base) -------------------
integer_pow_p = Primitive("integer_pow", kind=Kind.ELEMENTWISE)
integer_pow_p.impl = lambda x, *, y: np.power(x, np.asarray(y, dtype=x.dtype)) if y >= 0 else np.power(x, float(y)).astype(x.dtype)
integer_pow_p.abstract_eval = lambda x, *, y: x


def _ipow_deriv(x, y):
    if y == 0:
        return _zero(x)
    if y == 1:
        return _one(x)
    return float(y) * integer_pow(x, y - 1)


integer_pow_p.jvp = lambda primals, tangents, *, y: (integer_pow(primals[0], y),
                                                     tangents[0] * _ipow_deriv(primals[0], y))
integer_pow_p.vjp = lambda g, ans, primals, needs, *, y: [g * _ipow_deriv(primals[0], y)]
integer_pow_p.batch = batch_elementwise(integer_pow_p)
integer_pow_p.extra["numba"] = "({0} ** {y})"

# -- polygamma[n]: derivatives of digamma of any order (trigamma is n = 1) ------------------
polygamma_p = Primitive("polygamma", kind=Kind.ELEMENTWISE)
polygamma_p.impl = lambda x, *, n: sps.polygamma(n, x).astype(np.result_type(x))
polygamma_p.abstract_eval = lambda x, *, n: x
polygamma_p.jvp = lambda primals, tangents, *, n: (polygamma(primals[0], n),
                                                   tangents[0] * polygamma(primals[0], n + 1))
polygamma_p.vjp = lambda g, ans, primals, needs, *, n: [g * polygamma(primals[0], n + 1)]
polygamma_p.batch = batch_elementwise(polygamma_p)


def polygamma(x, n):
    return polygamma_p.bind(x, n=int(n))


# -- select (where) ------------------------------------------------------------------
select_p = Primitive("select", kind=Kind.ELEMENTWISE)
select_p.impl = np.where


def _select_abstract(c, x, y):
    return ShapedArray(broadcast_shapes(c.shape, x.shape, y.shape, op="where"), x.dtype)


def _select_jvp(primals, tangents):
    c, x, y = primals
    _, tx, ty = tangents
    ans = select(c, x, y)
    tx = zeros_like_value(x) if tx is None else tx
    ty = zeros_like_value(y) if ty is None else ty
    return ans, broadcast_to_shape(select(c, tx, ty), shape_of(ans))


def _select_vjp(g, ans, primals, needs):
    c, x, y = primals
    z = _zero(g)
    gx = unbroadcast(select(c, g, z), shape_of(x)) if needs[1] else None
    gy = unbroadcast(select(c, z, g), shape_of(y)) if needs[2] else None
    return [None, gx, gy]


select_p.abstract_eval = _select_abstract
select_p.jvp = _select_jvp
select_p.vjp = _select_vjp
select_p.batch = batch_elementwise(select_p)
select_p.extra["numba"] = "({1} if {0} else {2})"

# -- dtype conversion -------------------------------------------------------------------
convert_p = Primitive("convert_element_type", kind=Kind.ELEMENTWISE)
convert_p.impl = lambda x, *, dtype: np.asarray(x).astype(dtype)
convert_p.abstract_eval = lambda x, *, dtype: ShapedArray(x.shape, dtype)


def _convert_jvp(primals, tangents, *, dtype):
    out = convert(primals[0], dtype)
    t = tangents[0]
    return out, (convert(t, dtype) if np.dtype(dtype).kind == "f" else None)


def _convert_vjp(g, ans, primals, needs, *, dtype):
    x = primals[0]
    return [convert(g, x.dtype) if np.dtype(x.dtype).kind == "f" else None]


convert_p.jvp = _convert_jvp
convert_p.vjp = _convert_vjp
convert_p.batch = batch_elementwise(convert_p)
convert_p.extra["numba"] = "{dtype}({0})"

# -- stop_gradient -----------------------------------------------------------------------
stop_gradient_p = Primitive("stop_gradient", kind=Kind.ELEMENTWISE, differentiable=False)
stop_gradient_p.impl = lambda x: x
stop_gradient_p.abstract_eval = lambda x: x
stop_gradient_p.batch = lambda args, dims: (stop_gradient(args[0]), dims[0])
stop_gradient_p.extra["numba"] = "{0}"


# -- functional wrappers (what the rules and funcgrad.numpy call) ----------------------------
def _w1(p):
    return lambda x: p.bind(x)


def _w2(p):
    return lambda x, y: p.bind(x, y)


neg = _w1(neg_p)
exp, log, sqrt, sin, cos, sinh, cosh, sign = map(_w1, (exp_p, log_p, sqrt_p, sin_p, cos_p, sinh_p, cosh_p, sign_p))
floor, trunc, digamma, trigamma = map(_w1, (floor_p, trunc_p, digamma_p, trigamma_p))
add, sub, mul, div, power = map(_w2, (add_p, sub_p, mul_p, div_p, pow_p))
equal, less, greater = map(_w2, (eq_p, lt_p, gt_p))


def select(c, x, y):
    return select_p.bind(c, x, y)


def convert(x, dtype):
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    return convert_p.bind(x, dtype=dtype)


def integer_pow(x, y):
    return integer_pow_p.bind(x, y=int(y))


def stop_gradient(x):
    return stop_gradient_p.bind(x)


def zeros_like_value(x):
    from . import broadcast_to

    return broadcast_to(np.zeros((), dtype=x.dtype), tuple(shape_of(x)))
