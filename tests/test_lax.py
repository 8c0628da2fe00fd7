"""funcgrad.lax: every construct against its unrolled Python equivalent (values,
forward and reverse derivatives), eager and jitted, batched, and never unrolled."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import lax
from funcgrad.errors import FuncgradError

DEVICES = ("interpreter", "cpu")
SETTINGS = settings(max_examples=12, deadline=None)


def close(a, b, tol=1e-10):
    la, da = fg.tree_util.tree_flatten(a)
    lb, db = fg.tree_util.tree_flatten(b)
    assert da == db
    for x, y in zip(la, lb):
        assert np.shape(x) == np.shape(y)
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=tol, atol=tol)


def numeric_grad(f, x, eps=1e-6):
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def vec(seed, *shape):
    return np.random.default_rng(seed).normal(size=shape)


# -- the constructs and their unrolled equivalents ---------------------------------------------------
def rnn_scan(w, h0, xs, reverse=False):
    def step(h, x):
        h = fnp.tanh(fnp.dot(w, h) + x["a"] * x["b"])
        return h, {"s": fnp.sum(h ** 2), "h": h}

    h, ys = lax.scan(step, h0, xs, reverse=reverse)
    return fnp.sum(h) + fnp.sum(ys["s"] * fnp.arange(1.0, ys["s"].shape[0] + 1)) + 0.1 * fnp.sum(ys["h"])


def rnn_unrolled(w, h0, xs, reverse=False):
    n = xs["a"].shape[0]
    h, s, hs = h0, [None] * n, [None] * n
    for t in (reversed(range(n)) if reverse else range(n)):
        h = fnp.tanh(fnp.dot(w, h) + xs["a"][t] * xs["b"][t])
        s[t], hs[t] = fnp.sum(h ** 2), h
    total = fnp.sum(h)
    if n:
        total = total + fnp.sum(fnp.stack(s) * fnp.arange(1.0, n + 1)) + 0.1 * fnp.sum(fnp.stack(hs))
    return total


def branchy(x, y):
    return lax.cond(fnp.sum(x) > 0, lambda a: fnp.sum(fnp.sin(a) * y), lambda a: fnp.sum(a ** 2) * y[0], x)


def branchy_python(x, y):
    if fnp.sum(x) > 0:
        return fnp.sum(fnp.sin(x) * y)
    return fnp.sum(x ** 2) * y[0]


def power_loop(x, n):
    return lax.fori_loop(0, n, lambda i, v: v * x + fnp.sin(v) * i, fnp.ones_like(x))


def power_python(x, n):
    v = fnp.ones_like(x)
    for i in range(n):
        v = v * x + fnp.sin(v) * i
    return v


# -- cond and switch ----------------------------------------------------------------------------------
@SETTINGS
@given(st.integers(0, 2 ** 16), st.sampled_from([1.0, -1.0]))
def test_cond_values_and_derivatives_match_python(seed, sign):
    x, y = sign * np.abs(vec(seed, 3)), vec(seed + 1, 3)
    close(branchy(x, y), branchy_python(x, y))
    for argnums in (0, 1):
        close(fg.grad(branchy, argnums)(x, y), fg.grad(branchy_python, argnums)(x, y))
    tx, ty = vec(seed + 2, 3), vec(seed + 3, 3)
    close(fg.jvp(branchy, (x, y), (tx, ty)), fg.jvp(branchy_python, (x, y), (tx, ty)))
    for device in DEVICES:
        close(fg.jit(fg.grad(branchy, (0, 1)), device=device)(x, y), fg.grad(branchy_python, (0, 1))(x, y))


@pytest.mark.parametrize("index", [-3, 0, 1, 2, 7])
@pytest.mark.parametrize("device", DEVICES)
def test_switch_clamps_and_differentiates(index, device):
    fns = [fnp.sin, lambda v: v * v, lambda v: fnp.exp(-v)]
    k = min(max(index, 0), 2)
    f = lambda x, i: lax.switch(i, fns, x)
    x = 0.7
    close(f(x, index), fns[k](x))
    close(fg.grad(f)(x, index), fg.grad(fns[k])(x))
    close(fg.jvp(lambda v: f(v, index), (x,), (1.0,))[1], fg.grad(fns[k])(x))
    jf = fg.jit(fg.value_and_grad(f), device=device)
    close(jf(x, index), (fns[k](x), fg.grad(fns[k])(x)))


@pytest.mark.parametrize("device", DEVICES)
def test_cond_pytrees_closures_and_jit_of_traced_predicate(device):
    def f(p, x):
        out = lax.cond(p > 0.0, lambda d: {"u": d[0] * p, "v": (d[1] + 1.0,)},
                       lambda d: {"u": d[0] - p, "v": (d[1] * 2.0,)}, (x, x * 3.0))
        return fnp.sum(out["u"]) + fnp.sum(out["v"][0] ** 2)

    x = vec(5, 4)
    for p in (0.5, -0.5):
        ref = (lambda p, x: fnp.sum(x * p) + fnp.sum((3 * x + 1) ** 2)) if p > 0 else \
            (lambda p, x: fnp.sum(x - p) + fnp.sum((6 * x) ** 2))
        jf = fg.jit(fg.value_and_grad(f, (0, 1)), device=device)
        close(jf(p, x), fg.value_and_grad(ref, (0, 1))(p, x))


def test_cond_branch_mismatch_errors():
    with pytest.raises(TypeError, match=r"lax.cond: the branches must return the same.*true_fun .*f64\[3\].*false_fun .*f64\[\]"):
        lax.cond(True, lambda x: x, lambda x: fnp.sum(x), np.ones(3))
    with pytest.raises(FuncgradError, match="predicate must be a scalar"):
        lax.cond(np.ones(2) > 0, lambda x: x, lambda x: x, 1.0)
    with pytest.raises(TypeError, match="index must be an integer scalar"):
        lax.switch(1.5, [fnp.sin, fnp.cos], 1.0)


# -- while_loop and fori_loop ---------------------------------------------------------------------------
def doubling(x, limit):
    return lax.while_loop(lambda c: c[1] < limit, lambda c: (c[0] * fnp.cos(c[0]) + c[0], c[1] + 1), (x, 0))


def doubling_python(x, limit):
    c = (x, 0)
    while c[1] < limit:
        c = (c[0] * fnp.cos(c[0]) + c[0], c[1] + 1)
    return c


@SETTINGS
@given(st.integers(0, 2 ** 16), st.integers(0, 6))
def test_while_loop_values_and_forward_mode(seed, limit):
    x = 0.3 * vec(seed, 2)
    close(doubling(x, limit), doubling_python(x, limit))
    t = vec(seed + 1, 2)
    close(fg.jvp(lambda v: doubling(v, limit)[0], (x,), (t,)),
          fg.jvp(lambda v: doubling_python(v, limit)[0], (x,), (t,)))
    close(fg.jacfwd(lambda v: doubling(v, limit)[0])(x), fg.jacfwd(lambda v: doubling_python(v, limit)[0])(x))
    for device in DEVICES:
        close(fg.jit(doubling, device=device)(x, limit), doubling_python(x, limit))


@pytest.mark.parametrize("device", DEVICES)
def test_while_loop_reverse_mode_raises_a_clear_error(device):
    with pytest.raises(ValueError, match=r"while_loop is not supported.*lax.scan, or lax.fori_loop with static") as info:
        fg.grad(lambda x: doubling(x, 3)[0].sum())(np.ones(2))
    assert isinstance(info.value, FuncgradError)
    assert "test_lax.py" in str(info.value)
    n = np.asarray(3)
    with pytest.raises(ValueError, match="while_loop is not supported"):
        fg.jit(fg.grad(lambda x, n: power_loop(x, n).sum()), device=device)(np.ones(2), n)


@SETTINGS
@given(st.integers(0, 2 ** 16), st.integers(0, 5))
def test_fori_loop_static_bounds_is_reverse_differentiable(seed, n):
    x = 0.5 * vec(seed, 3)
    close(power_loop(x, n), power_python(x, n))
    f, g = (lambda v: fnp.sum(power_loop(v, n))), (lambda v: fnp.sum(power_python(v, n)))
    close(fg.grad(f)(x), fg.grad(g)(x))
    close(fg.jvp(f, (x,), (x,)), fg.jvp(g, (x,), (x,)))
    for device in DEVICES:
        close(fg.jit(fg.grad(f), device=device)(x), fg.grad(g)(x))


@pytest.mark.parametrize("device", DEVICES)
def test_fori_loop_traced_bounds_is_a_while_loop(device):
    f = fg.jit(lambda x, lo, hi: lax.fori_loop(lo, hi, lambda i, v: v + i * x, 0.0), device=device)
    close(f(2.0, 3, 7), 2.0 * (3 + 4 + 5 + 6))
    graph = fg.make_graph(lambda x, n: lax.fori_loop(0, n, lambda i, v: v * x, 1.0))(2.0, 5)
    assert [e.prim.name for e in graph.eqns if e.prim.name in ("while", "scan")] == ["while"]
    close(fg.jvp(lambda x: lax.fori_loop(0, np.asarray(4), lambda i, v: v * x, 1.0), (2.0,), (1.0,)), (16.0, 32.0))
    with pytest.raises(TypeError, match="lower must be an integer scalar"):
        lax.fori_loop(0.0, 3, lambda i, v: v, 1.0)


@pytest.mark.parametrize("device", DEVICES)
def test_loops_do_not_unroll(device):
    calls = []

    def body(i, v):
        calls.append(i)
        return v * 1.0001 + fnp.sin(v) * 1e-4

    graphs = {n: fg.make_graph(lambda x, n=n: lax.fori_loop(0, n, body, x))(1.0) for n in (10, 10_000)}
    assert len(calls) == 2  # one trace of the body per trip count, whatever its length
    for n, g in graphs.items():
        assert [e.prim.name for e in g.eqns] == ["scan"]
        assert g.eqns[0].params["length"] == n
    b10, b10k = (g.eqns[0].params["body"] for g in graphs.values())
    assert len(b10.eqns) == len(b10k.eqns) and b10.fingerprint() == b10k.fingerprint()
    x = fg.jit(lambda x: lax.fori_loop(0, 10_000, body, x), device=device)(1.0)
    ref = 1.0
    for _ in range(10_000):
        ref = ref * 1.0001 + np.sin(ref) * 1e-4
    close(x, ref)
    grad_graph = fg.make_graph(fg.grad(lambda x: lax.fori_loop(0, 10_000, body, x)))(1.0)
    assert [e.prim.name for e in grad_graph.eqns].count("scan") == 2  # forward, and one reverse scan


# -- scan ------------------------------------------------------------------------------------------------
@SETTINGS
@given(st.integers(0, 2 ** 16), st.integers(0, 4), st.booleans())
def test_scan_matches_unrolled_loop(seed, n, reverse):
    w, h0 = 0.5 * vec(seed, 3, 3), vec(seed + 1, 3)
    xs = {"a": vec(seed + 2, n, 3), "b": vec(seed + 3, n, 1)}
    close(rnn_scan(w, h0, xs, reverse), rnn_unrolled(w, h0, xs, reverse))
    for argnums in ((0, 1, 2),):
        close(fg.grad(rnn_scan, argnums)(w, h0, xs, reverse), fg.grad(rnn_unrolled, argnums)(w, h0, xs, reverse))
    tw, th = vec(seed + 4, 3, 3), vec(seed + 5, 3)
    txs = {"a": vec(seed + 6, n, 3), "b": vec(seed + 7, n, 1)}
    close(fg.jvp(lambda *a: rnn_scan(*a, reverse), (w, h0, xs), (tw, th, txs)),
          fg.jvp(lambda *a: rnn_unrolled(*a, reverse), (w, h0, xs), (tw, th, txs)))
    for device in DEVICES:
        jg = fg.jit(fg.value_and_grad(rnn_scan, (0, 1, 2)), static_argnums=3, device=device)
        close(jg(w, h0, xs, reverse), fg.value_and_grad(rnn_unrolled, (0, 1, 2))(w, h0, xs, reverse))


def test_scan_gradient_matches_finite_differences():
    w, h0 = 0.4 * vec(0, 3, 3), vec(1, 3)
    xs = {"a": vec(2, 5, 3), "b": vec(3, 5, 1)}
    close(fg.grad(rnn_scan)(w, h0, xs), numeric_grad(lambda v: rnn_scan(v, h0, xs), w), tol=1e-6)
    close(fg.grad(rnn_scan, 1)(w, h0, xs), numeric_grad(lambda v: rnn_scan(w, v, xs), h0), tol=1e-6)


def test_scan_second_derivatives():
    w, h0 = 0.4 * vec(0, 3, 3), vec(1, 3)
    xs = {"a": vec(2, 4, 3), "b": vec(3, 4, 1)}
    ref = fg.hessian(lambda h: rnn_unrolled(w, h, xs))(h0)
    close(fg.hessian(lambda h: rnn_scan(w, h, xs))(h0), ref)
    close(fg.jacrev(fg.jacrev(lambda h: rnn_scan(w, h, xs)))(h0), ref)
    close(fg.grad(fg.grad(lambda s: rnn_scan(w * s, h0, xs)))(1.0), fg.grad(fg.grad(lambda s: rnn_unrolled(w * s, h0, xs)))(1.0))


def test_scan_without_xs_and_with_integer_carry():
    def f(x):
        (i, v), ys = lax.scan(lambda c, _: ((c[0] + 1, c[1] * x + c[0]), c[1]), (0, 1.0), None, length=4)
        return v + fnp.sum(ys), i

    def g(x):
        i, v, ys = 0, 1.0, []
        for _ in range(4):
            ys.append(v)
            i, v = i + 1, v * x + i
        return v + sum(ys), i

    close(f(1.5), g(1.5))
    close(fg.grad(lambda x: f(x)[0])(1.5), fg.grad(lambda x: g(x)[0])(1.5))


def test_scan_errors():
    with pytest.raises(TypeError, match=r"lax.scan: f .* changed the shape or dtype of the carry.*f32\[\] in, f64\[\]"):
        lax.scan(lambda c, x: (c + x, None), np.float32(0.0), np.ones(3))
    with pytest.raises(TypeError, match="same pytree structure"):
        lax.scan(lambda c, x: ((c, c), None), 0.0, np.ones(3))
    with pytest.raises(ValueError, match="different leading sizes"):
        lax.scan(lambda c, x: (c, None), 0.0, (np.ones(3), np.ones(4)))
    with pytest.raises(ValueError, match="pass length="):
        lax.scan(lambda c, x: (c, None), 0.0, None)
    with pytest.raises(TypeError, match="must return a pair"):
        lax.scan(lambda c, x: c, 0.0, np.ones(3))


# -- closures over outer transforms, vmap, nesting ------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_closed_over_tracers_are_operands_of_the_loop(device):
    def f(w, x):
        return lax.fori_loop(0, 3, lambda i, v: fnp.tanh(v * w) + x, x)

    def g(w, x):
        v = x
        for _ in range(3):
            v = fnp.tanh(v * w) + x
        return v

    graph = fg.make_graph(f)(0.5, 0.2)
    scan_eqn = next(e for e in graph.eqns if e.prim.name == "scan")
    assert set(map(id, graph.invars)) <= {id(v) for v in scan_eqn.inputs}
    close(fg.grad(f, (0, 1))(0.5, 0.2), fg.grad(g, (0, 1))(0.5, 0.2))
    close(fg.jit(fg.grad(f, (0, 1)), device=device)(0.5, 0.2), fg.grad(g, (0, 1))(0.5, 0.2))
    ws = np.array([0.1, 0.5, 2.0])
    close(fg.vmap(f, (0, None))(ws, 0.2), np.array([g(w, 0.2) for w in ws]))
    close(fg.vmap(fg.grad(f), (0, None))(ws, 0.2), np.array([fg.grad(g)(w, 0.2) for w in ws]))


@pytest.mark.parametrize("device", DEVICES)
def test_vmap_of_each_construct_matches_a_loop(device):
    xs = np.array([-1.5, 0.3, 2.0, -0.1])
    f_cond = lambda x: lax.cond(x > 0, lambda v: fnp.sin(v) * 2.0, lambda v: v ** 3, x)
    f_switch = lambda x: lax.switch(fnp.asarray(x * 2.0, np.int32) + 1, [fnp.sin, fnp.cos, fnp.exp], x)
    f_while = lambda x: lax.while_loop(lambda v: fnp.abs(v) < 10.0, lambda v: v * 3.0 + 0.5, x)
    f_scan = lambda x: lax.scan(lambda c, t: (c * x + t, c), x, np.arange(3.0))
    f_count = lambda x: doubling(x, 3)  # the predicate does not depend on the batch
    for f in (f_cond, f_switch, f_while, f_scan, f_count):
        close(fg.vmap(f)(xs), fg.tree_util.tree_map(lambda *r: np.stack(r), *[f(x) for x in xs]))
        close(fg.jit(fg.vmap(f), device=device)(xs),
              fg.tree_util.tree_map(lambda *r: np.stack(r), *[f(x) for x in xs]))
    for f in (f_cond, f_switch, f_scan):
        h = lambda x, f=f: fnp.sum(fg.tree_util.tree_leaves(f(x))[-1])
        close(fg.vmap(fg.grad(h))(xs), np.array([fg.grad(h)(x) for x in xs]))
        close(fg.grad(lambda v, h=h: fnp.sum(fg.vmap(h)(v)))(xs), np.array([fg.grad(h)(x) for x in xs]))
    close(fg.vmap(fg.jacfwd(f_while))(xs), np.array([fg.jacfwd(f_while)(x) for x in xs]))


def test_vmap_scan_over_batched_axis_and_nested_vmap():
    w = 0.5 * vec(0, 3, 3)
    xs = {"a": vec(1, 2, 5, 4, 3), "b": vec(2, 2, 5, 4, 1)}  # (outer, time, inner, features)
    h0 = vec(3, 3)
    f = fg.vmap(fg.vmap(rnn_scan, (None, None, {"a": 1, "b": 1})), (None, None, 0))
    ref = np.array([[rnn_unrolled(w, h0, {"a": xs["a"][i, :, j], "b": xs["b"][i, :, j]})
                     for j in range(4)] for i in range(2)])
    close(f(w, h0, xs), ref)


@pytest.mark.parametrize("device", DEVICES)
def test_nested_control_flow_gradients(device):
    def f(w, xs):
        def outer(c, x):
            inner = lax.fori_loop(0, 2, lambda i, v: lax.cond(v > 0, lambda u: u * w, lambda u: u - w, v), c + x)
            return inner, inner * x
        return fnp.sum(lax.scan(outer, 0.1, xs)[1])

    def g(w, xs):
        c, total = 0.1, 0.0
        for x in xs:
            v = c + x
            for _ in range(2):
                v = v * w if v > 0 else v - w
            c, total = v, total + v * x
        return total

    xs = np.array([0.5, -1.0, 2.0])
    close(f(0.7, xs), g(0.7, xs))
    close(fg.grad(f, (0, 1))(0.7, xs), fg.grad(g, (0, 1))(0.7, xs))
    close(fg.jit(fg.grad(f, (0, 1)), device=device)(0.7, xs), fg.grad(g, (0, 1))(0.7, xs))
    close(fg.jvp(f, (0.7, xs), (1.0, xs)), fg.jvp(g, (0.7, xs), (1.0, xs)))
