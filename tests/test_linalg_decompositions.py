"""linalg.eigh, svd, qr (primitives), pinv and lstsq (built on svd): values against NumPy,
derivatives (forward and reverse, first and second order) against finite differences on
matrices with distinct eigenvalues / singular values, through losses that do not depend on
the arbitrary signs of eigenvectors and singular vectors; vmap against a loop, jit against
eager, and the errors.

The three primitives have cases in the per-primitive tables of tests/test_primitives_grad.py,
tests/test_testing.py and tests/test_vmap.py; the matrices and sign-invariant losses are in
tests/_numerics.py."""
from __future__ import annotations

import numpy as np
import pytest
import test_primitives_grad as _grad_table
import test_testing as _testing_table
import test_vmap as _vmap_table
from _numerics import (
    check_jvp,
    check_second_order,
    check_vjp,
    distinct_sv,
    eigh_loss,
    orthogonal,
    qr_loss,
    svd_loss,
    sym,
    symmetric,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradError, ShapeError
from funcgrad.testing import check_grads

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

NEW_PRIMITIVES = ("eigh", "svd", "qr")


def test_the_new_primitives_are_registered_everywhere():
    assert set(NEW_PRIMITIVES) <= set(_grad_table.core_differentiable_primitives())
    assert set(NEW_PRIMITIVES) <= set(_grad_table.CASES) & set(_testing_table.CASES) & set(_vmap_table.CASES)
    assert set(NEW_PRIMITIVES) <= _testing_table.differentiable_core_primitives()


@pytest.mark.parametrize("name", NEW_PRIMITIVES)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_primitive_jvp_and_vjp_match_finite_differences(name, data):
    fun, args, rng = _grad_table._draw_case(name, data)
    assert name in {e.prim.name for e in fg.make_graph(fun)(*args).eqns}
    check_jvp(fun, args, rng)
    check_vjp(fun, args, rng)


@pytest.mark.parametrize("name", NEW_PRIMITIVES)
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_primitive_second_derivatives_match_finite_differences(name, data):
    fun, args, rng = _grad_table._draw_case(name, data)
    check_second_order(fun, args, rng)


@pytest.mark.parametrize("name", NEW_PRIMITIVES)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_primitive_batching_matches_a_loop(name, data):
    case = _vmap_table.CASES[name](data)
    _vmap_table.check_against_loop(case, data, np.random.default_rng(data.draw(st.integers(0, 2 ** 16))))


# -- values against NumPy --------------------------------------------------------------------------------
def test_eigh_values_and_reconstruction():
    rng = np.random.default_rng(0)
    for a in (symmetric(rng, 4), symmetric(rng, 3, (2,)), symmetric(rng, 1)):
        res = fnp.linalg.eigh(a)
        w, v = res
        np.testing.assert_allclose(w, np.linalg.eigvalsh(a), rtol=1e-12, atol=1e-12)
        assert res.eigenvalues is w and res.eigenvectors is v
        np.testing.assert_allclose((v * w[..., None, :]) @ np.swapaxes(v, -1, -2), a, atol=1e-12)
        np.testing.assert_allclose(np.swapaxes(v, -1, -2) @ v, np.broadcast_to(np.eye(a.shape[-1]), a.shape),
                                   atol=1e-12)
        np.testing.assert_allclose(fnp.linalg.eigvalsh(a), np.linalg.eigvalsh(a), rtol=1e-12, atol=1e-12)
    # UPLO: only that triangle is read, as in NumPy
    a = np.triu(symmetric(rng, 3))
    for uplo in ("L", "U"):
        np.testing.assert_allclose(fnp.linalg.eigh(a, UPLO=uplo)[0], np.linalg.eigh(a, UPLO=uplo)[0], atol=1e-12)
    assert fnp.linalg.eigh(np.eye(2, dtype=np.float32))[0].dtype == np.float32
    np.testing.assert_allclose(fnp.linalg.eigh([[2, 1], [1, 2]])[0], [1.0, 3.0])  # ints and lists: float64


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (2, 4, 3)])
@pytest.mark.parametrize("full", [True, False])
def test_svd_values_and_reconstruction(shape, full):
    a = np.random.default_rng(1).standard_normal(shape)
    u, s, vh = fnp.linalg.svd(a, full_matrices=full)
    nu, ns, nvh = np.linalg.svd(a, full_matrices=full)
    assert (u.shape, s.shape, vh.shape) == (nu.shape, ns.shape, nvh.shape)
    np.testing.assert_allclose(s, ns, rtol=1e-12)
    k = s.shape[-1]
    np.testing.assert_allclose((u[..., :k] * s[..., None, :]) @ vh[..., :k, :], a, atol=1e-12)
    np.testing.assert_allclose(fnp.linalg.svd(a, compute_uv=False), ns, rtol=1e-12)
    assert isinstance(fnp.linalg.svd(a), fnp.linalg.SVDResult)


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (2, 4, 3)])
def test_qr_values_and_reconstruction(shape):
    a = np.random.default_rng(2).standard_normal(shape)
    for mode in ("reduced", "complete"):
        q, r = fnp.linalg.qr(a, mode=mode)
        nq, nr = np.linalg.qr(a, mode=mode)
        np.testing.assert_allclose(q, nq, atol=1e-12)
        np.testing.assert_allclose(r, nr, atol=1e-12)
        np.testing.assert_allclose(q @ r, a, atol=1e-12)
    np.testing.assert_allclose(fnp.linalg.qr(a, mode="r"), np.linalg.qr(a, mode="r"), atol=1e-12)
    assert isinstance(fnp.linalg.qr(a), fnp.linalg.QRResult)


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (2, 3, 2)])
def test_pinv_values(shape):
    rng = np.random.default_rng(3)
    a = rng.standard_normal(shape)
    np.testing.assert_allclose(fnp.linalg.pinv(a), np.linalg.pinv(a), atol=1e-12)
    # a rank-deficient matrix: the small singular value is cut off as in NumPy
    d = np.outer(rng.standard_normal(4), rng.standard_normal(3)) + 1e-10 * rng.standard_normal((4, 3))
    for kw in ({}, {"rcond": 1e-6}, {"rtol": 1e-6}, {"rtol": None}):
        np.testing.assert_allclose(fnp.linalg.pinv(d, **kw), np.linalg.pinv(d, **kw), atol=1e-9)
    with pytest.raises(ValueError, match="rtol and rcond"):
        fnp.linalg.pinv(a, rcond=1e-3, rtol=1e-3)


@pytest.mark.parametrize("m, n", [(5, 3), (3, 5), (3, 3)])
@pytest.mark.parametrize("vector", [True, False])
def test_lstsq_matches_numpy(m, n, vector):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((m, n))
    b = rng.standard_normal((m,) if vector else (m, 2))
    got, want = fnp.linalg.lstsq(a, b), np.linalg.lstsq(a, b)
    assert len(got) == 4
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    assert int(got[2]) == int(want[2])
    # rank deficient and tall: NumPy returns no residuals, nor does funcgrad (the rank is concrete)
    d = np.outer(rng.standard_normal(5), rng.standard_normal(3))
    got, want = fnp.linalg.lstsq(d, rng.standard_normal(5)), np.linalg.lstsq(d, rng.standard_normal(5))
    assert got[1].shape == want[1].shape == (0,) and int(got[2]) == int(want[2]) == 1


# -- derivatives -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_eigh_gradients(seed):
    rng = np.random.default_rng(seed)
    check_grads(eigh_loss, (symmetric(rng, 4),), order=2)
    check_grads(lambda a: fnp.linalg.eigvalsh(sym(a)) * np.arange(1.0, 4.0), (symmetric(rng, 3),), order=2)
    check_grads(eigh_loss, (symmetric(rng, 3, (2,)),), order=1)


def test_eigh_derivative_symmetrizes():
    # the derivative is that of eigh((a + a^T) / 2): the gradient is symmetric
    a = symmetric(np.random.default_rng(5), 3)
    g = fg.grad(lambda x: fnp.sum(fnp.linalg.eigh(x)[0] * np.arange(1.0, 4.0)))(a)
    np.testing.assert_allclose(g, g.T, atol=1e-12)
    _, v = np.linalg.eigh(a)
    np.testing.assert_allclose(g, (v * np.arange(1.0, 4.0)) @ v.T, atol=1e-12)  # d w_i / dA = v_i v_i^T


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (2, 3, 2)])
def test_svd_gradients(shape):
    rng = np.random.default_rng(6)
    a = distinct_sv(rng, shape[-2], shape[-1], shape[:-2])
    check_grads(svd_loss, (a,), order=2 if len(shape) == 2 else 1)
    check_grads(lambda x: fnp.linalg.svd(x, compute_uv=False), (a,), order=2)
    if shape[-1] == shape[-2]:  # full_matrices=True is the thin SVD for square matrices
        check_grads(lambda x: fnp.linalg.svd(x)[0] * fnp.linalg.svd(x)[0], (a,), order=1)


@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (4, 1), (2, 3, 2)])
def test_qr_gradients(shape):
    a = distinct_sv(np.random.default_rng(8), shape[-2], shape[-1], shape[:-2])
    check_grads(qr_loss, (a,), order=2 if len(shape) == 2 else 1)
    check_grads(lambda x: fnp.linalg.qr(x, mode="r") ** 2, (a,), order=1)
    if shape[-1] == shape[-2]:
        check_grads(lambda x: fnp.linalg.qr(x, mode="complete")[1] ** 2, (a,))


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3)])
def test_pinv_and_lstsq_gradients(shape):
    rng = np.random.default_rng(9)
    a = distinct_sv(rng, *shape)
    check_grads(fnp.linalg.pinv, (a,), order=2)
    b = rng.standard_normal((shape[0], 2))
    check_grads(lambda x, y: fnp.linalg.lstsq(x, y)[0], (a, b), order=2)
    check_grads(lambda x, y: fnp.linalg.lstsq(x, y[:, 0])[0], (a, b), order=1)
    check_grads(lambda x: fnp.linalg.lstsq(x, b)[3], (a,), order=1)
    if shape[0] > shape[1]:
        check_grads(lambda x, y: fnp.linalg.lstsq(x, y)[1], (a, b), order=1)


def test_pinv_derivative_holds_at_repeated_singular_values():
    # the Golub-Pereyra rule does not divide by gaps: an orthogonal matrix (all s = 1) is fine
    q = orthogonal(np.random.default_rng(10), 3)
    check_grads(fnp.linalg.pinv, (q,), order=2)
    check_grads(fnp.linalg.pinv, (q[:, :2],), order=1)


def test_eigenvector_derivative_at_repeated_eigenvalues_is_not_finite():
    with np.errstate(divide="ignore", invalid="ignore"):
        g = fg.grad(lambda a: fnp.sum(fnp.linalg.eigh(a)[1][0] ** 2 * np.arange(3.0)))(np.eye(3))
    assert not np.all(np.isfinite(g))


# -- vmap, jit --------------------------------------------------------------------------------------------
def test_vmap_over_a_stack_equals_a_loop():
    rng = np.random.default_rng(11)
    syms, tall = symmetric(rng, 3, (4,)), distinct_sv(rng, 4, 3, (4,))
    b = rng.standard_normal((4, 4))
    for f, xs in ((eigh_loss, (syms,)), (svd_loss, (tall,)), (qr_loss, (tall,)), (fnp.linalg.pinv, (tall,)),
                  (lambda x, y: fnp.linalg.lstsq(x, y)[:2], (tall, b)),
                  (fg.grad(lambda x: fnp.sum(eigh_loss(x)[1] * np.arange(9.0).reshape(3, 3))), (syms,))):
        got = fg.vmap(f)(*xs)
        loop = [f(*[x[i] for x in xs]) for i in range(4)]
        want = fg.tree_util.tree_map(lambda *ls: np.stack(ls), *loop)
        for g, w in zip(fg.tree_util.tree_leaves(got), fg.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    # a batch axis that is not the first
    got = fg.vmap(lambda x: fnp.linalg.svd(x, compute_uv=False), in_axes=2)(np.moveaxis(tall, 0, 2))
    np.testing.assert_allclose(got, np.linalg.svd(tall, compute_uv=False), rtol=1e-12)


def test_jit_equals_eager():
    rng = np.random.default_rng(12)
    s, a, b = symmetric(rng, 3), distinct_sv(rng, 4, 3), rng.standard_normal((4, 2))

    def everything(s, a, b):
        w, v = fnp.linalg.eigh(s)
        u, sv, _ = fnp.linalg.svd(a, full_matrices=False)
        q, r = fnp.linalg.qr(a)
        x, res, rank, sing = fnp.linalg.lstsq(a, b)
        return w, fnp.abs(v), fnp.abs(u), sv, fnp.abs(q), fnp.abs(r), fnp.linalg.pinv(a), x, res, rank, sing

    for g, w in zip(fg.jit(everything)(s, a, b), everything(s, a, b)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)

    def loss(s, a, b):
        return (fnp.sum(eigh_loss(s)[1] * s) + fnp.sum(svd_loss(a)[3] * a) + fnp.sum(qr_loss(a)[1])
                + fnp.sum(fnp.linalg.lstsq(a, b)[0]))

    for g, w in zip(fg.jit(fg.grad(loss, argnums=(0, 1, 2)))(s, a, b), fg.grad(loss, argnums=(0, 1, 2))(s, a, b)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


# -- errors ----------------------------------------------------------------------------------------------
def test_bad_inputs_are_clear_errors():
    with pytest.raises(ShapeError, match="eigh: expected a square matrix.*\\(3, 2\\)"):
        fnp.linalg.eigh(np.ones((3, 2)))
    for fn in (fnp.linalg.eigh, fnp.linalg.svd, fnp.linalg.qr, fnp.linalg.pinv):
        with pytest.raises(ShapeError, match="expected a matrix.*at least 2-D.*\\(3,\\)"):
            fn(np.ones(3))
    with pytest.raises(ShapeError, match="eigh"):
        fg.jit(lambda x: fnp.linalg.eigh(x)[0])(np.ones((2, 3)))
    with pytest.raises(FuncgradError, match="UPLO"):
        fnp.linalg.eigh(np.eye(2), UPLO="X")
    with pytest.raises(FuncgradError, match="mode"):
        fnp.linalg.qr(np.eye(2), mode="raw")
    with pytest.raises(ShapeError, match="lstsq.*do not fit"):
        fnp.linalg.lstsq(np.ones((3, 2)), np.ones(4))
    with pytest.raises(ShapeError, match="lstsq: a must be a 2-D"):
        fnp.linalg.lstsq(np.ones((2, 3, 2)), np.ones(3))


def test_unsupported_derivatives_are_clear_errors():
    a = distinct_sv(np.random.default_rng(13), 4, 3)
    for mode in (fg.grad, lambda f: (lambda x: fg.jvp(f, (x,), (x,))[1])):
        with pytest.raises(FuncgradError, match=r"full_matrices=True\) of a non-square"):
            mode(lambda x: fnp.sum(fnp.linalg.svd(x)[1]))(a)
        with pytest.raises(FuncgradError, match="qr: derivatives are defined for matrices with at least"):
            mode(lambda x: fnp.sum(fnp.linalg.qr(x)[1]))(a.T)
    # the singular values alone, and the thin SVD, are differentiable
    np.testing.assert_allclose(fg.grad(lambda x: fnp.sum(fnp.linalg.svd(x, compute_uv=False)))(a),
                               fg.grad(lambda x: fnp.sum(fnp.linalg.svd(x, full_matrices=False)[1]))(a), atol=1e-12)
