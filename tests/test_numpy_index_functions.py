"""nonzero, flatnonzero, argwhere, unique, searchsorted, digitize, bincount, gradient, partition,
r_ and c_ against NumPy: eagerly, under ``jit`` (with JAX's ``size=``/``length=`` padding) and,
where differentiable, through ``check_grads``."""
import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.errors import ConcretizationError
from funcgrad.testing import check_grads

rng = np.random.default_rng(0)

MASKS = [
    np.array([0, 1, 0, 2, 3]),
    np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -3.0]]),
    np.array([[[True, False], [False, True]], [[True, True], [False, False]]]),
    np.zeros((2, 3)),
    np.array([4, 5, 6]),
]


def same(got, expected):
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(expected)
        for g, e in zip(got, expected):
            same(g, e)
        return
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(got, expected)


def padded(idx, size, fill):
    idx = np.asarray(idx)
    out = np.full(size, fill, idx.dtype)
    k = min(size, idx.shape[0])
    out[:k] = idx[:k]
    return out


# -- nonzero, flatnonzero, argwhere -----------------------------------------------------------------

@pytest.mark.parametrize("a", MASKS)
def test_nonzero_family_eager(a):
    same(fnp.nonzero(a), np.nonzero(a))
    same(fnp.flatnonzero(a), np.flatnonzero(a))
    same(fnp.argwhere(a), np.argwhere(a))


@pytest.mark.parametrize("a", MASKS)
@pytest.mark.parametrize("size", [1, 3, 8])
def test_nonzero_family_jit_pads_like_jax(a, size):
    expected = tuple(padded(i, size, 0) for i in np.nonzero(a))
    same(fg.jit(lambda x: fnp.nonzero(x, size=size))(a), expected)
    expected = tuple(padded(i, size, -1) for i in np.nonzero(a))
    same(fg.jit(lambda x: fnp.nonzero(x, size=size, fill_value=-1))(a), expected)
    same(fg.jit(lambda x: fnp.flatnonzero(x, size=size, fill_value=7))(a), padded(np.flatnonzero(a), size, 7))
    w = np.argwhere(a)
    exp = np.zeros((size, a.ndim), w.dtype)
    exp[:min(size, len(w))] = w[:size]
    same(fg.jit(lambda x: fnp.argwhere(x, size=size))(a), exp)


def test_nonzero_fill_value_per_dimension():
    a = np.array([[0, 1], [0, 0]])
    same(fg.jit(lambda x: fnp.nonzero(x, size=3, fill_value=(-1, -2)))(a),
         (np.array([0, -1, -1]), np.array([1, -2, -2])))


def test_nonzero_size_eagerly_pads_too():
    same(fnp.nonzero(np.array([0, 3, 4]), size=3), (np.array([1, 2, 0]),))


@pytest.mark.parametrize("name", ["nonzero", "flatnonzero", "argwhere", "unique"])
def test_traced_without_size_raises(name):
    f = getattr(fnp, name)
    with pytest.raises(ConcretizationError, match="size="):
        fg.jit(f)(np.array([0, 1, 2]))


def test_traced_bincount_without_length_raises():
    with pytest.raises(ConcretizationError, match="length="):
        fg.jit(fnp.bincount)(np.array([0, 1, 2]))


def test_numpy_nonzero_on_a_tracer_names_size():
    with pytest.raises(ConcretizationError, match="pass size="):
        fg.jit(np.nonzero)(np.array([0, 5, 0, 6]))
    same(fg.jit(lambda x: np.searchsorted(np.arange(4.0), x))(np.array([1.5, 9.0])), np.array([2, 4]))


# -- unique --------------------------------------------------------------------------------------------

UNIQUES = [
    np.array([3, 1, 2, 3, 1, 5]),
    np.array([[2.5, -1.0], [2.5, 0.0]]),
    np.array([1.0, np.nan, 2.0, np.nan, 1.0]),
    np.array([7, 7, 7]),
]


@pytest.mark.parametrize("a", UNIQUES)
@pytest.mark.parametrize("flags", [(False, False, False), (True, True, True), (True, False, True), (False, True, False)])
def test_unique_eager(a, flags):
    same(fnp.unique(a, *flags), np.unique(a, *flags))


def _jax_unique(a, size, fill_value):
    vals, index, inverse, counts = np.unique(a, True, True, True)
    k = len(vals)
    v = np.full(size, vals[0] if fill_value is None else fill_value, vals.dtype)
    v[:min(k, size)] = vals[:size]
    i = np.full(size, index[0], index.dtype)
    i[:min(k, size)] = index[:size]
    c = np.zeros(size, counts.dtype)
    c[:min(k, size)] = counts[:size]
    return v, i, inverse.reshape(a.shape), c


@pytest.mark.parametrize("a", UNIQUES)
@pytest.mark.parametrize("size", [2, 6])
@pytest.mark.parametrize("fill_value", [None, 9])
def test_unique_jit_with_size(a, size, fill_value):
    v, i, inv, c = _jax_unique(a, size, fill_value)
    same(fg.jit(lambda x: fnp.unique(x, size=size, fill_value=fill_value))(a), v)
    got = fg.jit(lambda x: fnp.unique(x, True, True, True, size=size, fill_value=fill_value))(a)
    if size >= len(np.unique(a)):
        same(got, (v, i, inv, c))
    else:
        same(got[:2] + got[3:], (v, i, c))


def test_unique_axis_is_refused():
    with pytest.raises(ValueError, match="axis=None"):
        fnp.unique(np.ones((2, 2)), axis=0)


# -- searchsorted, digitize ---------------------------------------------------------------------------

@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted(side):
    a = np.array([1.0, 2.0, 2.0, 3.0, np.nan])
    v = np.array([[2.0, 0.0], [5.0, np.nan], [3.0, 1.5]])
    same(fnp.searchsorted(a, v, side), np.searchsorted(a, v, side))
    same(fg.jit(lambda a, v: fnp.searchsorted(a, v, side))(a, v), np.searchsorted(a, v, side))
    same(fg.jit(lambda v: fnp.searchsorted(a, v, side))(2.0), np.searchsorted(a, 2.0, side))
    u = rng.permutation(np.arange(6.0))
    sorter = np.argsort(u)
    same(fg.jit(lambda u, v: fnp.searchsorted(u, v, side, sorter=sorter))(u, v),
         np.searchsorted(u, v, side, sorter=sorter))
    ints = np.array([0, 3, 3, 9])
    same(fg.jit(lambda v: fnp.searchsorted(ints, v, side))(np.array([3, -1, 10])),
         np.searchsorted(ints, np.array([3, -1, 10]), side))


@pytest.mark.parametrize("bins", [np.array([0.0, 1.0, 2.5, 4.0]), np.array([4.0, 2.5, 1.0, 0.0]), np.array([1.0])])
@pytest.mark.parametrize("right", [False, True])
def test_digitize(bins, right):
    x = np.array([-1.0, 0.0, 0.5, 1.0, 2.5, 3.0, 4.0, 9.0])
    same(fnp.digitize(x, bins, right), np.digitize(x, bins, right))
    same(fg.jit(lambda x, b: fnp.digitize(x, b, right))(x, bins), np.digitize(x, bins, right))


# -- bincount -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("x", [np.array([0, 1, 1, 4]), np.array([2, 2, 2]), np.array([], np.int64)])
@pytest.mark.parametrize("minlength", [0, 7])
def test_bincount(x, minlength):
    w = rng.normal(size=x.shape)
    same(fnp.bincount(x, minlength=minlength), np.bincount(x, minlength=minlength))
    same(fnp.bincount(x, w, minlength), np.bincount(x, w, minlength))
    length = max(minlength, 5)
    exp = np.bincount(x, minlength=length)[:length]
    same(fg.jit(lambda x: fnp.bincount(x, length=length))(x), exp)
    # (NumPy gives int64 for an empty x even with weights; funcgrad stays float64, as for any weights)
    same(fg.jit(lambda x, w: fnp.bincount(x, w, length=length))(x, w),
         np.bincount(x, w, length)[:length].astype(np.float64))
    # concrete x, traced weights: the length comes from x
    same(fg.jit(lambda w: fnp.bincount(x, w, minlength))(w), np.bincount(x, w, minlength).astype(np.float64))


def test_bincount_length_drops_larger_values_and_negative_x_is_refused():
    same(fg.jit(lambda x: fnp.bincount(x, length=3))(np.array([0, 5, 2, 2])), np.array([1, 0, 2]))
    with pytest.raises(ValueError, match="non-negative"):
        fnp.bincount(np.array([1, -1]))


def test_bincount_weights_gradient():
    x = np.array([0, 3, 1, 1, 3, 3])
    w = rng.normal(size=6)
    check_grads(lambda w: fnp.bincount(x, w, length=5), (w,), order=2)
    np.testing.assert_allclose(fg.grad(lambda w: fnp.sum(fnp.bincount(x, w) * np.arange(4.0)))(w), x)


# -- gradient -----------------------------------------------------------------------------------------

GRAD_CASES = [
    ((7,), (), {}),
    ((7,), (0.5,), {"edge_order": 2}),
    ((4, 5), (), {}),
    ((4, 5), (2.0, 0.3), {"edge_order": 2}),
    ((4, 5), ("coords",), {"axis": 1}),
    ((4, 5), ("coords",), {"axis": -1, "edge_order": 2}),
    ((3, 4, 5), (1.5,), {"axis": (0, 2)}),
    ((2, 3), (), {"axis": 0}),
]


def _grad_args(shape, varargs, kw):
    f = rng.normal(size=shape)
    n = shape[kw.get("axis", 0) if isinstance(kw.get("axis", 0), int) else 0]
    coords = np.cumsum(rng.uniform(0.5, 1.5, n))
    return f, tuple(coords if v == "coords" else v for v in varargs)


@pytest.mark.parametrize("shape,varargs,kw", GRAD_CASES)
def test_gradient_against_numpy(shape, varargs, kw):
    f, va = _grad_args(shape, varargs, kw)
    same(fnp.gradient(f, *va, **kw), np.gradient(f, *va, **kw))
    same(fg.jit(lambda f: fnp.gradient(f, *va, **kw))(f), np.gradient(f, *va, **kw))
    if any(np.ndim(v) for v in va):  # traced coordinates
        same(fg.jit(lambda f, *va: fnp.gradient(f, *va, **kw))(f, *va), np.gradient(f, *va, **kw))


def test_gradient_dtypes_and_errors():
    same(fnp.gradient(np.array([1, 4, 9, 16])), np.gradient(np.array([1, 4, 9, 16])))
    f32 = np.arange(5.0, dtype=np.float32) ** 2
    same(fg.jit(fnp.gradient)(f32), np.gradient(f32))
    with pytest.raises(ValueError, match="edge_order"):
        fnp.gradient(np.ones(2), edge_order=2)
    with pytest.raises(ValueError, match="edge_order"):
        fnp.gradient(np.ones(4), edge_order=3)


@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_is_differentiable(edge_order):
    f = rng.normal(size=(4, 5))
    xs = np.cumsum(rng.uniform(0.5, 1.5, 5))
    check_grads(lambda f: fnp.gradient(f, 0.7, xs, edge_order=edge_order), (f,), order=2)
    check_grads(lambda x: fnp.gradient(np.sin(np.arange(5.0)), x, edge_order=edge_order), (xs,))


# -- partition ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,kth,axis", [((7,), 3, -1), ((4, 6), 0, 0), ((4, 6), (1, 4), 1), ((3, 4), -1, None)])
def test_partition_meets_numpy_contract(shape, kth, axis):
    a = rng.normal(size=shape)
    for got in (fnp.partition(a, kth, axis), fg.jit(lambda a: fnp.partition(a, kth, axis))(a)):
        expected = np.partition(a, kth, axis)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        ax = 0 if axis is None else axis
        for k in np.atleast_1d(kth):
            np.testing.assert_array_equal(np.take(got, k, ax), np.take(expected, k, ax))
        np.testing.assert_array_equal(np.sort(got, ax), np.sort(expected, ax))
    check_grads(lambda a: fnp.partition(a, kth, axis), (a,), order=2)


def test_partition_kth_out_of_bounds():
    with pytest.raises(IndexError, match="out of bounds"):
        fnp.partition(np.ones(3), 3)


# -- r_ and c_ ----------------------------------------------------------------------------------------

def test_r_and_c_eager():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    same(fnp.r_[0:5], np.r_[0:5])
    same(fnp.r_[1:10:3], np.r_[1:10:3])
    same(fnp.r_[a, b], np.r_[a, b])
    same(fnp.r_[a, 7, 0:2, [8, 9]], np.r_[a, 7, 0:2, [8, 9]])
    same(fnp.c_[a, b], np.c_[a, b])
    same(fnp.c_[np.ones((2, 2)), a], np.c_[np.ones((2, 2)), a])


def test_r_and_c_traced():
    a, b = rng.normal(size=3), rng.normal(size=3)
    same(fg.jit(lambda a, b: fnp.r_[a, b])(a, b), np.r_[a, b])
    same(fg.jit(lambda a: fnp.r_[a, 2.5, 0:3])(a), np.r_[a, 2.5, 0:3])
    same(fg.jit(lambda a: fnp.r_[a, 1])(a.astype(np.float32)), np.r_[a.astype(np.float32), 1])
    same(fg.jit(lambda a, b: fnp.c_[a, b])(a, b), np.c_[a, b])
    m = rng.normal(size=(3, 2))
    same(fg.jit(lambda m, a: fnp.c_[m, a, 0:3])(m, a), np.c_[m, a, 0:3])
    check_grads(lambda a, b: fnp.r_[a, 1.0, b], (a, b), order=2)
    check_grads(lambda a, b: fnp.c_[a, b, a], (a, b), order=2)


def test_r_refuses_string_directives():
    with pytest.raises(ValueError, match="string directives"):
        fnp.r_["0,2", [1, 2], [3, 4]]
    with pytest.raises(ValueError, match="string directives"):
        fnp.c_["r", [1, 2]]
