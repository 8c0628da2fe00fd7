"""Ready-made optimizers, each a ``chain`` of the transformations in ``transforms``.
``learning_rate`` is a number or a schedule (a function of the step count).

>>> import numpy as np
>>> import funcgrad as fg
>>> from funcgrad import optim
>>> opt = optim.adam(1e-2)
>>> params = {"w": np.zeros(3, np.float32)}
>>> state = opt.init(params)
>>> grads = fg.grad(lambda p: ((p["w"] - 1.0) ** 2).sum())(params)
>>> updates, state = opt.update(grads, state, params)
>>> params = optim.apply_updates(params, updates)
"""
from __future__ import annotations

from .transforms import (
    GradientTransformation,
    add_decayed_weights,
    chain,
    identity,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    trace,
)

__all__ = ["adagrad", "adam", "adamw", "rmsprop", "sgd"]


def sgd(learning_rate, momentum: float | None = None, nesterov: bool = False) -> GradientTransformation:
    """Stochastic gradient descent ``p -= lr * g``, with optional (Nesterov) momentum:
    ``t = g + momentum * t``; ``p -= lr * t`` (``lr * (g + momentum * t)`` with ``nesterov``)."""
    return chain(trace(momentum, nesterov) if momentum else identity(), scale_by_learning_rate(learning_rate))


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0) -> GradientTransformation:
    """Adam (Kingma & Ba): ``p -= lr * m_hat / (sqrt(v_hat + eps_root) + eps)``."""
    return chain(scale_by_adam(b1, b2, eps, eps_root), scale_by_learning_rate(learning_rate))


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, weight_decay=1e-4) -> GradientTransformation:
    """Adam with decoupled weight decay (Loshchilov & Hutter):
    ``p -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * p)``; pass ``params`` to ``update``."""
    return chain(scale_by_adam(b1, b2, eps, eps_root), add_decayed_weights(weight_decay),
                 scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, centered=False,
            momentum: float | None = None, nesterov: bool = False) -> GradientTransformation:
    """RMSProp: ``v = decay * v + (1 - decay) * g**2``; ``p -= lr * g / sqrt(v + eps)``
    (then momentum on the scaled step if ``momentum`` is given)."""
    return chain(scale_by_rms(decay, eps, initial_scale, centered), scale_by_learning_rate(learning_rate),
                 trace(momentum, nesterov) if momentum else identity())


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    """Adagrad: ``s = s + g**2``; ``p -= lr * g / sqrt(s + eps)``."""
    return chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate))
