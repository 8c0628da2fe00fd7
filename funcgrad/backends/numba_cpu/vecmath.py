"""Vectorisable exp, log, tanh, sin and cos for compiled loops.

Numba lowers ``np.exp`` and friends on scalars to one libm call per element, which the loop
vectoriser cannot widen. The functions here are branch-free range reductions followed by
polynomial or rational approximations (the fdlibm/Cephes kernels), with the exponent arithmetic
done on the bits of the floats, so LLVM inlines them into a loop and evaluates four float64 (or
eight float32) lanes per instruction. Special values are handled by selects: exp overflows to
``inf`` and underflows through the subnormals to 0, log of 0/negative/inf/NaN and of subnormals
follows IEEE, tanh saturates at +-1 and keeps the sign of zero, NaN propagates everywhere. Results
are within 1 ulp of the correctly rounded value (tanh: 1.5 ulp); ``tests/test_vecmath.py``
measures it.

sin and cos reduce their argument by pi/2 with a three-part Cody-Waite constant, exact while
``|x| <= TRIG_MAX``; beyond it (and for +-inf) their result is meaningless and a caller falls
back to libm (``trig_fallback(x)`` says when). float32 exp and tanh have float32 kernels;
float32 log, sin and cos evaluate the float64 functions and round once.

>>> import numpy as np
>>> from numba import njit
>>> from funcgrad.backends.numba_cpu import vecmath
>>> @njit
... def gauss(x, out):
...     for i in range(x.shape[0]):
...         out[i] = vecmath.exp64(-x[i] * x[i])
>>> x = np.linspace(-3.0, 3.0, 7); out = np.empty_like(x)
>>> gauss(x, out)
>>> bool(np.allclose(out, np.exp(-x * x), rtol=1e-15, atol=0))
True
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_OPTS = {"nogil": True, "error_model": "numpy", "fastmath": {"contract"}}
_INLINE = dict(_OPTS, inline="always")  # helpers: inlined by Numba, so not compiled on their own
_PUBLIC = dict(_OPTS, cache=True)  # LLVM still inlines a function loaded from Numba's cache

TRIG_MAX = 1.0e6  # |x| up to which sin/cos reduce exactly (|round(2x/pi)| < 2**20)

_SHIFT = 6755399441055744.0  # 1.5 * 2**52: adding it rounds |t| < 2**51 to an integer in the low bits
_SHIFT_BITS = np.int64(0x4338000000000000)

# exp: exp(x) = 2**k * exp(r), r = x - k ln2 in [-ln2/2, ln2/2]
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # 32 significant bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_EXP_LO, _EXP_HI = -746.0, 710.0  # beyond these exp is 0 or inf in float64
# 1/k! for k = 2..13: the Taylor remainder on |r| <= ln2/2 is below 2**-57 relative
_E2, _E3, _E4, _E5 = 0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0
_E6, _E7, _E8, _E9 = 1.0 / 720.0, 1.0 / 5040.0, 1.0 / 40320.0, 1.0 / 362880.0
_E10, _E11, _E12, _E13 = 1.0 / 3628800.0, 1.0 / 39916800.0, 1.0 / 479001600.0, 1.0 / 6227020800.0


@njit(**_INLINE)
def _bits(x):
    """The IEEE bits of a float64 as an int64."""
    return np.float64(x).view(np.int64)


@njit(**_INLINE)
def _from_bits(i):
    """The float64 whose IEEE bits are the int64 ``i``."""
    return np.int64(i).view(np.float64)


@njit(**_INLINE)
def _pow2(k):
    """2.0 ** k for -1022 <= k <= 1023, built from its exponent bits."""
    return _from_bits((k + 1023) << 52)


@njit(**_PUBLIC)
def exp64(x):
    """``e ** x`` in float64 (within 1 ulp; ``inf``, 0 and subnormals where they belong)."""
    # selects, not min/max: NaN compares false and passes through
    xc = _EXP_LO if x < _EXP_LO else x  # noqa: FURB136
    xc = _EXP_HI if xc > _EXP_HI else xc  # noqa: FURB136
    t = xc * _LOG2E + _SHIFT
    kf = t - _SHIFT
    k = _bits(t) - _SHIFT_BITS  # the integer kf, read from the low bits of t
    hi = xc - kf * _LN2_HI  # exact
    lo = kf * _LN2_LO
    r = hi - lo
    c = (hi - r) - lo  # the rounding error of r
    u = _E12 + r * _E13
    u = _E11 + r * u
    u = _E10 + r * u
    u = _E9 + r * u
    u = _E8 + r * u
    u = _E7 + r * u
    u = _E6 + r * u
    u = _E5 + r * u
    u = _E4 + r * u
    u = _E3 + r * u
    u = _E2 + r * u
    p = 1.0 + (r + ((r * r) * u + c))
    k1 = k >> 1  # two factors keep each power of two normal (subnormal results, k = 1024)
    return (p * _pow2(k1)) * _pow2(k - k1)


# log: log(x) = k ln2 + log(m), m in [sqrt(2)/2, sqrt(2)), with fdlibm's e_log.c kernel
_LG1, _LG2 = 6.666666666666735130e-01, 3.999999999940941908e-01
_LG3, _LG4 = 2.857142874366239149e-01, 2.222219843214978396e-01
_LG5, _LG6 = 1.818357216161805012e-01, 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_TWO54 = 18014398509481984.0
_TINY_NORMAL = 2.2250738585072014e-308


@njit(**_PUBLIC)
def log64(x):
    """Natural logarithm in float64 (within 1 ulp; ``log(0) = -inf``, ``log(x < 0) = nan``)."""
    sub = x < _TINY_NORMAL
    xs = x * _TWO54 if sub else x  # subnormals are scaled into the normal range first
    hx = _bits(xs) >> 32
    k = (hx >> 20) - 1023 - (54 if sub else 0)
    hx = hx & 0x000FFFFF
    i = (hx + 0x95F64) & 0x100000  # m above sqrt(2): halve it and bump k
    m = _from_bits(((hx | (i ^ 0x3FF00000)) << 32) | (_bits(xs) & 0xFFFFFFFF))
    k = k + (i >> 20)
    f = m - 1.0
    dk = np.float64(k)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    big = ((hx - 0x6147A) | (0x6B851 - hx)) > 0  # where fdlibm uses the f**2/2 form
    rr = t2 + t1
    hfsq = 0.5 * f * f
    res_big = dk * _LN2_HI - ((hfsq - (s * (hfsq + rr) + dk * _LN2_LO)) - f)
    res_small = dk * _LN2_HI - ((s * (f - rr) - dk * _LN2_LO) - f)
    res = res_big if big else res_small
    res = res if x < np.inf else x  # +inf and NaN
    res = -np.inf if x == 0.0 else res
    return np.nan if x < 0.0 else res


# tanh (Cephes): a rational function below 0.625, 1 - 2 / (exp(2|x|) + 1) above
_TP0, _TP1, _TP2 = -9.64399179425052238628e-01, -9.92877231001918586564e01, -1.61468768441708447952e03
_TQ0, _TQ1, _TQ2 = 1.12811678491632931402e02, 2.23548839060100448583e03, 4.84406305325125486048e03


@njit(**_PUBLIC)
def tanh64(x):
    """Hyperbolic tangent in float64 (within 1 ulp; +-1 beyond |x| = 19.1, ``tanh(-0.) = -0.``)."""
    z = abs(x)
    z = 22.0 if z > 22.0 else z  # noqa: FURB136  (keeps NaN)
    e = exp64(2.0 * z)
    s = z * z
    p = (_TP0 * s + _TP1) * s + _TP2
    q = ((s + _TQ0) * s + _TQ1) * s + _TQ2
    small = z < 0.625
    num = z * s * p if small else -2.0
    den = q if small else e + 1.0
    base = z if small else 1.0
    return math.copysign(base + num / den, x)


# sin/cos: x = n pi/2 + r, |r| <= pi/4; pi/2 = _PIO2_1 + _PIO2_2 + _PIO2_3 + _PIO2_3T (fdlibm)
_TWO_OVER_PI = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e00  # 33 bits each: n * _PIO2_i is exact for |n| < 2**20
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624871116645580e-21
_PIO2_3T = 8.47842766036889956997e-32
_S1, _S2 = -1.66666666666666324348e-01, 8.33333333332248946124e-03
_S3, _S4 = -1.98412698298579493134e-04, 2.75573137070700676789e-06
_S5, _S6 = -2.50507602534068634195e-08, 1.58969099521155010221e-10
_C1, _C2 = 4.16666666666666019037e-02, -1.38888888888741095749e-03
_C3, _C4 = 2.48015872894767294178e-05, -2.75573143513906633035e-07
_C5, _C6 = 2.08757232129817482790e-09, -1.13596475577881948265e-11


@njit(**_INLINE)
def _two_diff(a, b):
    """(s, e) with s = fl(a - b) and s + e = a - b exactly (Knuth's TwoSum)."""
    s = a - b
    a1 = s + b
    b1 = a1 - s
    return s, (a - a1) + (b1 - b)


@njit(**_INLINE)
def _reduce_pio2(x):
    """(r, y, n): x - n pi/2 = r + y with |y| <= ulp(r)/2, for |x| <= TRIG_MAX."""
    t = x * _TWO_OVER_PI + _SHIFT
    fn = t - _SHIFT
    n = _bits(t) - _SHIFT_BITS
    a = x - fn * _PIO2_1  # exact: the product is exact and a is a difference of close numbers
    b, e1 = _two_diff(a, fn * _PIO2_2)
    c, e2 = _two_diff(b, fn * _PIO2_3)
    tail = (e1 + e2) - fn * _PIO2_3T
    r = c + tail
    return r, (c - r) + tail, n


@njit(**_INLINE)
def _sin_cos_kernels(r, y):
    """sin(r + y), cos(r + y) for |r| <= pi/4 (fdlibm k_sin.c and k_cos.c)."""
    z = r * r
    v = z * r
    p = _S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))
    s = r - ((z * (0.5 * y - v * p) - y) - v * _S1)
    w = z * z
    q = z * (_C1 + z * (_C2 + z * _C3)) + w * w * (_C4 + z * (_C5 + z * _C6))
    hz = 0.5 * z
    c1 = 1.0 - hz
    c = c1 + (((1.0 - c1) - hz) + (z * q - r * y))
    return s, c


@njit(**_INLINE)
def _quadrant(s, c, n):
    """sin of r + n pi/2 from sin(r), cos(r)."""
    v = c if n & 1 else s
    return -v if n & 2 else v


@njit(**_PUBLIC)
def sin64(x):
    """sin in float64 for ``|x| <= TRIG_MAX`` (within 1 ulp; ``sin(-0.) = -0.``)."""
    r, y, n = _reduce_pio2(x)
    s, c = _sin_cos_kernels(r, y)
    v = _quadrant(s, c, n)
    return x if abs(x) < 7.450580596923828e-09 else v  # sin(x) rounds to x below 2**-27


@njit(**_PUBLIC)
def cos64(x):
    """cos in float64 for ``|x| <= TRIG_MAX`` (within 1 ulp)."""
    r, y, n = _reduce_pio2(x)
    s, c = _sin_cos_kernels(r, y)
    return _quadrant(s, c, n + 1)


@njit(**_PUBLIC)
def trig_fallback(x):
    """Whether sin64/cos64 of ``x`` is out of range (|x| > TRIG_MAX, inf): libm must do it."""
    return abs(x) > TRIG_MAX


# -- float32 ----------------------------------------------------------------------------------------
# exp and tanh, common in float32 models, run in float32 (eight lanes) with the Cephes expf/tanhf
# kernels; log, sin and cos evaluate the float64 functions and round once.
_F = np.float32
_SHIFT32 = _F(12582912.0)  # 1.5 * 2**23
_SHIFT32_BITS = np.int32(0x4B400000)
_LOG2E32 = _F(1.44269504088896341)
_LN2_HI32, _LN2_LO32 = _F(0.693359375), _F(-2.12194440e-4)  # 9 bits: n * _LN2_HI32 is exact
_EXP32_LO, _EXP32_HI = _F(-104.0), _F(89.0)
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)
_T0, _T1, _T2 = _F(-5.70498872745e-3), _F(2.06390887954e-2), _F(-5.37397155531e-2)
_T3, _T4 = _F(1.33314422036e-1), _F(-3.33332819422e-1)


@njit(**_INLINE)
def _pow2_32(k):
    """2.0 ** k in float32 for -126 <= k <= 127."""
    return np.int32((k + np.int32(127)) << np.int32(23)).view(np.float32)


@njit(**_INLINE)
def _exp32_core(x):
    """e ** x for float32 ``x`` in [-104, 89] (NaN passes through)."""
    t = x * _LOG2E32 + _SHIFT32
    n = t - _SHIFT32
    k = np.int32(np.float32(t).view(np.int32) - _SHIFT32_BITS)
    hi = x - n * _LN2_HI32  # exact
    lo = n * _LN2_LO32
    r = hi - lo
    c = (hi - r) - lo  # the rounding error of r
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = _F(1.0) + (r + (p * (r * r) + c))
    k1 = np.int32(k >> np.int32(1))
    return (p * _pow2_32(k1)) * _pow2_32(np.int32(k - k1))


@njit(**_PUBLIC)
def exp32(x):
    """``e ** x`` in float32 (within 1 ulp)."""
    xc = _EXP32_LO if x < _EXP32_LO else x  # noqa: FURB136  (keeps NaN)
    xc = _EXP32_HI if xc > _EXP32_HI else xc  # noqa: FURB136
    return _exp32_core(xc)


@njit(**_PUBLIC)
def tanh32(x):
    """Hyperbolic tangent in float32 (within 1.5 ulp; +-1 beyond |x| = 9.02, ``tanh(-0.) = -0.``)."""
    z = abs(x)
    z = _F(9.5) if z > _F(9.5) else z  # noqa: FURB136  (keeps NaN)
    s = z * z
    small = ((((_T0 * s + _T1) * s + _T2) * s + _T3) * s + _T4) * s * z + z
    large = _F(1.0) - _F(2.0) / (_exp32_core(z + z) + _F(1.0))
    return math.copysign(small if z < _F(0.625) else large, x)


@njit(**_PUBLIC)
def log32(x):
    """Natural logarithm in float32 (within 1 ulp)."""
    return np.float32(log64(np.float64(x)))


@njit(**_PUBLIC)
def sin32(x):
    """sin in float32 for ``|x| <= TRIG_MAX`` (within 1 ulp)."""
    return np.float32(sin64(np.float64(x)))


@njit(**_PUBLIC)
def cos32(x):
    """cos in float32 for ``|x| <= TRIG_MAX`` (within 1 ulp)."""
    return np.float32(cos64(np.float64(x)))
