"""Gradient transformations (optax-style): ``init(params) -> state`` and
``update(updates, state, params=None) -> (updates, state)``. States are
namedtuples of arrays, so an entire training step can be jitted.

>>> import numpy as np
>>> tx = chain(clip_by_global_norm(1.0), scale_by_adam(), scale(-1e-3))
>>> params = {"w": np.ones(3, np.float32)}
>>> state = tx.init(params)
>>> updates, state = tx.update({"w": np.full(3, 5.0, np.float32)}, state, params)
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .. import numpy as fnp
from ..errors import FuncgradValueError, at_user_line
from ..tree_util import tree_leaves, tree_map

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "TraceState",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "clip_by_global_norm",
    "global_norm",
    "identity",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "trace",
]


class GradientTransformation(NamedTuple):
    """``init(params) -> state``; ``update(updates, state, params=None) -> (updates, state)``."""

    init: Callable
    update: Callable


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


class TraceState(NamedTuple):
    trace: Any


class ScaleByAdamState(NamedTuple):
    count: Any
    mu: Any
    nu: Any


class ScaleByRmsState(NamedTuple):
    mu: Any
    nu: Any


class ScaleByRssState(NamedTuple):
    sum_of_squares: Any


class ScaleByScheduleState(NamedTuple):
    count: Any


def _zeros_like(params):
    return tree_map(lambda p: np.zeros(np.shape(p), _dtype(p)), params)


def _dtype(x):
    return np.dtype(getattr(x, "dtype", None) or np.asarray(x).dtype)


def _const(v, like):
    """``v`` (a Python number or a 0-d array such as a schedule's value) in ``like``'s dtype."""
    return fnp.asarray(v, _dtype(like))


def _count0():
    return np.zeros((), np.int32)


def identity() -> GradientTransformation:
    """Leave the updates unchanged."""
    return GradientTransformation(lambda params: EmptyState(), lambda u, state, params=None: (u, state))


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` in order; the state is the tuple of their states.

    >>> opt = chain(clip_by_global_norm(1.0), scale(-0.1))
    """
    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if len(state) != len(transforms):
            raise FuncgradValueError(at_user_line(
                f"chain: a state of {len(state)} entries for {len(transforms)} transformations"))
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def scale(step_size) -> GradientTransformation:
    """Multiply the updates by ``step_size``."""
    def update(updates, state, params=None):
        return tree_map(lambda u: u * _const(step_size, u), updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def scale_by_schedule(step_size_fn: Callable) -> GradientTransformation:
    """Multiply the updates by ``step_size_fn(count)``, ``count`` being the number of
    updates made before this one."""
    def init(params):
        return ScaleByScheduleState(_count0())

    def update(updates, state, params=None):
        step = step_size_fn(state.count)
        return tree_map(lambda u: u * _const(step, u), updates), ScaleByScheduleState(state.count + 1)

    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate, flip_sign: bool = True) -> GradientTransformation:
    """Multiply by ``-learning_rate`` (a number or a schedule)."""
    sign = -1.0 if flip_sign else 1.0
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum: ``t = g + decay * t``; the update is ``t`` (``g + decay * t`` if ``nesterov``)."""
    def init(params):
        return TraceState(_zeros_like(params))

    def update(updates, state, params=None):
        new_trace = tree_map(lambda g, t: g + _const(decay, g) * t, updates, state.trace)
        if nesterov:
            updates = tree_map(lambda g, t: g + _const(decay, g) * t, updates, new_trace)
        else:
            updates = new_trace
        return updates, TraceState(new_trace)

    return GradientTransformation(init, update)


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0) -> GradientTransformation:
    """Adam's direction ``m_hat / (sqrt(v_hat + eps_root) + eps)`` with bias-corrected
    moment estimates ``m_hat = m / (1 - b1**t)``, ``v_hat = v / (1 - b2**t)``."""
    def init(params):
        return ScaleByAdamState(_count0(), _zeros_like(params), _zeros_like(params))

    def update(updates, state, params=None):
        count = state.count + 1
        mu = tree_map(lambda g, m: _const(b1, g) * m + _const(1.0 - b1, g) * g, updates, state.mu)
        nu = tree_map(lambda g, v: _const(b2, g) * v + _const(1.0 - b2, g) * (g * g), updates, state.nu)

        def direction(m, v):
            t = _const(count, m)
            m_hat = m / (1.0 - fnp.power(_const(b1, m), t))
            v_hat = v / (1.0 - fnp.power(_const(b2, m), t))
            return m_hat / (fnp.sqrt(v_hat + eps_root) + eps)

        return tree_map(direction, mu, nu), ScaleByAdamState(count, mu, nu)

    return GradientTransformation(init, update)


def scale_by_rms(decay=0.9, eps=1e-8, initial_scale=0.0, centered=False) -> GradientTransformation:
    """RMSProp's direction ``g / sqrt(v + eps)`` with ``v = decay * v + (1 - decay) * g**2``;
    ``centered`` subtracts the squared running mean of ``g`` from ``v``."""
    def init(params):
        nu = tree_map(lambda p: np.full(np.shape(p), initial_scale, _dtype(p)), params)
        return ScaleByRmsState(_zeros_like(params), nu)

    def update(updates, state, params=None):
        nu = tree_map(lambda g, v: _const(decay, g) * v + _const(1.0 - decay, g) * (g * g), updates, state.nu)
        mu = state.mu
        if centered:
            mu = tree_map(lambda g, m: _const(decay, g) * m + _const(1.0 - decay, g) * g, updates, state.mu)
            out = tree_map(lambda g, m, v: g / fnp.sqrt(v - m * m + eps), updates, mu, nu)
        else:
            out = tree_map(lambda g, v: g / fnp.sqrt(v + eps), updates, nu)
        return out, ScaleByRmsState(mu, nu)

    return GradientTransformation(init, update)


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    """Adagrad's direction ``g / sqrt(s + eps)`` with the running sum of squares
    ``s = s + g**2`` (zero where ``s`` is zero)."""
    def init(params):
        return ScaleByRssState(tree_map(lambda p: np.full(np.shape(p), initial_accumulator_value, _dtype(p)),
                                        params))

    def update(updates, state, params=None):
        sos = tree_map(lambda g, s: s + g * g, updates, state.sum_of_squares)
        out = tree_map(lambda g, s: fnp.where(s > 0, g / fnp.sqrt(s + eps), 0.0), updates, sos)
        return out, ScaleByRssState(sos)

    return GradientTransformation(init, update)


def add_decayed_weights(weight_decay=1e-4) -> GradientTransformation:
    """Add ``weight_decay * params`` to the updates (decoupled weight decay)."""
    def update(updates, state, params=None):
        if params is None:
            raise FuncgradValueError(at_user_line(
                "add_decayed_weights (adamw): update(grads, state, params) needs the params"))
        return tree_map(lambda u, p: u + _const(weight_decay, u) * p, updates, params), state

    return GradientTransformation(lambda params: EmptyState(), update)


def global_norm(tree):
    """``sqrt(sum of squares)`` over every leaf of ``tree``."""
    leaves = tree_leaves(tree)
    return fnp.sqrt(sum(fnp.sum(fnp.square(x)) for x in leaves))


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Scale the updates down so their global norm is at most ``max_norm``."""
    def update(updates, state, params=None):
        norm = global_norm(updates)
        small = norm < max_norm
        factor = max_norm / fnp.where(small, 1.0, norm)
        return tree_map(lambda u: fnp.where(small, u, u * _const(factor, u)), updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def apply_updates(params, updates):
    """``params + updates`` leaf by leaf (updates cast to each param's dtype).

    >>> apply_updates({"w": np.ones(2)}, {"w": np.full(2, 0.5)})
    {'w': array([1.5, 1.5])}
    """
    return tree_map(lambda p, u: fnp.add(p, _const(u, p)), params, updates)
