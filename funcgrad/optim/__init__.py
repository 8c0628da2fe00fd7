"""``funcgrad.optim``: optax-style optimizers, transformations and schedules.

An optimizer is a ``GradientTransformation(init, update)``; its state is a
pytree, so a whole training step (loss, gradient, update) can be jitted.

>>> import numpy as np
>>> import funcgrad as fg
>>> from funcgrad import optim
>>> opt = optim.sgd(0.1, momentum=0.9)
>>> params = np.array([1.0, -2.0])
>>> state = opt.init(params)
>>> @fg.jit
... def step(params, state):
...     grads = fg.grad(lambda p: (p ** 2).sum())(params)
...     updates, state = opt.update(grads, state, params)
...     return optim.apply_updates(params, updates), state
"""
from .optimizers import adagrad, adam, adamw, rmsprop, sgd  # noqa: F401
from .schedules import (  # noqa: F401
    constant,
    constant_schedule,
    cosine_decay,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
    warmup_cosine,
    warmup_cosine_decay_schedule,
)
from .transforms import (  # noqa: F401
    EmptyState,
    GradientTransformation,
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRssState,
    ScaleByScheduleState,
    TraceState,
    add_decayed_weights,
    apply_updates,
    chain,
    clip_by_global_norm,
    global_norm,
    identity,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_schedule,
    trace,
)
