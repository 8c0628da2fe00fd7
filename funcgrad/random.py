"""Stateless, counter-based random numbers (Threefry-2x32, as in JAX).

A key is an ordinary ``uint32`` array of shape ``(2,)``: it passes through
``jit``, ``grad`` and pytrees like any other array. Every function is pure:
the same key always gives the same numbers, eager or jitted. Never reuse a key
for two draws; ``split`` it instead.

>>> import funcgrad.random as fr
>>> k = fr.key(0)
>>> k1, k2 = fr.split(k)
>>> x = fr.normal(k1, (3,))            # float32 by default, like JAX
>>> bool((fr.normal(k1, (3,)) == x).all())
True

The bit streams match JAX's default (partitionable Threefry) implementation:
``key``, ``split``, ``fold_in``, ``bits``, ``uniform`` on [0, 1), ``bernoulli``,
``randint``, ``permutation`` and ``categorical`` give identical results; scaled
``uniform`` agrees up to rounding and ``normal`` / ``truncated_normal`` to about
1e-5 (each library evaluates the inverse error function its own way).
"""
from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np

from . import numpy as fnp
from .core.trace import Tracer
from .errors import FuncgradTypeError, FuncgradValueError, at_user_line
from .primitives.elementwise import threefry2x32_p

__all__ = [
    "PRNGKey",
    "bernoulli",
    "beta",
    "bits",
    "categorical",
    "choice",
    "dirichlet",
    "exponential",
    "fold_in",
    "gamma",
    "gumbel",
    "key",
    "key_data",
    "laplace",
    "multivariate_normal",
    "normal",
    "permutation",
    "randint",
    "split",
    "threefry_2x32",
    "truncated_normal",
    "uniform",
]

_U32 = np.dtype(np.uint32)
_MASK32 = 0xFFFFFFFF


# -- argument checking ------------------------------------------------------------------------
def _describe(x):
    if isinstance(x, (np.ndarray, Tracer)):
        return f"an array of shape {tuple(x.shape)} and dtype {np.dtype(x.dtype).name}"
    return f"a value of type {type(x).__name__} ({x!r})"


def _check_key(k, op):
    if not isinstance(k, (np.ndarray, Tracer)) or np.dtype(k.dtype) != _U32 or tuple(k.shape) != (2,):
        raise FuncgradTypeError(at_user_line(
            f"random.{op}: expected a PRNG key (a uint32 array of shape (2,) made by "
            f"funcgrad.random.key(seed) or split), got {_describe(k)}"))
    return k


def _check_shape(shape, op):
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if isinstance(shape, (np.ndarray, Tracer)) or not isinstance(shape, Sequence):
        raise FuncgradTypeError(at_user_line(
            f"random.{op}: shape must be a tuple of ints, got {_describe(shape)}"))
    try:
        out = tuple(_index(d) for d in shape)
    except TypeError:
        raise FuncgradTypeError(at_user_line(
            f"random.{op}: shape must be a tuple of ints, got {shape!r}")) from None
    if any(d < 0 for d in out):
        raise FuncgradValueError(at_user_line(f"random.{op}: negative dimension in shape {out}"))
    return out


def _index(d):
    if isinstance(d, Tracer):
        raise TypeError
    return operator.index(d)


def _float_dtype(dtype, op):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt.kind != "f":
        raise FuncgradTypeError(at_user_line(
            f"random.{op}: dtype must be a floating type (float16, float32, float64), got {dt.name}"))
    return dt


# -- the Threefry-2x32 block cipher --------------------------------------------------------------
def _threefry_packed(key_words, counts):
    """The cipher's two output words of every counter pair, packed as ``x0 << 32 | x1`` (uint64)."""
    k0, k1 = key_words
    return threefry2x32_p.bind(*(fnp.asarray(w, _U32) for w in (k0, k1, counts[0], counts[1])))


def _low_word(packed):
    return fnp.asarray(packed, _U32)


def threefry_2x32(key_words, counts):
    """Threefry-2x32 with 20 rounds: encrypt the counter pairs ``counts = (c0, c1)``
    (uint32 arrays of one shape) under ``key_words = (k0, k1)``; returns two uint32 arrays.

    >>> import numpy as np
    >>> z = np.zeros(1, np.uint32)
    >>> [hex(int(w[0])) for w in threefry_2x32((np.uint32(0), np.uint32(0)), (z, z))]
    ['0x6b200159', '0x99ba4efe']
    """
    packed = _threefry_packed(key_words, counts)
    return _low_word(fnp.right_shift(packed, np.uint64(32))), _low_word(packed)


def _key_words(k):
    return k[0], k[1]


def _counters(shape):
    """The 64-bit row-major position of every element, as (high, low) uint32 words."""
    n = math.prod(shape)
    if n > _MASK32:
        raise FuncgradValueError(at_user_line(
            f"random: cannot draw {n} numbers from one key (at most 2**32 - 1); split the key"))
    lo = np.arange(n, dtype=_U32).reshape(shape)
    return np.zeros(shape, _U32), lo


def _blocks(k, shape):
    return threefry_2x32(_key_words(k), _counters(shape))


# -- keys -------------------------------------------------------------------------------------------
def key(seed) -> np.ndarray:
    """A PRNG key from an integer seed: a uint32 array ``[seed >> 32, seed & 0xFFFFFFFF]``.

    >>> key(42)
    array([ 0, 42], dtype=uint32)
    """
    if isinstance(seed, Tracer):
        if seed.dtype.kind not in "iu" or seed.shape != ():
            raise FuncgradTypeError(at_user_line(
                f"random.key: seed must be an integer scalar, got {_describe(seed)}"))
        lo = fnp.asarray(seed, _U32) if seed.dtype.itemsize <= 4 else fnp.asarray(
            fnp.bitwise_and(seed, _MASK32), _U32)
        hi = (fnp.zeros((), _U32) if seed.dtype.itemsize <= 4
              else fnp.asarray(fnp.right_shift(seed, 32), _U32))
        return fnp.stack([hi, lo])
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) and not (
            isinstance(seed, np.ndarray) and seed.shape == () and seed.dtype.kind in "iu"):
        raise FuncgradTypeError(at_user_line(f"random.key: seed must be an integer, got {_describe(seed)}"))
    s = int(seed) % (1 << 64)
    return np.array([s >> 32, s & _MASK32], dtype=_U32)


PRNGKey = key


def key_data(k):
    """The uint32 words of a key (funcgrad keys already are these words): an array of shape (2,).

    >>> key_data(key(42))
    array([ 0, 42], dtype=uint32)
    """
    _check_key(k, "key_data")
    return k if isinstance(k, Tracer) else np.asarray(k)


def split(k, num: int = 2):
    """``num`` new independent keys from ``k``, as an array of shape ``(num, 2)``.

    >>> k1, k2 = split(key(0))
    """
    _check_key(k, "split")
    num = _index(num)
    b0, b1 = _blocks(k, (num,))
    return fnp.stack([b0, b1], axis=1)


def fold_in(k, data):
    """A new key from ``k`` and an integer ``data`` (e.g. a step or a process index).

    >>> k_step = fold_in(key(0), 7)
    """
    _check_key(k, "fold_in")
    if isinstance(data, Tracer):
        if data.dtype.kind not in "iu" or data.shape != ():
            raise FuncgradTypeError(at_user_line(
                f"random.fold_in: data must be an integer scalar, got {_describe(data)}"))
        d = fnp.asarray(data, _U32)
    else:
        if isinstance(data, (bool, np.bool_)) or not isinstance(data, (int, np.integer, np.ndarray)) or (
                isinstance(data, np.ndarray) and (data.shape != () or data.dtype.kind not in "iu")):
            raise FuncgradTypeError(at_user_line(
                f"random.fold_in: data must be an integer scalar, got {_describe(data)}"))
        d = np.uint32(int(data) & _MASK32)
    y0, y1 = threefry_2x32(_key_words(k), (np.uint32(0), d))
    return fnp.stack([y0, y1])


def bits(k, shape=()):
    """Uniformly random uint32 bits of ``shape``.

    >>> bits(key(0), (2,)).dtype
    dtype('uint32')
    """
    _check_key(k, "bits")
    return _bits32(k, _check_shape(shape, "bits"))


def _bits32(k, shape):
    """The xor of the cipher's two words (shifting the high word down leaves it in the low one)."""
    packed = _threefry_packed(_key_words(k), _counters(shape))
    return _low_word(fnp.bitwise_xor(packed, fnp.right_shift(packed, np.uint64(32))))


# -- floating-point distributions ---------------------------------------------------------------------
def _unit_floats(k, shape, dt):
    """Floats in [0, 1) with every mantissa bit random (JAX's construction)."""
    nmant = np.finfo(dt).nmant
    if dt.itemsize == 8:
        b0, b1 = _blocks(k, shape)
        hi = fnp.asarray(b0, dt) * dt.type(2.0 ** -32)
        lo = fnp.asarray(fnp.right_shift(b1, np.uint32(12)), dt) * dt.type(2.0 ** -52)
        return hi + lo
    width = 8 * dt.itemsize
    b = _bits32(k, shape)
    if width < 32:
        b = fnp.bitwise_and(b, np.uint32((1 << width) - 1))
    mant = fnp.right_shift(b, np.uint32(width - nmant))
    return fnp.asarray(mant, dt) * dt.type(2.0 ** -nmant)


def _bounds(v, dt):
    return fnp.asarray(v, dt)


def _shape_or_broadcast(shape, op, *args):
    shape = _check_shape(shape, op)
    try:
        arg_shape = np.broadcast_shapes(*[tuple(a.shape) for a in args])
    except ValueError:
        raise FuncgradValueError(at_user_line(
            f"random.{op}: parameters of shapes {[tuple(a.shape) for a in args]} do not broadcast")) from None
    if shape is None:
        return arg_shape
    if not _broadcasts_to(arg_shape, shape):
        raise FuncgradValueError(at_user_line(
            f"random.{op}: parameters of shape {arg_shape} do not broadcast to shape {shape}"))
    return shape


def _broadcasts_to(src, dst):
    try:
        return np.broadcast_shapes(src, dst) == tuple(dst)
    except ValueError:
        return False


def uniform(k, shape=(), dtype=None, minval=0.0, maxval=1.0):
    """Uniform floats in ``[minval, maxval)`` (float32 unless ``dtype`` says otherwise).

    >>> u = uniform(key(0), (1000,), minval=-1.0, maxval=1.0)
    >>> bool(u.min() >= -1.0 and u.max() < 1.0)
    True
    """
    _check_key(k, "uniform")
    dt = _float_dtype(dtype, "uniform")
    lo, hi = _bounds(minval, dt), _bounds(maxval, dt)
    shape = _shape_or_broadcast(shape, "uniform", lo, hi)
    return _uniform(k, shape, dt, lo, hi)


def _uniform(k, shape, dt, lo, hi):
    u = _unit_floats(k, shape, dt)
    return fnp.maximum(lo, u * (hi - lo) + lo)


def _erfinv(x):
    """Inverse error function: Giles' polynomial, refined by Newton steps in float64."""
    dt = np.dtype(x.dtype)
    w = -fnp.log((1.0 - x) * (1.0 + x))
    small = w < 5.0
    ws = fnp.where(small, w, 5.0) - 2.5
    wl = fnp.sqrt(fnp.where(small, 5.0, w)) - 3.0
    p_small = _horner(ws, (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                           0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941))
    p_large = _horner(wl, (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                           0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682))
    y = fnp.where(small, p_small, p_large) * x
    if dt.itemsize == 8:
        from .scipy.special import erf

        for _ in range(2):
            y = y - (erf(y) - x) / (1.1283791670955126 * fnp.exp(-y * y))
    return y


def _horner(w, coeffs):
    p = coeffs[0]
    for c in coeffs[1:]:
        p = c + p * w
    return p


def normal(k, shape=(), dtype=None):
    """Standard normal samples (float32 unless ``dtype`` says otherwise).

    >>> z = normal(key(1), (10000,))
    >>> bool(abs(float(z.mean())) < 0.05)
    True
    """
    _check_key(k, "normal")
    dt = _float_dtype(dtype, "normal")
    shape = _check_shape(shape, "normal")
    lo = np.nextafter(np.asarray(-1.0, dt), np.asarray(0.0, dt))
    u = _uniform(k, shape, dt, lo, np.asarray(1.0, dt))
    return dt.type(math.sqrt(2.0)) * _erfinv(u)


def truncated_normal(k, lower=-2.0, upper=2.0, shape=None, dtype=None):
    """Standard normal samples conditioned on ``lower < x < upper``.

    >>> t = truncated_normal(key(2), -1.0, 1.0, (1000,))
    >>> bool(t.min() > -1.0 and t.max() < 1.0)
    True
    """
    _check_key(k, "truncated_normal")
    dt = _float_dtype(dtype, "truncated_normal")
    from .scipy.special import erf

    lower, upper = _bounds(lower, dt), _bounds(upper, dt)
    shape = _shape_or_broadcast(shape, "truncated_normal", lower, upper)
    sqrt2 = dt.type(math.sqrt(2.0))
    a, b = erf(lower / sqrt2), erf(upper / sqrt2)
    u = _uniform(k, shape, dt, a, b)
    out = sqrt2 * _erfinv(u)
    return fnp.clip(out, fnp.nextafter(lower, dt.type(np.inf)), fnp.nextafter(upper, dt.type(-np.inf)))


def gumbel(k, shape=(), dtype=None):
    """Standard Gumbel samples ``-log(-log(u))``.

    >>> g = gumbel(key(3), (5,))
    """
    _check_key(k, "gumbel")
    dt = _float_dtype(dtype, "gumbel")
    return _gumbel(k, _check_shape(shape, "gumbel"), dt)


def _gumbel(k, shape, dt):
    u = _uniform(k, shape, dt, np.asarray(np.finfo(dt).tiny, dt), np.asarray(1.0, dt))
    return -fnp.log(-fnp.log(u))


# -- discrete distributions -------------------------------------------------------------------------------
def bernoulli(k, p=0.5, shape=None):
    """Booleans that are True with probability ``p``.

    >>> b = bernoulli(key(0), 0.3, (1000,))
    >>> b.dtype
    dtype('bool')
    """
    _check_key(k, "bernoulli")
    p_dt = np.dtype(p.dtype) if isinstance(p, (np.ndarray, Tracer)) else np.dtype(np.float32)
    dt = p_dt if p_dt.kind == "f" else np.dtype(np.float32)
    p = fnp.asarray(p, dt)
    shape = _shape_or_broadcast(shape, "bernoulli", p)
    return fnp.less(_uniform(k, shape, dt, np.asarray(0.0, dt), np.asarray(1.0, dt)), p)


def categorical(k, logits, axis=-1, shape=None):
    """Samples of ``softmax(logits)`` along ``axis`` (Gumbel-max), as int64 indices.

    >>> c = categorical(key(0), np.log(np.array([0.2, 0.8])), shape=(100,))
    >>> c.shape
    (100,)
    """
    _check_key(k, "categorical")
    logits = fnp.asarray(logits)
    dt = np.dtype(logits.dtype)
    if dt.kind != "f":
        raise FuncgradTypeError(at_user_line(f"random.categorical: logits must be floats, got {_describe(logits)}"))
    nd = logits.ndim
    if nd == 0:
        raise FuncgradValueError(at_user_line("random.categorical: logits must have at least one axis"))
    ax = axis % nd
    batch_shape = tuple(d for i, d in enumerate(logits.shape) if i != ax)
    shape = batch_shape if shape is None else _check_shape(shape, "categorical")
    if len(shape) < len(batch_shape) or not _broadcasts_to(batch_shape, shape[len(shape) - len(batch_shape):]):
        raise FuncgradValueError(at_user_line(
            f"random.categorical: shape {shape} does not end with the batch shape {batch_shape} of the logits"))
    prefix = shape[:len(shape) - len(batch_shape)]
    full = list(shape[len(prefix):])
    full.insert(ax, logits.shape[ax])
    full = tuple(prefix) + tuple(full)
    lg = fnp.reshape(logits, (1,) * len(prefix) + logits.shape)
    return fnp.argmax(_gumbel(k, full, dt) + lg, axis=len(prefix) + ax)


def randint(k, shape, minval, maxval, dtype=np.int32):
    """Integers uniformly drawn from ``[minval, maxval)`` (spans up to 2**32 - 1).

    >>> r = randint(key(0), (5,), 0, 10)
    >>> bool(((r >= 0) & (r < 10)).all())
    True
    """
    _check_key(k, "randint")
    dt = np.dtype(dtype)
    if dt.kind not in "iu":
        raise FuncgradTypeError(at_user_line(f"random.randint: dtype must be an integer type, got {dt.name}"))
    info = np.iinfo(dt)
    lo = fnp.asarray(_clip_int(minval, info), dt)
    hi = fnp.asarray(_clip_int(maxval, info), dt)
    shape = _shape_or_broadcast(shape, "randint", lo, hi)
    k1, k2 = split(k)
    higher, lower = _bits32(k1, shape), _bits32(k2, shape)
    span = fnp.asarray(hi - lo, _U32)
    span = fnp.where(hi <= lo, np.uint32(1), span)
    mult = fnp.remainder(np.uint32(1 << 16), span)
    mult = fnp.remainder(mult * mult, span)
    offset = fnp.remainder(fnp.remainder(higher, span) * mult + fnp.remainder(lower, span), span)
    return lo + fnp.asarray(offset, dt)


def _clip_int(v, info):
    if isinstance(v, (int, np.integer)):
        return min(max(int(v), int(info.min)), int(info.max))
    return v


def permutation(k, x, axis=0):
    """A random permutation of ``range(x)`` (int ``x``) or of ``x`` along ``axis``.

    >>> sorted(permutation(key(0), 5).tolist())
    [0, 1, 2, 3, 4]
    """
    _check_key(k, "permutation")
    if isinstance(x, (int, np.integer)):
        return _shuffle(k, np.arange(int(x)))
    x = fnp.asarray(x)
    if x.ndim == 0:
        raise FuncgradValueError(at_user_line("random.permutation: x must be an int or an array of rank >= 1"))
    idx = _shuffle(k, np.arange(x.shape[axis]))
    return fnp.take(x, idx, axis=axis)


def _shuffle(k, x):
    n = x.shape[0]
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(_MASK32)))
    for _ in range(rounds):
        k, sub = split(k)
        x = fnp.take(x, fnp.argsort(_bits32(sub, (n,))), axis=0)
    return x


# -- more continuous distributions ------------------------------------------------------------------
def exponential(k, shape=(), dtype=None):
    """Standard exponential samples ``-log(1 - u)`` (rate 1; float32 unless ``dtype`` says otherwise).

    >>> e = exponential(key(0), (1000,))
    >>> bool(e.min() >= 0.0)
    True
    """
    _check_key(k, "exponential")
    dt = _float_dtype(dtype, "exponential")
    shape = _check_shape(shape, "exponential")
    u = _uniform(k, shape, dt, np.asarray(0.0, dt), np.asarray(1.0, dt))
    return -fnp.log1p(-u)


def laplace(k, shape=(), dtype=None):
    """Standard Laplace samples (density ``exp(-|x|) / 2``), by inversion of a uniform on (-1, 1).

    >>> x = laplace(key(0), (1000,))
    >>> x.shape
    (1000,)
    """
    _check_key(k, "laplace")
    dt = _float_dtype(dtype, "laplace")
    shape = _check_shape(shape, "laplace")
    lo = np.nextafter(np.asarray(-1.0, dt), np.asarray(0.0, dt))
    u = _uniform(k, shape, dt, lo, np.asarray(1.0, dt))
    return -fnp.sign(u) * fnp.log1p(-fnp.abs(u))


def gamma(k, a, shape=None, dtype=None):
    """Gamma samples of shape parameter ``a`` (scale 1), by Marsaglia and Tsang's method.

    All elements are drawn together: each round of a ``lax.while_loop`` draws fresh normals and
    uniforms from ``fold_in(k, round)`` and keeps them for the elements not yet accepted, until
    every element is. For ``a < 1`` a ``gamma(a + 1)`` draw is multiplied by ``u ** (1 / a)``.
    Works eagerly and under ``jit`` and ``vmap``; it is not differentiable with respect to ``a``
    (no implicit reparameterisation gradient). A concrete ``a <= 0`` is an error; a traced one
    gives NaN.

    >>> g = gamma(key(0), 2.0, (1000,))
    >>> bool(g.min() > 0.0)
    True
    """
    _check_key(k, "gamma")
    dt = _float_dtype(dtype, "gamma")
    a = _positive(a, dt, "gamma", "a")
    shape = _shape_or_broadcast(shape, "gamma", a)
    return _gamma(k, fnp.broadcast_to(a, shape), shape, dt)


def _positive(v, dt, op, name):
    v = fnp.asarray(v, dt)
    if not isinstance(v, Tracer) and not bool(np.all(np.asarray(v) > 0)):
        raise FuncgradValueError(at_user_line(
            f"random.{op}: {name} must be positive, got {name} with minimum {np.asarray(v).min()!r}"
            if np.asarray(v).size else f"random.{op}: {name} must be positive"))
    return v


def _gamma(k, a, shape, dt):
    k_loop, k_boost = split(k)
    boost = a < 1
    ap = fnp.where(boost, a + 1, a)
    d = ap - dt.type(1.0 / 3.0)
    c = dt.type(1.0) / fnp.sqrt(dt.type(9.0) * fnp.where(ap > 0, d, dt.type(1.0)))
    # a NaN, non-positive or infinite parameter is settled at once (NaN, NaN, inf)
    valid = (ap > 0) & (ap < dt.type(np.inf))
    x0 = fnp.where(ap > 0, fnp.where(valid, dt.type(0.0), ap), dt.type(np.nan))
    zero, one = np.asarray(0.0, dt), np.asarray(1.0, dt)

    def cond(state):
        i, _, done = state
        return fnp.logical_and(i < 10000, fnp.any(fnp.logical_not(done)))

    def body(state):
        i, x, done = state
        k1, k2 = split(fold_in(k_loop, i))
        z = normal(k1, shape, dt)
        u = _uniform(k2, shape, dt, zero, one)
        v = (one + c * z) ** 3
        pos = v > 0
        logv = fnp.log(fnp.where(pos, v, one))
        ok = pos & (fnp.log(u) < dt.type(0.5) * z * z + d - d * v + d * logv)
        new = fnp.logical_and(fnp.logical_not(done), ok)
        return i + 1, fnp.where(new, d * v, x), fnp.logical_or(done, new)

    init = (np.asarray(0, np.int32), fnp.broadcast_to(x0, shape), fnp.logical_not(fnp.broadcast_to(valid, shape)))
    _, x, _ = _while_loop(cond, body, init)
    u = _uniform(k_boost, shape, dt, np.asarray(np.finfo(dt).tiny, dt), one)
    scale = fnp.exp(fnp.log(u) / fnp.where(boost, a, one))
    return fnp.where(boost, x * scale, x)


def _while_loop(cond, body, init):
    from .lax import while_loop

    return while_loop(cond, body, init)


def beta(k, a, b, shape=None, dtype=None):
    """Beta(a, b) samples, as ``x / (x + y)`` of gamma draws ``x ~ Gamma(a)``, ``y ~ Gamma(b)``.

    Not differentiable with respect to ``a`` or ``b``.

    >>> x = beta(key(0), 2.0, 3.0, (1000,))
    >>> bool(x.min() >= 0.0 and x.max() <= 1.0)
    True
    """
    _check_key(k, "beta")
    dt = _float_dtype(dtype, "beta")
    a, b = _positive(a, dt, "beta", "a"), _positive(b, dt, "beta", "b")
    shape = _shape_or_broadcast(shape, "beta", a, b)
    ka, kb = split(k)
    x = _gamma(ka, fnp.broadcast_to(a, shape), shape, dt)
    y = _gamma(kb, fnp.broadcast_to(b, shape), shape, dt)
    return x / (x + y)


def dirichlet(k, alpha, shape=None, dtype=None):
    """Dirichlet samples of concentration ``alpha`` (last axis: the categories), normalised gamma
    draws; the result has shape ``shape + alpha.shape[-1:]``. Not differentiable in ``alpha``.

    >>> x = dirichlet(key(0), np.array([1.0, 2.0, 3.0]), (4,))
    >>> x.shape
    (4, 3)
    """
    _check_key(k, "dirichlet")
    dt = _float_dtype(dtype, "dirichlet")
    alpha = _positive(alpha, dt, "dirichlet", "alpha")
    if alpha.ndim < 1:
        raise FuncgradValueError(at_user_line(
            f"random.dirichlet: alpha must have at least one axis (the categories), got {_describe(alpha)}"))
    batch = tuple(alpha.shape[:-1])
    shape = batch if shape is None else _check_shape(shape, "dirichlet")
    if not _broadcasts_to(batch, shape):
        raise FuncgradValueError(at_user_line(
            f"random.dirichlet: alpha's batch shape {batch} does not broadcast to shape {shape}"))
    full = tuple(shape) + tuple(alpha.shape[-1:])
    g = _gamma(k, fnp.broadcast_to(alpha, full), full, dt)
    return g / fnp.sum(g, axis=-1, keepdims=True)


def multivariate_normal(k, mean, cov, shape=None, dtype=None, method="cholesky"):
    """Multivariate normal samples ``mean + L z`` with ``L = cholesky(cov)`` and ``z`` standard
    normal; ``mean`` has shape ``(..., n)``, ``cov`` ``(..., n, n)``; the result
    ``shape + (n,)`` (``shape`` defaults to the broadcast batch shape of ``mean`` and ``cov``).

    >>> x = multivariate_normal(key(0), np.zeros(2), np.eye(2), (5,))
    >>> x.shape
    (5, 2)
    """
    _check_key(k, "multivariate_normal")
    if method != "cholesky":
        raise FuncgradValueError(at_user_line(
            f"random.multivariate_normal: only method='cholesky' is supported, got {method!r}"))
    dt = _float_dtype(dtype, "multivariate_normal")
    mean, cov = fnp.asarray(mean, dt), fnp.asarray(cov, dt)
    if mean.ndim < 1 or cov.ndim < 2 or tuple(cov.shape[-2:]) != (mean.shape[-1],) * 2:
        raise FuncgradValueError(at_user_line(
            "random.multivariate_normal: mean must have shape (..., n) and cov (..., n, n), got "
            f"{tuple(mean.shape)} and {tuple(cov.shape)}"))
    n = mean.shape[-1]
    try:
        batch = np.broadcast_shapes(tuple(mean.shape[:-1]), tuple(cov.shape[:-2]))
    except ValueError:
        raise FuncgradValueError(at_user_line(
            f"random.multivariate_normal: batch shapes {tuple(mean.shape[:-1])} of mean and "
            f"{tuple(cov.shape[:-2])} of cov do not broadcast")) from None
    shape = batch if shape is None else _check_shape(shape, "multivariate_normal")
    if not _broadcasts_to(batch, shape):
        raise FuncgradValueError(at_user_line(
            f"random.multivariate_normal: batch shape {batch} of mean and cov does not broadcast to shape {shape}"))
    chol = fnp.linalg.cholesky(cov)
    z = normal(k, tuple(shape) + (n,), dt)
    return mean + fnp.matmul(chol, z[..., None])[..., 0]


# -- sampling from a set ------------------------------------------------------------------------------
def choice(k, a, shape=(), replace=True, p=None, axis=0):
    """Samples from ``arange(a)`` (int ``a``) or from the entries of array ``a`` along ``axis``,
    with or without replacement, uniformly or with probabilities ``p``.

    Without replacement and without ``p`` it takes the first entries of a random permutation;
    with ``p`` the Gumbel top-k of ``log p``. The result has shape ``shape`` for an int ``a``,
    else ``a.shape[:axis] + shape + a.shape[axis + 1:]``.

    >>> c = choice(key(0), 10, (5,), replace=False)
    >>> len(set(c.tolist()))
    5
    """
    _check_key(k, "choice")
    shape = _check_shape(shape, "choice")
    if isinstance(a, (bool, np.bool_)):
        raise FuncgradTypeError(at_user_line(f"random.choice: a must be an int or an array, got {_describe(a)}"))
    if isinstance(a, (int, np.integer)):
        arr, n = None, int(a)
        if n < 0:
            raise FuncgradValueError(at_user_line(f"random.choice: a must be non-negative, got {n}"))
    else:
        arr = fnp.asarray(a)
        if arr.ndim == 0:
            raise FuncgradValueError(at_user_line(
                "random.choice: a must be an int or an array of rank >= 1, got a scalar array"))
        if not -arr.ndim <= axis < arr.ndim:
            raise FuncgradValueError(at_user_line(
                f"random.choice: axis {axis} is out of range for a of rank {arr.ndim}"))
        axis = axis % arr.ndim
        n = arr.shape[axis]
    m = math.prod(shape)
    if m > 0 and n == 0:
        raise FuncgradValueError(at_user_line("random.choice: cannot draw from an empty set (a has no entries)"))
    if not replace and m > n:
        raise FuncgradValueError(at_user_line(
            f"random.choice: cannot take {m} samples (shape {shape}) without replacement from {n} entries; "
            "pass replace=True or a smaller shape"))
    if p is not None:
        p = fnp.asarray(p)
        if np.dtype(p.dtype).kind != "f":
            p = fnp.asarray(p, np.float32)
        if tuple(p.shape) != (n,):
            raise FuncgradValueError(at_user_line(
                f"random.choice: p must have shape ({n},) (one probability per entry), got {tuple(p.shape)}"))
    if p is None and replace:
        idx = fnp.asarray(randint(k, shape, 0, n, dtype=np.int64), np.int64)
    elif p is None:
        idx = fnp.reshape(_shuffle(k, np.arange(n))[:m], shape)
    elif replace:
        idx = categorical(k, fnp.log(p), shape=shape)
    else:
        g = _gumbel(k, (n,), np.dtype(p.dtype)) + fnp.log(p)
        idx = fnp.reshape(fnp.argsort(-g)[:m], shape)
    if arr is None:
        return idx
    return fnp.take(arr, idx, axis=axis)
