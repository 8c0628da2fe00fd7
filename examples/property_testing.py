"""Property-based tests of your own derivatives: hypothesis draws the inputs, check_grads
compares forward and reverse mode with finite differences.

The functions under test carry hand-written ``custom_vjp`` rules (a numerically stable
softplus and a norm whose gradient is safe at zero), the kind of code where a wrong rule
slips in easily. Run it as a script (``python examples/property_testing.py``) or collect
the ``test_*`` functions with pytest. The last part shows what a wrong rule looks like.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.scipy.special import expit
from funcgrad.testing import check_grads
from funcgrad.testing import strategies as fst


# -- the user's code ------------------------------------------------------------------------
@fg.custom_vjp
def softplus(x):
    """log(1 + exp(x)) without overflow for large x."""
    return fnp.maximum(x, 0.0) + fnp.log1p(fnp.exp(-fnp.abs(x)))


softplus.defvjp(lambda x: (softplus(x), x), lambda x, g: (g * expit(x),))


@fg.custom_vjp
def safe_norm(x):
    """Euclidean norm whose gradient at 0 is 0 instead of NaN."""
    return fnp.sqrt(fnp.sum(x * x))


def _norm_fwd(x):
    n = safe_norm(x)
    return n, (x, n)


def _norm_bwd(res, g):
    x, n = res
    return (g * x / fnp.maximum(n, 1e-30),)


safe_norm.defvjp(_norm_fwd, _norm_bwd)


def layer(params, x):
    """A small model built from them: softplus(x @ w + b), scaled by the weights' norm."""
    return softplus(x @ params["w"] + params["b"]) / (1.0 + safe_norm(params["w"]))


# -- the property tests -----------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(fst.arrays(shape=fst.array_shapes(max_dims=2), min_value=-30.0, max_value=30.0))
def test_softplus_grads(x):
    check_grads(softplus, (x,))
    # Second order in reverse mode only: the custom rule covers reverse mode, while forward
    # mode differentiates the implementation, whose max/abs kinks at exactly x = 0 give a
    # wrong second derivative there (hypothesis finds x = 0 at once).
    check_grads(softplus, (x,), order=2, modes=("rev",))


@settings(max_examples=25, deadline=None)
@given(fst.arrays(shape=(4,), min_value=-3.0, max_value=3.0).filter(lambda v: np.linalg.norm(v) > 0.1))
def test_safe_norm_grads(x):
    check_grads(safe_norm, (x,), order=2)


def test_safe_norm_at_zero_is_finite():
    assert np.all(fg.grad(safe_norm)(np.zeros(3)) == 0.0)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.data())
def test_layer_grads_over_pytrees_of_params(n_in, n_out, data):
    # the norm has a kink at w = 0, where finite differences cannot agree: keep away from it
    w = fst.arrays(shape=(n_in, n_out), min_value=-1.0, max_value=1.0).filter(lambda w: np.abs(w).max() > 0.1)
    params = {"w": data.draw(w),
              "b": data.draw(fst.arrays(shape=(n_out,), min_value=-1.0, max_value=1.0))}
    x = data.draw(fst.arrays(shape=(2, n_in), min_value=-2.0, max_value=2.0))
    check_grads(layer, (params, x), modes=("rev",))


@settings(max_examples=10, deadline=None)
@given(fst.inputs_for("solve"))
def test_solve_in_its_domain(args):
    """Library functions with a domain: inputs_for draws well-conditioned systems."""
    check_grads(lambda a, b: fnp.sum(softplus(fnp.linalg.solve(a, b))), args)


def show_a_wrong_rule():
    """What check_grads reports when a rule is wrong (here: exp instead of expit)."""
    @fg.custom_vjp
    def bad_softplus(x):
        return fnp.log1p(fnp.exp(x))

    bad_softplus.defvjp(lambda x: (bad_softplus(x), x), lambda x, g: (g * fnp.exp(x),))
    try:
        check_grads(bad_softplus, (np.array([0.3, -1.2]),), modes=("rev",))
    except AssertionError as err:
        return str(err)
    raise SystemExit("check_grads accepted a wrong rule")


if __name__ == "__main__":
    for test in (test_softplus_grads, test_safe_norm_grads, test_safe_norm_at_zero_is_finite,
                 test_layer_grads_over_pytrees_of_params, test_solve_in_its_domain):
        test()
        print(f"ok  {test.__name__}")
    print("\nA wrong rule is caught:\n" + show_a_wrong_rule())
