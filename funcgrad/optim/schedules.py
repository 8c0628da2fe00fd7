"""Learning-rate schedules: functions from the step count to a value.

They are written with ``funcgrad.numpy`` so a traced count works inside ``jit``.

>>> s = warmup_cosine(0.0, 1.0, warmup_steps=10, decay_steps=100)
>>> float(s(5)), float(s(10)), float(s(100))
(0.5, 1.0, 0.0)
"""
from __future__ import annotations

import math

from .. import numpy as fnp
from ..errors import FuncgradValueError

__all__ = [
    "constant",
    "constant_schedule",
    "cosine_decay",
    "cosine_decay_schedule",
    "exponential_decay",
    "linear_schedule",
    "warmup_cosine",
    "warmup_cosine_decay_schedule",
]


def _count(count):
    return fnp.asarray(count, fnp.float64)


def constant(value):
    """The same value at every step."""
    def schedule(count):
        return fnp.full_like(_count(count), value)

    return schedule


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    """Linear from ``init_value`` to ``end_value`` over ``transition_steps`` steps after
    ``transition_begin``; constant outside."""
    if transition_steps <= 0:
        return constant(init_value)

    def schedule(count):
        c = fnp.clip(_count(count) - transition_begin, 0, transition_steps)
        return init_value + (end_value - init_value) * (c / transition_steps)

    return schedule


def exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0, staircase=False,
                      end_value=None):
    """``init_value * decay_rate ** ((count - transition_begin) / transition_steps)``
    (the exponent floored when ``staircase``), bounded by ``end_value`` if given.

    >>> float(exponential_decay(1.0, 10, 0.5)(20))
    0.25
    """
    if transition_steps <= 0:
        raise FuncgradValueError(f"exponential_decay: transition_steps must be positive, got {transition_steps}")

    def schedule(count):
        c = _count(count) - transition_begin
        p = c / transition_steps
        if staircase:
            p = fnp.floor(p)
        value = fnp.where(c <= 0, init_value, init_value * fnp.power(decay_rate, p))
        if end_value is not None:
            value = fnp.maximum(value, end_value) if decay_rate < 1 else fnp.minimum(value, end_value)
        return value

    return schedule


def cosine_decay(init_value, decay_steps, alpha=0.0, exponent=1.0):
    """Half a cosine from ``init_value`` down to ``alpha * init_value`` over ``decay_steps``.

    >>> float(cosine_decay(1.0, 10)(5))
    0.5
    """
    if decay_steps <= 0:
        raise FuncgradValueError(f"cosine_decay: decay_steps must be positive, got {decay_steps}")

    def schedule(count):
        c = fnp.minimum(_count(count), decay_steps)
        cosine = 0.5 * (1.0 + fnp.cos(math.pi * c / decay_steps))
        return init_value * ((1.0 - alpha) * cosine ** exponent + alpha)

    return schedule


def warmup_cosine(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0):
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then a
    cosine decay to ``end_value`` at step ``decay_steps`` (counted from the start)."""
    if decay_steps <= warmup_steps:
        raise FuncgradValueError(f"warmup_cosine: decay_steps ({decay_steps}) must exceed warmup_steps "
                                 f"({warmup_steps})")
    warm = linear_schedule(init_value, peak_value, warmup_steps)
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    decay = cosine_decay(peak_value, decay_steps - warmup_steps, alpha, exponent)

    def schedule(count):
        c = _count(count)
        return fnp.where(c < warmup_steps, warm(c), decay(c - warmup_steps))

    return schedule


constant_schedule = constant
cosine_decay_schedule = cosine_decay
warmup_cosine_decay_schedule = warmup_cosine
