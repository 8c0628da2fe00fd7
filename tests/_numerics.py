"""Numerical derivatives for the tests (central differences along random directions) and
well-behaved inputs (distinct values, well-conditioned matrices).

``check_jvp`` and ``check_vjp`` compare funcgrad's forward and reverse derivatives
of ``f`` at ``args`` with the central difference ``(f(x + eps t) - f(x - eps t)) / 2 eps``
along a random direction ``t``; ``check_vjp`` compares the scalar ``<ct, J t>``, so one
call checks the whole Jacobian against a random probe from both sides. ``f`` takes
positional float arrays and returns an array or a pytree of arrays.
"""
from __future__ import annotations

import numpy as np

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.primitives import linalg as L
from funcgrad.tree_util import tree_flatten, tree_map

EPS = 1e-6
RTOL = 1e-6
ATOL = 1e-6


def random_like(rng, x):
    """A standard-normal array with ``x``'s shape and dtype (float64 for non-floats)."""
    x = np.asarray(x)
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    return np.asarray(rng.standard_normal(x.shape), dtype=dt)


def numerical_jvp(f, args, tangents, eps=EPS):
    """Central difference of ``f`` at ``args`` along ``tangents`` (one per argument)."""
    plus = f(*[np.asarray(a) + eps * t for a, t in zip(args, tangents)])
    minus = f(*[np.asarray(a) - eps * t for a, t in zip(args, tangents)])
    return tree_map(lambda p, m: (np.asarray(p, np.float64) - np.asarray(m, np.float64)) / (2 * eps),
                    plus, minus)


def _vdot(a, b):
    la, _ = tree_flatten(a)
    lb, _ = tree_flatten(b)
    return sum(float(np.sum(np.asarray(x, np.float64) * np.asarray(y, np.float64))) for x, y in zip(la, lb))


def _assert_tree_close(actual, expected, rtol, atol, what):
    la, da = tree_flatten(actual)
    le, de = tree_flatten(expected)
    assert da == de, f"{what}: structure {da} != {de}"
    for a, e in zip(la, le):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what)


def _scale(*arrays):
    """A magnitude for absolute tolerances: derivatives of big values are big."""
    leaves = [np.asarray(x, np.float64) for a in arrays for x in tree_flatten(a)[0]]
    return max([1.0] + [float(np.max(np.abs(x))) for x in leaves if x.size])


def check_jvp(f, args, rng, rtol=RTOL, atol=ATOL, eps=EPS):
    """funcgrad's JVP of ``f`` equals the value of ``f`` and its central difference."""
    tangents = [random_like(rng, a) for a in args]
    out, t_out = fg.jvp(f, tuple(args), tuple(tangents))
    _assert_tree_close(out, f(*args), 1e-12, 1e-12, "jvp primal output")
    num = numerical_jvp(f, args, tangents, eps)
    _assert_tree_close(t_out, num, rtol, atol * _scale(num), "jvp tangent vs central differences")
    return tangents, t_out


def check_vjp(f, args, rng, rtol=RTOL, atol=ATOL, eps=EPS):
    """``<vjp(ct), t> == <ct, J t>`` with ``J t`` by central differences; cotangents
    have the arguments' shapes and dtypes, and agree with the JVP to rounding."""
    out, vjp_fn = fg.vjp(f, *args)
    ct = tree_map(lambda o: random_like(rng, o), out)
    cts = vjp_fn(ct)
    assert isinstance(cts, tuple) and len(cts) == len(args)
    for c, a in zip(cts, args):
        assert np.shape(c) == np.shape(a), f"cotangent shape {np.shape(c)} for an argument of {np.shape(a)}"
        assert np.asarray(c).dtype == np.asarray(a).dtype
    tangents = [random_like(rng, a) for a in args]
    lhs = _vdot(cts, tangents)
    num = numerical_jvp(f, args, tangents, eps)
    rhs = _vdot(ct, num)
    scale = sum(abs(v) for v in (lhs, rhs)) + _scale(num, cts)
    assert abs(lhs - rhs) <= atol * scale + rtol * abs(rhs), f"<vjp(ct), t> = {lhs} but <ct, J t> = {rhs}"
    _, t_out = fg.jvp(f, tuple(args), tuple(tangents))
    exact = _vdot(ct, t_out)
    assert abs(lhs - exact) <= 1e-9 * (abs(lhs) + abs(exact) + _scale(t_out, cts)), (
        f"reverse mode {lhs} and forward mode {exact} disagree")


def vjp_function(f, weights):
    """``x -> (J_f(x))^T weights``: the reverse-mode derivative as a function of the inputs,
    whose own derivatives are second derivatives of ``f``."""
    def g(*args):
        return fg.vjp(f, *args)[1](weights)

    return g


def check_second_order(f, args, rng, rtol=1e-5, atol=1e-5, eps=EPS):
    """Forward-over-reverse and reverse-over-reverse against differences of the first derivative."""
    out = f(*args)
    weights = tree_map(lambda o: random_like(rng, o), out)
    g = vjp_function(f, weights)
    check_jvp(g, args, rng, rtol, atol, eps)
    check_vjp(g, args, rng, rtol, atol, eps)


def distinct_values(rng, shape):
    """Values at least 0.3 apart: a unique max and min along every axis, no ties when sorting."""
    n = int(np.prod(shape, dtype=np.int64))
    return (rng.permutation(n) * 0.5 - n / 4 + rng.uniform(-0.1, 0.1, n)).reshape(shape)


def well_conditioned(rng, n, lead=()):
    """A stack (``lead``) of n x n matrices with singular values in [1, 3]."""
    q1, _ = np.linalg.qr(rng.standard_normal(tuple(lead) + (n, n)))
    q2, _ = np.linalg.qr(rng.standard_normal(tuple(lead) + (n, n)))
    return (q1 * rng.uniform(1.0, 3.0, tuple(lead) + (n,))[..., None, :]) @ q2


# -- inputs: well-separated spectra -----------------------------------------------------------------
def orthogonal(rng, n, lead=()):
    q, r = np.linalg.qr(rng.standard_normal(tuple(lead) + (n, n)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def symmetric(rng, n, lead=()):
    """Q diag(w) Q^T with eigenvalues at least 0.5 apart."""
    q = orthogonal(rng, n, lead)
    w = np.arange(n) * 0.7 - 0.3 * n + rng.uniform(-0.1, 0.1, tuple(lead) + (n,))
    return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)


def distinct_sv(rng, m, n, lead=()):
    """U diag(s) V^T with singular values in [1, ~3], at least 0.4 apart."""
    k = min(m, n)
    s = 1.0 + 0.6 * np.arange(k) + rng.uniform(-0.1, 0.1, tuple(lead) + (k,))
    u = orthogonal(rng, m, lead)[..., :k]
    vh = orthogonal(rng, n, lead)[..., :k, :]
    return (u * s[..., None, :]) @ vh


def sym(a):
    return 0.5 * (a + L.mT(a))


# -- sign-invariant functions of the outputs ---------------------------------------------------------
def eigh_loss(a):
    """Eigenvalues and sum_i c_i v_i v_i^T (independent of the eigenvectors' signs)."""
    w, v = fnp.linalg.eigh(sym(a))
    c = np.arange(1.0, v.shape[-1] + 1)
    return w, fnp.matmul(v * c, fnp.swapaxes(v, -1, -2))


def svd_loss(a):
    """s, u*u, vh*vh and sum_i c_i u_i v_i^T (independent of each pair's common sign)."""
    u, s, vh = fnp.linalg.svd(a, full_matrices=False)
    c = np.arange(1.0, s.shape[-1] + 1)
    return s, u * u, vh * vh, fnp.matmul(u * c, vh)


def qr_loss(a):
    """Q and R with R's diagonal made positive (the unique QR; the sign is locally constant)."""
    q, r = fnp.linalg.qr(a)
    d = fnp.sign(fnp.diagonal(r, axis1=-2, axis2=-1))
    return q * d[..., None, :], r * d[..., :, None]
