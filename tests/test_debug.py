"""funcgrad.debug: printing inside jit/grad/vmap, NaN provenance, graph inspection, compile logs."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import debug
from funcgrad.errors import FuncgradError, FuncgradValueError, GraphvizNotFoundError

JIT = {"device": "interpreter"}
DEVICES = ["interpreter", "cpu"]  # cpu: the Numba backend runs debug_print through Python glue


def lines_of(capsys):
    return capsys.readouterr().out.strip().splitlines()


def line_of(fn, text):
    """The line number in this file of ``text`` inside function ``fn``."""
    import inspect

    src, start = inspect.getsourcelines(fn)
    for i, s in enumerate(src):
        if text in s:
            return start + i
    raise AssertionError(f"{text!r} not in {fn.__name__}")


@pytest.fixture
def nans_on():
    fg.config.update("debug_nans", True)
    yield
    fg.config.update("debug_nans", False)


# -- debug.print ---------------------------------------------------------------------------
def test_print_eager_positional_keyword_and_format_spec(capsys):
    debug.print("a={} b={b:.2f}", np.arange(3), b=np.float64(2.0))
    assert lines_of(capsys) == ["a=[0 1 2] b=2.00"]


def f_printing(x):
    y = fnp.sin(x)
    debug.print("x={x} y={y}", x=x, y=y)
    debug.print("constant {}", 3.0)
    debug.print("no values")
    return fnp.sum(y * y)


@pytest.mark.parametrize("device", DEVICES)
def test_print_inside_jit_runs_every_call_in_program_order(capsys, device):
    jf = fg.jit(f_printing, device=device)
    x = np.array([0.0, 1.0])
    for _ in range(2):
        jf(x)
        assert lines_of(capsys) == [f"x={x} y={np.sin(x)}", "constant 3.0", "no values"]
    assert jf.trace_count == 1
    graph = fg.make_graph(f_printing)(x)
    assert [e.prim.name for e in graph.eqns].count("debug_print") == 3  # kept by DCE


def test_print_inside_grad_and_jvp_shows_primal_values(capsys):
    x = np.array([0.5, 2.0])
    g = fg.grad(f_printing)(x)
    np.testing.assert_allclose(g, 2 * np.sin(x) * np.cos(x))
    assert lines_of(capsys)[0] == f"x={x} y={np.sin(x)}"
    fg.jvp(f_printing, (x,), (np.ones(2),))
    assert lines_of(capsys)[0] == f"x={x} y={np.sin(x)}"


def test_print_under_vmap_one_line_per_element(capsys):
    def f(x, w):
        debug.print("x={} w={}", x, w)
        return x * w

    xs = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    fg.vmap(f, in_axes=(0, None))(xs, np.float64(7.0))
    assert lines_of(capsys) == [f"x={r} w=7.0" for r in xs]
    fg.jit(fg.vmap(f, in_axes=(0, None)), **JIT)(xs, np.float64(7.0))  # staged batched print
    assert lines_of(capsys) == [f"x={r} w=7.0" for r in xs]
    fg.vmap(fg.vmap(lambda v: f(v, v)))(xs)  # nested: row-major order over both batch axes
    assert lines_of(capsys) == [f"x={v} w={v}" for v in xs.ravel()]


@pytest.mark.parametrize("device", DEVICES)
def test_print_cotangents_shows_backward_values(capsys, device):
    def loss(w):
        h = debug.print_cotangents("dL/dh={}", fnp.tanh(w))
        return fnp.sum(h ** 2)

    w = np.array([0.3, -1.0])
    g = fg.grad(loss)(w)
    (line,) = lines_of(capsys)
    printed = np.array([float(v) for v in re.findall(r"-?\d+\.\d+", line)])
    np.testing.assert_allclose(printed, 2 * np.tanh(w), rtol=1e-6)  # dL/dh = 2 h
    np.testing.assert_allclose(g, 2 * np.tanh(w) * (1 - np.tanh(w) ** 2))
    fg.jit(fg.grad(loss), device=device)(w)
    assert lines_of(capsys) == [line]


@pytest.mark.parametrize("device", DEVICES)
def test_print_inside_jitted_value_and_grad_of_mlp(capsys, device):
    """A 64-32-10 MLP on digits-sized inputs: the jitted training step prints real numbers."""
    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(0, 0.1, (64, 32)), "b1": np.zeros(32),
              "w2": rng.normal(0, 0.1, (32, 10)), "b2": np.zeros(10)}
    x = rng.normal(size=(16, 64))
    labels = rng.integers(0, 10, 16)

    def loss(p, x, y):
        h = fnp.tanh(x @ p["w1"] + p["b1"])
        debug.print("hidden mean {m:.6f}", m=fnp.mean(h))
        h = debug.print_cotangents("dL/dh {}", h)
        logits = h @ p["w2"] + p["b2"]
        logp = logits - fg.scipy.special.logsumexp(logits, axis=1, keepdims=True)
        value = -fnp.mean(logp[np.arange(16), y])
        debug.print("loss {l:.6f}", l=value)
        return value

    step = fg.jit(fg.value_and_grad(loss), device=device)
    value, grads = step(params, x, labels)
    out = lines_of(capsys)
    h = np.tanh(x @ params["w1"])
    assert out[0] == f"hidden mean {h.mean():.6f}"
    assert out[1] == f"loss {float(value):.6f}"
    assert out[2].startswith("dL/dh [[")
    assert np.isfinite(value) and value > 0
    assert set(grads) == set(params)
    step(params, x, labels)  # the compiled step prints again, with the same numbers
    assert lines_of(capsys) == out


def test_print_format_error_names_the_line():
    def f(x):
        debug.print("{missing}", x=x)
        return x

    with pytest.raises(FuncgradValueError) as exc:
        fg.jit(f, **JIT)(np.ones(2))
    assert "debug.print" in str(exc.value) and "'{missing}'" in str(exc.value)
    assert f"test_debug.py:{line_of(f, 'missing')}" in str(exc.value)


# -- NaN provenance --------------------------------------------------------------------------
def sqrt_loss(x):
    y = x * 2.0
    z = fnp.sqrt(y)  # the derivative 0.5 / sqrt(0) is Inf
    return fnp.sum(z)


@pytest.mark.parametrize("wrap", ["eager", "jit"])
def test_nan_in_backward_pass_of_sqrt_points_at_the_sqrt_line(nans_on, wrap):
    g = fg.grad(sqrt_loss)
    if wrap == "jit":
        g = fg.jit(g, **JIT)
    # eager, the backward rules run with NumPy's warnings off; jitted, debug_nans re-runs the
    # step's equations one by one in NumPy, and the division by 0 warns on the way
    warns = pytest.warns(RuntimeWarning) if wrap == "jit" else contextlib.nullcontext()
    with warns, pytest.raises(FloatingPointError) as exc:
        g(np.zeros(3))
    msg = str(exc.value)
    assert isinstance(exc.value, FuncgradError)
    assert "Inf" in msg
    assert f"test_debug.py:{line_of(sqrt_loss, 'fnp.sqrt')}" in msg
    assert "z = fnp.sqrt(y)" in msg  # the code of that line
    if wrap == "eager":
        assert "backward pass of 'sqrt'" in msg


@pytest.mark.parametrize("wrap", ["eager", "jit", "jvp"])
def test_nan_in_forward_pass_names_primitive_shapes_and_line(nans_on, wrap):
    def f(x):
        a = x + 1.0
        b = fnp.log(a)
        return b * 2.0

    x = np.full((2, 3), -2.0)
    run = {"eager": f, "jit": fg.jit(f, **JIT),
           "jvp": lambda x: fg.jvp(f, (x,), (np.ones((2, 3)),))}[wrap]
    with pytest.warns(RuntimeWarning), pytest.raises(FloatingPointError) as exc:
        run(x)
    msg = str(exc.value)
    assert "primitive 'log' produced NaN" in msg and "f64[2,3]" in msg
    assert f"test_debug.py:{line_of(f, 'fnp.log')}" in msg


def test_nan_from_custom_vjp_rule_names_the_function(nans_on):
    @fg.custom_vjp
    def clip(x):
        return x

    clip.defvjp(lambda x: (x, None), lambda res, g: (np.asarray(g) * np.nan,))
    with pytest.raises(FloatingPointError, match="custom function 'clip'"):
        fg.grad(lambda x: fnp.sum(clip(x)))(np.ones(2))


def test_no_check_when_flag_is_off():
    with np.errstate(all="ignore"):
        g = fg.grad(sqrt_loss)(np.zeros(2))
    assert np.isinf(g).all()


def test_debug_nans_from_environment_variable(tmp_path):
    script = tmp_path / "nan.py"
    script.write_text("import numpy as np, funcgrad.numpy as fnp\n"
                      "import warnings; warnings.simplefilter('ignore')\n"
                      "fnp.log(-np.ones(2))\n")
    env = dict(os.environ, FUNCGRAD_DEBUG_NANS="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "FuncgradFloatingPointError" in proc.stderr and "nan.py:3" in proc.stderr


# -- graph inspection ------------------------------------------------------------------------
def two_lines(x):
    y = fnp.sin(x) * 2.0
    return fnp.sum(y ** 2)


def test_graph_listing_shows_source_lines_on_request():
    x = np.ones(3)
    plain = str(fg.make_graph(two_lines)(x))
    assert "test_debug.py" not in plain
    listing = str(fg.make_graph(two_lines, source_info=True)(x))
    line = line_of(two_lines, "fnp.sin")
    assert f"= sin a    # test_debug.py:{line}  y = fnp.sin(x) * 2.0" in listing
    assert f"# test_debug.py:{line + 1}  return fnp.sum(y ** 2)" in listing
    assert fg.make_graph(two_lines)(x).to_text(source=True) == listing
    assert f"sin\\ntest_debug.py:{line}" in fg.make_graph(two_lines)(x).to_dot(source=True)


def test_backward_equations_carry_the_forward_line_under_debug_nans(nans_on):
    graph = fg.make_graph(fg.grad(sqrt_loss))(np.ones(2))
    line = f"test_debug.py:{line_of(sqrt_loss, 'fnp.sqrt')}"
    div = [e for e in graph.eqns if e.prim.name == "div"]
    assert div and all(e.source.endswith(line) for e in div)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_to_svg_renders_with_graphviz(tmp_path):
    graph = fg.make_graph(two_lines)(np.ones(3))
    path = tmp_path / "g.svg"
    svg = graph.to_svg(str(path), source=True)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert path.read_text() == svg
    assert ">sin</text>" in svg


def test_to_svg_without_graphviz_says_what_to_do(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError) as exc:
        fg.make_graph(two_lines)(np.ones(3)).to_svg()
    assert isinstance(exc.value, GraphvizNotFoundError)
    assert "dot" in str(exc.value) and "install graphviz" in str(exc.value).lower()


# -- compile log ------------------------------------------------------------------------------
def test_log_compiles_explains_each_retrace(caplog):
    fg.config.update("log_compiles", True)
    try:
        jf = fg.jit(lambda x, n: x * n, static_argnums=1, **JIT)
        with caplog.at_level(logging.WARNING, logger="funcgrad"):
            jf(np.ones(3), 2)
            jf(np.ones(3), 2)  # cached: no log
            jf(np.ones(4), 2)
            jf(np.ones(4, np.float32), 2)
            jf(np.ones(4, np.float32), 3)
            jf((np.ones(4),), 3)
    finally:
        fg.config.update("log_compiles", False)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 5
    assert "first call" in msgs[0]
    assert "new shapes/dtypes (leaf 0: float64[3] -> float64[4])" in msgs[1]
    assert "float64[4] -> float32[4]" in msgs[2]
    assert "new static argument values {1: 3}" in msgs[3]
    assert "new pytree structure" in msgs[4]
