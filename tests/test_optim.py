"""funcgrad.optim: the first steps of every optimizer against the published update
equations written out in NumPy, schedules against their formulas, states as pytrees
(a jitted step equals the eager one), and the digits-MLP Adam step under jit."""
import math

import numpy as np
import pytest

import funcgrad as fg
from funcgrad import nn, optim, random
from funcgrad.errors import FuncgradValueError
from funcgrad.tree_util import tree_leaves, tree_map, tree_structure

STEPS = 4
GRADS = [np.array([0.5, -1.5, 2.0]), np.array([-0.3, 0.8, 1.0]), np.array([1.2, 0.1, -0.7]),
         np.array([0.0, -2.0, 0.4])]
P0 = np.array([1.0, -2.0, 0.5])


def run(opt, params=P0, grads=GRADS):
    """Apply the optimizer to a fixed sequence of gradients; the params after each step."""
    state = opt.init(params)
    out = []
    for g in grads:
        updates, state = opt.update(g, state, params)
        params = optim.apply_updates(params, updates)
        out.append(params)
    return out


def reference(step_fn, params=P0, grads=GRADS):
    """Params after each step of a hand-written update ``step_fn(p, g, t, mem) -> p``."""
    mem, out = {}, []
    for t, g in enumerate(grads, start=1):
        params = step_fn(params, g, t, mem)
        out.append(params)
    return out


def assert_steps(opt, step_fn):
    for got, want in zip(run(opt), reference(step_fn)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_sgd():
    assert_steps(optim.sgd(0.1), lambda p, g, t, m: p - 0.1 * g)


def test_sgd_momentum():
    def step(p, g, t, m):
        m["v"] = g + 0.9 * m.get("v", 0.0)
        return p - 0.1 * m["v"]

    assert_steps(optim.sgd(0.1, momentum=0.9), step)


def test_sgd_nesterov():
    def step(p, g, t, m):
        m["v"] = g + 0.9 * m.get("v", 0.0)
        return p - 0.1 * (g + 0.9 * m["v"])

    assert_steps(optim.sgd(0.1, momentum=0.9, nesterov=True), step)


def _adam_direction(g, t, m, b1=0.9, b2=0.999, eps=1e-8):
    m["m"] = b1 * m.get("m", 0.0) + (1 - b1) * g
    m["v"] = b2 * m.get("v", 0.0) + (1 - b2) * g * g
    m_hat = m["m"] / (1 - b1**t)
    v_hat = m["v"] / (1 - b2**t)
    return m_hat / (np.sqrt(v_hat) + eps)


def test_adam():
    assert_steps(optim.adam(0.01), lambda p, g, t, m: p - 0.01 * _adam_direction(g, t, m))
    assert_steps(optim.adam(0.05, b1=0.5, b2=0.9, eps=1e-3),
                 lambda p, g, t, m: p - 0.05 * _adam_direction(g, t, m, 0.5, 0.9, 1e-3))


def test_adam_first_step_is_lr_times_sign():
    (p1,) = run(optim.adam(0.01), grads=GRADS[:1])
    np.testing.assert_allclose(p1, P0 - 0.01 * np.sign(GRADS[0]), rtol=1e-6)


def test_adamw():
    assert_steps(optim.adamw(0.01, weight_decay=0.1),
                 lambda p, g, t, m: p - 0.01 * (_adam_direction(g, t, m) + 0.1 * p))
    with pytest.raises(FuncgradValueError, match="needs the params"):
        opt = optim.adamw(0.01)
        opt.update(GRADS[0], opt.init(P0))


def test_rmsprop():
    def step(p, g, t, m):
        m["v"] = 0.9 * m.get("v", 0.0) + 0.1 * g * g
        return p - 0.01 * g / np.sqrt(m["v"] + 1e-8)

    assert_steps(optim.rmsprop(0.01), step)


def test_rmsprop_centered_with_momentum():
    def step(p, g, t, m):
        m["v"] = 0.8 * m.get("v", 0.0) + 0.2 * g * g
        m["mu"] = 0.8 * m.get("mu", 0.0) + 0.2 * g
        m["mom"] = -0.01 * g / np.sqrt(m["v"] - m["mu"] ** 2 + 1e-8) + 0.5 * m.get("mom", 0.0)
        return p + m["mom"]

    assert_steps(optim.rmsprop(0.01, decay=0.8, centered=True, momentum=0.5), step)


def test_adagrad():
    def step(p, g, t, m):
        m["s"] = m.get("s", 0.1) + g * g
        return p - 0.5 * g / np.sqrt(m["s"] + 1e-7)

    assert_steps(optim.adagrad(0.5), step)


def test_clip_by_global_norm_and_chain():
    def step(p, g, t, m):
        norm = np.sqrt(np.sum(g * g))
        g = g if norm < 1.5 else g * (1.5 / norm)
        return p - 0.1 * g

    assert_steps(optim.chain(optim.clip_by_global_norm(1.5), optim.sgd(0.1)), step)
    tree = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    clipped, _ = optim.clip_by_global_norm(1.0).update(tree, optim.EmptyState())
    np.testing.assert_allclose(clipped["a"], [0.6])
    np.testing.assert_allclose(clipped["b"], [[0.8]])
    assert float(optim.global_norm(tree)) == 5.0


def test_sgd_with_schedule_uses_the_step_count():
    sched = optim.exponential_decay(0.1, 1, 0.5)
    assert_steps(optim.sgd(sched), lambda p, g, t, m: p - 0.1 * 0.5 ** (t - 1) * g)


# -- schedules ------------------------------------------------------------------------------------------
def test_schedules_match_formulas():
    for c in [0, 1, 5, 10, 37, 100, 150]:
        assert float(optim.constant(0.3)(c)) == 0.3
        assert float(optim.exponential_decay(2.0, 10, 0.5)(c)) == pytest.approx(2.0 * 0.5 ** (c / 10))
        assert float(optim.exponential_decay(2.0, 10, 0.5, staircase=True)(c)) == pytest.approx(
            2.0 * 0.5 ** (c // 10))
        assert float(optim.exponential_decay(2.0, 10, 0.5, end_value=0.5)(c)) == pytest.approx(
            max(0.5, 2.0 * 0.5 ** (c / 10)))
        cd = 0.5 * (1 + math.cos(math.pi * min(c, 100) / 100))
        assert float(optim.cosine_decay(2.0, 100, alpha=0.1)(c)) == pytest.approx(2.0 * (0.9 * cd + 0.1))
        if c < 10:
            want = 0.1 + (1.0 - 0.1) * c / 10
        else:
            cw = 0.5 * (1 + math.cos(math.pi * min(c - 10, 90) / 90))
            want = 1.0 * ((1 - 0.01) * cw + 0.01)
        assert float(optim.warmup_cosine(0.1, 1.0, 10, 100, end_value=0.01)(c)) == pytest.approx(want)
    assert float(optim.exponential_decay(1.0, 10, 0.5, transition_begin=5)(3)) == 1.0
    with pytest.raises(FuncgradValueError, match="decay_steps"):
        optim.warmup_cosine(0.0, 1.0, 10, 10)


def test_schedules_trace_under_jit():
    sched = optim.warmup_cosine(0.0, 1.0, 10, 100)
    jitted = fg.jit(sched, device="interpreter")
    for c in [0, 3, 10, 50, 120]:
        assert float(jitted(np.int32(c))) == pytest.approx(float(sched(c)))


# -- states are pytrees: whole steps jit, dtypes stay ----------------------------------------------------
OPTIMIZERS = {
    "sgd": optim.sgd(0.1, momentum=0.9, nesterov=True),
    "adam": optim.adam(1e-2),
    "adamw": optim.adamw(1e-2),
    "rmsprop": optim.rmsprop(1e-2, centered=True, momentum=0.9),
    "adagrad": optim.adagrad(0.1),
    "chain": optim.chain(optim.clip_by_global_norm(1.0), optim.adam(optim.warmup_cosine(0.0, 0.1, 3, 20))),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_jitted_step_equals_eager_and_keeps_float32(name):
    opt = OPTIMIZERS[name]
    params = {"w": np.array([[1.0, -2.0], [0.5, 3.0]], np.float32), "b": np.array([0.1, -0.1], np.float32)}
    state = opt.init(params)

    def step(params, state):
        grads = fg.grad(lambda p: ((p["w"] @ np.ones(2, np.float32) + p["b"]) ** 2).sum())(params)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    jstep = fg.jit(step, device="interpreter")
    pe, se, pj, sj = params, state, params, state
    for _ in range(5):
        pe, se = step(pe, se)
        pj, sj = jstep(pj, sj)
    assert tree_structure(se) == tree_structure(sj) == tree_structure(state)
    for a, b in zip(tree_leaves((pe, se)), tree_leaves((pj, sj))):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert all(p.dtype == np.float32 for p in tree_leaves(pe))
    assert jstep.trace_count == 1


def test_apply_updates_casts_to_param_dtype():
    out = optim.apply_updates({"w": np.ones(2, np.float32)}, {"w": np.full(2, 0.5)})
    assert out["w"].dtype == np.float32 and out["w"].tolist() == [1.5, 1.5]


# -- acceptance: the digits MLP's Adam step, jitted == eager ---------------------------------------------------
@pytest.fixture
def compile_before_first_call():
    """jit(device="cpu") compiles with Numba before answering (no interpreter tier)."""
    old = fg.config.async_compile
    fg.config.update("async_compile", False)
    yield
    fg.config.update("async_compile", old)


def test_digits_mlp_adam_step_jit_equals_eager(compile_before_first_call):
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.data[:128] / 16.0).astype(np.float32)
    y = digits.target[:128].astype(np.int32)
    init, apply = nn.serial(nn.Dense(128), nn.Relu, nn.Dense(64), nn.Relu, nn.Dense(10))
    _, params = init(random.key(0), (-1, 64))
    opt = optim.adam(1e-3)
    state = opt.init(params)

    def step(params, state, x, y):
        loss, grads = fg.value_and_grad(lambda p: nn.softmax_cross_entropy(apply(p, x), y))(params)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss

    jstep = fg.jit(step)
    eager, jitted = (params, state), (params, state)
    for _ in range(3):
        pe, se, le = step(*eager, x, y)
        pj, sj, lj = jstep(*jitted, x, y)
        eager, jitted = (pe, se), (pj, sj)
        assert abs(float(le) - float(lj)) <= 1e-6
        for a, b in zip(tree_leaves(eager), tree_leaves(jitted)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert tree_map(lambda a: a.dtype, eager) == tree_map(lambda a: a.dtype, jitted)
    (compiled,) = jstep._cache.values()
    assert compiled.run.__module__.startswith("funcgrad.backends.numba_cpu")
