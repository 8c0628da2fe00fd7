"""Data-parallel training: :func:`data_parallel` (the gradient averaged over every rank's rows)
and :class:`DataParallel` (a whole step)."""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from ..config import config
from ..errors import FuncgradTypeError, FuncgradValueError, at_user_line
from ..optim import apply_updates
from ..transforms._args import fun_name
from ..transforms.jit import jit
from ..transforms.reverse import value_and_grad
from ..tree_util import tree_leaves
from ._collectives import broadcast, check_in_sync, pmean


def _batch_rows(batch, name: str) -> int:
    leaves = tree_leaves(batch)
    shape = np.shape(leaves[0]) if leaves else None
    if not shape:
        got = "no batch arguments" if shape is None else "a 0-d first batch leaf"
        raise FuncgradValueError(at_user_line(
            f"data_parallel({name}): call it as f(params, *batch) where the first batch leaf's leading "
            f"axis counts this rank's rows; got {got}"
        ))
    return shape[0]


def data_parallel(fun):
    """``fun(params, *batch)`` on this rank's rows, averaged over every rank's rows.

    ``fun`` returns a pytree of means over the rows of its batch -- typically a
    jitted ``value_and_grad`` of a loss. The wrapper calls it on this rank's
    batch (the arguments after ``params``; the first leaf's leading axis is the
    number of rows) and returns :func:`pmean` of the result weighted by that
    number, so every rank gets the mean over all ranks' rows even when the
    shards are unequal: the same value as ``fun`` on the whole global batch, up
    to rounding. Every rank must call it (it communicates).

    >>> import funcgrad as fg, numpy as np
    >>> from funcgrad import distributed as dist
    >>> loss = lambda w, x, y: ((x @ w - y) ** 2).mean()
    >>> grad_fn = dist.data_parallel(fg.jit(fg.value_and_grad(loss)))
    >>> x, y = np.ones((10, 3)), np.ones(10)                    # the global batch
    >>> value, g = grad_fn(np.zeros(3), *dist.shard((x, y)))  # the same on every rank
    """
    name = fun_name(fun)

    def averaged(params, *batch, **kwargs):
        rows = _batch_rows(batch, name)
        return pmean(fun(params, *batch, **kwargs), weight=rows)

    functools.update_wrapper(averaged, fun, updated=())
    averaged.__name__ = averaged.__qualname__ = f"data_parallel({name})"
    return averaged


@contextlib.contextmanager
def _compiled_before_first_call():
    """Compile on the first call instead of in the background: a background compile finishes
    at a different step on each rank, and the NumPy interpreter that serves the calls until
    then need not round exactly like the compiled code."""
    previous = config.read("async_compile")
    config.update("async_compile", False)
    try:
        yield
    finally:
        config.update("async_compile", previous)


class DataParallel:
    """A data-parallel training step for ``loss_fn(params, *batch)`` and an optax-style optimizer.

    ``step(params, opt_state, *batch)`` runs the jitted gradient of ``loss_fn``
    on this rank's batch, averages loss and gradients over all ranks' rows with
    :func:`data_parallel` (one Allreduce per dtype), and applies the jitted
    optimizer update on every rank. It returns ``(params, opt_state, loss)``
    (``loss`` is ``(loss, aux)`` with ``has_aux=True``; aux is averaged too).
    Every rank applies the same update to the same parameters with the same
    compiled code, so parameters stay bit-identical on all ranks; start from
    :meth:`init`, which gives every rank rank 0's parameters.

    ``loss_fn`` must return the mean over the rows of its batch; the first leaf
    of ``batch`` gives the row count. Per-rank randomness (dropout keys) goes in
    ``batch`` after the data, e.g. ``random.fold_in(key, dist.rank())``.

    ``check_every=N`` (debugging) compares a SHA-256 of params and optimizer
    state across ranks every N steps with :func:`check_in_sync`, which raises
    FuncgradValueError on every rank, naming the ranks and leaves that drifted.
    ``steps`` counts the calls. ``value_and_grad`` (averaged) and ``update``
    are available separately.

    >>> import numpy as np
    >>> from funcgrad import distributed as dist, nn, optim, random
    >>> init, apply = nn.serial(nn.Dense(16), nn.Relu, nn.Dense(10))
    >>> _, params = init(random.key(0), (-1, 64))
    >>> loss = lambda p, x, y: nn.softmax_cross_entropy(apply(p, x), y)
    >>> step = dist.DataParallel(loss, optim.adam(1e-3), check_every=100)
    >>> params, opt_state = step.init(params)
    >>> x, y = np.ones((32, 64), np.float32), np.zeros(32, np.int32)  # a global batch
    >>> params, opt_state, value = step(params, opt_state, *dist.shard((x, y)))
    """

    def __init__(self, loss_fn, optimizer, *, has_aux: bool = False, check_every: int = 0,
                 device: str = "cpu"):
        if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
            raise FuncgradTypeError(at_user_line(
                f"DataParallel: optimizer must have init and update (an optim.GradientTransformation), "
                f"got {type(optimizer).__name__}"
            ))
        if not isinstance(check_every, (int, np.integer)) or isinstance(check_every, bool) or check_every < 0:
            raise FuncgradValueError(at_user_line(
                f"DataParallel: check_every must be an int >= 0 (0: never), got {check_every!r}"))
        self.optimizer = optimizer
        self.check_every = int(check_every)
        self.steps = 0
        self.local_value_and_grad = jit(value_and_grad(loss_fn, has_aux=has_aux), device=device)
        self.value_and_grad = data_parallel(self.local_value_and_grad)

        def apply_optimizer(params, opt_state, grads):
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return apply_updates(params, updates), opt_state

        self._update = jit(apply_optimizer, device=device)

    def init(self, params):
        """``(params, opt_state)``: rank 0's ``params`` on every rank and the optimizer's state."""
        params = broadcast(params)
        return params, self.optimizer.init(params)

    def update(self, params, opt_state, grads):
        """The jitted optimizer update ``(params, opt_state)``; compiled on its first call."""
        with _compiled_before_first_call():
            return self._update(params, opt_state, grads)

    def check(self, params, opt_state) -> str:
        """Raise FuncgradValueError on every rank unless all ranks hold the same bits."""
        what = f"params and optimizer state after step {self.steps}"
        return check_in_sync((params, opt_state), what=what)

    def __call__(self, params, opt_state, *batch, **kwargs):
        value, grads = self.value_and_grad(params, *batch, **kwargs)
        params, opt_state = self.update(params, opt_state, grads)
        self.steps += 1
        if self.check_every and self.steps % self.check_every == 0:
            self.check(params, opt_state)
        return params, opt_state, value
