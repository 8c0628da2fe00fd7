"""The Numba CPU backend against the NumPy interpreter: random programs (elementwise ops with
broadcasting, reductions over random axes, views, contractions) in float32 and float64, their
gradients, and the paths the partitioner chooses (fused loops, BLAS, chunked ufuncs, threads,
NumPy fallbacks for primitives without a lowering)."""
import numpy as np
import pytest
from _compile_mode import sync_compile  # noqa: F401  (autouse: compile synchronously)
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.backends import interpreter, numba_cpu
from funcgrad.backends.numba_cpu import table as planmod
from funcgrad.backends.numba_cpu.emit import Emitter
from funcgrad.core.avals import ShapedArray
from funcgrad.core.primitive import Kind, Primitive

TOL = {np.dtype(np.float32): {"rtol": 2e-4, "atol": 2e-5}, np.dtype(np.float64): {"rtol": 1e-9, "atol": 1e-11}}




def both(f, *args):
    """Outputs of ``f`` compiled by Numba and run by the interpreter, flattened."""
    graph = fg.make_graph(f)(*args)
    leaves = fg.tree_util.tree_leaves(args)
    leaves = [np.asarray(x) for x in leaves]
    got = numba_cpu.compile(graph)(leaves)
    want = interpreter.compile(graph)(leaves)
    return graph, got, want


def assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert type(g) is np.ndarray
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, w.dtype, g.shape, w.shape)
        tol = TOL.get(w.dtype, {"rtol": 0, "atol": 0})
        np.testing.assert_allclose(g, w, equal_nan=True, **tol)


# -- random programs ------------------------------------------------------------------------------
UNARY = {
    "sin": fnp.sin, "cos": fnp.cos, "tanh": fnp.tanh, "gauss": lambda x: fnp.exp(-x * x),
    "log1p": lambda x: fnp.log1p(x * x), "sqrt": lambda x: fnp.sqrt(x * x + 1.0), "square": fnp.square,
    "neg": fnp.negative, "relu": lambda x: fnp.maximum(x, 0.0), "sigmoid": lambda x: 1.0 / (1.0 + fnp.exp(-x)),
    "cube": lambda x: x ** 3,
}
BINARY = {
    "add": fnp.add, "sub": fnp.subtract, "mul": fnp.multiply, "div": lambda x, y: x / (1.0 + y * y),
    "max": fnp.maximum, "where": lambda x, y: fnp.where(x > y, x, 2.0 * y),
}
REDUCE = {"sum": fnp.sum, "max": fnp.max, "mean": fnp.mean}


@st.composite
def programs(draw):
    """(input shapes, dtype, instructions); instructions index a growing pool of values."""
    nd = draw(st.integers(1, 3))
    base = tuple(draw(st.lists(st.integers(1, 5), min_size=nd, max_size=nd)))
    shapes = []
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, nd))
        sub = base[nd - k:]
        shapes.append(tuple(d if draw(st.booleans()) else 1 for d in sub) if k else ())
    shapes[0] = base
    pool = [np.zeros(s) for s in shapes]
    prog = []
    for _ in range(draw(st.integers(2, 7))):
        i = draw(st.integers(0, len(pool) - 1))
        x = pool[i]
        op = draw(st.sampled_from(["unary", "binary", "reduce", "view", "dot"]))
        if op == "unary":
            ins = ("unary", draw(st.sampled_from(sorted(UNARY))), i)
        elif op == "binary":
            j = draw(st.integers(0, len(pool) - 1))
            try:
                np.broadcast_shapes(x.shape, pool[j].shape)
            except ValueError:
                continue
            ins = ("binary", draw(st.sampled_from(sorted(BINARY))), i, j)
        elif op == "reduce":
            if x.ndim == 0:
                continue
            axes = tuple(sorted(set(draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim)))))
            ins = ("reduce", draw(st.sampled_from(sorted(REDUCE))), i, axes, draw(st.booleans()))
        elif op == "view":
            kinds = ["T", "reshape", "flip"] + (["slice"] if x.ndim and x.shape[0] > 1 else [])
            ins = ("view", draw(st.sampled_from(kinds)), i)
        else:
            if x.ndim != 2:
                continue
            ins = ("dot", draw(st.sampled_from(["xxT", "xTx"])), i)
        pool.append(run_instruction(ins, pool, np))
        prog.append(ins)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return shapes, np.dtype(dtype), prog


def run_instruction(ins, pool, xp):
    kind, name, i = ins[:3]
    x = pool[i]
    if xp is np:  # shape bookkeeping while drawing
        if kind == "binary":
            return x + pool[ins[3]]
        if kind == "reduce":
            return np.sum(x, axis=ins[3], keepdims=ins[4])
    else:
        if kind == "unary":
            return UNARY[name](x)
        if kind == "binary":
            return BINARY[name](x, pool[ins[3]])
        if kind == "reduce":
            return REDUCE[name](x, axis=ins[3], keepdims=ins[4])
    if kind == "unary":
        return x
    if kind == "view":
        if name == "T":
            return x.T
        if name == "reshape":
            return x.reshape(-1)
        if name == "flip":
            return xp.flip(x, axis=-1) if x.ndim else x
        return x[1::2]
    return x @ x.T if name == "xxT" else x.T @ x


def program_fn(prog):
    def f(*xs):
        pool = list(xs)
        for ins in prog:
            pool.append(run_instruction(ins, pool, fnp))
        outs = pool[len(xs):] or pool
        return tuple(outs[-3:])
    return f


def inputs(shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-2, 2, size=s).astype(dtype) for s in shapes]


@settings(max_examples=14)
@given(programs())
def test_random_programs_match_interpreter(program):
    shapes, dtype, prog = program
    f = program_fn(prog)
    graph = fg.make_graph(f)(*inputs(shapes, dtype, 0))
    run = numba_cpu.compile(graph)
    ref = interpreter.compile(graph)
    for seed in (1, 2):
        xs = inputs(shapes, dtype, seed)
        assert_same(run(xs), ref(xs))


@settings(max_examples=8)
@given(programs())
def test_random_program_gradients_jit_match_eager(program):
    shapes, dtype, prog = program
    f = program_fn(prog)

    def scalar(*xs):
        return sum(fnp.sum(o) for o in f(*xs))

    argnums = tuple(range(len(shapes)))
    jitted = fg.jit(fg.grad(scalar, argnums=argnums))
    for seed in (3, 4):
        xs = inputs(shapes, dtype, seed)
        assert_same(jitted(*xs), fg.grad(scalar, argnums=argnums)(*xs))
    assert jitted.trace_count == 1


# -- paths chosen by the partitioner -----------------------------------------------------------------
def kinds_of(graph):
    plan = planmod.make_plan(graph)
    out = {"glue": [e.prim.name for k, e in plan.steps if k == "glue"], "nodes": []}
    for k, seg in plan.steps:
        if k == "segment":
            out["nodes"] += [(n.kind, n.chunked, n.parallel) for n in seg.nodes]
    return out


def test_small_mlp_step_is_one_compiled_function():
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(3, 8)).astype(np.float32), rng.normal(size=(8, 1)).astype(np.float32)
    x = rng.normal(size=(5, 3)).astype(np.float32)

    def loss(w1, w2, x):
        return fnp.mean(fnp.tanh(fnp.tanh(x @ w1) @ w2) ** 2)

    graph, got, want = both(fg.grad(loss, argnums=(0, 1)), w1, w2, x)
    assert_same(got, want)
    kinds = kinds_of(graph)
    assert kinds["glue"] == []  # every equation compiled, dots included
    assert sum(k == "segment" for k, _ in planmod.make_plan(graph).steps) == 1


@pytest.mark.parametrize("expr", ["x @ y", "x.T @ y", "x @ y.T", "x.T @ y.T", "x @ v", "v @ x", "v @ v",
                                  "fnp.einsum('ij,jk->ki', x, y)", "fnp.einsum('bij,bjk->bik', b, b)"])
def test_large_contractions_go_to_blas(expr):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(70, 70)), rng.normal(size=(70, 70))
    v, b = rng.normal(size=70), rng.normal(size=(3, 70, 70))

    def f(x, y, v, b):
        return fnp.tanh(eval(expr)) * 2.0

    graph, got, want = both(f, x, y, v, b)
    assert_same(got, want)
    if "v" not in expr:  # matrix-vector products this small are loop nests
        glue = kinds_of(graph)["glue"]
        assert "dot_general" in glue and set(glue) <= {"dot_general", "transpose"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_transcendental_cluster_with_reductions(dtype):
    x = np.linspace(-3, 3, 40000).reshape(200, 200).astype(dtype)

    def f(x):
        y = fnp.arctan(x) * fnp.exp(-x * x) + 0.5 * fnp.log1p(x * x)
        return y, fnp.sum(y, axis=0), fnp.max(y, axis=1), fnp.sum(fnp.cosh(x))

    graph, got, want = both(f, x)
    assert_same(got, want)
    assert any(chunked for _, chunked, _ in kinds_of(graph)["nodes"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_cluster_mixes_numpy_ufuncs_and_compiled_arithmetic(dtype):
    rng = np.random.default_rng(6)
    x, y = (rng.uniform(-3, 3, (300, 150)).astype(dtype) for _ in range(2))

    def f(x, y):
        t = fnp.arctan(x)
        e = fnp.log1p(y * y) * 2.0 - t
        return t * e + fnp.sin(3.0 * x + e) * y, fnp.cos(e)

    graph, got, want = both(f, x, y)
    assert_same(got, want)
    assert any(chunked for _, chunked, _ in kinds_of(graph)["nodes"])
    source = Emitter(planmod.make_plan(graph), planmod.RULES).build().source()
    assert "_h0(" in source and "_u_atan(" in source  # compiled blocks between the ufunc calls


def test_large_arithmetic_cluster_runs_on_threads():
    x = np.random.default_rng(2).normal(size=(1024, 1100)).astype(np.float32)

    def f(x):
        y = x * 3.0 + 1.0
        return fnp.maximum(y, 0.0) - x, fnp.sum(y * y, axis=1)

    graph, got, want = both(f, x)
    assert_same(got, want)
    assert any(par for _, _, par in kinds_of(graph)["nodes"])


def test_views_fuse_into_loops():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 6)), rng.normal(size=(6,))

    def f(x, y):
        a = x.T[::2] * 2.0  # transpose and basic slice read in place
        b = fnp.flip(x, axis=1)[1:3, None, :] + y  # flip, slice, new axis, broadcast
        c = x.reshape(2, 12).sum(axis=1)  # general reshape
        d = fnp.broadcast_to(y, (4, 6)) * x[:, :1]
        return a, b, c, d, x[2, 3] * y[0]

    graph, got, want = both(f, x, y)
    assert_same(got, want)
    assert kinds_of(graph)["glue"] == []


def test_integer_and_bool_values():
    x = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)

    def f(x):
        m = (x > 0) & (x % 3 != 0)
        y = fnp.where(m, x * 2, -x) // 3
        return y, m, y.astype(np.float32) * 0.5, fnp.max(x, axis=0), fnp.logical_not(m)

    _, got, want = both(f, x)
    assert_same(got, want)


def test_nan_propagates_through_max_min_and_reductions():
    x = np.array([1.0, np.nan, -2.0, np.inf, -np.inf], np.float32)

    def f(x):
        return fnp.maximum(x, 0.0), fnp.minimum(0.0, x), fnp.max(x), fnp.min(x * 2.0), fnp.tanh(x)

    _, got, want = both(f, x)
    assert_same(got, want)


def test_float32_tanh_lowering_is_accurate():
    x = np.concatenate([np.linspace(-20, 20, 4001), [0.0, 1e-5, -3e-4, 1e-30]]).astype(np.float32)
    _, got, want = both(fnp.tanh, x)
    np.testing.assert_allclose(got[0], want[0], rtol=3e-7, atol=3e-7)


def test_zero_dim_python_scalars_and_constants():
    c = np.full((3,), 2.5)  # a constant whose elements are equal: inlined as a literal
    k = np.array([1.0, 2.0, 3.0])  # a real constant: passed as an argument

    def f(x, s):
        return fnp.sum(x * c + k) * s, x[0], s * 2.0

    _, got, want = both(f, np.ones(3), 3.0)
    assert_same(got, want)


# -- primitives without a lowering run as NumPy glue ------------------------------------------------
_calls = []
twist_p = Primitive("test_backend_twist", kind=Kind.OPAQUE)
twist_p.impl = lambda x, *, k: np.roll(x, k)[::-1].copy()
twist_p.abstract_eval = lambda x, *, k: ShapedArray(x.shape, x.dtype)
split_p = Primitive("test_backend_split", multiple_results=True, kind=Kind.OPAQUE)
split_p.impl = lambda x: [np.cumsum(x, axis=-1), np.sort(x, axis=-1)]
split_p.abstract_eval = lambda x: [x, x]
log_p = Primitive("test_backend_log", multiple_results=True, kind=Kind.OPAQUE, effectful=True)
log_p.impl = lambda *xs: _calls.append([np.array(x) for x in xs]) or []
log_p.abstract_eval = lambda *avals: []


def test_unknown_primitives_run_between_compiled_segments():
    x = np.random.default_rng(4).normal(size=(5, 7))

    def f(x):
        y = fnp.sin(x) * 2.0
        z = twist_p.bind(y, k=2)
        a, b = split_p.bind(z + 1.0)
        log_p.bind(a[0])
        return fnp.exp(a) - b, fnp.sum(z, axis=1)

    _calls.clear()
    graph, got, want = both(f, x)
    assert_same(got, want)
    assert len(_calls) == 2  # the effect ran once in each backend, in the compiled one too
    np.testing.assert_allclose(_calls[0][0], _calls[1][0])
    assert kinds_of(graph)["glue"] == ["test_backend_twist", "test_backend_split", "test_backend_log"]


def test_control_flow_with_subgraphs_inside_jit():
    lax = pytest.importorskip("funcgrad.lax")

    def f(x):
        y = lax.cond(fnp.sum(x) > 0, lambda v: fnp.sin(v) * 2.0, lambda v: fnp.cos(v), x)
        out, _ = lax.scan(lambda c, v: (c + v * c, c), fnp.ones(()), y)
        return out, fnp.tanh(y)

    x = np.linspace(-1, 2, 6)
    jitted = fg.jit(f)
    assert_same(fg.tree_util.tree_leaves(jitted(x)), fg.tree_util.tree_leaves(f(x)))
    assert_same(fg.tree_util.tree_leaves(jitted(-x)), fg.tree_util.tree_leaves(f(-x)))


def test_noncontiguous_and_readonly_arguments():
    base = np.random.default_rng(5).normal(size=(6, 8))
    ro = base.copy()
    ro.flags.writeable = False
    f = fg.jit(lambda x, y: fnp.tanh(x) * y)
    want = np.tanh(base[:, ::2]) * ro[:, :4]
    np.testing.assert_allclose(f(base[:, ::2], ro[:, :4]), want, rtol=1e-12)
    np.testing.assert_allclose(f(np.asfortranarray(base[:, :4]), ro[:, :4]), np.tanh(base[:, :4]) * ro[:, :4])


def test_listed_ufuncs_are_ones_numba_compiles():
    from numba.np import ufunc_db

    from funcgrad.backends.numba_cpu.lowering import NUMBA_UFUNCS

    assert NUMBA_UFUNCS <= {u.__name__ for u in ufunc_db.get_ufuncs()}
