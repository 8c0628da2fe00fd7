"""Control flow compiled by the Numba CPU backend: ``scan`` (fori_loop, reverse, pytrees),
``while_loop``, ``cond``/``switch``, nested loops, their gradients and ``vmap`` under ``jit``,
against the NumPy interpreter; the loops stay loops (one loop in the generated source, whatever
the trip count), bodies needing glue fall back to the NumPy implementation, and the compile
cache tells sub-graphs apart."""
import numpy as np
import pytest
from _compile_mode import sync_compile  # noqa: F401  (autouse: compile synchronously)
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import lax
from funcgrad.backends import numba_cpu
from funcgrad.backends.numba_cpu import compiler, loops
from funcgrad.backends.numba_cpu import table as planmod
from funcgrad.backends.numba_cpu.emit import Emitter

TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-10}
CONTROL = ("scan", "while", "cond")


def rand(seed, *shape, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def plan_of(f, *args):
    graph = loops.hoist(fg.make_graph(f)(*args))
    return planmod.make_plan(graph, mode="top")


def glue_names(f, *args):
    return [e.prim.name for kind, e in plan_of(f, *args).steps if kind == "glue"]


def source_of(f, *args):
    return Emitter(plan_of(f, *args), planmod.RULES).build().source()


def loop_body(src):
    """The lines of the first compiled loop over the steps of a scan in ``src``."""
    lines = src.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("for it"))
    pad = len(lines[start]) - len(lines[start].lstrip())
    body = []
    for line in lines[start + 1:]:
        if len(line) - len(line.lstrip()) <= pad:
            break
        body.append(line)
    return "\n".join(body)


def check(f, *args, lowered=True):
    """``jit(f)`` on the CPU equals the interpreter (same pytree, dtypes, values); with
    ``lowered`` no control-flow equation is left to the glue."""
    if lowered:
        assert not set(glue_names(f, *args)) & set(CONTROL)
    got = fg.jit(f)(*args)
    want = fg.jit(f, device="interpreter")(*args)
    gl, gd = fg.tree_util.tree_flatten(got)
    wl, wd = fg.tree_util.tree_flatten(want)
    assert gd == wd
    for g, w in zip(gl, wl):
        assert type(g) is np.ndarray and g.dtype == w.dtype and g.shape == w.shape, (g.dtype, w.dtype)
        tol = TOL.get(w.dtype, 0)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    return got


# -- scan ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_scan_with_pytree_carry_and_outputs(dtype, reverse):
    w, u = rand(0, 3, 4, dtype=dtype), rand(1, 4, 4, dtype=dtype) * 0.5
    xs = {"x": rand(2, 6, 5, 3, dtype=dtype), "m": rand(3, 6, dtype=dtype)}
    h0 = (np.zeros((5, 4), dtype), np.zeros((), dtype))

    def f(w, u, xs, h0):
        def step(c, x):
            h, s = c
            h = fnp.tanh(x["x"] @ w + h @ u) * x["m"]
            s = s + fnp.sum(h)
            return (h, s), {"h": h, "s": s, "n": fnp.max(h, axis=1)}

        return lax.scan(step, h0, xs, reverse=reverse)

    (h, s), ys = check(f, w, u, xs, h0)
    assert h.dtype == s.dtype == dtype and ys["h"].shape == (6, 5, 4) and ys["n"].shape == (6, 5)


def test_float32_bodies_compute_in_float32():
    f = lambda c, xs: lax.scan(lambda c, x: (c * 0.5 + fnp.sin(x), fnp.exp(c)), c, xs)
    c, xs = np.ones(4, np.float32), rand(0, 7, 4, dtype=np.float32)
    check(f, c, xs)
    body = loop_body(source_of(f, c, xs))
    assert "float64" not in body and "float32" in body and "_vm.sin32" in body


def test_scan_without_xs_scalar_carries_and_literal_init():
    def f(x):
        def step(c, _):
            i, acc = c
            return (i + 1, acc * 0.9 + fnp.sum(x) * i), acc

        return lax.scan(step, (0, 0.0), None, length=12)

    check(f, rand(1, 5))


def test_fori_loop_and_while_loop():
    def f(x, n):
        a = lax.fori_loop(0, 25, lambda i, c: c * 0.5 + fnp.cos(c) * 0.1 * i, x)  # static: a scan
        b = lax.fori_loop(0, n, lambda i, c: c + 0.5 * i, x)  # traced bound: a while loop
        c = lax.while_loop(lambda c: c[1] < 100.0, lambda c: (c[0] + 1, c[1] * 1.5 + fnp.sum(c[2] ** 2),
                                                              c[2] * 0.5), (0, 1.0, x))
        return a, b, c

    x = rand(2, 3)
    assert {"scan", "while"} <= {e.prim.name for e in fg.make_graph(f)(x, np.int64(7)).eqns}
    check(f, x, np.int64(7))
    check(f, x, np.int64(0))


def test_cond_and_switch_pick_branches_and_clamp():
    def f(x, p, k):
        a = lax.cond(p > 0, lambda v: fnp.sin(v) * 2.0, lambda v: fnp.cos(v) - v, x)
        b = lax.switch(k, [lambda v: (v, v.sum()), lambda v: (v * 2.0, v.max()), lambda v: (-v, v.min())], x)
        return a, b

    x = rand(3, 4, 2)
    for p, k in ((1.0, 0), (-1.0, 1), (0.0, 2), (2.0, -5), (-2.0, 9)):
        check(f, x, np.float64(p), np.int32(k))


def test_nested_loops_and_branches():
    def f(x, w):
        def inner(c, row):
            return c * 0.5 + row @ w, fnp.sum(c)

        def outer(c, xs_t):
            c2, s = lax.scan(inner, c, xs_t)  # a scan inside a scan's body
            c2 = lax.cond(fnp.sum(s) > 0, lambda v: v * 0.9, lambda v: -v, c2)
            k = lax.fori_loop(0, 3, lambda i, k: k + fnp.tanh(c2[0]) * i, 0.0)
            return c2, (s, k)

        return lax.scan(outer, np.zeros(3), x, reverse=True)

    x, w = rand(4, 5, 4, 3), rand(5, 3, 3)
    check(f, x, w)
    src = source_of(f, x, w)
    assert src.count("for it") == 3  # the outer scan, the inner scan, the fori_loop


def test_while_inside_scan_and_scan_inside_cond():
    def f(x):
        def step(c, t):
            n = lax.while_loop(lambda v: v[0] < t, lambda v: (v[0] + 1.0, v[1] * 0.5 + 1.0), (0.0, c))
            return n[1], n[0]

        c, ys = lax.scan(step, 1.0, fnp.arange(5.0))
        z = lax.cond(c > 0, lambda v: lax.scan(lambda a, r: (a + r, a * r), 0.0, v)[1], lambda v: v * 0.0, x)
        return c, ys, z

    check(f, rand(6, 8))


@given(st.integers(0, 6), st.integers(1, 3), st.booleans(), st.sampled_from([np.float32, np.float64]))
@settings(max_examples=4, deadline=None)
def test_random_scans(length, width, reverse, dtype):
    xs = rand(length * 7 + width, length, width, dtype=dtype)
    c0 = rand(width, width, dtype=dtype)

    def f(c0, xs):
        def step(c, x):
            c = c * np.asarray(0.7, dtype) + x * fnp.mean(c)
            return c, (fnp.exp(-c * c), fnp.sum(c))

        return lax.scan(step, c0, xs, reverse=reverse)

    check(f, c0, xs)


# -- derivatives and batching under jit -------------------------------------------------------------
def test_grad_through_scan_under_jit():
    w, u, xs = rand(0, 3, 4), rand(1, 4, 4) * 0.4, rand(2, 9, 2, 3)

    def loss(w, u, xs):
        _, hs = lax.scan(lambda h, x: (fnp.tanh(x @ w + h @ u),) * 2, np.zeros((2, 4)), xs)
        return fnp.mean(hs ** 2)

    f = fg.value_and_grad(loss, argnums=(0, 1, 2))
    assert glue_names(f, w, u, xs) == []  # the forward and the backward scan are both loops
    check(f, w, u, xs)
    check(fg.jacfwd(lambda u: loss(w, u, xs)), u)


def test_grad_through_cond_and_fori_under_jit():
    def f(x):
        y = lax.cond(fnp.sum(x) > 0, lambda v: fnp.sin(v) * v, lambda v: fnp.exp(v), x)
        return fnp.sum(lax.fori_loop(0, 4, lambda i, c: fnp.tanh(c) + y * i, y))

    g = fg.grad(f)
    x = rand(4, 5)
    check(g, x)
    check(g, -fnp.abs(x))


def test_vmap_of_loops_under_jit():
    def one(x, n, p):
        a = lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 1.1 + 1.0), (0, x))[1]
        b = lax.cond(x[0] > 0, lambda v: v * 2.0, lambda v: v - 1.0, x)  # both branches, selected
        c = lax.scan(lambda c, r: (c + r, c * r), 0.0, x)
        d = lax.cond(p > 0, lambda v: fnp.sin(v), lambda v: v - 1.0, x)  # a batched cond
        return a, b, c, d

    x, n = rand(6, 5, 3), np.array([0, 3, 1, 7, 2], np.int64)  # the while predicate differs per row
    batched = fg.vmap(one, in_axes=(0, 0, None))
    assert "cond" in {e.prim.name for e in fg.make_graph(batched)(x, n, 1.0).eqns}
    check(batched, x, n, 1.0)
    check(batched, x, n, -1.0)


def test_recurrent_layers_train_step_compiles_to_loops():
    from funcgrad import nn, random

    lstm = nn.LSTM(5, return_sequences=True, reverse=True)
    x = rand(17, 4, 7, 2, dtype=np.float32)
    _, params = lstm.init(random.key(1), x.shape)
    f = fg.value_and_grad(lambda p, x: fnp.mean(lstm.apply(p, x) ** 2))
    assert glue_names(f, params, x) == []  # the gate slices' transposes are compiled too
    check(f, params, x)


# -- indexing ----------------------------------------------------------------------------------------
def test_static_index_add_and_set():
    def f(x, v, w):
        a = x.at[1:3, ::-2].add(v)  # v (2, 2) into a reversed strided slice
        b = x.at[-1].set(w)  # a row, w broadcast
        c = fg.grad(lambda y: fnp.sum(fnp.sin(y[1:, ::2])))(x)  # index_add into zeros (a literal)
        c = c + x.at[:, 1:3].add(x.T[:, 1:3])  # v a view
        d = x.T.at[2, None, 1:].set(fnp.sin(w[1:]))  # x a view, an inserted axis
        e = lax.scan(lambda c, r: (c.at[1:, 0].add(r[:3]), c[0]), x, x)[0]
        return a, b, c, d, e

    x, v, w = rand(18, 4, 4), rand(19, 2, 2), rand(20, 4)
    assert glue_names(f, x, v, w) == []
    check(f, x, v, w)


def test_scalar_indices_in_loop_bodies_compile():
    def f(x, k):
        def body(i, c):
            prev = c[i - 1, ::-1] * 0.5  # a traced index (negative at i = 0: wraps like NumPy)
            return c.at[i].set(prev + x[k, i]).at[k, i].add(1.0)

        return lax.fori_loop(0, x.shape[0], body, x)

    x = rand(21, 4, 4)
    assert glue_names(f, x, np.int64(2)) == []
    check(f, x, np.int64(2))
    check(f, x, np.int64(-1))
    with pytest.raises(IndexError):
        fg.jit(f)(x, np.int64(4))
    with pytest.raises(IndexError):
        fg.jit(f, device="interpreter")(x, np.int64(4))


# -- structure: loops stay loops -------------------------------------------------------------------
def test_long_fori_loop_is_one_loop_not_unrolled():
    def make(n):
        return lambda x: lax.fori_loop(0, n, lambda i, c: c * 0.999 + fnp.sin(c) * 1e-3, x)

    x = rand(7, 16)
    short, long = source_of(make(10), x), source_of(make(10_000), x)
    assert long.count("for it") == short.count("for it") == 1
    assert "range(10000)" in long and len(long) == len(short) + 3
    out = check(make(10_000), x)
    assert np.all(np.isfinite(out))


def test_compiled_loop_runs_without_the_interpreter(monkeypatch):
    from funcgrad.primitives import control_flow as cf

    f = fg.jit(lambda c, xs: lax.scan(lambda c, x: (c + x, c * x), c, xs))
    want = fg.jit(lambda c, xs: lax.scan(lambda c, x: (c + x, c * x), c, xs), device="interpreter")(
        np.ones(3), rand(8, 4, 3))

    def fail(*args, **kw):
        raise AssertionError("the loop body ran in Python")

    monkeypatch.setattr(cf, "_run", fail)
    got = f(np.ones(3), rand(8, 4, 3))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_body_needing_glue_runs_as_a_python_loop_over_the_compiled_body(monkeypatch):
    from funcgrad.primitives import control_flow as cf

    def f(x, idx):
        def step(c, i):
            c = c.at[i].add(fnp.sin(c[i]) + 1.0)  # dynamic indexing: a primitive without a lowering
            return c, fnp.argsort(c)

        return lax.scan(step, x, idx)

    def g(x, idx):  # the loop needing glue nested in a loop and a branch
        def outer(c, r):
            inner = lax.cond(c > 0, lambda v: f(v, idx)[0], lambda v: v * 2.0, r)
            return c + inner.sum(), inner
        return lax.scan(outer, 1.0, x)

    x, idx = rand(9, 6), np.array([0, 3, 3, 5, 1], np.int64)
    assert "scan" in glue_names(f, x, idx) and "scan" in glue_names(g, x[None], idx)
    want = [fg.jit(h, device="interpreter")(*a) for h, a in ((f, (x, idx)), (g, (x[None], idx)))]
    monkeypatch.setattr(cf, "_run", lambda *a: pytest.fail("a sub-graph was interpreted"))
    for h, a, w in zip((f, g), ((x, idx), (x[None], idx)), want):
        got = fg.jit(h)(*a)
        for u, v in zip(fg.tree_util.tree_leaves(got), fg.tree_util.tree_leaves(w)):
            np.testing.assert_allclose(u, v, rtol=1e-12)


def test_large_bodies_and_effects_run_in_python_loops(monkeypatch, capsys):
    monkeypatch.setattr(planmod, "PARALLEL_MIN", 64)  # a body this large would use threads

    def f(x):
        def step(c, t):
            fg.debug.print("step {t}", t=t)
            return c * 0.5 + fnp.cos(c) * t, fnp.sum(c)

        return lax.scan(step, x, fnp.arange(3.0))

    x = rand(16, 8, 16)
    assert "scan" in glue_names(f, x)
    check(f, x, lowered=False)
    assert capsys.readouterr().out.split("\n")[:6] == ["step 0.0", "step 1.0", "step 2.0"] * 2


def test_results_never_alias_constants_or_arguments():
    table = rand(10, 4)

    def f(x):
        c, _ = lax.scan(lambda c, x: (c, x), table, x, length=0)  # no step: the carry is the constant
        b = lax.cond(fnp.sum(x) >= 0, lambda v: table, lambda v: v, table)
        return c, b

    jf = fg.jit(f)
    first = jf(np.zeros((0, 4)))
    for a in first:
        np.testing.assert_array_equal(a, table)
        a[...] = 99.0
    for a in jf(np.zeros((0, 4))):
        np.testing.assert_array_equal(a, table)


# -- the compile cache -------------------------------------------------------------------------------
def _key(f, *args):
    return compiler.lower(fg.make_graph(f)(*args)).key()


def test_cache_key_covers_sub_graphs_not_constant_values():
    x = rand(11, 5)
    body = lambda op: (lambda c: lax.fori_loop(0, 3, lambda i, v: op(v) * 0.5, c))
    assert _key(body(fnp.sin), x) != _key(body(fnp.cos), x)
    assert _key(lambda c: lax.fori_loop(0, 3, lambda i, v: v * 0.5, c), x) != \
        _key(lambda c: lax.fori_loop(0, 4, lambda i, v: v * 0.5, c), x)
    w1, w2 = rand(12, 5), rand(13, 5)
    with_const = lambda w: (lambda c: lax.scan(lambda c, _: (c * w, fnp.sum(c)), c, None, length=3))
    assert _key(with_const(w1), x) == _key(with_const(w2), x)  # constants are arguments
    np.testing.assert_allclose(fg.jit(with_const(w2))(x)[0], x * w2 ** 3, rtol=1e-12)
    np.testing.assert_allclose(fg.jit(with_const(w1))(x)[0], x * w1 ** 3, rtol=1e-12)
    ones = np.full(5, 0.5)  # all elements equal: a literal inside the body
    assert "0.5" in loop_body(source_of(with_const(ones), x))
    np.testing.assert_allclose(fg.jit(with_const(ones))(x)[0], x / 8, rtol=1e-12)


def test_sub_graph_constants_are_hoisted_out_of_nested_bodies():
    w = rand(14, 3)

    def f(x):
        inner = lambda c: lax.fori_loop(0, 2, lambda i, v: v * w, c)
        return lax.cond(x[0] > 0, inner, lambda v: v + w, x)

    graph = fg.make_graph(f)(np.ones(3))
    hoisted = loops.hoist(graph)
    assert all(not g.consts for e in loops.all_eqns(hoisted) if e.prim.name in CONTROL
               for g in loops.subgraphs(e))
    assert len(hoisted.consts) > len(graph.consts)
    check(f, np.ones(3))
    check(f, -np.ones(3))


def test_compile_counts_one_module_per_program():
    before = dict(numba_cpu.stats)
    f = lambda c, xs: lax.scan(lambda c, x: (fnp.sin(c) + x, c), c, xs)
    fg.jit(f)(np.ones(2), rand(15, 3, 2))
    assert numba_cpu.stats["compiles"] == before["compiles"] + 1
