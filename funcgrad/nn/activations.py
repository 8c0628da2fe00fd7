"""Activation functions, exact and finite (with finite gradients) for inputs of any size.

>>> import numpy as np
>>> softplus(np.array([-1e4, 0.0, 1e4])).tolist()
[0.0, 0.6931471805599453, 10000.0]
"""
from __future__ import annotations

import math

from .. import numpy as fnp
from ..numpy._util import promote_float
from ..scipy.special import expit, log_softmax, logsumexp, softmax

__all__ = [
    "elu",
    "gelu",
    "leaky_relu",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "one_hot",
    "relu",
    "relu6",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "swish",
    "tanh",
]

sigmoid = expit
tanh = fnp.tanh


def relu(x):
    """``max(x, 0)``; its derivative at 0 is 0."""
    x, = promote_float(x)
    return fnp.where(x > 0, x, 0.0)


def relu6(x):
    """``min(max(x, 0), 6)``; its derivative is 0 at both kinks (0 and 6)."""
    x, = promote_float(x)
    return fnp.where(x > 0, fnp.where(x < 6, x, 6.0), 0.0)


def leaky_relu(x, negative_slope=0.01):
    """``x`` for ``x >= 0``, ``negative_slope * x`` below."""
    x, = promote_float(x)
    return fnp.where(x >= 0, x, negative_slope * x)


def elu(x, alpha=1.0):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` below."""
    x, = promote_float(x)
    below = fnp.where(x > 0, 0.0, x)  # finite exp for large x; the branch's derivative at 0
    return fnp.where(x > 0, x, alpha * fnp.expm1(below))


def softplus(x):
    """``log(1 + exp(x))`` computed as ``max(x, 0) + log1p(exp(-|x|))``, each piece chosen by
    the sign of ``x``, so every derivative at 0 is that of the smooth function (``1/2``,
    ``1/4``, ``0``, ...)."""
    x, = promote_float(x)
    positive = x >= 0
    return fnp.where(positive, x, 0.0) + fnp.log1p(fnp.exp(fnp.where(positive, -x, x)))


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``."""
    return -softplus(-fnp.asarray(x))


def silu(x):
    """``x * sigmoid(x)`` (also called swish)."""
    x, = promote_float(x)
    return x * expit(x)


swish = silu


def gelu(x, approximate=True):
    """Gaussian error linear unit; the tanh approximation unless ``approximate=False``."""
    x, = promote_float(x)
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        return 0.5 * x * (1.0 + fnp.tanh(c * (x + 0.044715 * (x * x * x))))
    from ..scipy.special import erf

    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


def one_hot(labels, num_classes, dtype=fnp.float32):
    """Integer labels (any shape) to one-hot vectors along a new last axis.

    >>> import numpy as np
    >>> one_hot(np.array([2, 0]), 3)
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    labels = fnp.asarray(labels)
    return fnp.asarray(fnp.expand_dims(labels, -1) == fnp.arange(num_classes), dtype)
