"""dtypes: float32 stays float32 through every function and every transform, Python scalars
never upcast (NumPy 2, NEP 50), integer and bool results follow NumPy, and asking for the
derivative with respect to an integer argument is a TypeError naming it."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_numpy_api import CASES, DIFF, resolve

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradTypeError
from funcgrad.tree_util import tree_flatten, tree_map


def _to(dtype):
    def conv(x):
        if isinstance(x, np.ndarray) and x.dtype == np.float64:
            return x.astype(dtype)
        return x

    return conv


def _leaves(tree):
    return [np.asarray(x) for x in tree_flatten(tree)[0]]


def _draw32(name, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    args, kwargs = CASES[name](data, rng)
    conv = _to(np.float32)
    args = tree_map(conv, list(args))
    kwargs = {k: conv(v) for k, v in kwargs.items()}
    return args, kwargs


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_float32_inputs_give_numpys_dtypes(name, data):
    args, kwargs = _draw32(name, data)
    expected = resolve(name, ours=False)(*args, **kwargs)
    got = resolve(name)(*args, **kwargs)
    for g, e in zip(_leaves(got), _leaves(expected), strict=True):
        if name == "special.xlogy":  # SciPy's xlogy upcasts float32 for a Python float; NEP 50 does not
            dt = np.result_type(*[a.dtype if isinstance(a, np.ndarray) else a for a in args])
            e = np.asarray(e, dt if dt.kind == "f" else np.float64)
        assert g.dtype == e.dtype, f"{name}: {g.dtype} where NumPy gives {e.dtype}"


@pytest.mark.parametrize("name", sorted(DIFF))
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_float32_derivatives_stay_float32(name, data):
    args, kwargs = _draw32(name, data)
    leaves, treedef = tree_flatten(list(args))
    pos = [i for i, x in enumerate(leaves) if isinstance(x, np.ndarray) and x.dtype == np.float32]
    if not pos:
        return

    def f(*xs):
        full = list(leaves)
        for i, x in zip(pos, xs):
            full[i] = x
        return resolve(name)(*treedef.unflatten(full), **kwargs)

    xs = [leaves[i] for i in pos]
    out, tangent = fg.jvp(f, tuple(xs), tuple(np.ones_like(x) for x in xs))
    out_dtypes = [o.dtype for o in _leaves(out)]
    assert [t.dtype for t in _leaves(tangent)] == out_dtypes
    out, vjp_fn = fg.vjp(f, *xs)
    cts = vjp_fn(tree_map(lambda o: np.ones_like(o), out))
    assert [c.dtype for c in cts] == [np.dtype(np.float32)] * len(xs)


def _f32_loss(x, y):
    return fnp.sum(fnp.tanh(x * 2.0 + 1) * y ** 2) / 3 + fnp.mean(fnp.exp(-x)) + 0.5


@pytest.mark.parametrize("transform", ["grad", "value_and_grad", "jacfwd", "jacrev", "hessian", "vjp", "jvp",
                                       "linearize", "grad_of_grad"])
def test_every_transform_keeps_float32(transform):
    x = np.linspace(-1, 1, 3, dtype=np.float32)
    y = np.float32(0.5) * np.ones(3, np.float32)
    if transform == "grad_of_grad":
        res = fg.grad(lambda a: fg.grad(_f32_loss)(a, y).sum())(x)
    elif transform == "vjp":
        out, vjp_fn = fg.vjp(_f32_loss, x, y)
        res = (out,) + vjp_fn(np.float32(1))
    elif transform == "jvp":
        res = fg.jvp(_f32_loss, (x, y), (x, y))
    elif transform == "linearize":
        out, f_jvp = fg.linearize(_f32_loss, x, y)
        res = (out, f_jvp(x, y))
    else:
        res = getattr(fg, transform)(_f32_loss, argnums=(0, 1))(x, y)
    for leaf in _leaves(res):
        assert leaf.dtype == np.float32


def test_jvp_tangents_take_the_primal_dtype():
    out, t = fg.jvp(lambda v: v * 2.0, (np.ones(2, np.float32),), (np.ones(2),))
    assert out.dtype == t.dtype == np.float32
    out, t = fg.jvp(lambda v: v * 2.0, (1.5,), (1,))
    assert t.dtype == np.float64 and float(t) == 2.0


def test_python_scalars_do_not_upcast():
    x = np.ones(3, np.float32)
    for fn in (lambda v: v * 2.5, lambda v: 1.0 / v, lambda v: v ** 2.0, lambda v: v - 3,
               lambda v: fnp.maximum(v, 0.0), lambda v: fnp.where(v > 0, v, 0.0), lambda v: fnp.clip(v, 0, 1.5),
               lambda v: fnp.power(v, 3), lambda v: fnp.arctan2(v, 1.0), lambda v: fnp.hypot(v, 2)):
        assert fn(x).dtype == np.float32
        assert fg.grad(lambda v, fn=fn: fnp.sum(fn(v)))(x).dtype == np.float32
    assert (np.ones(2, np.int32) + 5).dtype == (fnp.add(np.ones(2, np.int32), 5)).dtype == np.int32
    assert fnp.add(np.ones(2, np.uint8), 3).dtype == np.uint8
    # a NumPy float64 scalar is not weak: NumPy 2 promotes
    assert fnp.multiply(x, np.float64(2.0)).dtype == np.float64


def test_nothing_is_silently_float64_inside_traces():
    def f(x):
        h = fnp.sum(x ** 2) + fnp.linalg.norm(x) + fnp.mean(x) + fnp.var(x) + fnp.std(x + 1)
        assert h.dtype == np.float32
        return h

    assert fg.grad(f)(np.array([0.5, 1.5], np.float32)).dtype == np.float32


def test_integer_and_bool_results_carry_no_gradient():
    def f(x):
        i = fnp.argmax(x)
        mask = x > 0
        return fnp.sum(fnp.where(mask, x, 0.0)) * (i + 1)

    x = np.array([-1.0, 2.0, 0.5])
    np.testing.assert_allclose(fg.grad(f)(x), [0.0, 2.0, 2.0])
    assert fnp.argmax(x).dtype == np.argmax(x).dtype
    assert fnp.greater(x, 0).dtype == np.bool_
    assert fnp.sum(np.array([True, False, True])).dtype == np.sum(np.array([True, False])).dtype
    assert fnp.sum(np.array([1, 2], np.int32)).dtype == np.sum(np.array([1, 2], np.int32)).dtype


@pytest.mark.parametrize("transform", ["grad", "value_and_grad", "jacfwd", "jacrev", "hessian"])
@pytest.mark.parametrize("bad", [np.int32(3), 3, np.array([1, 2]), True, np.array([True])])
def test_derivative_wrt_integer_raises_type_error_naming_the_argument(transform, bad):
    def f(x, count):
        return fnp.sum(x * count)

    with pytest.raises(TypeError, match=r"argument 1 \('count'\)") as info:
        getattr(fg, transform)(f, argnums=1)(np.ones(2), bad)
    assert isinstance(info.value, fg.errors.FuncgradError)
    # leaving the integer out of argnums is fine
    res = getattr(fg, transform)(f)(np.ones(2), bad)
    assert all(leaf.dtype == np.float64 for leaf in _leaves(res))


def test_integer_leaf_inside_a_pytree_argument_raises():
    with pytest.raises(TypeError, match="argument 0"):
        fg.grad(lambda p: p["w"] * p["n"])({"w": 1.0, "n": 2})


def test_copysign_keeps_float32():
    x, y = np.array([1.0, -2.0], np.float32), np.array([-1.0, 1.0], np.float32)
    for f in (fnp.copysign, fg.jit(fnp.copysign)):
        out = f(x, y)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, np.copysign(x, y))


@pytest.mark.parametrize("fn", [fnp.sin, fnp.exp, fnp.sqrt, fg.jit(fnp.tanh), lambda z: fnp.arctan2(z, 1.0)],
                         ids=["sin", "exp", "sqrt", "jit-tanh", "arctan2"])
def test_a_complex_operand_is_refused_not_cast_to_real(fn):
    with pytest.raises(FuncgradTypeError, match="does not support dtype complex128"):
        fn(np.ones(2) + 1j)
