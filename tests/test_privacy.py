"""funcgrad.privacy: per-example gradients against a loop, clipping, the noise's distribution,
the DP-SGD transformation (eager against jit, in ``optim.chain``, from a ``ClippedSum``, on 2 MPI
ranks against one process), and the RDP accountant against closed forms, numerical integration
and, where installed, Google's dp-accounting."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from _compile_mode import sync_compile  # noqa: F401  (autouse: compile synchronously)
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

import funcgrad as fg
from funcgrad import nn, optim, privacy, random
from funcgrad.errors import FuncgradTypeError, FuncgradValueError, ShapeError
from funcgrad.tree_util import tree_leaves, tree_map, tree_structure

init_mlp, apply_mlp = nn.serial(nn.Dense(8), nn.Tanh, nn.Dense(3))
HERE = os.path.basename(__file__)


def loss_fn(params, x, y):
    return nn.softmax_cross_entropy(apply_mlp(params, x), y)


def params_of(dtype=np.float64, seed=1):
    return tree_map(lambda a: np.asarray(a, dtype), init_mlp(random.key(seed), (-1, 5))[1])


def data(rows, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, 5)).astype(dtype), rng.integers(0, 3, rows).astype(np.int32)


def norms(per_example):
    """The global L2 norm of each example's gradient, in NumPy."""
    leaves = [np.asarray(x, np.float64) for x in tree_leaves(per_example)]
    n = leaves[0].shape[0]
    return np.sqrt(sum(np.sum(x.reshape(n, -1) ** 2, axis=1) for x in leaves))


def example(tree, i):
    """Example ``i`` of per-example gradients."""
    return tree_map(lambda g: g[i], tree)


def assert_trees_close(got, want, rtol, atol=0.0):
    assert tree_structure(got) == tree_structure(want)
    for g, w in zip(tree_leaves(got), tree_leaves(want)):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)


def same_bits(a, b):
    la, lb = tree_leaves(a), tree_leaves(b)
    return tree_structure(a) == tree_structure(b) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.asarray(x).tobytes() == np.asarray(y).tobytes()
        for x, y in zip(la, lb))


# ----------------------------------------------------------------------------- per-example gradients


def test_per_example_grads_equal_a_loop_of_grads_eager_and_jitted():
    params, (x, y) = params_of(), data(7)
    want = [fg.grad(loss_fn)(params, x[i:i + 1], y[i:i + 1]) for i in range(7)]
    eager = privacy.per_example_grads(loss_fn, params, x, y)
    jitted = fg.jit(lambda p, x, y: privacy.per_example_grads(loss_fn, p, x, y))(params, x, y)
    for got in (eager, jitted):
        assert tree_structure(got) == tree_structure(params)
        for i in range(7):
            assert_trees_close(example(got, i), want[i], rtol=1e-12, atol=1e-15)


def test_per_example_grads_take_a_batch_of_pytrees():
    params, (x, y) = params_of(np.float32), data(4, np.float32)
    batch = {"x": x, "y": y}
    got = privacy.per_example_grads(lambda p, b: loss_fn(p, b["x"], b["y"]), params, batch)
    assert_trees_close(got, privacy.per_example_grads(loss_fn, params, x, y), rtol=0)
    assert all(g.dtype == np.float32 and g.shape[0] == 4 for g in tree_leaves(got))


# ----------------------------------------------------------------------------- clipping


@st.composite
def per_example_trees(draw):
    """Per-example gradients (2 leaves) whose norms lie on both sides of the clip."""
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scales = np.array([draw(st.sampled_from([0.0, 1e-3, 0.3, 0.99, 1.01, 3.0, 1e3])) for _ in range(n)])
    tree = {"w": rng.normal(size=(n, 3, 4)), "b": rng.normal(size=(n, 2))}
    unit = norms(tree)
    tree = tree_map(lambda a: a * (scales / unit).reshape((n,) + (1,) * (a.ndim - 1)), tree)
    return tree, draw(st.sampled_from([0.1, 1.0, 2.5]))


@given(per_example_trees())
def test_clipping_bounds_every_example_and_leaves_small_ones_alone(case):
    tree, clip = case
    before = norms(tree)
    clipped = privacy.clip_per_example(tree, clip)
    after = norms(clipped)
    assert np.all(after <= clip * (1 + 1e-12))
    for i, (b, a) in enumerate(zip(before, after)):
        mine, orig = example(clipped, i), example(tree, i)
        if b <= clip:
            assert same_bits(mine, orig)  # unchanged, bit for bit
        else:
            assert a == pytest.approx(clip, rel=1e-12)
            assert_trees_close(mine, tree_map(np.multiply, orig, {"w": clip / b, "b": clip / b}), rtol=1e-12)
    total = privacy.clipped_sum(tree, clip)
    assert isinstance(total, privacy.ClippedSum) and int(total.count) == len(before)
    assert_trees_close(total.grads, tree_map(lambda g: g.sum(axis=0), clipped), rtol=1e-12, atol=1e-12)


def test_clipping_is_over_the_whole_pytree_and_keeps_dtypes():
    # each leaf is below the clip, the example as a whole is not: norm 5 -> scaled by 1/5
    tree = {"a": np.array([[3.0]], np.float32), "b": np.array([[0.0, 4.0]], np.float32)}
    clipped = privacy.clip_per_example(tree, 1.0)
    np.testing.assert_allclose(clipped["a"], [[0.6]], rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], [[0.0, 0.8]], rtol=1e-6)
    assert clipped["a"].dtype == clipped["b"].dtype == np.float32
    jitted = fg.jit(lambda t: privacy.clip_per_example(t, 1.0))(tree)
    assert_trees_close(jitted, clipped, rtol=1e-6)


# ----------------------------------------------------------------------------- noise


def test_noise_is_gaussian_with_the_stated_standard_deviation():
    n, clip, sigma = 8, 2.0, 1.5
    zeros = {"w": np.zeros((n, 300, 200), np.float32), "b": np.zeros((n, 50), np.float32)}
    out = privacy.clip_and_noise(zeros, clip, sigma, random.key(5))
    noise = np.concatenate([out["w"].ravel(), out["b"].ravel()]).astype(np.float64) * n
    std = sigma * clip
    assert out["w"].dtype == np.float32
    assert abs(noise.mean()) < 4 * std / math.sqrt(noise.size)
    assert noise.std() == pytest.approx(std, rel=0.01)
    assert stats.kstest(noise / std, "norm").pvalue > 1e-3
    again = privacy.clip_and_noise(zeros, clip, sigma, random.key(5))
    assert same_bits(again, out)  # a function of the key
    assert not np.array_equal(out["b"], out["w"].ravel()[:50])  # leaves get their own keys
    # the noise does not depend on the gradients: it is added to their clipped mean
    ones = tree_map(lambda a: a + 1e-3, zeros)
    shifted = privacy.clip_and_noise(ones, clip, sigma, random.key(5))
    assert_trees_close(tree_map(lambda s, o: s - o, shifted, out), example(ones, 0), rtol=0, atol=1e-6)


def test_each_update_draws_fresh_noise_from_its_state():
    n, clip, sigma, draws = 2, 1.0, 3.0, 60
    tx = privacy.dp_aggregate(clip, sigma, key=9)
    zeros = np.zeros((n, 4000))
    state = start = tx.init(None)
    noises = []
    for _ in range(draws):
        noise, state = tx.update(zeros, state)
        noises.append(noise * n)
    noises = np.stack(noises)
    assert len({a.tobytes() for a in noises}) == draws
    corr = np.corrcoef(noises)[np.triu_indices(draws, 1)]
    assert np.max(np.abs(corr)) < 5 / math.sqrt(noises.shape[1])
    per_coordinate = noises.std(axis=0)  # across draws
    assert per_coordinate.mean() == pytest.approx(sigma * clip, rel=0.02)
    replay, _ = tx.update(zeros, start)
    assert np.array_equal(replay * n, noises[0])


def test_dp_aggregate_splits_its_key_as_documented():
    params, (x, y) = params_of(), data(5)
    g = privacy.per_example_grads(loss_fn, params, x, y)
    tx = privacy.dp_aggregate(0.7, 1.3, key=random.key(21))
    state = tx.init(params)
    out, new_state = tx.update(g, state, params)
    k_next, k_noise = random.split(random.key(21))
    assert np.array_equal(new_state.key, k_next)
    assert same_bits(out, privacy.clip_and_noise(g, 0.7, 1.3, k_noise))
    # an int seed is random.key(seed)
    assert np.array_equal(privacy.dp_aggregate(0.7, 1.3, key=21).init(params).key, random.key(21))


# ----------------------------------------------------------------------------- the transformation


def dp_step(opt):
    def step(params, state, x, y):
        updates, state = opt.update(privacy.per_example_grads(loss_fn, params, x, y), state, params)
        return optim.apply_updates(params, updates), state
    return step


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_dp_sgd_under_jit_equals_eager(dtype, rtol):
    opt = privacy.dp_sgd(0.3, 0.5, 1.1, key=4, momentum=0.9)
    step = dp_step(opt)
    jitted = fg.jit(step)
    p_e = p_j = params_of(dtype)
    s_e = s_j = opt.init(p_e)
    for i in range(3):
        x, y = data(6, dtype, seed=i)
        p_e, s_e = step(p_e, s_e, x, y)
        p_j, s_j = jitted(p_j, s_j, x, y)
        assert_trees_close(p_j, p_e, rtol=rtol, atol=rtol)
        assert np.array_equal(s_j[0].key, s_e[0].key)
    assert_trees_close(s_j, s_e, rtol=rtol, atol=rtol)


def test_without_noise_or_clipping_the_chain_is_the_plain_optimizer():
    params = params_of()
    dp_adam = optim.chain(privacy.dp_aggregate(1e9, 0.0, key=0), optim.scale_by_adam(), optim.scale(-0.05))
    adam = optim.adam(0.05)
    p_dp, s_dp = params, dp_adam.init(params)
    p, s = params, adam.init(params)
    step = fg.jit(dp_step(dp_adam))
    for i in range(3):
        x, y = data(8, seed=i)
        p_dp, s_dp = step(p_dp, s_dp, x, y)
        updates, s = adam.update(fg.grad(loss_fn)(p, x, y), s, p)
        p = optim.apply_updates(p, updates)
    assert_trees_close(p_dp, p, rtol=1e-10, atol=1e-12)


def test_dp_sgd_is_clip_and_noise_then_sgd():
    params, (x, y) = params_of(), data(6)
    g = privacy.per_example_grads(loss_fn, params, x, y)
    opt = privacy.dp_sgd(0.25, 0.4, 0.8, key=3)
    updates, _ = opt.update(g, opt.init(params), params)
    noised = privacy.clip_and_noise(g, 0.4, 0.8, random.split(random.key(3))[1])
    assert_trees_close(updates, tree_map(lambda u: -0.25 * u, noised), rtol=1e-15)


def test_a_clipped_sum_is_accepted_in_place_of_per_example_grads():
    params, (x, y) = params_of(), data(9)
    g = privacy.per_example_grads(loss_fn, params, x, y)
    opt = privacy.dp_sgd(0.1, 0.5, 1.0, key=8, momentum=0.5)
    state = opt.init(params)
    from_grads = opt.update(g, state, params)
    # two shards summed, as psum over two ranks would
    a, b = privacy.clipped_sum(tree_map(lambda t: t[:4], g), 0.5), privacy.clipped_sum(tree_map(lambda t: t[4:], g), 0.5)
    total = tree_map(lambda u, v: u + v, a, b)
    assert isinstance(total, privacy.ClippedSum) and int(total.count) == 9
    from_sum = fg.jit(lambda t, s, p: opt.update(t, s, p))(total, state, params)
    assert_trees_close(from_sum, from_grads, rtol=1e-12, atol=1e-15)


def test_a_noised_mean_over_examples_divides_by_the_count():
    total = privacy.ClippedSum({"w": np.full(3, 6.0)}, np.asarray(4, np.int32))
    out = privacy.noisy_mean(total, 1.0, 0.0, random.key(0))
    np.testing.assert_array_equal(out["w"], np.full(3, 1.5))
    out = privacy.noisy_mean(total._replace(count=np.asarray(3, np.int32)), 1.0, 0.0, random.key(0))
    np.testing.assert_array_equal(out["w"], np.full(3, 2.0))


def test_dp_sgd_on_two_mpi_ranks_matches_one_process():
    from test_distributed import assert_ok, mpirun

    assert_ok(mpirun(2, ["dp_sgd"], timeout=180), 2, "dp_sgd")


# ----------------------------------------------------------------------------- accountant


def exact_rdp(sigma, q, alpha):
    """``log(E_{z ~ N(0, s^2)} [(1 - q + q exp((2z - 1) / (2 s^2)))^alpha]) / (alpha - 1)`` by
    quadrature of the integrand scaled by its peak (it peaks near z = alpha when q is not tiny)."""
    def log_f(z):
        ratio = np.logaddexp(math.log1p(-q), math.log(q) + (2 * z - 1) / (2 * sigma**2))
        return -z * z / (2 * sigma**2) - math.log(sigma * math.sqrt(2 * math.pi)) + alpha * ratio

    lo, hi = -12 * sigma, alpha + 12 * sigma
    grid = np.linspace(lo, hi, 20001)
    shift, peak = float(np.max(log_f(grid))), float(grid[np.argmax(log_f(grid))])
    value, _ = integrate.quad(lambda z: math.exp(log_f(z) - shift), lo, hi, points=[0.5, peak], limit=400,
                              epsabs=0, epsrel=1e-12)
    return (math.log(value) + shift) / (alpha - 1)


def test_without_subsampling_the_rdp_is_the_gaussian_mechanism_s():
    orders = privacy.DEFAULT_ORDERS
    for sigma in (0.5, 1.0, 3.0):
        np.testing.assert_array_equal(privacy.rdp_sampled_gaussian(sigma, 1.0), orders / (2 * sigma**2))
    # the conversion written out at one order: 1 + log(1/2) - (log(1e-5) + log 2) / 1
    assert privacy.epsilon(1.0, 1.0, 1, 1e-5, orders=[2.0]) == pytest.approx(
        1 + math.log(0.5) - (math.log(1e-5) + math.log(2)), rel=1e-14)
    # T steps at sample rate 1: T * alpha / (2 sigma^2); minimised over the orders given
    want = min(10 * a / 2 + math.log1p(-1 / a) - (math.log(1e-6) + math.log(a)) / (a - 1) for a in (2, 3, 5))
    assert privacy.epsilon(1.0, 1.0, 10, 1e-6, orders=[2, 3, 5]) == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("sigma, q", [(0.7, 0.01), (1.0, 0.1), (2.0, 0.5), (5.0, 0.9)])
def test_integer_orders_have_closed_forms(sigma, q):
    r2, r3 = privacy.rdp_sampled_gaussian(sigma, q, [2, 3])
    e = math.exp(1 / sigma**2)
    assert r2 == pytest.approx(math.log1p(q * q * (e - 1)), rel=1e-12)
    a3 = (1 - q) ** 3 + 3 * q * (1 - q) ** 2 + 3 * q * q * (1 - q) * e + q**3 * math.exp(3 / sigma**2)
    assert r3 == pytest.approx(math.log(a3) / 2, rel=1e-12)


@pytest.mark.parametrize("sigma, q", [(0.8, 0.05), (1.1, 0.01), (2.0, 0.3)])
def test_rdp_against_numerical_integration(sigma, q):
    orders = [1.5, 2, 2.5, 3.3, 4, 7, 12.5, 20]
    mine = privacy.rdp_sampled_gaussian(sigma, q, orders)
    for alpha, got in zip(orders, mine):
        want = exact_rdp(sigma, q, alpha)
        if float(alpha).is_integer():
            assert got == pytest.approx(want, rel=1e-8)
        else:  # the two series summed in magnitude: an upper bound, tight at the larger orders
            assert got >= want * (1 - 1e-9)
            if alpha > 10:
                assert got <= want * (1 + 1e-3)
    exact = [r for a, r in zip(orders, mine) if float(a).is_integer()]
    assert np.all(np.diff(exact) > 0)  # RDP grows with the order


def test_fractional_orders_are_continuous_with_integer_ones():
    for sigma, q in [(0.8, 0.05), (1.5, 0.2)]:
        near = privacy.rdp_sampled_gaussian(sigma, q, [3 - 1e-7, 3, 3 + 1e-7])
        np.testing.assert_allclose(near, near[1], rtol=1e-5)


def test_epsilon_grows_with_steps_and_sample_rate_and_falls_with_noise():
    base = privacy.epsilon(1.0, 0.02, 500, 1e-5)
    assert 0 < base < privacy.epsilon(1.0, 0.02, 1000, 1e-5)
    assert base < privacy.epsilon(1.0, 0.04, 500, 1e-5)
    assert base > privacy.epsilon(1.5, 0.02, 500, 1e-5)
    assert base > privacy.epsilon(1.0, 0.02, 500, 1e-3)
    assert privacy.epsilon(1.0, 0.02, 0, 1e-5) == 0.0
    assert privacy.epsilon(0.0, 0.02, 10, 1e-5) == math.inf


def test_accountant_composes_steps():
    acct = privacy.RDPAccountant()
    assert acct.get_epsilon(1e-5) == 0.0
    acct.step(1.0, 0.02, num_steps=300)
    acct.step(1.0, 0.02, num_steps=200)
    assert acct.steps == 500
    assert acct.get_epsilon(1e-5) == pytest.approx(privacy.epsilon(1.0, 0.02, 500, 1e-5), rel=1e-12)
    acct.step(2.0, 0.1)
    rdp = 500 * privacy.rdp_sampled_gaussian(1.0, 0.02) + privacy.rdp_sampled_gaussian(2.0, 0.1)
    eps, order = acct.get_epsilon_and_order(1e-5)
    assert (eps, order) == privacy.rdp_to_epsilon(rdp, privacy.DEFAULT_ORDERS, 1e-5)
    assert order in privacy.DEFAULT_ORDERS
    few, every = privacy.RDPAccountant(orders=[2, 4, 8]), privacy.RDPAccountant()
    for a in (few, every):
        a.step(1.0, 0.02, num_steps=500)
    assert few.rdp.shape == (3,)
    np.testing.assert_array_equal(few.rdp, every.rdp[np.isin(privacy.DEFAULT_ORDERS, [2, 4, 8])])
    assert few.get_epsilon(1e-5) > every.get_epsilon(1e-5)  # the best order, 18 or so, is not among them


GRID_SIGMAS = (0.5, 0.8, 1.1, 2.0, 4.0)
GRID_RATES = (1e-3, 0.01, 0.05, 0.2, 0.6, 1.0)
GRID_STEPS = (1, 100, 10000)
GRID_DELTAS = (1e-5, 1e-8)


def test_accountant_matches_dp_accounting_over_a_grid():
    pytest.importorskip("dp_accounting", reason="the reference accountant (pip install dp-accounting) is not "
                        "installed; the closed-form and quadrature tests above still check the accountant")
    import logging

    from dp_accounting import dp_event
    from dp_accounting.rdp import RdpAccountant

    logging.getLogger("absl").setLevel(logging.ERROR)  # its notes on orders whose series it cut short
    orders = privacy.DEFAULT_ORDERS
    integer = orders == np.round(orders)
    worst_eps = worst_int = 0.0
    for sigma in GRID_SIGMAS:
        for q in GRID_RATES:
            one_step = privacy.rdp_sampled_gaussian(sigma, q)
            for steps in GRID_STEPS:
                ref = RdpAccountant(list(orders))
                ref.compose(dp_event.SelfComposedDpEvent(
                    dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps))
                ref_rdp = np.asarray(ref.rdp)
                # dp-accounting gives up (inf) on fractional orders whose series converge slowly
                known = np.isfinite(ref_rdp)
                assert known[integer].all()
                mine = steps * one_step
                worst_int = max(worst_int, float(np.max(np.abs(mine[integer] - ref_rdp[integer]) / ref_rdp[integer])))
                # it stops a series when a term is exp(-30) of A; we go on to exp(-25) of A - 1
                np.testing.assert_allclose(mine[known], ref_rdp[known], rtol=1e-4)
                for delta in GRID_DELTAS:
                    want = ref.get_epsilon(delta)
                    got, _ = privacy.rdp_to_epsilon(mine[known], orders[known], delta)
                    worst_eps = max(worst_eps, abs(got - want) / want)
                    assert got == pytest.approx(want, rel=1e-6), (sigma, q, steps, delta)
                    assert privacy.rdp_to_epsilon(mine, orders, delta)[0] <= got  # more orders: no worse
    assert worst_int < 1e-9 and worst_eps < 1e-6


def test_accountant_matches_dp_accounting_on_a_mixed_run():
    pytest.importorskip("dp_accounting", reason="the reference accountant (pip install dp-accounting) is not "
                        "installed")
    from dp_accounting import dp_event
    from dp_accounting.rdp import RdpAccountant

    orders = [2, 3, 4.5, 8, 16, 32, 64]
    ref, mine = RdpAccountant(orders), privacy.RDPAccountant(orders)
    for sigma, q, steps in [(1.1, 0.01, 1000), (0.9, 0.05, 50), (3.0, 1.0, 1)]:
        ref.compose(dp_event.SelfComposedDpEvent(dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)),
                                                 steps))
        mine.step(sigma, q, num_steps=steps)
        assert mine.get_epsilon(1e-6) == pytest.approx(ref.get_epsilon(1e-6), rel=1e-9)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call, message", [
    (lambda: privacy.epsilon(1.0, 0.0, 10, 1e-5), r"epsilon: sample_rate must be in \(0, 1\], got 0.0"),
    (lambda: privacy.epsilon(1.0, 1.5, 10, 1e-5), r"sample_rate must be in \(0, 1\], got 1.5"),
    (lambda: privacy.epsilon(1.0, -0.1, 10, 1e-5), r"sample_rate must be in \(0, 1\]"),
    (lambda: privacy.epsilon(1.0, float("nan"), 10, 1e-5), r"sample_rate must be in \(0, 1\], got nan"),
    (lambda: privacy.epsilon(-1.0, 0.1, 10, 1e-5), r"noise_multiplier must be a finite number >= 0, got -1.0"),
    (lambda: privacy.epsilon(1.0, 0.1, 10, 0.0), r"delta must be in \(0, 1\), got 0.0"),
    (lambda: privacy.epsilon(1.0, 0.1, 10, 1.0), r"delta must be in \(0, 1\), got 1.0"),
    (lambda: privacy.epsilon(1.0, 0.1, -1, 1e-5), r"steps must be an int >= 0, got -1"),
    (lambda: privacy.epsilon(1.0, 0.1, 10, 1e-5, orders=[1.0, 2.0]), r"every order must be a finite number > 1"),
    (lambda: privacy.epsilon(1.0, 0.1, 10, 1e-5, orders=[]), r"orders must be a non-empty 1-d sequence"),
    (lambda: privacy.rdp_sampled_gaussian(1.0, 2.0), r"rdp_sampled_gaussian: sample_rate must be in \(0, 1\]"),
    (lambda: privacy.RDPAccountant().step(-0.5, 0.1), r"RDPAccountant.step: noise_multiplier must be"),
    (lambda: privacy.RDPAccountant().get_epsilon(2.0), r"delta must be in \(0, 1\), got 2.0"),
    (lambda: privacy.rdp_to_epsilon([1.0], [2.0, 3.0], 1e-5), r"rdp has shape \(1,\) but there are 2 orders"),
    (lambda: privacy.dp_sgd(0.1, 0.0, 1.0, key=0), r"dp_sgd: l2_norm_clip must be a finite number > 0"),
    (lambda: privacy.dp_aggregate(1.0, -1.0, key=0), r"dp_aggregate: noise_multiplier must be"),
    (lambda: privacy.clip_per_example(np.ones((2, 3)), -1.0), r"clip_per_example: l2_norm_clip must be"),
])
def test_bad_arguments_raise_value_errors_at_the_caller(call, message):
    with pytest.raises(FuncgradValueError, match=message) as info:
        call()
    assert HERE in str(info.value)  # the message names the line that called funcgrad


def test_wrong_types_and_shapes_raise_funcgrad_errors():
    with pytest.raises(FuncgradTypeError, match="steps must be an int"):
        privacy.epsilon(1.0, 0.1, 2.5, 1e-5)
    with pytest.raises(FuncgradTypeError, match="sample_rate must be a real number"):
        privacy.epsilon(1.0, "0.1", 10, 1e-5)
    with pytest.raises(FuncgradTypeError, match="key must be an int seed or a PRNG key"):
        privacy.dp_aggregate(1.0, 1.0, key=np.zeros(2))
    with pytest.raises(FuncgradTypeError, match="expected a privacy.ClippedSum"):
        privacy.noisy_mean({"w": np.ones(2)}, 1.0, 1.0, random.key(0))
    with pytest.raises(ShapeError, match="the same leading"):
        privacy.clipped_sum({"a": np.ones((3, 2)), "b": np.ones((4, 2))}, 1.0)
    with pytest.raises(ShapeError, match="the same leading"):
        privacy.clipped_sum(np.float64(1.0), 1.0)
    with pytest.raises(FuncgradValueError, match="at least one batch argument"):
        privacy.per_example_grads(loss_fn, params_of())


def test_nothing_in_the_core_imports_privacy():
    import subprocess
    import sys

    code = "import sys, funcgrad, funcgrad.distributed, funcgrad.nn; print('funcgrad.privacy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"
