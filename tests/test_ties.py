"""Derivatives of smooth functions exactly at ties and at 0, orders 1-3.

A smooth function written with a stable formula (``hypot``, ``logaddexp``, ``softplus``, ...)
must not inherit the tie conventions of the ``maximum``/``abs``/``where`` it is built from.
Each is compared with the same function written naively (smooth everywhere, no ties inside)
and, for the headline cases, with values derived by hand. The kink conventions of functions
that are not smooth are pinned as documented in docs/derivatives.md.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn
from funcgrad.scipy.special import log_softmax, logsumexp

# derivative rules must not warn where the user's own code would not (tests/test_rule_warnings.py)
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def _derivatives(f, x, chain):
    """Derivatives of orders 1-3 of the scalar function ``f`` at ``x`` by one transform chain."""
    first = {"rev": fg.grad, "fwd": fg.jacfwd, "mixed": fg.grad}[chain]
    outer = {"rev": fg.jacrev, "fwd": fg.jacfwd, "mixed": fg.jacfwd}[chain]
    d1 = first(f)
    d2 = outer(d1)
    d3 = outer(d2)
    return [np.asarray(d(x)) for d in (d1, d2, d3)]


# name -> (stable function, naive smooth reference, tie points)
SMOOTH = {
    "hypot": (lambda v: fnp.hypot(v[0], v[1]), lambda v: fnp.sqrt(v[0] * v[0] + v[1] * v[1]),
              [[1.3, 1.3], [1.3, -1.3], [-0.7, 0.7], [0.0, 2.0]]),
    "logaddexp": (lambda v: fnp.logaddexp(v[0], v[1]), lambda v: fnp.log(fnp.exp(v[0]) + fnp.exp(v[1])),
                  [[0.3, 0.3], [0.0, 0.0], [-2.0, -2.0]]),
    "logaddexp2": (lambda v: fnp.logaddexp2(v[0], v[1]), lambda v: fnp.log2(fnp.exp2(v[0]) + fnp.exp2(v[1])),
                   [[0.3, 0.3], [0.0, 0.0]]),
    "softplus": (lambda v: nn.softplus(v).sum(), lambda v: fnp.log1p(fnp.exp(v)).sum(), [[0.0, 0.0], [0.0, 1.0]]),
    "log_sigmoid": (lambda v: nn.log_sigmoid(v).sum(), lambda v: -fnp.log1p(fnp.exp(-v)).sum(), [[0.0, -1.0]]),
    "logsumexp": (lambda v: logsumexp(v), lambda v: fnp.log(fnp.sum(fnp.exp(v))), [[0.5, 0.5, 0.5], [0.0, 0.0, 1.0]]),
    "log_softmax": (lambda v: log_softmax(v)[0], lambda v: v[0] - fnp.log(fnp.sum(fnp.exp(v))), [[1.0, 1.0, 1.0]]),
    "norm": (lambda v: fnp.linalg.norm(v), lambda v: fnp.sqrt(fnp.sum(v * v)), [[1.0, 1.0], [1.0, -1.0, 1.0]]),
    "binary_cross_entropy": (lambda v: nn.binary_cross_entropy(v, np.array([1.0, 0.0])),
                             lambda v: fnp.mean(fnp.log1p(fnp.exp(v)) - v * np.array([1.0, 0.0])), [[0.0, 0.0]]),
}


@pytest.mark.parametrize("chain", ["rev", "fwd", "mixed"])
@pytest.mark.parametrize("name", list(SMOOTH))
def test_smooth_functions_at_ties_orders_1_to_3(name, chain):
    f, ref, points = SMOOTH[name]
    for p in points:
        x = np.array(p, np.float64)
        got, want = _derivatives(f, x, chain), _derivatives(ref, x, chain)
        for order, (g, w) in enumerate(zip(got, want), 1):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=f"{name} order {order} at {p}")


def test_headline_values_by_hand():
    h = fg.hessian(lambda v: fnp.hypot(v[0], v[1]))(np.array([1.3, 1.3]))
    c = 1.0 / (2.0 * math.sqrt(2.0) * 1.3)  # (r^2 I - v v^T) / r^3 at v = (1.3, 1.3)
    np.testing.assert_allclose(h, [[c, -c], [-c, c]], rtol=1e-13)
    assert abs(c - 0.272) < 1e-3
    assert fg.hessian(lambda a: fnp.logaddexp(a, 0.3))(0.3) == pytest.approx(0.25, rel=1e-14)
    assert fg.hessian(lambda a: fnp.logaddexp2(a, 0.3))(0.3) == pytest.approx(0.25 * math.log(2.0), rel=1e-14)
    sp = [fg.grad(nn.softplus), fg.grad(fg.grad(nn.softplus)), fg.grad(fg.grad(fg.grad(nn.softplus)))]
    assert [float(d(0.0)) for d in sp] == pytest.approx([0.5, 0.25, 0.0], abs=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_under_jit_and_vmap(dtype):
    """The same values through jit and vmap, in float32 and float64 (a batch of tie points)."""
    hess = fg.hessian(lambda v: fnp.hypot(v[0], v[1]) + fnp.logaddexp(v[0], v[1]) + nn.softplus(v[0] - v[1]))
    ref = fg.hessian(lambda v: fnp.sqrt(v[0] * v[0] + v[1] * v[1]) + fnp.log(fnp.exp(v[0]) + fnp.exp(v[1]))
                     + fnp.log1p(fnp.exp(v[0] - v[1])))
    xs = np.array([[1.3, 1.3], [0.5, 0.5], [-2.0, -2.0]], dtype)
    want = np.stack([ref(x.astype(np.float64)) for x in xs])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for run in (fg.vmap(hess), fg.jit(fg.vmap(hess)), fg.vmap(fg.jit(hess))):
        got = run(xs)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_elu_is_continuously_differentiable_at_zero():
    # elu with alpha = 1 is C^1 at 0: the derivative is 1 from both sides (the old min-tie gave 0.5)
    assert fg.grad(nn.elu)(0.0) == 1.0
    assert fg.grad(lambda x: nn.elu(x, alpha=0.5))(0.0) == 0.5  # the left branch's derivative
    assert fg.jacfwd(nn.elu)(0.0) == 1.0


def test_stable_values_unchanged():
    x = np.array([-np.inf, np.inf, np.inf, 1.0, np.nan, -745.0, 30.0])
    y = np.array([-np.inf, 1.0, np.inf, -np.inf, 1.0, -745.0, -30.0])
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(fnp.logaddexp(x, y), np.logaddexp(x, y))
    big = np.array([1e300, -1e-300, 3.0, 0.0])
    np.testing.assert_allclose(fnp.hypot(big, big[::-1]), np.hypot(big, big[::-1]), rtol=1e-15)
    np.testing.assert_array_equal(nn.softplus(np.array([-1e4, 1e4])), [0.0, 1e4])
    xs = np.linspace(-40, 40, 2001)
    np.testing.assert_allclose(fnp.logaddexp(xs, 0.7), np.logaddexp(xs, 0.7), rtol=4e-16)
    np.testing.assert_allclose(nn.softplus(xs), np.logaddexp(xs, 0.0), rtol=5e-16)
    np.testing.assert_allclose(fnp.hypot(xs, 0.3 * xs[::-1]), np.hypot(xs, 0.3 * xs[::-1]), rtol=5e-16)


def test_gradients_at_the_origin_and_at_infinity():
    assert np.array_equal(fg.grad(lambda v: fnp.hypot(v[0], v[1]))(np.zeros(2)), [0.0, 0.0])
    assert fg.grad(lambda a: fnp.logaddexp(a, 1.0))(-np.inf) == 0.0
    assert fg.grad(lambda a: fnp.logaddexp(a, 1.0))(np.inf) == 1.0
    assert fg.grad(nn.softplus)(-1e4) == 0.0 and fg.grad(nn.softplus)(1e4) == 1.0


# function, point, (first derivative), as documented in docs/derivatives.md
KINKS = {
    "abs at 0": (fnp.abs, 0.0, 0.0),
    "sign at 0": (fnp.sign, 0.0, 0.0),
    "maximum tie": (lambda x: fnp.maximum(x, 1.0), 1.0, 0.5),
    "minimum tie": (lambda x: fnp.minimum(x, 1.0), 1.0, 0.5),
    "clip at a bound": (lambda x: fnp.clip(x, 0.0, 1.0), 1.0, 0.5),
    "relu at 0": (nn.relu, 0.0, 0.0),
    "relu6 at 0": (nn.relu6, 0.0, 0.0),
    "relu6 at 6": (nn.relu6, 6.0, 0.0),
    "leaky_relu at 0": (nn.leaky_relu, 0.0, 1.0),
    "where at its switch": (lambda x: fnp.where(x > 0, x, 0.0), 0.0, 0.0),
    "max of equal entries": (lambda x: fnp.max(fnp.stack([x, x])), 1.0, 1.0),
}


@pytest.mark.parametrize("name", list(KINKS))
def test_kink_conventions(name):
    f, x, want = KINKS[name]
    for d in (fg.grad(f), fg.jacfwd(f), fg.jit(fg.grad(f))):
        assert float(d(x)) == want, name
