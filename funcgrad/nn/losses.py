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
from .module import Module

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss", "binary_cross_entropies", "binary_cross_entropy", "l2_penalty", "mse", "softmax_cross_entropies",
           "softmax_cross_entropy", "squared_errors"]


def squared_errors(predictions, targets):
    """``(predictions - targets) ** 2``, entry by entry."""
    p, t = promote_float(predictions, targets)
    return fnp.square(p - t)


def mse(predictions, targets):
    """Mean squared error ``mean((predictions - targets) ** 2)``."""
    return fnp.mean(squared_errors(predictions, targets))


def binary_cross_entropies(logits, labels):
    """``-[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]`` entry by entry, for logits ``x``
    and labels ``y`` in [0, 1], computed as ``softplus(x) - x * y``."""
    x, = promote_float(logits)
    y = fnp.asarray(labels, x.dtype)
    if tuple(y.shape) != tuple(x.shape):
        raise ShapeError(at_user_line(f"binary_cross_entropy: logits of shape {tuple(x.shape)} and labels of "
                                      f"shape {tuple(y.shape)} differ"))
    return softplus(x) - x * y


def binary_cross_entropy(logits, labels):
    """Mean of :func:`binary_cross_entropies`."""
    return fnp.mean(binary_cross_entropies(logits, labels))


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy between ``softmax(logits)`` (classes on the last axis) and
    ``labels``: integer class indices (shape ``logits.shape[:-1]``) or probabilities
    / one-hot vectors (shape ``logits.shape``)."""
    x, labels = _probabilities(logits, labels)
    return -fnp.sum(labels * log_softmax(x, axis=-1)) / max(1, int(np.prod(tuple(x.shape)[:-1])))


def softmax_cross_entropies(logits, labels):
    """The cross-entropy of each example (shape ``logits.shape[:-1]``); labels as for
    :func:`softmax_cross_entropy`."""
    x, labels = _probabilities(logits, labels)
    return -fnp.sum(labels * log_softmax(x, axis=-1), axis=-1)


def _probabilities(logits, labels):
    """``(logits, labels as probabilities of the logits' dtype)``, checked."""
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
    return x, labels


def l2_penalty(params):
    """``0.5 * sum(w ** 2)`` over every floating leaf of the pytree ``params``.

    >>> float(l2_penalty({"w": np.ones((2, 2)), "b": np.ones(2)}))
    3.0
    """
    leaves = [p for p in map(fnp.asarray, tree_leaves(params)) if np.dtype(p.dtype).kind == "f"]
    if not leaves:
        return 0.0
    return 0.5 * sum(fnp.sum(fnp.square(p)) for p in leaves)


# -- the losses as PyTorch-style callables ---------------------------------------------------------------
def _reduce(values, reduction, name):
    if reduction == "mean":
        return fnp.mean(values)
    if reduction == "sum":
        return fnp.sum(values)
    if reduction == "none":
        return values
    raise FuncgradValueError(at_user_line(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"))


class _Loss(Module):
    def __init__(self, reduction="mean"):
        _reduce(np.zeros(1), reduction, type(self).__name__)
        self.reduction = reduction


class MSELoss(_Loss):
    """``loss(input, target)``: the squared errors, averaged (``reduction='mean'``), summed
    ('sum') or not ('none'), as ``torch.nn.MSELoss``."""

    def __call__(self, input, target):
        return _reduce(squared_errors(input, target), self.reduction, "MSELoss")


class BCEWithLogitsLoss(_Loss):
    """``loss(logits, target)``: binary cross-entropy of ``sigmoid(logits)`` against targets in
    [0, 1], computed stably from the logits, as ``torch.nn.BCEWithLogitsLoss``."""

    def __call__(self, input, target):
        return _reduce(binary_cross_entropies(input, target), self.reduction, "BCEWithLogitsLoss")


class CrossEntropyLoss(_Loss):
    """``loss(logits, target)`` as ``torch.nn.CrossEntropyLoss``: logits ``(N, C)`` or
    ``(N, C, d1, ...)`` (classes on axis 1), targets class indices ``(N, d1, ...)`` or
    probabilities of the logits' shape."""

    def __call__(self, input, target):
        x = fnp.asarray(input)
        if x.ndim > 2:  # classes on axis 1, as PyTorch: move them last
            x = fnp.moveaxis(x, 1, -1)
            t = fnp.asarray(target)
            target = fnp.moveaxis(t, 1, -1) if np.dtype(t.dtype).kind == "f" else t
        if self.reduction == "mean":
            return softmax_cross_entropy(x, target)
        return _reduce(softmax_cross_entropies(x, target), self.reduction, "CrossEntropyLoss")
