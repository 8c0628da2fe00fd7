"""Attributions: which input features a model's output depends on.

Each function takes a model ``f`` mapping a batch of inputs ``x`` (shape ``(N, ...)``) to
scores ``(N, classes)`` (or to ``(N,)`` scores, with ``target=None``), and returns an array
shaped like ``x``:

- :func:`saliency`: the gradient of the target score with respect to the input (Simonyan et
  al., 2014); take ``abs`` (and the maximum over channels) for the usual map;
- :func:`integrated_gradients`: ``(x - baseline)`` times the average gradient along the straight
  path from ``baseline`` to ``x`` (Sundararajan et al., 2017), by the trapezoidal rule over
  ``steps`` intervals, all points of the path evaluated at once under ``vmap``; the
  attributions of an example sum to ``f(x) - f(baseline)`` up to the quadrature error, which
  :func:`completeness_error` reports and which falls as ``steps`` grows (as ``1/steps**2`` for a
  smooth ``f``);
- :func:`smooth_grad`: the gradient averaged over noisy copies of the input (Smilkov et al.,
  2017), the noise from ``funcgrad.random``.

Examples are independent (``f`` must not mix them, as batch statistics would), so one
gradient of the summed target scores gives every example's input gradient. The computations
are jitted once per model and setting.

>>> import numpy as np
>>> import funcgrad.numpy as fnp
>>> w = np.array([[1.0, -2.0], [3.0, 0.5]])
>>> f = lambda x: fnp.tanh(x @ w)
>>> x = np.array([[0.3, -0.1]])
>>> ig = integrated_gradients(f, x, target=1, steps=64)
>>> bool(abs(ig.sum() - (f(x)[0, 1] - f(np.zeros_like(x))[0, 1])) < 1e-4)
True
"""
from __future__ import annotations

import functools

import numpy as np

from . import numpy as fnp
from . import random
from .errors import FuncgradValueError, ShapeError, at_user_line
from .transforms.batching import vmap
from .transforms.jit import jit
from .transforms.reverse import grad

__all__ = ["completeness_error", "integrated_gradients", "saliency", "smooth_grad"]


def _scores(f, x, target):
    """The sum over the batch of each example's target score."""
    out = fnp.asarray(f(x))
    if target is None:
        if out.ndim != 1:
            raise ShapeError(at_user_line(
                f"attribution: the model returned shape {tuple(out.shape)}; with target=None it must return one "
                "score per example, (N,); pass target= to pick a class"))
        return fnp.sum(out)
    if out.ndim != 2:
        raise ShapeError(at_user_line(
            f"attribution: the model must return (N, classes) scores for a target, got shape {tuple(out.shape)}"))
    picked = fnp.asarray(target)[:, None] == np.arange(out.shape[1])
    return fnp.sum(fnp.where(picked, out, 0.0))


def _targets(target, n):
    if target is None:
        return None
    t = np.asarray(target)
    if t.dtype.kind not in "iu" or t.ndim > 1 or (t.ndim == 1 and len(t) != n):
        raise FuncgradValueError(at_user_line(
            f"attribution: target must be a class index or one per example ({n}), got {target!r}"))
    return np.broadcast_to(t, (n,)).astype(np.int64)


def _batch(x):
    x = np.asarray(x)
    if x.ndim < 1 or np.dtype(x.dtype).kind != "f":
        raise FuncgradValueError(at_user_line(
            f"attribution: x must be a float array of examples (N, ...), got {x.dtype} of shape {x.shape}"))
    return x


@functools.lru_cache(maxsize=32)
def _gradient(f, has_target):
    if has_target:
        return jit(grad(lambda x, t: _scores(f, x, t)))
    return jit(grad(lambda x: _scores(f, x, None)))


def _grad_at(f, x, target):
    g = _gradient(f, target is not None)
    return g(x, target) if target is not None else g(x)


def saliency(f, x, target=None):
    """The gradient of each example's ``target`` score with respect to its input."""
    x = _batch(x)
    return np.asarray(_grad_at(f, x, _targets(target, len(x))))


def trapezoid_weights(steps):
    """Points ``alpha`` of [0, 1] and their trapezoidal weights for ``steps`` intervals."""
    if int(steps) < 1:
        raise FuncgradValueError(at_user_line(f"integrated_gradients: steps must be >= 1, got {steps}"))
    alphas = np.linspace(0.0, 1.0, int(steps) + 1)
    weights = np.full(len(alphas), 1.0 / steps)
    weights[[0, -1]] /= 2
    return alphas, weights


@functools.lru_cache(maxsize=32)
def _path_gradients(f, has_target):
    """``(alphas, weights, x, baseline[, target]) -> sum_k weights_k grad(x' + alpha_k (x - x'))``,
    the path points batched with vmap."""
    def at(alpha, x, baseline, target):
        return _grad_at_point(f, baseline + alpha * (x - baseline), target)

    def average(alphas, weights, x, baseline, target=None):
        grads = vmap(at, in_axes=(0, None, None, None))(alphas.astype(x.dtype), x, baseline, target)
        return fnp.tensordot(weights.astype(x.dtype), grads, axes=1)

    if has_target:
        return jit(average)
    return jit(lambda alphas, weights, x, baseline: average(alphas, weights, x, baseline))


def _grad_at_point(f, x, target):
    return grad(lambda x: _scores(f, x, target))(x)


def integrated_gradients(f, x, baseline=None, target=None, steps=50):
    """Integrated gradients of each example's ``target`` score: ``(x - baseline)`` times the
    gradient averaged along the path from ``baseline`` (default zeros) to ``x``."""
    x = _batch(x)
    baseline = np.zeros_like(x) if baseline is None else np.broadcast_to(np.asarray(baseline, x.dtype), x.shape)
    alphas, weights = trapezoid_weights(steps)
    t = _targets(target, len(x))
    run = _path_gradients(f, t is not None)
    avg = run(alphas, weights, x, baseline, t) if t is not None else run(alphas, weights, x, baseline)
    return np.asarray((x - baseline) * avg)


def completeness_error(f, x, attributions, baseline=None, target=None):
    """Per example, ``|sum(attributions) - (f(x) - f(baseline))|``: 0 for exact integrated
    gradients (the completeness axiom)."""
    x = _batch(x)
    baseline = np.zeros_like(x) if baseline is None else np.broadcast_to(np.asarray(baseline, x.dtype), x.shape)
    t = _targets(target, len(x))

    def score(v):
        out = np.asarray(f(v))
        return out if t is None else out[np.arange(len(x)), t]

    total = np.asarray(attributions).reshape(len(x), -1).sum(axis=1)
    return np.abs(total - (score(x) - score(baseline)))


def smooth_grad(f, x, target=None, *, key, samples=50, noise=0.15):
    """The input gradient averaged over ``samples`` copies of ``x`` with Gaussian noise of
    standard deviation ``noise`` times each example's value range (``max - min``)."""
    x = _batch(x)
    t = _targets(target, len(x))
    spread = (x.reshape(len(x), -1).max(1) - x.reshape(len(x), -1).min(1)).reshape((-1,) + (1,) * (x.ndim - 1))
    eps = np.asarray(random.normal(key, (int(samples), *x.shape), x.dtype))
    noisy = x[None] + noise * spread * eps
    grads = [_grad_at(f, noisy[i], t) for i in range(int(samples))]
    return np.mean(np.stack([np.asarray(g) for g in grads]), axis=0)
