"""vecmath.py: accuracy in ulps over random and special inputs (against long double where NumPy
has an 80-bit one, else against libm with one ulp more allowed), the vector code LLVM makes of
the functions in a loop, and jitted programs that use them against the NumPy interpreter."""
import functools
import re

import numpy as np
import pytest
from _compile_mode import sync_compile  # noqa: F401  (autouse: compile synchronously)
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.backends import interpreter, numba_cpu
from funcgrad.backends.numba_cpu import table as planmod
from funcgrad.backends.numba_cpu import vecmath
from funcgrad.backends.numba_cpu.emit import Emitter
from funcgrad.scipy.special import expit

EXTENDED = np.finfo(np.longdouble).nmant >= 63  # x87 long double: 11 bits beyond float64
REF = np.longdouble if EXTENDED else np.float64
SLACK = 0.0 if EXTENDED else 1.0  # a libm reference is itself up to an ulp off
BOUND = {  # in ulps; float32 log, sin and cos are float64 results rounded once
    np.float64: {"exp": 1.0, "log": 1.0, "tanh": 1.5, "sin": 1.0, "cos": 1.0},
    np.float32: {"exp": 1.0, "log": 0.51, "tanh": 1.5, "sin": 0.51, "cos": 0.51},
}
NUMPY = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "sin": np.sin, "cos": np.cos}
DTYPES = [np.float64, np.float32]
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # references of inf, NaN, overflow


@functools.cache
def elementwise(name, dtype):
    """A compiled loop applying vecmath's ``name`` for ``dtype`` to every element."""
    fn = getattr(vecmath, f"{name}{np.finfo(dtype).bits}")

    @njit(error_model="numpy", fastmath={"contract"})
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])

    return loop


def apply(name, x):
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    elementwise(name, x.dtype.type)(x, out)
    return out


def ulp_errors(name, x, got):
    """|got - f(x)| in units of the spacing of the correctly rounded f(x) (finite, nonzero only)."""
    ref = NUMPY[name](x.astype(REF))
    rounded = ref.astype(x.dtype)
    ok = np.isfinite(rounded) & (rounded != 0)
    spacing = np.spacing(np.abs(np.where(ok, rounded, 1))).astype(REF)
    return np.where(ok, np.abs(got.astype(REF) - ref) / spacing, 0)


def assert_specials(name, x, got):
    """Where the rounded result is 0, inf or NaN, the function gives exactly that (sign included)."""
    want = NUMPY[name](x.astype(REF)).astype(x.dtype)
    special = ~np.isfinite(want) | (want == 0)
    np.testing.assert_array_equal(got[special], want[special])
    assert np.array_equal(np.signbit(got[special]), np.signbit(want[special]))


def signed_log_uniform(rng, lo, hi, n):
    return rng.choice([-1.0, 1.0], n) * 2.0 ** rng.uniform(lo, hi, n)


def random_inputs(name, seed=0, n=20000):
    rng = np.random.default_rng(seed)
    if name == "exp":
        return np.concatenate([rng.uniform(-745.2, 709.79, n), signed_log_uniform(rng, -60, 9, n)])
    if name == "log":
        return np.concatenate([2.0 ** rng.uniform(-1074, 1024, n), rng.uniform(0.5, 2.0, n),
                               1.0 + signed_log_uniform(rng, -52, -2, n)])
    if name == "tanh":
        return np.concatenate([rng.uniform(-25, 25, n), signed_log_uniform(rng, -40, 4.5, n),
                               rng.uniform(0.6, 0.65, n)])
    k = rng.integers(1, 600000, n) * (np.pi / 2)  # near multiples of pi/2: the reduction cancels
    return np.concatenate([rng.uniform(-vecmath.TRIG_MAX, vecmath.TRIG_MAX, n),
                           signed_log_uniform(rng, -40, np.log2(vecmath.TRIG_MAX), n),
                           k, np.nextafter(k, np.inf), np.nextafter(k, -np.inf)])


SPECIALS = {
    "exp": [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 709.78, 709.79, 710.0, 1e308, -745.13, -745.14,
            -1e308, 5e-324, -5e-324, 1e-300, 0.34657359027997264, -0.34657359027997264],
    "log": [0.0, -0.0, -1.0, -np.inf, np.inf, np.nan, 1.0, 5e-324, 2.2250738585072014e-308,
            1.7976931348623157e308, 1.0000000000000002, 0.9999999999999999, np.e, 0.7071067811865476],
    "tanh": [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-300, 0.625, -0.625, 0.6249999999999999,
             19.0, 19.1, -19.1, 22.0, 1e300, -1e300],
    "sin": [0.0, -0.0, np.nan, 5e-324, -5e-324, 1e-300, 7.450580596923828e-09, np.pi, np.pi / 2, -np.pi / 2,
            vecmath.TRIG_MAX, -vecmath.TRIG_MAX, 1e5, 355.0, 103993.0],
}
SPECIALS["cos"] = SPECIALS["sin"]


# -- accuracy --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(NUMPY))
def test_float64_accuracy_over_random_inputs(name):
    x = random_inputs(name)
    errors = ulp_errors(name, x, apply(name, x))
    assert errors.max() <= BOUND[np.float64][name] + SLACK, (errors.max(), x[np.argmax(errors)])


@pytest.mark.parametrize("name", sorted(NUMPY))
def test_float32_accuracy_over_random_inputs(name):
    x = random_inputs(name, seed=1).astype(np.float32)
    x = x[np.isfinite(x) & ((np.abs(x) <= vecmath.TRIG_MAX) | (name not in ("sin", "cos")))]
    got = apply(name, x)
    assert got.dtype == np.float32
    errors = ulp_errors(name, x, got)
    assert errors.max() <= BOUND[np.float32][name] + SLACK, (errors.max(), x[np.argmax(errors)])
    assert_specials(name, x, got)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NUMPY))
def test_special_values(name, dtype):
    x = np.array(SPECIALS[name], dtype=dtype)
    got = apply(name, x)
    assert_specials(name, x, got)
    assert ulp_errors(name, x, got).max() <= BOUND[dtype][name] + SLACK


def test_subnormal_inputs_and_results():
    tiny = np.array([5e-324, 1e-320, 2e-310, 2.2250738585072009e-308])
    np.testing.assert_array_equal(apply("exp", tiny), 1.0)
    np.testing.assert_array_equal(apply("sin", tiny), tiny)  # sin(x) rounds to x
    np.testing.assert_array_equal(apply("tanh", -tiny), -tiny)
    np.testing.assert_array_equal(apply("cos", tiny), 1.0)
    assert ulp_errors("log", tiny, apply("log", tiny)).max() <= BOUND[np.float64]["log"] + SLACK
    down = np.linspace(-745.1, -708.5, 2001)  # results through the whole subnormal range
    got = apply("exp", down)
    assert np.all(got > 0) and np.any(got < 2.2250738585072014e-308)
    assert ulp_errors("exp", down, got).max() <= BOUND[np.float64]["exp"] + SLACK


def test_trig_fallback_marks_what_needs_libm():
    @njit
    def marks(x):
        return np.array([vecmath.trig_fallback(v) for v in x])

    m = vecmath.TRIG_MAX
    x = np.array([0.0, m, -m, np.nextafter(m, np.inf), -np.nextafter(m, np.inf), 1e300, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(marks(x), [False, False, False, True, True, True, True, True, False])


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(DTYPES).flatmap(lambda dt: st.tuples(
    st.just(dt), st.lists(st.floats(width=np.finfo(dt).bits), min_size=1, max_size=40))),
    st.sampled_from(sorted(NUMPY)))
def test_any_float_agrees_with_numpy(dtype_values, name):
    dtype, values = dtype_values
    x = np.array(values, dtype=dtype)
    if name in ("sin", "cos"):
        x = x[~(np.abs(x) > vecmath.TRIG_MAX)]  # NaN stays: the fast path propagates it
    if x.size == 0:
        return
    got = apply(name, x)
    want = NUMPY[name](x)
    np.testing.assert_array_max_ulp(got, want, maxulp=2)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


# -- vector code --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NUMPY))
def test_loops_vectorise_without_calls(name, dtype):
    loop = elementwise(name, dtype)
    apply(name, np.ones(4, dtype))
    ir = loop.inspect_llvm(loop.signatures[0])
    assert re.search(r"<\d+ x (double|float)>", ir), "the loop was not vectorised"
    called = set(re.findall(r"call [^(]*@([\w.]+)\(", ir))
    assert not {c for c in called if re.search(r"exp|log|tanh|sin|cos", c)}, called


# -- jitted programs through the Numba backend ----------------------------------------------------------
def compiled_and_interpreted(f, *args):
    graph = fg.make_graph(f)(*args)
    leaves = [np.asarray(a) for a in args]
    return graph, numba_cpu.compile(graph)(leaves), interpreter.compile(graph)(leaves)


def source_of(graph):
    return Emitter(planmod.make_plan(graph), planmod.RULES).build().source()


def edge_array(dtype, n):
    rng = np.random.default_rng(7)
    x = rng.uniform(-4, 4, n).astype(dtype)
    x[:12] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 80.0, -80.0, 700.0, -750.0, 3.0]
    return x


UNARY = {"exp": fnp.exp, "log": lambda x: fnp.log(fnp.abs(x)), "tanh": fnp.tanh, "sin": fnp.sin, "cos": fnp.cos}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sin", "cos"])
def test_jitted_elementwise_matches_interpreter(name, dtype):
    x = edge_array(dtype, 300)
    graph, got, want = compiled_and_interpreted(lambda x: UNARY[name](x) * 2.0, x)
    np.testing.assert_array_max_ulp(got[0], want[0], maxulp=2)  # NumPy's own functions are not exact
    assert f"_vm.{name}{np.finfo(dtype).bits}(" in source_of(graph) or (name, dtype) == ("tanh", np.float32)


def test_jitted_logistic_uses_vector_exp():
    x = edge_array(np.float64, 200)
    graph, got, want = compiled_and_interpreted(expit, x)
    np.testing.assert_array_max_ulp(got[0], want[0], maxulp=2)
    assert "_vm.exp64(" in source_of(graph)


@pytest.mark.parametrize("dtype", DTYPES)
def test_trig_beyond_the_reduction_range_runs_again_through_libm(dtype):
    x = np.concatenate([np.linspace(-3, 3, 50), [2e6, -3.5e7, 1e30, np.inf, np.nan]]).astype(dtype)

    def f(x):
        y = fnp.sin(x) * fnp.cos(2.0 * x)
        return y, fnp.sum(fnp.cos(x[:50])), fnp.max(fnp.sin(x + 1.0))

    graph, got, want = compiled_and_interpreted(f, x)
    np.testing.assert_array_max_ulp(got[0], want[0], maxulp=3)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12 if dtype == np.float64 else 1e-5)
    np.testing.assert_array_equal(got[2], want[2])  # NaN from sin(inf), as NumPy gives
    source = source_of(graph)
    assert "_vm.trig_fallback(" in source and "np.sin(" in source  # the guarded libm nest


@pytest.mark.parametrize("dtype", DTYPES)
def test_libm_pass_refills_the_arrays_of_the_first(dtype):
    """The libm nest writes into the arrays the first nest filled (the caller's) and restarts
    the partial sums it keeps along an axis."""
    x = np.linspace(-3, 3, 24).astype(dtype).reshape(4, 6)
    x[2, 3] = 1e30

    def f(x):
        s = fnp.sin(x)
        return s * 2.0, fnp.sum(fnp.cos(s * x), axis=0), fnp.max(fnp.sin(x), axis=1)

    graph, got, want = compiled_and_interpreted(f, x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12 if dtype == np.float64 else 1e-5, atol=1e-6)
    assert ".fill(" in source_of(graph)


def test_a_scalar_cluster_calls_libm_without_a_second_pass():
    graph = fg.make_graph(lambda t: fnp.cos(t * 3.0) + 1.0)(np.float64(0.25))
    source = source_of(graph)
    assert "np.cos(" in source and "trig_fallback" not in source and "_vm.cos64" not in source


def test_large_gradient_matches_interpreter_on_threads():
    """The B3 workload's gradient, large enough for the threaded loop, with edge values inside."""
    x = edge_array(np.float64, planmod.PARALLEL_MIN + 5)
    x[20:30] = [1e7, -1e7, 4e6, 1e-310, -1e-310, 25.0, -25.0, 0.625, -19.5, 709.0]
    grad = fg.grad(lambda x: fnp.sum(fnp.tanh(x) * fnp.exp(-x ** 2) + 0.5 * fnp.sin(3 * x)))
    graph, got, want = compiled_and_interpreted(grad, x)
    plan = planmod.make_plan(graph)
    nodes = [n for k, s in plan.steps if k == "segment" for n in s.nodes]
    assert any(n.parallel for n in nodes) and not any(n.chunked for n in nodes)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13, atol=1e-15, equal_nan=True)
