"""``funcgrad.scipy.special``: logsumexp, expit, logit, erf, gammaln, xlogy, digamma."""
from __future__ import annotations

import numpy as np

from .. import numpy as fnp
from ..numpy._util import promote_float
from ..primitives import elementwise as E
from ..primitives import stop_gradient


def expit(x):
    """The logistic sigmoid ``1 / (1 + exp(-x))``, exact and finite for any input."""
    x, = promote_float(x)
    return E.logistic_p.bind(x)


def logit(p):
    p, = promote_float(p)
    return fnp.log(p) - fnp.log1p(-p)


def erf(x):
    x, = promote_float(x)
    return E.erf_p.bind(x)


def gammaln(x):
    x, = promote_float(x)
    return E.lgamma_p.bind(x)


def digamma(x):
    x, = promote_float(x)
    return E.digamma_p.bind(x)


def xlogy(x, y):
    """``x * log(y)``, 0 where ``x == 0`` (unless ``y`` is NaN); its x-derivative is ``log(y)``."""
    x, y = promote_float(x, y)
    return x * fnp.log(fnp.where(_zero_times_bad(x, y <= 0, y), 1.0, y))


def _zero_times_bad(x, bad, y):
    """Where ``x == 0`` meets a ``y`` whose log would be -inf, NaN or +inf (0 * that is not 0)."""
    return fnp.logical_and(x == 0, fnp.logical_or(bad, y == np.inf))


def xlog1py(x, y):
    """``x * log1p(y)``, 0 where ``x == 0`` (unless ``y`` is NaN); its x-derivative is ``log1p(y)``."""
    x, y = promote_float(x, y)
    return x * fnp.log1p(fnp.where(_zero_times_bad(x, y <= -1, y), 0.0, y))


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """``log(sum(exp(a)))`` along ``axis``, stable for inputs of any size."""
    a, = promote_float(a)
    a = np.asarray(a) if not hasattr(a, "shape") else a
    empty = {"initial": -np.inf} if 0 in np.shape(a) else {}  # an empty sum is 0: log 0 = -inf
    amax = stop_gradient(fnp.max(a, axis=axis, keepdims=True, **empty))
    amax = fnp.where(fnp.isfinite(amax), amax, 0.0)
    e = fnp.exp(a - amax)
    if b is not None:
        e = e * b
    s = fnp.sum(e, axis=axis, keepdims=True)
    sign = fnp.sign(s)
    out = fnp.log(fnp.abs(s)) + amax
    if not keepdims:
        axes = tuple(range(np.ndim(a))) if axis is None else ((axis,) if isinstance(axis, int) else axis)
        out = fnp.squeeze(out, axis=tuple(ax % max(np.ndim(a), 1) for ax in axes)) if np.ndim(a) else out
        sign = fnp.squeeze(sign, axis=tuple(ax % max(np.ndim(a), 1) for ax in axes)) if np.ndim(a) else sign
    if return_sign:
        return out, sign
    return out


def softmax(x, axis=-1):
    x, = promote_float(x)
    z = x - stop_gradient(fnp.max(x, axis=axis, keepdims=True))
    e = fnp.exp(z)
    return e / fnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    x, = promote_float(x)
    z = x - stop_gradient(fnp.max(x, axis=axis, keepdims=True))
    return z - fnp.log(fnp.sum(fnp.exp(z), axis=axis, keepdims=True))
