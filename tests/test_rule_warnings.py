"""Derivative rules raise no NumPy floating-point warnings the user's own code did not cause."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn

# (derivative, point, value): the forward computation is silent in NumPy, its derivative is
# infinite or needs inf - inf internally
SILENT = {
    "grad sqrt at 0": (fg.grad(fnp.sqrt), 0.0, np.inf),
    "grad x ** 0.5 at 0": (fg.grad(lambda x: x ** 0.5), 0.0, np.inf),
    "grad arcsin at 1": (fg.grad(fnp.arcsin), 1.0, np.inf),
    "grad arccos at -1": (fg.grad(fnp.arccos), -1.0, -np.inf),
    "jvp sqrt at 0": (lambda x: fg.jvp(fnp.sqrt, (x,), (1.0,))[1], 0.0, np.inf),
    "jacfwd arcsin at 1": (fg.jacfwd(fnp.arcsin), 1.0, np.inf),
    "hessian sqrt at 0": (fg.hessian(fnp.sqrt), 0.0, -np.inf),
    "logaddexp at (-inf, -inf)": (lambda a: fnp.logaddexp(a, -np.inf), -np.inf, -np.inf),
    "grad logaddexp at (-inf, -inf)": (fg.grad(lambda a: fnp.logaddexp(a, -np.inf)), -np.inf, 1.0),
    "grad of a norm at 0 by abs": (fg.grad(lambda v: fnp.sum(fnp.abs(v))), np.zeros(2), np.zeros(2)),
    "fully masked attention": (fg.grad(lambda q: nn.dot_product_attention(q, q, q, mask=np.zeros((2, 2), bool)).sum()),
                               np.ones((2, 2)), np.zeros((2, 2))),
}


@pytest.mark.parametrize("name", list(SILENT))
def test_rules_are_silent(name):
    f, x, want = SILENT[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = f(x)
    np.testing.assert_array_equal(got, want)


def test_the_user_s_own_warnings_still_show():
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        fg.grad(fnp.log)(0.0)  # log(0) in the user's forward pass, as in NumPy

    @fg.custom_vjp
    def f(x):
        return x

    f.defvjp(lambda x: (x, None), lambda _, g: (np.float64(1.0) / (g - g),))  # the user's rule divides by 0
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        fg.grad(f)(1.0)


def test_settings_are_restored():
    before = np.geterr()
    fg.grad(fnp.sqrt)(0.0)
    fg.jvp(fnp.sqrt, (0.0,), (1.0,))
    assert np.geterr() == before
