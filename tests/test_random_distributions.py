"""funcgrad.random's derived distributions: key_data, exponential, laplace, gamma, beta,
dirichlet, multivariate_normal and choice. Shapes and dtypes, moments against the known values
with large fixed-key samples (tolerance ~5 standard errors), eager == jit == vmap, determinism,
and clear errors."""
import numpy as np
import pytest

import funcgrad as fg
from funcgrad import random as fr
from funcgrad.errors import FuncgradTypeError, FuncgradValueError

N = 20000


def _check_moments(x, mean, var, z=5.0):
    """Sample mean within z standard errors; sample variance within z of its standard error
    (estimated from the sample's fourth central moment)."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    se_mean = np.sqrt(var / n)
    assert abs(x.mean() - mean) < z * se_mean, (x.mean(), mean)
    m4 = np.mean((x - x.mean()) ** 4)
    se_var = np.sqrt(max(m4 - x.var() ** 2, 1e-12) / n)
    assert abs(x.var() - var) < z * se_var, (x.var(), var)


# -- key_data --------------------------------------------------------------------------------------
def test_key_data():
    k = fr.key(2**40 + 3)
    d = fr.key_data(k)
    assert isinstance(d, np.ndarray) and d.dtype == np.uint32 and d.tolist() == [256, 3]
    assert fg.jit(fr.key_data)(k).tolist() == [256, 3]
    with pytest.raises(FuncgradTypeError, match="key_data: expected a PRNG key"):
        fr.key_data(np.array([1, 2], np.int32))


# -- exponential and laplace ----------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [fr.exponential, fr.laplace])
def test_shapes_and_dtypes(fn):
    k = fr.key(0)
    assert fn(k).shape == () and fn(k).dtype == np.float32
    assert fn(k, (3, 2)).shape == (3, 2)
    assert fn(k, (4,), np.float64).dtype == np.float64
    assert fn(k, 5, np.float16).shape == (5,)
    with pytest.raises(FuncgradTypeError, match="dtype must be a floating type"):
        fn(k, (2,), np.int32)


def test_exponential_moments():
    x = fr.exponential(fr.key(1), (N,), np.float64)
    assert float(x.min()) >= 0.0
    _check_moments(x, 1.0, 1.0)


def test_laplace_moments():
    x = fr.laplace(fr.key(2), (N,), np.float64)
    assert np.isfinite(np.asarray(x)).all()
    _check_moments(x, 0.0, 2.0)


# -- gamma, beta, dirichlet ------------------------------------------------------------------------------
@pytest.mark.parametrize("a", [0.3, 1.0, 4.5])
def test_gamma_moments(a):
    x = fr.gamma(fr.key(3), a, (N,))
    assert x.shape == (N,) and x.dtype == np.float32
    assert float(x.min()) >= 0.0 and np.isfinite(np.asarray(x)).all()
    _check_moments(x, a, a)


def test_gamma_shapes_and_broadcasting():
    k = fr.key(4)
    a = np.array([0.5, 2.0, 7.0])
    assert fr.gamma(k, a).shape == (3,)
    assert fr.gamma(k, 2.0).shape == ()
    x = fr.gamma(k, a, (N // 4, 3), np.float64)
    assert x.shape == (N // 4, 3) and x.dtype == np.float64
    np.testing.assert_allclose(np.asarray(x).mean(0), a, rtol=0.1)
    with pytest.raises(FuncgradValueError, match="do not broadcast to shape"):
        fr.gamma(k, a, (4,))


def test_gamma_jit_and_vmap_agree_with_eager():
    k = fr.key(5)
    a = np.array([0.3, 1.0, 4.5, 20.0], np.float32)
    eager = np.asarray(fr.gamma(k, a, (50, 4)))
    jitted = np.asarray(fg.jit(lambda k, a: fr.gamma(k, a, (50, 4)))(k, a))
    # identical bits; compiled log/exp/pow are within an ulp or two of NumPy's libm
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)
    keys = fr.split(k, 3)
    batched = np.asarray(fg.vmap(lambda kk: fr.gamma(kk, a))(keys))
    np.testing.assert_array_equal(batched, np.stack([np.asarray(fr.gamma(kk, a)) for kk in keys]))
    over_a = np.asarray(fg.vmap(lambda aa: fr.gamma(k, aa, (3,)))(a))
    np.testing.assert_allclose(over_a, np.stack([np.asarray(fr.gamma(k, aa, (3,))) for aa in a]), rtol=1e-6)


def test_gamma_determinism():
    a, b = fr.split(fr.key(6))
    assert np.array_equal(fr.gamma(a, 1.5, (20,)), fr.gamma(a, 1.5, (20,)))
    assert not np.array_equal(fr.gamma(a, 1.5, (20,)), fr.gamma(b, 1.5, (20,)))


def test_gamma_bad_parameters():
    k = fr.key(7)
    with pytest.raises(FuncgradValueError, match="gamma: a must be positive"):
        fr.gamma(k, -1.0, (3,))
    with pytest.raises(FuncgradValueError, match="gamma: a must be positive"):
        fr.gamma(k, np.array([1.0, 0.0]))
    with pytest.raises(FuncgradTypeError, match="expected a PRNG key"):
        fr.gamma(np.zeros(2), 1.0)
    # traced bad parameters cannot be checked: they give NaN instead of looping forever
    out = np.asarray(fg.jit(lambda a: fr.gamma(k, a))(np.array([-1.0, np.nan, 2.0], np.float32)))
    assert np.isnan(out[:2]).all() and out[2] > 0


def test_beta_moments():
    a, b = 2.0, 3.0
    x = fr.beta(fr.key(8), a, b, (N,))
    assert x.shape == (N,) and x.dtype == np.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    _check_moments(x, a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1)))
    small = fr.beta(fr.key(9), 0.5, 0.5, (N,), np.float64)
    _check_moments(small, 0.5, 0.125)
    assert fr.beta(fr.key(9), np.ones(3), 2.0).shape == (3,)
    with pytest.raises(FuncgradValueError, match="beta: b must be positive"):
        fr.beta(fr.key(9), 1.0, -2.0)


def test_dirichlet_means_and_shapes():
    alpha = np.array([1.0, 2.0, 3.0, 0.5])
    x = np.asarray(fr.dirichlet(fr.key(10), alpha, (N,)))
    assert x.shape == (N, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x.sum(-1), 1.0, rtol=1e-5)
    a0 = alpha.sum()
    mean = alpha / a0
    var = mean * (1 - mean) / (a0 + 1)
    assert (np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / N)).all()
    assert fr.dirichlet(fr.key(10), alpha).shape == (4,)
    assert fr.dirichlet(fr.key(10), np.ones((2, 3)), dtype=np.float64).shape == (2, 3)
    with pytest.raises(FuncgradValueError, match="dirichlet: alpha must have at least one axis"):
        fr.dirichlet(fr.key(10), 1.0)
    with pytest.raises(FuncgradValueError, match="alpha must be positive"):
        fr.dirichlet(fr.key(10), np.array([1.0, -1.0]))


# -- multivariate normal -------------------------------------------------------------------------------
def test_multivariate_normal_moments():
    mean = np.array([1.0, -2.0, 0.5])
    cov = np.array([[2.0, 0.6, 0.2], [0.6, 1.0, -0.3], [0.2, -0.3, 0.5]])
    x = np.asarray(fr.multivariate_normal(fr.key(11), mean, cov, (N,), np.float64))
    assert x.shape == (N, 3) and x.dtype == np.float64
    se_mean = np.sqrt(np.diag(cov) / N)
    assert (np.abs(x.mean(0) - mean) < 5 * se_mean).all()
    # the standard error of a sample covariance entry is sqrt((s_ii s_jj + s_ij**2) / n)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / N)
    assert (np.abs(np.cov(x, rowvar=False) - cov) < 5 * se_cov).all()


def test_multivariate_normal_shapes_and_errors():
    k = fr.key(12)
    assert fr.multivariate_normal(k, np.zeros(2), np.eye(2)).shape == (2,)
    assert fr.multivariate_normal(k, np.zeros(2), np.eye(2)).dtype == np.float32
    assert fr.multivariate_normal(k, np.zeros((4, 2)), np.eye(2)).shape == (4, 2)
    assert fr.multivariate_normal(k, np.zeros(2), np.eye(2), (5, 3)).shape == (5, 3, 2)
    jitted = fg.jit(lambda k, m, c: fr.multivariate_normal(k, m, c, (4,)))(k, np.ones(2), 2 * np.eye(2))
    np.testing.assert_allclose(jitted, fr.multivariate_normal(k, np.ones(2), 2 * np.eye(2), (4,)), rtol=1e-5)
    with pytest.raises(FuncgradValueError, match=r"mean must have shape \(..., n\) and cov \(..., n, n\)"):
        fr.multivariate_normal(k, np.zeros(3), np.eye(2))
    with pytest.raises(FuncgradValueError, match="does not broadcast to shape"):
        fr.multivariate_normal(k, np.zeros((4, 2)), np.eye(2), (3,))
    with pytest.raises(FuncgradValueError, match="only method='cholesky'"):
        fr.multivariate_normal(k, np.zeros(2), np.eye(2), method="svd")


# -- choice ------------------------------------------------------------------------------------------------
def test_choice_shapes():
    k = fr.key(13)
    assert fr.choice(k, 10).shape == ()
    assert fr.choice(k, 10, (3, 2)).shape == (3, 2)
    x = np.arange(24.0).reshape(4, 6)
    assert fr.choice(k, x, (5,)).shape == (5, 6)
    assert fr.choice(k, x, (2, 3), axis=1).shape == (4, 2, 3)
    assert fr.choice(k, x, (3,), replace=False, axis=-1).shape == (4, 3)
    rows = np.asarray(fr.choice(k, x, (3,)))
    assert all(any(np.array_equal(r, xr) for xr in x) for r in rows)
    c = np.asarray(fr.choice(k, 7, (N,)))
    assert c.min() >= 0 and c.max() < 7
    np.testing.assert_allclose(np.bincount(c, minlength=7) / N, 1 / 7, atol=5 * np.sqrt(1 / 7 * 6 / 7 / N))


def test_choice_without_replacement_is_distinct():
    k = fr.key(14)
    for i in range(5):
        c = np.asarray(fr.choice(fr.fold_in(k, i), 20, (4, 5), replace=False))
        assert sorted(c.ravel().tolist()) == list(range(20))
        c = np.asarray(fr.choice(fr.fold_in(k, i), 50, (7,), replace=False))
        assert len(set(c.tolist())) == 7
    p = np.array([0.05, 0.5, 0.1, 0.2, 0.15])
    for i in range(5):
        c = np.asarray(fr.choice(fr.fold_in(k, i), 5, (4,), replace=False, p=p))
        assert len(set(c.tolist())) == 4
    vals = np.asarray(fr.choice(k, np.arange(10.0) * 3, (10,), replace=False))
    assert sorted(vals.tolist()) == (np.arange(10.0) * 3).tolist()


def test_choice_frequencies_match_p():
    p = np.array([0.1, 0.4, 0.2, 0.3])
    c = np.asarray(fr.choice(fr.key(15), 4, (N,), p=p))
    se = np.sqrt(p * (1 - p) / N)
    assert (np.abs(np.bincount(c, minlength=4) / N - p) < 5 * se).all()
    # without replacement, a single draw is distributed as p; the first of two is too
    keys = fr.split(fr.key(16), N // 4)
    draws = np.asarray(fg.vmap(lambda kk: fr.choice(kk, 4, (2,), replace=False, p=p))(keys))
    assert draws.shape == (N // 4, 2) and (draws[:, 0] != draws[:, 1]).all()
    se = np.sqrt(p * (1 - p) / (N // 4))
    assert (np.abs(np.bincount(draws[:, 0], minlength=4) / (N // 4) - p) < 5 * se).all()


def test_choice_jit_equals_eager_and_determinism():
    k = fr.key(17)
    p = np.array([0.1, 0.4, 0.2, 0.3], np.float32)
    x = np.arange(12.0).reshape(3, 4)

    def draws(k):
        k1, k2, k3, k4 = fr.split(k, 4)
        return (fr.choice(k1, 10, (6,)), fr.choice(k2, 10, (6,), replace=False),
                fr.choice(k3, 4, (8,), p=p), fr.choice(k4, 4, (3,), replace=False, p=p),
                fr.choice(k1, x, (2,), axis=1))

    eager = draws(k)
    jitted = fg.jit(draws)(k)
    for e, j in zip(eager, jitted):
        assert e.dtype == j.dtype and np.array_equal(e, j)
    again = draws(k)
    assert all(np.array_equal(e, a) for e, a in zip(eager, again))
    other = draws(fr.key(18))
    assert not all(np.array_equal(e, o) for e, o in zip(eager, other))


def test_choice_errors():
    k = fr.key(19)
    with pytest.raises(FuncgradValueError, match="cannot take 6 samples .* without replacement from 5 entries"):
        fr.choice(k, 5, (6,), replace=False)
    with pytest.raises(FuncgradValueError, match="without replacement from 3 entries"):
        fr.choice(k, np.arange(3.0), (2, 2), replace=False)
    with pytest.raises(FuncgradValueError, match=r"p must have shape \(5,\)"):
        fr.choice(k, 5, (2,), p=np.ones(4) / 4)
    with pytest.raises(FuncgradValueError, match="rank >= 1"):
        fr.choice(k, np.array(3.0))
    with pytest.raises(FuncgradValueError, match="empty set"):
        fr.choice(k, 0, (2,))
    with pytest.raises(FuncgradValueError, match="axis 2 is out of range"):
        fr.choice(k, np.ones((2, 2)), axis=2)
    with pytest.raises(FuncgradTypeError, match="expected a PRNG key"):
        fr.choice(np.arange(2), 5)
