"""One test per user error of the core: each raises the fitting built-in type, is a
FuncgradError, names what went wrong (shapes, dtypes, argument) and the user's line."""
from __future__ import annotations

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradError, ShapeError, UnexpectedTracerError

HERE = __file__.rsplit("/", 1)[-1]


def _check(info, *needles):
    msg = str(info.value)
    assert isinstance(info.value, FuncgradError), type(info.value).__mro__
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    assert HERE in msg, f"the user's file is not named in {msg!r}"


@pytest.mark.parametrize("mode", ["eager", "grad", "jvp", "make_graph"])
def test_shape_mismatch_names_both_shapes(mode):
    def f(x):
        return fnp.sum(fnp.add(x, np.ones(4)))

    x = np.ones(3)
    run = {"eager": lambda: f(x), "grad": lambda: fg.grad(f)(x), "jvp": lambda: fg.jvp(f, (x,), (x,)),
           "make_graph": lambda: fg.make_graph(f)(x)}[mode]
    with pytest.raises(ValueError) as info:
        run()
    _check(info, "(3,)", "(4,)")
    assert isinstance(info.value, ShapeError)


@pytest.mark.parametrize("fn, shapes", [
    (fnp.matmul, [(2, 3), (2, 3)]),
    (fnp.dot, [(4,), (3,)]),
    (lambda a, b: fnp.reshape(a, (5, -1)) + b, [(2, 3), (1,)]),
    (lambda a, b: fnp.concatenate([a, b]), [(2, 3), (2, 4)]),
    (fnp.linalg.solve, [(3, 3), (2,)]),
    (lambda a, b: fnp.where(a > 0, a, b), [(2, 3), (4,)]),
])
def test_shape_errors_of_other_operations(fn, shapes):
    args = [np.ones(s) for s in shapes]
    with pytest.raises(ValueError) as info:
        fg.grad(lambda *xs: fnp.sum(fn(*xs)))(*args)
    _check(info, str(shapes[0]))


def test_grad_of_non_scalar_output():
    with pytest.raises(TypeError) as info:
        fg.grad(lambda x: x * 2.0)(np.ones((2, 3)))
    _check(info, "scalar", "(2, 3)", "jacrev")


def test_grad_of_non_float_output():
    with pytest.raises(TypeError) as info:
        fg.grad(lambda x: fnp.argmax(x))(np.ones(3))
    _check(info, "int64")


def test_grad_with_respect_to_integer_input():
    def f(x, steps):
        return fnp.sum(x) * steps

    with pytest.raises(TypeError) as info:
        fg.grad(f, argnums=(0, 1))(np.ones(2), 3)
    _check(info, "argument 1 ('steps')", "int64", "float")


def test_vjp_cotangent_of_wrong_structure():
    _, vjp_fn = fg.vjp(lambda x: (x * 2.0, {"s": fnp.sum(x)}), np.ones(3))
    with pytest.raises(ValueError) as info:
        vjp_fn((np.ones(3), np.ones(())))
    _check(info, "structure", "'s'")
    with pytest.raises(ValueError) as info:
        vjp_fn([np.ones(3), {"s": 1.0}])
    _check(info, "structure")


def test_vjp_cotangent_of_wrong_shape():
    _, vjp_fn = fg.vjp(lambda x: x * 2.0, np.ones(3))
    with pytest.raises(ValueError) as info:
        vjp_fn(np.ones(4))
    _check(info, "(4,)", "(3,)")


@pytest.mark.parametrize("transform", ["grad", "value_and_grad", "jacfwd", "jacrev", "hessian"])
def test_unknown_argnums(transform):
    def f(x, y):
        return fnp.sum(x * y)

    with pytest.raises(ValueError) as info:
        getattr(fg, transform)(f, argnums=(0, 2))(np.ones(2), np.ones(2))
    _check(info, "argnums", "2 positional arguments")
    with pytest.raises(TypeError) as info:
        getattr(fg, transform)(f, argnums=(0, "y"))(np.ones(2), np.ones(2))
    assert isinstance(info.value, FuncgradError) and "argnums" in str(info.value)


def test_leaked_tracer_used_after_its_transformation_ended():
    leaked = []

    def f(x):
        leaked.append(x * 2.0)
        return fnp.sum(x)

    fg.grad(f)(np.ones(2))
    with pytest.raises(UnexpectedTracerError) as info:
        fnp.sin(leaked[0])
    _check(info, "escaped", "grad")
    assert isinstance(info.value, TypeError)
    with pytest.raises(UnexpectedTracerError):
        fg.grad(lambda y: fnp.sum(y * leaked[0]))(np.ones(2))


def test_in_place_assignment_on_a_traced_array():
    def f(x):
        x[0] = 1.0
        return fnp.sum(x)

    with pytest.raises(TypeError) as info:
        fg.grad(f)(np.ones(3))
    _check(info, "immutable", ".at[", "f64[3]")


def test_numpy_function_on_a_traced_value():
    with pytest.raises(TypeError) as info:
        fg.grad(lambda x: np.asarray(x).sum())(np.ones(2))
    _check(info, "funcgrad.numpy")


def test_jvp_tangent_of_wrong_shape_and_structure():
    with pytest.raises(ValueError) as info:
        fg.jvp(fnp.sin, (np.ones(3),), (np.ones(2),))
    assert isinstance(info.value, FuncgradError) and "(2,)" in str(info.value) and "(3,)" in str(info.value)
    with pytest.raises(ValueError) as info:
        fg.jvp(lambda a, b: a * b, (1.0, 2.0), (1.0,))
    assert isinstance(info.value, FuncgradError)
