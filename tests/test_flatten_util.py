"""ravel_pytree: a pytree as one vector and back, through the transforms."""
from __future__ import annotations

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.errors import ShapeError
from funcgrad.flatten_util import ravel_pytree


def test_round_trip_keeps_structure_shapes_and_dtypes():
    tree = {"w": np.arange(6.0).reshape(2, 3), "b": np.array([1, 2], np.int32), "c": (np.float32(3.0), None)}
    flat, unravel = ravel_pytree(tree)
    assert flat.shape == (9,) and flat.dtype == np.float64
    np.testing.assert_array_equal(flat, [1, 2, 3, 0, 1, 2, 3, 4, 5])  # tree_leaves order: b, c, w
    back = unravel(flat)
    assert back["b"].dtype == np.int32 and back["c"][0].dtype == np.float32 and back["c"][1] is None
    np.testing.assert_array_equal(back["w"], tree["w"])
    with pytest.raises(ShapeError, match=r"\(9,\)"):
        unravel(np.zeros(8))


def test_through_grad_hessian_jit_and_vmap():
    params = {"w": np.ones((2, 2)), "b": np.zeros(2)}
    f0, unravel = ravel_pytree(params)

    def loss(v):
        p = unravel(v)
        return fnp.sum(p["w"] ** 3) + fnp.sum(p["b"] ** 2)

    np.testing.assert_array_equal(fg.grad(loss)(f0), [0, 0, 3, 3, 3, 3])
    np.testing.assert_array_equal(fg.hessian(loss)(f0), np.diag([2, 2, 6, 6, 6, 6]))
    np.testing.assert_array_equal(fg.jit(lambda v: unravel(v)["w"])(f0 + 1), np.full((2, 2), 2.0))
    np.testing.assert_array_equal(fg.vmap(lambda v: unravel(v)["b"])(np.stack([f0, f0 + 1])), [[0, 0], [1, 1]])
    g = fg.grad(lambda p: fnp.sum(ravel_pytree(p)[0] ** 2))(params)
    np.testing.assert_array_equal(g["w"], 2 * params["w"])


def test_empty_tree():
    flat, unravel = ravel_pytree({})
    assert flat.shape == (0,) and unravel(flat) == {}
