"""funcgrad.numpy's Array: NumPy arrays that take traced indices and have ``.at``."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.errors import ConcretizationError

MAKERS = {
    "zeros": lambda: fnp.zeros(5), "ones": lambda: fnp.ones(5), "full": lambda: fnp.full(5, 2.0),
    "arange": lambda: fnp.arange(5.0), "linspace": lambda: fnp.linspace(0, 1, 5), "eye": lambda: fnp.eye(5)[0],
    "asarray": lambda: fnp.asarray(np.arange(5.0)), "array": lambda: fnp.array([0.0, 1, 2, 3, 4]),
    "zeros_like": lambda: fnp.zeros_like(np.ones(5)), "full_like": lambda: fnp.full_like(np.ones(5), 3.0),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_creation_results_are_numpy_arrays_with_at(name):
    a = MAKERS[name]()
    assert isinstance(a, np.ndarray) and isinstance(a, fnp.Array)
    np.testing.assert_array_equal(a.at[1].add(10.0), np.asarray(a) + np.eye(5)[1] * 10)
    assert type(pickle.loads(pickle.dumps(a))) is np.ndarray
    assert repr(a) == repr(np.asarray(a)) and str(a) == str(np.asarray(a))


def test_traced_indices_into_constants():
    np.testing.assert_array_equal(fg.jit(lambda i: fnp.eye(10)[i])(3), np.eye(10)[3])
    np.testing.assert_array_equal(fg.jit(lambda i: fnp.zeros(4).at[i].add(1.0))(2), [0, 0, 1, 0])
    np.testing.assert_array_equal(fg.jit(lambda i, j: fnp.arange(12.0).reshape(3, 4)[i, j])(1, 2), 6.0)
    np.testing.assert_array_equal(fg.vmap(lambda i: fnp.eye(4)[i])(np.arange(3)), np.eye(4)[:3])
    table = fnp.asarray(np.linspace(0.0, 1.0, 11))
    np.testing.assert_allclose(fg.grad(lambda x, i: (table[i] * x) ** 2)(2.0, 5), 2 * 0.5 ** 2 * 2.0)
    np.testing.assert_array_equal(fg.jit(lambda i: fnp.at(np.zeros(3))[i].set(7.0))(0), [7, 0, 0])


def test_arrays_pass_through_transforms_as_numpy():
    x = fnp.ones(3)
    out = fg.jit(lambda v: v * 2)(x)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(fg.grad(lambda v: (v * v).sum())(x), [2, 2, 2])
    np.testing.assert_array_equal(fg.jit(lambda v: v + 1)(x), fg.jit(lambda v: v + 1)(np.ones(3)))


def test_numpy_arrays_from_elsewhere_say_what_to_write():
    table = np.arange(10.0)
    with pytest.raises(ConcretizationError, match=r"fnp\.asarray\(a\)\[i\]"):
        fg.jit(lambda i: table[i])(3)
