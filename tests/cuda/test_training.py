"""A whole training step (value_and_grad of an MLP loss and an SGD update) on the GPU, with the
parameters kept in device memory between steps."""
import itertools

import numpy as np
from _cuda_util import assert_same, check

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.device import DeviceArray, device_put
from funcgrad.tree_util import tree_map

RNG = np.random.default_rng(4)


def _params(sizes, dtype):
    return [(RNG.normal(size=(m, n)).astype(dtype) / np.sqrt(m), np.zeros(n, dtype))
            for m, n in itertools.pairwise(sizes)]


def _loss(params, x, y):
    h = x
    for w, b in params[:-1]:
        h = fnp.maximum(h @ w + b, 0.0)
    w, b = params[-1]
    logits = h @ w + b
    logp = logits - fg.scipy.special.logsumexp(logits, axis=1, keepdims=True)
    return -fnp.mean(fnp.sum(y * logp, axis=1))


def _step(params, x, y):
    loss, grads = fg.value_and_grad(_loss)(params, x, y)
    return loss, tree_map(lambda p, g: p - 0.1 * g, params, grads)


def _data(n, d, k, dtype):
    x = RNG.normal(size=(n, d)).astype(dtype)
    y = np.eye(k, dtype=dtype)[RNG.integers(0, k, size=n)]
    return x, y


def test_mlp_sgd_step_matches_interpreter():
    params = _params([6, 8, 8, 3], np.float32)
    x, y = _data(5, 6, 3, np.float32)
    check(_step, params, x, y, tol={"rtol": 1e-4, "atol": 1e-6})


def test_training_loop_keeps_params_on_device():
    params = _params([4, 5, 3], np.float64)
    x, y = _data(7, 4, 3, np.float64)
    step_gpu = fg.jit(_step, device="cuda")
    step_ref = fg.jit(_step, device="interpreter")
    p_gpu = params  # NumPy the first time (copied in), then the DeviceArrays the step returns
    xd, yd = device_put((x, y))
    p_ref = params
    losses = []
    for _ in range(3):
        loss, p_gpu = step_gpu(p_gpu, xd, yd)
        loss_ref, p_ref = step_ref(p_ref, x, y)
        assert all(isinstance(leaf, DeviceArray) for leaf in fg.tree_util.tree_leaves(p_gpu))
        np.testing.assert_allclose(float(loss), float(loss_ref), rtol=1e-12)
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    assert step_gpu.trace_count == 1  # device arrays and NumPy arrays share one signature
    assert_same(p_gpu, p_ref)
