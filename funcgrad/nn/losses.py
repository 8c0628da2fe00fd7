"""Loss functions (means over the examples), stable for logits of any size.

>>> import numpy as np
>>> logits = np.array([[1e4, -1e4], [0.0, 0.0]], np.float32)
>>> float(softmax_cross_entropy(logits, np.array([0, 1])))
0.3465735912322998
"""
from __future__ import annotations

import numpy as np

from .. import numpy as fnp
from ..core.trace import Tracer
from ..errors import FuncgradTypeError, FuncgradValueError, ShapeError, at_user_line
from ..numpy._util import promote_float
from ..tree_util import tree_leaves
from .activations import log_softmax, one_hot, softplus

__all__ = ["binary_cross_entropy", "l2_penalty", "mse", "softmax_cross_entropy"]


def mse(predictions, targets):
    """Mean squared error ``mean((predictions - targets) ** 2)``."""
    p, t = promote_float(predictions, targets)
    return fnp.mean(fnp.square(p - t))


def binary_cross_entropy(logits, labels):
    """Mean of ``-[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]`` for logits ``x`` and
    labels ``y`` in [0, 1], computed as ``softplus(x) - x * y``."""
    x, = promote_float(logits)
    y = fnp.asarray(labels, x.dtype)
    if tuple(y.shape) != tuple(x.shape):
        raise ShapeError(at_user_line(f"binary_cross_entropy: logits of shape {tuple(x.shape)} and labels of "
                                      f"shape {tuple(y.shape)} differ"))
    return fnp.mean(softplus(x) - x * y)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy between ``softmax(logits)`` (classes on the last axis) and
    ``labels``: integer class indices (shape ``logits.shape[:-1]``) or probabilities
    / one-hot vectors (shape ``logits.shape``)."""
    x, = promote_float(logits)
    labels = fnp.asarray(labels)
    xs, ls = tuple(x.shape), tuple(labels.shape)
    if np.dtype(labels.dtype).kind in "iu":
        if ls != xs[:-1]:
            raise ShapeError(at_user_line(f"softmax_cross_entropy: integer labels of shape {ls} must have the "
                                          f"logits' shape without the class axis, {xs[:-1]}"))
        if not isinstance(labels, Tracer) and labels.size and (labels.min() < 0 or labels.max() >= xs[-1]):
            raise FuncgradValueError(at_user_line(
                f"softmax_cross_entropy: labels must lie in [0, {xs[-1]}), got values from {labels.min()} "
                f"to {labels.max()}"))
        labels = one_hot(labels, xs[-1], x.dtype)
    elif np.dtype(labels.dtype).kind == "f":
        if ls != xs:
            raise ShapeError(at_user_line(f"softmax_cross_entropy: probability labels of shape {ls} must match "
                                          f"the logits' shape {xs}"))
        labels = fnp.asarray(labels, x.dtype)
    else:
        raise FuncgradTypeError(at_user_line(
            f"softmax_cross_entropy: labels must be integers or floats, got {np.dtype(labels.dtype).name}"))
    return -fnp.sum(labels * log_softmax(x, axis=-1)) / max(1, int(np.prod(xs[:-1])))


def l2_penalty(params):
    """``0.5 * sum(w ** 2)`` over every floating leaf of the pytree ``params``.

    >>> float(l2_penalty({"w": np.ones((2, 2)), "b": np.ones(2)}))
    3.0
    """
    leaves = [p for p in map(fnp.asarray, tree_leaves(params)) if np.dtype(p.dtype).kind == "f"]
    if not leaves:
        return 0.0
    return 0.5 * sum(fnp.sum(fnp.square(p)) for p in leaves)
