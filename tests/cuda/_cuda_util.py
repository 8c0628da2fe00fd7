"""Differential checks: a function jitted for CUDA against the NumPy interpreter."""
import numpy as np

import funcgrad as fg
from funcgrad.device import DeviceArray
from funcgrad.tree_util import tree_leaves

TOL = {np.dtype(np.float32): {"rtol": 2e-5, "atol": 1e-6}, np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-14}}


def run_both(f, *args, static_argnums=()):
    """(CUDA result, interpreter result) of ``f(*args)``."""
    got = fg.jit(f, device="cuda", static_argnums=static_argnums)(*args)
    want = fg.jit(f, device="interpreter", static_argnums=static_argnums)(*args)
    return got, want


def assert_same(got, want, exact=False, tol=None):
    got_leaves, want_leaves = tree_leaves(got), tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert isinstance(g, DeviceArray), type(g)
        w = np.asarray(w)
        g = np.asarray(g)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        if exact or w.dtype.kind not in "fc":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, **(tol or TOL[w.dtype]))


def check(f, *args, exact=False, tol=None, static_argnums=()):
    got, want = run_both(f, *args, static_argnums=static_argnums)
    assert_same(got, want, exact=exact, tol=tol)
    return got
