"""``jit``: tracing once per signature, the fast call path, tiered compilation, errors."""
import logging
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest
from _compile_mode import sync_compile  # noqa: F401  (autouse: compile synchronously)

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.errors import ConcretizationError, FuncgradError, UnexpectedTracerError


def f_poly(x, y):
    return fnp.sum(fnp.sin(x) * y + x * x)


def test_same_signature_traces_once_new_shape_or_dtype_retraces():
    f = fg.jit(f_poly)
    x, y = np.linspace(0, 1, 5), np.ones(5)
    r1 = f(x, y)
    f(x + 1.0, y * 2.0)
    assert f.trace_count == 1
    f(np.ones(6), np.ones(6))
    assert f.trace_count == 2
    f(x.astype(np.float32), y.astype(np.float32))
    assert f.trace_count == 3
    f(x, y)
    assert f.trace_count == 3
    np.testing.assert_allclose(r1, np.sum(np.sin(x) * y + x * x))


def test_pytree_structure_and_python_scalars_are_part_of_the_signature():
    f = fg.jit(lambda p, s: p["w"] * s + p["b"])
    p = {"w": np.ones(3), "b": np.zeros(3)}
    f(p, 2.0)
    f(p, 3.0)
    assert f.trace_count == 1
    np.testing.assert_allclose(f(p, 3.0), np.full(3, 3.0))
    f({"w": np.ones(3), "b": np.zeros(3), "c": np.zeros(1)}, 2.0)
    assert f.trace_count == 2
    g = fg.jit(lambda xs: xs[0] + xs[1])
    g([np.ones(2), np.ones(2)])
    g((np.ones(2), np.ones(2)))  # a tuple is another structure than a list
    assert g.trace_count == 2


def test_static_arguments_key_the_cache():
    f = fg.jit(lambda x, n: x ** n, static_argnums=1)
    np.testing.assert_allclose(f(np.full(2, 2.0), 3), np.full(2, 8.0))
    f(np.full(2, 2.0), 3)
    f(np.full(2, 2.0), 2)
    assert f.trace_count == 2
    g = fg.jit(lambda x, *, mode: x * 2 if mode == "double" else x, static_argnames="mode")
    np.testing.assert_allclose(g(np.ones(2), mode="double"), np.full(2, 2.0))
    np.testing.assert_allclose(g(np.ones(2), mode="same"), np.ones(2))


def test_output_structures_are_rebuilt():
    Pair = namedtuple("Pair", "a b")

    @fg.jit
    def f(x):
        return {"sum": fnp.sum(x), "parts": (x * 2, [x + 1, None])}, Pair(x, -x)

    out, pair = f(np.arange(3.0))
    assert set(out) == {"sum", "parts"}
    assert type(out["sum"]) is np.ndarray and out["sum"].shape == ()
    assert out["parts"][1][1] is None
    assert isinstance(pair, Pair)
    np.testing.assert_allclose(pair.b, -np.arange(3.0))


def test_jit_of_grad_matches_grad_and_float32_stays_float32():
    x = np.linspace(-1, 1, 7).astype(np.float32)
    g = fg.jit(fg.grad(lambda x: fnp.sum(fnp.tanh(x) ** 2 + fnp.exp(x) * 0.5)))
    out = g(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, fg.grad(lambda x: fnp.sum(fnp.tanh(x) ** 2 + fnp.exp(x) * 0.5))(x),
                               rtol=1e-5)


def test_tiered_compilation_serves_the_interpreter_then_compiled_code():
    fg.config.update("async_compile", True)
    f = fg.jit(lambda x: fnp.cumsum(fnp.sin(x)) * 3.0 - fnp.max(x))
    x = np.linspace(0, 2, 9)
    want = np.cumsum(np.sin(x)) * 3.0 - np.max(x)
    first = f(x)  # answered while the backend may still be compiling
    assert f.wait_compiled(timeout=120)
    entry = next(iter(f._cache.values()))
    assert entry.run.__module__ != "funcgrad.backends.interpreter"
    np.testing.assert_allclose(first, want, rtol=1e-12)
    np.testing.assert_allclose(f(x), want, rtol=1e-12)
    assert f.trace_count == 1


def test_log_compiles_names_the_reason(caplog):
    fg.config.update("log_compiles", True)
    try:
        f = fg.jit(lambda x: x * 2.0)
        with caplog.at_level(logging.WARNING, logger="funcgrad"):
            f(np.ones(2))
            f(np.ones(3))
    finally:
        fg.config.update("log_compiles", False)
    text = caplog.text
    assert "first call" in text and "new shapes/dtypes" in text


def test_disable_jit_runs_python():
    seen = []

    @fg.jit
    def f(x):
        seen.append(type(x))
        return x + 1

    with fg.disable_jit():
        f(np.ones(2))
    assert seen == [np.ndarray]


# -- errors -------------------------------------------------------------------------------------------
def branchy(x):
    if x.sum() > 0:  # Python control flow on a traced value
        return x
    return -x


def test_python_if_on_traced_value_names_the_user_line():
    with pytest.raises(ConcretizationError) as err:
        fg.jit(branchy)(np.ones(3))
    msg = str(err.value)
    assert "test_jit.py" in msg and str(branchy.__code__.co_firstlineno + 1) in msg
    assert isinstance(err.value, TypeError) and isinstance(err.value, FuncgradError)


@pytest.mark.parametrize("convert", [bool, float, int])
def test_concrete_conversions_of_traced_values_raise(convert):
    with pytest.raises(ConcretizationError, match="test_jit.py"):
        fg.jit(lambda x: x * convert(fnp.sum(x)))(np.ones(2))


def test_unhashable_static_argument_is_named():
    f = fg.jit(lambda x, opts: x * len(opts), static_argnums=1)
    with pytest.raises(TypeError, match="static argument 1 of type list is not hashable"):
        f(np.ones(2), [1, 2])
    g = fg.jit(lambda x, *, opts: x, static_argnames="opts")
    with pytest.raises(TypeError, match="argument 'opts' of type dict"):
        g(np.ones(2), opts={})


def test_leaked_tracer_raises_when_used_later():
    leaked = []

    @fg.jit
    def f(x):
        leaked.append(x * 2)
        return x

    f(np.ones(2))
    with pytest.raises(UnexpectedTracerError, match="escaped"):
        fnp.sin(leaked[0])


def test_importing_funcgrad_does_not_import_numba():
    code = "import funcgrad, sys; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
