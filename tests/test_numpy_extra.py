"""The functions of ``funcgrad.numpy._extra`` against NumPy (eagerly, under ``jit`` and ``vmap``)
and their derivatives against finite differences."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradError
from funcgrad.testing import check_grads

rng = np.random.default_rng(7)


def r(*shape, dtype=np.float64):
    return rng.normal(size=shape).astype(dtype)


def pos(*shape, dtype=np.float64):
    return rng.uniform(0.5, 2.0, size=shape).astype(dtype)


WITH_NONFINITE = np.array([1.5, np.nan, np.inf, -np.inf, -2.0, 0.0])
WITH_NAN = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [-1.0, 2.0, 0.5]])

# name, f(module, *arrays), arrays (float arrays are tried as float32 and float64)
CASES = [
    ("degrees", lambda m, x: m.degrees(x), [r(3, 2)]),
    ("degrees_int", lambda m, x: m.degrees(x), [np.arange(4)]),
    ("radians", lambda m, x: m.radians(x), [r(5)]),
    ("allclose", lambda m, x, y: m.allclose(x, x + 1e-9 * y), [r(3), r(3)]),
    ("allclose_false", lambda m, x, y: m.allclose(x, y), [r(3), r(3)]),
    ("allclose_inf", lambda m, x: m.allclose(x, x, equal_nan=True), [WITH_NONFINITE]),
    ("nan_to_num", lambda m, x: m.nan_to_num(x), [WITH_NONFINITE]),
    ("nan_to_num_values", lambda m, x: m.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0), [WITH_NONFINITE]),
    ("nan_to_num_int", lambda m, x: m.nan_to_num(x), [np.arange(3)]),
    ("rot90", lambda m, x: m.rot90(x), [r(2, 3)]),
    ("rot90_k2", lambda m, x: m.rot90(x, 2), [r(2, 3, 4)]),
    ("rot90_k3_axes", lambda m, x: m.rot90(x, 3, axes=(2, 0)), [r(2, 3, 4)]),
    ("rot90_kneg", lambda m, x: m.rot90(x, -1, axes=(1, 2)), [r(2, 3, 4)]),
    ("append", lambda m, x, y: m.append(x, y), [r(2, 3), r(4)]),
    ("append_axis", lambda m, x, y: m.append(x, y, axis=0), [r(2, 3), r(1, 3)]),
    ("hsplit", lambda m, x: m.hsplit(x, 2), [r(3, 4)]),
    ("hsplit_1d", lambda m, x: m.hsplit(x, [1, 4]), [r(6)]),
    ("vsplit", lambda m, x: m.vsplit(x, [1]), [r(3, 2)]),
    ("dsplit", lambda m, x: m.dsplit(x, 3), [r(2, 1, 6)]),
    ("array_split_list", lambda m, x: m.array_split(x, [1, 3], axis=1), [r(2, 5)]),
    ("split_list", lambda m, x: m.split(x, [2]), [r(5, 2)]),
    ("rollaxis", lambda m, x: m.rollaxis(x, 2), [r(2, 3, 4)]),
    ("rollaxis_start", lambda m, x: m.rollaxis(x, 0, 3), [r(2, 3, 4)]),
    ("rollaxis_neg", lambda m, x: m.rollaxis(x, -1, 1), [r(2, 3, 4)]),
    ("dstack", lambda m, x, y: m.dstack([x, y]), [r(3), r(3)]),
    ("dstack_2d", lambda m, x, y: m.dstack([x, y]), [r(2, 3), r(2, 3)]),
    ("row_stack", lambda m, x, y: m.row_stack([x, y]), [r(3), r(2, 3)]),
    ("count_nonzero", lambda m, x: m.count_nonzero(x), [np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])]),
    ("count_nonzero_axis", lambda m, x: m.count_nonzero(x, axis=1, keepdims=True),
     [np.array([[0, 1, 2], [0, 0, 3]])]),
    ("isin", lambda m, x, y: m.isin(x, y), [np.arange(6).reshape(2, 3), np.array([1, 4, 9])]),
    ("isin_invert", lambda m, x, y: m.isin(x, y, invert=True), [np.array([1.0, 2.5]), np.array([[2.5]])]),
    ("ediff1d", lambda m, x: m.ediff1d(x), [r(2, 3)]),
    ("ediff1d_ends", lambda m, x: m.ediff1d(x, to_end=[7.0, 8.0], to_begin=-1.0), [r(4)]),
    ("average", lambda m, x: m.average(x), [r(3, 4)]),
    ("average_axis", lambda m, x: m.average(x, axis=0, keepdims=True), [r(3, 4)]),
    ("average_weights", lambda m, x, w: m.average(x, axis=1, weights=w), [r(3, 4), pos(4)]),
    ("average_weights_full", lambda m, x, w: m.average(x, weights=w, returned=True), [r(3, 4), pos(3, 4)]),
    ("average_returned", lambda m, x: m.average(x, axis=1, returned=True), [r(3, 4)]),
    ("median", lambda m, x: m.median(x), [r(7)]),
    ("median_even_axis", lambda m, x: m.median(x, axis=1), [r(3, 4)]),
    ("median_keepdims", lambda m, x: m.median(x, axis=(0, 2), keepdims=True), [r(2, 3, 4)]),
    ("median_nan", lambda m, x: m.median(x, axis=1), [WITH_NAN]),
    ("quantile", lambda m, x: m.quantile(x, 0.3), [r(9)]),
    ("quantile_vec", lambda m, x: m.quantile(x, np.array([0.0, 0.25, 0.5, 0.9, 1.0]), axis=0), [r(5, 3)]),
    ("quantile_keepdims", lambda m, x: m.quantile(x, [0.1, 0.7], axis=-1, keepdims=True), [r(2, 3, 4)]),
    ("quantile_int", lambda m, x: m.quantile(x, 0.4), [np.arange(10)]),
    ("percentile", lambda m, x: m.percentile(x, 35, axis=1), [r(3, 6)]),
    ("percentile_vec", lambda m, x: m.percentile(x, [10, 50, 100]), [r(4, 2)]),
    ("nanmean", lambda m, x: m.nanmean(x, axis=1), [WITH_NAN]),
    ("nanmean_all", lambda m, x: m.nanmean(x), [WITH_NAN]),
    ("nansum", lambda m, x: m.nansum(x, axis=0), [WITH_NAN]),
    ("nansum_int", lambda m, x: m.nansum(x), [np.arange(5)]),
    ("nanmax", lambda m, x: m.nanmax(x, axis=1), [WITH_NAN]),
    ("nanmin", lambda m, x: m.nanmin(x, axis=0, keepdims=True), [WITH_NAN]),
    ("nanmax_plain", lambda m, x: m.nanmax(x), [r(3, 2)]),
    ("cov", lambda m, x: m.cov(x), [r(3, 5)]),
    ("cov_rowvar", lambda m, x: m.cov(x, rowvar=False, bias=True), [r(6, 2)]),
    ("cov_y_ddof", lambda m, x, y: m.cov(x, y, ddof=2), [r(5), r(5)]),
    ("cov_1d", lambda m, x: m.cov(x), [r(6)]),
    ("corrcoef", lambda m, x: m.corrcoef(x), [r(3, 6)]),
    ("corrcoef_xy", lambda m, x, y: m.corrcoef(x, y, rowvar=False), [r(6, 2), r(6)]),
    ("trapezoid", lambda m, y: m.trapezoid(y), [r(3, 5)]),
    ("trapezoid_dx", lambda m, y: m.trapezoid(y, dx=0.5, axis=0), [r(4, 2)]),
    ("trapezoid_x", lambda m, y, x: m.trapezoid(y, x), [r(2, 4), np.array([0.0, 0.5, 2.0, 3.0])]),
    ("trapezoid_x2d", lambda m, y, x: m.trapezoid(y, x, axis=0), [r(3, 2), r(3, 2)]),
    ("cross", lambda m, a, b: m.cross(a, b), [r(4, 3), r(3)]),
    ("cross_axis", lambda m, a, b: m.cross(a, b, axisa=0, axisb=0, axisc=0), [r(3, 2), r(3, 2)]),
    ("cross_23", lambda m, a, b: m.cross(a, b), [r(2, 2), r(2, 3)]),
    ("convolve", lambda m, a, v: m.convolve(a, v), [r(6), r(3)]),
    ("convolve_same", lambda m, a, v: m.convolve(a, v, "same"), [r(3), r(5)]),
    ("convolve_valid", lambda m, a, v: m.convolve(a, v, "valid"), [r(7), r(4)]),
    ("correlate", lambda m, a, v: m.correlate(a, v), [r(6), r(3)]),
    ("correlate_full", lambda m, a, v: m.correlate(a, v, "full"), [r(2), r(5)]),
    ("correlate_same", lambda m, a, v: m.correlate(a, v, "same"), [r(6), r(4)]),
    ("correlate_same_long_v", lambda m, a, v: m.correlate(a, v, "same"), [r(3), r(6)]),
    ("polyval", lambda m, p, x: m.polyval(p, x), [r(4), r(2, 3)]),
    ("polyval_const", lambda m, p, x: m.polyval(p, x), [r(1), r(3)]),
    ("vander", lambda m, x: m.vander(x), [r(4)]),
    ("vander_inc", lambda m, x: m.vander(x, 3, increasing=True), [r(5)]),
    ("interp", lambda m, x, fp: m.interp(x, [0.0, 1.0, 2.5, 4.0], fp),
     [np.array([-1.0, 0.0, 0.3, 1.0, 2.0, 3.9, 4.0, 5.0]), r(4)]),
    ("interp_lr", lambda m, x, fp: m.interp(x, [0.0, 1.0], fp, left=-5.0, right=5.0),
     [np.array([[-1.0, 0.5], [1.0, 2.0]]), r(2)]),
    ("interp_one", lambda m, x, fp: m.interp(x, [1.0], fp), [np.array([0.0, 1.0, 2.0]), r(1)]),
    ("ldexp", lambda m, x, e: m.ldexp(x, e), [r(4), np.array([0, 3, -2, 10])]),
    ("modf", lambda m, x: m.modf(x), [np.array([-2.5, -0.25, 0.0, 1.75, 3.0, np.inf, -np.inf])]),
    ("modf_int", lambda m, x: m.modf(x), [np.arange(-2, 3)]),
    ("divmod", lambda m, x, y: m.divmod(x, y), [np.array([-7.5, 7.5, 3.0, -2.0]), np.array([2.0, -2.0, 3.0, 0.5])]),
    ("divmod_int", lambda m, x, y: m.divmod(x, y), [np.array([-7, 7, 9]), np.array([2, -3, 3])]),
]


def _cast(args, dtype):
    return [a.astype(dtype) if a.dtype.kind == "f" else a for a in args]


def _compare(ours, ref, dtype):
    if isinstance(ref, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(ref)
        for o, e in zip(ours, ref):
            _compare(o, e, dtype)
        return
    ref = np.asarray(ref)
    ours = np.asarray(ours)
    assert ours.shape == ref.shape
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    if ref.dtype.kind in "biu":
        np.testing.assert_array_equal(ours, ref)
    else:
        np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)


def _numpy(f, args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(np, *args)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,f,args", CASES, ids=[c[0] for c in CASES])
def test_against_numpy(name, f, args, dtype):
    args = _cast(args, dtype)
    ref = _numpy(f, args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _compare(f(fnp, *args), ref, dtype)
        _compare(fg.jit(lambda *a: f(fnp, *a))(*args), ref, dtype)


AXIS_FNS = {
    "median": lambda m, x, axis: m.median(x, axis=axis),
    "quantile": lambda m, x, axis: m.quantile(x, [0.05, 0.5, 0.95], axis=axis),
    "percentile": lambda m, x, axis: m.percentile(x, 60, axis=axis, keepdims=True),
    "average": lambda m, x, axis: m.average(x, axis=axis, weights=m.abs(x) + 1),
    "nanmean": lambda m, x, axis: m.nanmean(m.where(x > 1.0, m.nan, x), axis=axis),
    "nansum": lambda m, x, axis: m.nansum(m.where(x > 1.0, m.nan, x), axis=axis),
    "nanmax": lambda m, x, axis: m.nanmax(m.where(x > 1.0, m.nan, x), axis=axis),
    "nanmin": lambda m, x, axis: m.nanmin(m.where(x < -1.0, m.nan, x), axis=axis, keepdims=True),
    "count_nonzero": lambda m, x, axis: m.count_nonzero(m.round(x), axis=axis),
    "trapezoid": lambda m, x, axis: m.trapezoid(x, axis=-1 if axis is None else axis),
    "ediff1d": lambda m, x, axis: m.ediff1d(x),
    "append": lambda m, x, axis: m.append(x, x, axis=axis),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("name", list(AXIS_FNS))
def test_shapes_and_axes(name, shape, axis, dtype):
    x = r(*shape, dtype=dtype)
    f = AXIS_FNS[name]
    ref = _numpy(lambda m, v: f(m, v, axis), [x])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _compare(f(fnp, x, axis), ref, dtype)
        _compare(fg.jit(lambda v: f(fnp, v, axis))(x), ref, dtype)


def test_allclose_is_a_python_bool():
    assert fnp.allclose(np.ones(3), np.ones(3)) is True
    assert fnp.allclose(np.ones(3), np.zeros(3)) is False


def test_concrete_creation():
    for args in [(2.0, 3.0, 5), (0.0, -1.0, 4, False)]:
        np.testing.assert_allclose(fnp.logspace(*args), np.logspace(*args))
        np.testing.assert_allclose(fnp.logspace(*args, base=2.0), np.logspace(*args, base=2.0))
    for args in [(1.0, 1000.0, 4), (-2.0, -32.0, 5, False), (3.0, 0.5, 6)]:
        np.testing.assert_allclose(fnp.geomspace(*args), np.geomspace(*args))
    for n, k, m in [(4, 0, None), (3, 1, 5), (5, -2, 2)]:
        for ours, ref in zip(fnp.triu_indices(n, k, m), np.triu_indices(n, k, m)):
            np.testing.assert_array_equal(ours, ref)
        for ours, ref in zip(fnp.tril_indices(n, k, m), np.tril_indices(n, k, m)):
            np.testing.assert_array_equal(ours, ref)
    x = r(4, 4)
    np.testing.assert_array_equal(x[fnp.triu_indices(4, 1)], x[np.triu_indices(4, 1)])


def test_traced_creation():
    f = fg.jit(lambda a, b: fnp.logspace(a, b, 5))
    np.testing.assert_allclose(f(np.float64(1.0), np.float64(2.0)), np.logspace(1.0, 2.0, 5))
    g = fg.jit(lambda a, b: fnp.geomspace(a, b, 4))
    np.testing.assert_allclose(g(np.float64(2.0), np.float64(54.0)), np.geomspace(2.0, 54.0, 4))
    np.testing.assert_allclose(g(np.float64(-2.0), np.float64(-54.0)), np.geomspace(-2.0, -54.0, 4))
    check_grads(lambda a, b: fnp.logspace(a, b, 5, base=2.0), (np.float64(0.5), np.float64(1.5)), order=2)
    check_grads(lambda a, b: fnp.geomspace(a, b, 5), (np.float64(0.5), np.float64(3.0)), order=2)


# name, f, args, order: float64 derivatives against finite differences
GRADS = [
    ("degrees", fnp.degrees, (r(3),), 2),
    ("radians", fnp.radians, (r(2, 2),), 2),
    ("nan_to_num", lambda x: fnp.nan_to_num(x, posinf=5.0, neginf=-5.0) ** 2, (WITH_NONFINITE,), 2),
    ("rot90", lambda x: fnp.rot90(x, 3, axes=(1, 0)), (r(2, 3),), 2),
    ("append", lambda x, y: fnp.append(x, y, axis=1), (r(2, 3), r(2, 1)), 2),
    ("hsplit", lambda x: fnp.hsplit(x, [1])[1] ** 2, (r(2, 3),), 2),
    ("vsplit", lambda x: fnp.vsplit(x, 2)[0], (r(4, 3),), 1),
    ("dsplit", lambda x: fnp.dsplit(x, [2])[1], (r(2, 2, 3),), 1),
    ("rollaxis", lambda x: fnp.rollaxis(x, 1, 3), (r(2, 3, 4),), 1),
    ("dstack", lambda x, y: fnp.dstack([x, y * y]), (r(2, 3), r(2, 3)), 2),
    ("row_stack", lambda x, y: fnp.row_stack([x, y]), (r(3), r(2, 3)), 1),
    ("ediff1d", lambda x: fnp.ediff1d(x, to_begin=[0.0]) ** 2, (r(2, 3),), 2),
    ("average", lambda x, w: fnp.average(x, axis=0, weights=w), (r(3, 2), pos(3)), 2),
    ("average_returned", lambda x, w: fnp.average(x, weights=w, returned=True), (r(3, 2), pos(3, 2)), 2),
    ("median", lambda x: fnp.median(x, axis=1), (r(3, 4),), 2),
    ("median_odd", fnp.median, (r(5),), 2),
    ("quantile", lambda x: fnp.quantile(x, [0.1, 0.5, 0.75], axis=0), (r(6, 2),), 2),
    ("percentile", lambda x: fnp.percentile(x, 42.0), (r(7),), 2),
    ("nanmean", lambda x: fnp.nanmean(x, axis=-1) ** 2, (WITH_NAN[[0, 2]],), 2),
    ("nansum", lambda x: fnp.nansum(x, axis=0) ** 2, (WITH_NAN,), 2),
    ("nanmax", lambda x: fnp.nanmax(x, axis=1), (WITH_NAN[[0, 2]],), 1),
    ("nanmin", lambda x: fnp.nanmin(x), (WITH_NAN,), 1),
    ("cov", fnp.cov, (r(3, 5),), 2),
    ("cov_y", lambda x, y: fnp.cov(x, y, rowvar=False), (r(5, 2), r(5)), 2),
    ("corrcoef", fnp.corrcoef, (r(3, 6),), 2),
    ("trapezoid", lambda y, x: fnp.trapezoid(y, x), (r(2, 4), np.array([0.0, 0.5, 2.0, 3.0])), 2),
    ("trapezoid_x2d", lambda y, x: fnp.trapezoid(y * y, x, axis=0), (r(3, 2), r(3, 2)), 2),
    ("cross", fnp.cross, (r(4, 3), r(4, 3)), 2),
    ("convolve", lambda a, v: fnp.convolve(a, v, "same"), (r(6), r(3)), 2),
    ("correlate", lambda a, v: fnp.correlate(a, v, "full"), (r(3), r(5)), 2),
    ("polyval", fnp.polyval, (r(4), r(3)), 2),
    ("vander", lambda x: fnp.vander(x, 4), (r(3),), 2),
    ("interp", lambda x, fp: fnp.interp(x, [0.0, 1.0, 2.5, 4.0], fp),
     (np.array([-1.0, 0.3, 1.7, 3.1, 5.0]), r(4)), 2),
    ("ldexp", lambda x: fnp.ldexp(x, np.array([1, -3, 4])), (r(3),), 2),
    ("modf", lambda x: fnp.modf(x)[0] * x, (np.array([-2.3, 0.4, 1.6]),), 2),
    ("divmod", lambda x, y: fnp.divmod(x, y)[1], (np.array([-7.3, 7.4, 3.2]), np.array([2.1, -2.2, 3.3])), 2),
]


@pytest.mark.parametrize("name,f,args,order", GRADS, ids=[g[0] for g in GRADS])
def test_grads(name, f, args, order):
    check_grads(f, args, order=order)


def test_nan_to_num_gradient_is_one_where_finite():
    x = WITH_NONFINITE
    g = fg.grad(lambda v: fnp.sum(fnp.nan_to_num(v, posinf=3.0, neginf=-3.0) * 2.0))(x)
    np.testing.assert_array_equal(g, np.where(np.isfinite(x), 2.0, 0.0))


@pytest.mark.parametrize("q", [0.5, 0.25, 0.8])
def test_quantile_gradient_at_ties_is_a_distribution(q):
    x = np.array([[1.0, 2.0, 2.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0], [4.0, 1.0, 4.0, 1.0, 4.0]])
    for fn in (lambda v: fnp.quantile(v, q, axis=1), lambda v: fnp.median(v, axis=1)):
        jac = np.stack([fg.grad(lambda v, i=i, fn=fn: fn(v)[i])(x) for i in range(3)])
        assert np.all(jac >= -1e-12)
        np.testing.assert_allclose(jac.sum(axis=(1, 2)), 1.0)
        for i in range(3):  # the weight stays in its own row
            np.testing.assert_allclose(jac[i, i].sum(), 1.0)


def test_median_gradient_splits_the_middle_pair():
    g = fg.grad(fnp.median)(np.array([3.0, 1.0, 4.0, 2.0]))
    np.testing.assert_allclose(g, [0.5, 0.0, 0.0, 0.5])


VMAPS = [
    ("nan_to_num", fnp.nan_to_num, np.nan_to_num, (np.where(r(3, 4) > 1, np.inf, r(3, 4)),)),
    ("rot90", fnp.rot90, np.rot90, (r(2, 3, 4),)),
    ("median", fnp.median, np.median, (r(3, 5),)),
    ("quantile", lambda x: fnp.quantile(x, [0.2, 0.9]), lambda x: np.quantile(x, [0.2, 0.9]), (r(4, 6),)),
    ("average", lambda x, w: fnp.average(x, weights=w), lambda x, w: np.average(x, weights=w),
     (r(3, 4), pos(3, 4))),
    ("cov", fnp.cov, np.cov, (r(2, 3, 5),)),
    ("trapezoid", fnp.trapezoid, np.trapezoid, (r(3, 4),)),
    ("cross", fnp.cross, np.cross, (r(5, 3), r(5, 3))),
    ("convolve", fnp.convolve, np.convolve, (r(3, 5), r(3, 2))),
    ("polyval", fnp.polyval, np.polyval, (r(3, 4), r(3, 2))),
    ("interp", lambda x, fp: fnp.interp(x, [0.0, 1.0, 2.0], fp),
     lambda x, fp: np.interp(x, [0.0, 1.0, 2.0], fp), (rng.uniform(-1, 3, (4, 3)), r(4, 3))),
    ("isin", lambda x: fnp.isin(x, [1, 2]), lambda x: np.isin(x, [1, 2]), (np.arange(12).reshape(3, 4) % 4,)),
    ("nanmax", fnp.nanmax, np.nanmax, (np.where(r(3, 4) > 0.8, np.nan, r(3, 4)),)),
    ("nanmean", fnp.nanmean, np.nanmean, (np.where(r(3, 4) > 0.8, np.nan, r(3, 4)),)),
    ("corrcoef", fnp.corrcoef, np.corrcoef, (r(2, 3, 6),)),
    ("vander", fnp.vander, np.vander, (r(3, 4),)),
    ("ediff1d", lambda x: fnp.ediff1d(x, to_end=[1.0]), lambda x: np.ediff1d(x, to_end=[1.0]), (r(3, 2, 2),)),
    ("rollaxis", lambda x: fnp.rollaxis(x, 1), lambda x: np.rollaxis(x, 1), (r(3, 2, 4),)),
    ("append", fnp.append, np.append, (r(3, 2), r(3, 4))),
    ("ldexp", lambda x: fnp.ldexp(x, np.array([1, 2])), lambda x: np.ldexp(x, np.array([1, 2])), (r(3, 2),)),
    ("modf", lambda x: fnp.modf(x)[0], lambda x: np.modf(x)[0], (r(3, 2),)),
    ("logspace", lambda a, b: fnp.logspace(a, b, 4), lambda a, b: np.logspace(a, b, 4), (r(3), r(3))),
    ("geomspace", lambda a, b: fnp.geomspace(a, b, 4), lambda a, b: np.geomspace(a, b, 4), (pos(3), pos(3))),
]


@pytest.mark.parametrize("name,f,ref,args", VMAPS, ids=[v[0] for v in VMAPS])
def test_vmap(name, f, ref, args):
    out = fg.vmap(f)(*args)
    expect = np.stack([ref(*a) for a in zip(*args)])
    np.testing.assert_allclose(np.asarray(out), expect, rtol=1e-12, atol=1e-12)


def test_grad_under_jit():
    f = fg.jit(fg.grad(lambda x: fnp.sum(fnp.quantile(x, [0.3, 0.6]) ** 2) + fnp.nanmean(x)))
    x = r(7)
    g = fg.grad(lambda x: fnp.sum(fnp.quantile(x, [0.3, 0.6]) ** 2) + fnp.nanmean(x))(x)
    np.testing.assert_allclose(f(x), g)


ERRORS = [
    (lambda m: m.quantile(np.ones(3), 1.5), ValueError),
    (lambda m: m.percentile(np.ones(3), -1), ValueError),
    (lambda m: m.rot90(np.ones((2, 2)), axes=(0, 0)), ValueError),
    (lambda m: m.rot90(np.ones((2, 2)), axes=(0,)), ValueError),
    (lambda m: m.vsplit(np.ones(4), 2), ValueError),
    (lambda m: m.dsplit(np.ones((2, 2)), 2), ValueError),
    (lambda m: m.hsplit(np.ones((2, 3)), 2), ValueError),
    (lambda m: m.rollaxis(np.ones((2, 3)), 0, 5), IndexError),
    (lambda m: m.rollaxis(np.ones((2, 3)), 3), IndexError),
    (lambda m: m.average(np.ones((2, 3)), weights=np.ones(3)), TypeError),
    (lambda m: m.average(np.ones((2, 3)), axis=1, weights=np.ones(2)), ValueError),
    (lambda m: m.cov(np.ones((2, 2, 2))), ValueError),
    (lambda m: m.cross(np.ones(4), np.ones(3)), ValueError),
    (lambda m: m.convolve(np.ones(0), np.ones(3)), ValueError),
    (lambda m: m.correlate(np.ones(3), np.ones(0)), ValueError),
    (lambda m: m.convolve(np.ones(3), np.ones(2), "circular"), ValueError),
    (lambda m: m.convolve(np.ones((2, 2)), np.ones(2)), ValueError),
    (lambda m: m.correlate(np.ones(3), np.ones((1, 2))), ValueError),
    (lambda m: m.interp([1.0], [0.0, 1.0], [1.0, 2.0, 3.0]), ValueError),
    (lambda m: m.interp([1.0], [], []), ValueError),
    (lambda m: m.ldexp(np.ones(2), np.ones(2)), TypeError),
    (lambda m: m.vander(np.ones((2, 2))), ValueError),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors_match_numpy(i):
    f, exc = ERRORS[i]
    with pytest.raises(exc), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f(np)
    with pytest.raises(exc) as info:
        f(fnp)
    assert isinstance(info.value, FuncgradError)


def test_unsupported_method_is_a_clear_error():
    with pytest.raises(FuncgradError, match="method"):
        fnp.quantile(np.ones(3), 0.5, method="nearest")
    with pytest.raises(FuncgradError, match="concrete"):
        fg.jit(lambda q: fnp.quantile(np.ones(3), q))(np.float64(0.5))
