"""Attributions: saliency against finite differences, the completeness of integrated
gradients, smooth_grad's average, and errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad.numpy as fnp
from funcgrad import interpret, nn, random
from funcgrad.errors import FuncgradValueError, ShapeError

RNG = np.random.default_rng(0)
W1, W2 = RNG.normal(size=(6, 16)), RNG.normal(size=(16, 3))


def smooth_model(x):
    return fnp.tanh(x @ W1) @ W2


def relu_model(x):
    return nn.relu(x @ W1) @ W2


def _fd_input_gradient(f, x, target, eps=1e-6):
    g = np.zeros_like(x)
    for n in range(x.shape[0]):
        for i in range(x.shape[1]):
            e = np.zeros_like(x)
            e[n, i] = eps
            g[n, i] = (np.asarray(f(x + e))[n, target[n]] - np.asarray(f(x - e))[n, target[n]]) / (2 * eps)
    return g


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_saliency_is_the_input_gradient(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 6))
    target = rng.integers(0, 3, 3)
    got = interpret.saliency(smooth_model, x, target)
    np.testing.assert_allclose(got, _fd_input_gradient(smooth_model, x, target), rtol=1e-6, atol=1e-8)


def test_saliency_of_one_score_per_example():
    x = RNG.normal(size=(4, 6))
    got = interpret.saliency(lambda v: fnp.sum(smooth_model(v), axis=1), x)
    want = sum(interpret.saliency(smooth_model, x, c) for c in range(3))
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("model", [smooth_model, relu_model])
def test_integrated_gradients_completeness_error_shrinks_with_steps(model):
    x = RNG.normal(size=(5, 6))
    target = np.array([0, 1, 2, 0, 1])
    errors = []
    for steps in (8, 32, 128):
        ig = interpret.integrated_gradients(model, x, target=target, steps=steps)
        assert ig.shape == x.shape
        errors.append(interpret.completeness_error(model, x, ig, target=target).max())
    scale = np.abs(np.asarray(model(x))).max()
    assert errors[0] > errors[1] > errors[2]
    if model is smooth_model:  # the trapezoidal rule on a smooth path: error ~ 1 / steps^2
        assert errors[1] < errors[0] / 8 and errors[2] < errors[1] / 8
        assert errors[2] < 1e-4 * scale
    else:  # a ReLU network's path gradient jumps at each kink the path crosses: error ~ 1 / steps
        assert errors[2] < 1e-2 * scale


def test_integrated_gradients_of_a_linear_model_are_exact():
    w = RNG.normal(size=(6, 3))
    x, base = RNG.normal(size=(2, 6)), RNG.normal(size=(2, 6))
    ig = interpret.integrated_gradients(lambda v: v @ w, x, baseline=base, target=2, steps=1)
    np.testing.assert_allclose(ig, (x - base) * w[:, 2], rtol=1e-12)


def test_integrated_gradients_in_float32():
    x = RNG.normal(size=(3, 6)).astype(np.float32)
    ig = interpret.integrated_gradients(lambda v: fnp.tanh(v @ W1.astype(np.float32)) @ W2.astype(np.float32), x,
                                        target=1, steps=64)
    assert ig.dtype == np.float32
    ref = interpret.integrated_gradients(smooth_model, x.astype(np.float64), target=1, steps=64)
    np.testing.assert_allclose(ig, ref, rtol=1e-4, atol=1e-5)


def test_smooth_grad_averages_noisy_gradients():
    x = RNG.normal(size=(2, 6))
    key = random.key(3)
    sg = interpret.smooth_grad(smooth_model, x, 1, key=key, samples=8, noise=0.1)
    spread = (x.max(1) - x.min(1))[:, None]
    eps = np.asarray(random.normal(key, (8, 2, 6), x.dtype))
    want = np.mean([interpret.saliency(smooth_model, x + 0.1 * spread * e, 1) for e in eps], axis=0)
    np.testing.assert_allclose(sg, want, rtol=1e-12)
    np.testing.assert_allclose(interpret.smooth_grad(smooth_model, x, 1, key=key, samples=4, noise=0.0),
                               interpret.saliency(smooth_model, x, 1), rtol=1e-12)


def test_bad_inputs_are_clear_errors():
    x = RNG.normal(size=(2, 6))
    with pytest.raises(ShapeError, match="target"):
        interpret.saliency(smooth_model, x)
    with pytest.raises(FuncgradValueError, match="target"):
        interpret.saliency(smooth_model, x, target=[0, 1, 2])
    with pytest.raises(FuncgradValueError, match="float"):
        interpret.saliency(smooth_model, np.ones((2, 6), np.int64), 0)
    with pytest.raises(FuncgradValueError, match="steps"):
        interpret.integrated_gradients(smooth_model, x, target=0, steps=0)
