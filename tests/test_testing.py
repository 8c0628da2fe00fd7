"""funcgrad.testing: check_grads on every core primitive, catching wrong rules, and strategies."""
from __future__ import annotations

import numpy as np
import pytest
from _numerics import distinct_sv, eigh_loss, qr_loss, svd_loss, symmetric
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.core.primitive import Primitive
from funcgrad.errors import FuncgradError, FuncgradTypeError, FuncgradValueError
from funcgrad.primitives import elementwise, linalg, reductions, structural
from funcgrad.scipy import special
from funcgrad.testing import check_grads, default_tolerance
from funcgrad.testing import strategies as fst

rng = np.random.default_rng(1)


def U(lo, hi, shape=(2, 3)):
    return rng.uniform(lo, hi, shape)


def nonzero(shape=(2, 3)):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape)


def well_conditioned(n=3):
    return rng.uniform(-1, 1, (n, n)) + (n + 1) * np.eye(n)


def d_digamma(x):
    return fg.jvp(special.digamma, (x,), (fnp.ones_like(x),))[1]


def sym(a):
    return (a + a.T) / 2


_X = U(-1.0, 1.0)
_Y = _X + rng.choice([-0.5, 0.5], _X.shape)  # never ties with _X

# primitive name -> (function written with funcgrad.numpy, in-domain arguments)
CASES = {
    "neg": (fnp.negative, (U(-2, 2),)),
    "add": (fnp.add, (U(-2, 2), U(-2, 2, (3,)))),
    "sub": (fnp.subtract, (U(-2, 2, (3,)), U(-2, 2))),
    "mul": (fnp.multiply, (U(-2, 2), U(-2, 2, (2, 1)))),
    "div": (fnp.divide, (U(-2, 2), nonzero())),
    "pow": (fnp.power, (U(0.3, 3), U(-2, 2))),
    "integer_pow": (lambda x: x ** 3, (U(-2, 2),)),
    "square": (fnp.square, (U(-2, 2),)),
    "max": (fnp.maximum, (_X, _Y)),
    "min": (fnp.minimum, (_X, _Y)),
    "atan2": (fnp.arctan2, (U(-2, 2), nonzero())),
    "fmod": (fnp.fmod, (U(1.2, 1.4), U(1.0, 1.1))),
    "rem": (fnp.remainder, (U(1.2, 1.4), U(1.0, 1.1))),
    "exp": (fnp.exp, (U(-2, 2),)),
    "exp2": (fnp.exp2, (U(-2, 2),)),
    "expm1": (fnp.expm1, (U(-2, 2),)),
    "log": (fnp.log, (U(0.3, 3),)),
    "log2": (fnp.log2, (U(0.3, 3),)),
    "log10": (fnp.log10, (U(0.3, 3),)),
    "log1p": (fnp.log1p, (U(-0.6, 3),)),
    "sqrt": (fnp.sqrt, (U(0.3, 3),)),
    "cbrt": (fnp.cbrt, (nonzero(),)),
    "sin": (fnp.sin, (U(-2, 2),)),
    "cos": (fnp.cos, (U(-2, 2),)),
    "tan": (fnp.tan, (U(-1.2, 1.2),)),
    "asin": (fnp.arcsin, (U(-0.9, 0.9),)),
    "acos": (fnp.arccos, (U(-0.9, 0.9),)),
    "atan": (fnp.arctan, (U(-2, 2),)),
    "sinh": (fnp.sinh, (U(-2, 2),)),
    "cosh": (fnp.cosh, (U(-2, 2),)),
    "tanh": (fnp.tanh, (U(-2, 2),)),
    "asinh": (fnp.arcsinh, (U(-2, 2),)),
    "acosh": (fnp.arccosh, (U(1.2, 3),)),
    "atanh": (fnp.arctanh, (U(-0.9, 0.9),)),
    "abs": (fnp.abs, (nonzero(),)),
    "logistic": (special.expit, (U(-4, 4),)),
    "erf": (special.erf, (U(-2, 2),)),
    "lgamma": (special.gammaln, (U(0.5, 4),)),
    "digamma": (special.digamma, (U(0.5, 4),)),
    "trigamma": (d_digamma, (U(0.5, 4),)),
    "polygamma": (lambda x: fg.jvp(d_digamma, (x,), (fnp.ones_like(x),))[1], (U(0.5, 4),)),
    "select": (lambda x, y: fnp.where(x > 0, x, y), (nonzero(), U(-2, 2))),
    "convert_element_type": (lambda x: x.astype(np.float32), (U(-2, 2),)),
    "reduce_sum": (lambda x: fnp.sum(x, axis=1), (U(-2, 2),)),
    "reduce_max": (lambda x: fnp.max(x, axis=0), (U(-2, 2),)),
    "reduce_min": (lambda x: fnp.min(x), (U(-2, 2),)),
    "reduce_prod": (lambda x: fnp.prod(x, axis=1), (nonzero(),)),
    "cumsum": (lambda x: fnp.cumsum(x, axis=1), (U(-2, 2),)),
    "cumprod": (lambda x: fnp.cumprod(x, axis=1), (nonzero(),)),
    "reshape": (lambda x: fnp.reshape(x, (3, 2)), (U(-2, 2),)),
    "transpose": (fnp.transpose, (U(-2, 2),)),
    "broadcast_to": (lambda x: fnp.broadcast_to(x, (4, 2, 3)), (U(-2, 2),)),
    "concatenate": (lambda x, y: fnp.concatenate([x, y], axis=0), (U(-2, 2), U(-2, 2, (1, 3)))),
    "pad": (lambda x: fnp.pad(x, ((1, 0), (0, 2))), (U(-2, 2),)),
    "flip": (lambda x: fnp.flip(x, axis=1), (U(-2, 2),)),
    "getitem": (lambda x: x[1:, np.array([0, 2])], (U(-2, 2),)),
    "index_add": (lambda x, v: x.at[np.array([0, 1, 0])].add(v), (U(-2, 2, (3,)), U(-2, 2, (3,)))),
    "index_set": (lambda x, v: x.at[1].set(v), (U(-2, 2),  U(-2, 2, (3,)))),
    "dot_general": (lambda a, b: fnp.einsum("ij,jk->ik", a, b), (U(-2, 2), U(-2, 2, (3, 4)))),
    "inv": (fnp.linalg.inv, (well_conditioned(),)),
    "solve": (fnp.linalg.solve, (well_conditioned(), U(-2, 2, (3,)))),
    "det": (fnp.linalg.det, (well_conditioned(),)),
    "slogdet": (fnp.linalg.slogdet, (well_conditioned(),)),
    "cholesky": (lambda a: fnp.linalg.cholesky(sym(a)), (well_conditioned() @ well_conditioned().T,)),
}

_rng0 = np.random.default_rng(7)
CASES.update({
    "eigh": (eigh_loss, (symmetric(_rng0, 3),)),
    "svd": (svd_loss, (distinct_sv(_rng0, 3, 2),)),
    "qr": (qr_loss, (distinct_sv(_rng0, 3, 2),)),
})


def differentiable_core_primitives():
    names = set()
    for module in (elementwise, reductions, structural, linalg):
        names |= {v.name for v in vars(module).values() if isinstance(v, Primitive) and v.differentiable}
    return names


def test_every_differentiable_core_primitive_has_a_case():
    missing = differentiable_core_primitives() - set(CASES)
    assert not missing, f"add a case (fnp function, in-domain arguments) for {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_grads_passes_on_every_primitive(name):
    fun, args = CASES[name]
    used = {e.prim.name for e in fg.make_graph(fun)(*args).eqns}
    assert name in used, f"{name}: the case does not reach the primitive (uses {sorted(used)})"
    check_grads(fun, args, order=1)


@pytest.mark.parametrize("name", ["tanh", "log", "div", "reduce_prod", "dot_general", "inv", "getitem"])
def test_check_grads_second_order(name):
    fun, args = CASES[name]
    check_grads(fun, args, order=2)


# -- failures are caught and explained -------------------------------------------------------
@fg.custom_vjp
def softplus(x):
    return fnp.log1p(fnp.exp(x))


softplus.defvjp(lambda x: (softplus(x), x), lambda x, g: (g * fnp.exp(x),))  # wrong: should be expit


def test_wrong_custom_vjp_is_caught_with_a_full_message():
    x = np.array([0.3, -1.2])
    with pytest.raises(AssertionError, match="forward-mode"):  # forward mode sees the rule too
        check_grads(softplus, (x,), modes=("fwd",))
    with pytest.raises(AssertionError) as exc:
        check_grads(softplus, (x,), modes=("rev",))
    err = exc.value
    assert isinstance(err, FuncgradError)
    msg = str(err)
    assert "reverse-mode (vjp) derivative of softplus does not match central finite differences" in msg
    assert "argument: (array([ 0.3, -1.2]),)" in msg
    assert "direction v: (array([" in msg
    numbers = {k.strip(): float(v) for k, v in
               (line.split(": ", 1) for line in msg.splitlines()[1:] if line.strip().startswith("<"))}
    lhs, rhs = numbers["<vjp(u), v>"], numbers["<u, finite differences along v>"]
    rel = float(msg.split("relative error: ")[1].split()[0])
    assert abs(rel - abs(lhs - rhs) / abs(rhs)) < 1e-2 * rel
    assert "rtol=1e-05, atol=1e-05, eps=1e-05, float64" in msg


def test_wrong_custom_jvp_is_caught_in_forward_mode():
    @fg.custom_jvp
    def cube(x):
        return x ** 3

    cube.defjvp(lambda p, t: (cube(p[0]), 2.0 * p[0] ** 2 * t[0]))  # wrong factor
    with pytest.raises(AssertionError, match=r"forward-mode \(jvp\) derivative of cube") as exc:
        check_grads(cube, (np.array([0.5, 1.5]),), modes=("fwd",))
    assert "finite differences: array([" in str(exc.value) and "jvp (output leaf 0)" in str(exc.value)


def test_order_two_catches_a_rule_that_is_only_right_to_first_order():
    @fg.custom_jvp
    def cube(x):
        return x ** 3

    # right first derivative, but its own derivative is lost: the second order is wrong
    cube.defjvp(lambda p, t: (cube(p[0]), fg.stop_gradient(3.0 * p[0] ** 2) * t[0]))
    x = (np.array([0.5, 1.5]),)
    check_grads(cube, x, order=1)
    with pytest.raises(AssertionError, match=r"derivative of (jvp|vjp)\(cube\)"):
        check_grads(cube, x, order=2)


def test_pytrees_integers_and_float32():
    def model(params, x, n):
        return fnp.tanh(x @ params["w"] + params["b"]) * n

    params = {"w": U(-1, 1, (3, 2)), "b": U(-1, 1, (2,))}
    check_grads(model, (params, U(-1, 1, (4, 3)), np.int64(3)), order=2)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    check_grads(model, (p32, U(-1, 1, (4, 3)).astype(np.float32), np.int64(3)))
    assert default_tolerance(np.float32) == (1e-3, 2e-2)


def test_argument_errors():
    with pytest.raises(FuncgradTypeError, match="tuple of positional arguments"):
        check_grads(fnp.sin, np.ones(2))
    with pytest.raises(FuncgradValueError, match="modes"):
        check_grads(fnp.sin, (np.ones(2),), modes=("backward",))
    with pytest.raises(FuncgradValueError, match="order"):
        check_grads(fnp.sin, (np.ones(2),), order=0)
    with pytest.raises(FuncgradTypeError, match="no floating-point argument"):
        check_grads(lambda n: n * 2.0, (np.arange(3),))


# -- strategies ------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(fst.arrays(np.float32, (2, 3), min_value=-1.0, max_value=2.0))
def test_arrays_respect_dtype_shape_and_bounds(x):
    assert x.dtype == np.float32 and x.shape == (2, 3)
    assert np.all((x >= -1.0) & (x <= 2.0))


@settings(max_examples=20, deadline=None)
@given(fst.broadcastable_arrays(3))
def test_broadcastable_arrays_broadcast(arrays):
    np.broadcast_shapes(*(a.shape for a in arrays))


@settings(max_examples=20, deadline=None)
@given(fst.pytrees())
def test_pytrees_hold_arrays(tree):
    leaves = fg.tree_util.tree_leaves(tree)
    assert leaves and all(isinstance(x, np.ndarray) for x in leaves)


@pytest.mark.parametrize("name", ["log", "sqrt", "arctanh", "arcsin", "arccosh", "log1p", "divide",
                                  "power", "arctan2", "inv", "solve", "det", "cholesky"])
def test_domain_inputs_give_finite_values_and_correct_grads(name):
    fun = getattr(fnp.linalg, name, None) or getattr(fnp, name)
    if name == "cholesky":
        fun = lambda a: fnp.linalg.cholesky(sym(a))

    @settings(max_examples=8, deadline=None)
    @given(fst.inputs_for(name))
    def run(args):
        out = fun(*args)
        assert all(np.isfinite(leaf).all() for leaf in fg.tree_util.tree_leaves(out))
        check_grads(fun, args, modes=("rev",), rtol=1e-4, atol=1e-4)

    run()


@settings(max_examples=10, deadline=None)
@given(fst.spd_matrices(3), fst.well_conditioned_matrices(3))
def test_matrix_strategies(spd, a):
    np.testing.assert_allclose(spd, spd.T)
    assert np.linalg.eigvalsh(spd).min() > 0
    assert np.linalg.cond(a) <= 7.0 + 1e-9


def test_unknown_domain_lists_the_known_ones():
    with pytest.raises(FuncgradValueError, match="known: .*arctanh"):
        fst.inputs_for("frobnicate")


@settings(max_examples=15, deadline=None)
@given(x=fst.domain_arrays("arccosh", max_dims=2), extra=st.floats(0.5, 2.0))
def test_user_pattern_given_plus_check_grads(x, extra):
    """The documented pattern: draw in-domain inputs with hypothesis, then check_grads."""
    check_grads(lambda v: fnp.sum(fnp.arccosh(v) * extra), (x,), order=2)


def test_property_testing_example_runs():
    import os
    import runpy

    path = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "property_testing.py")
    ns = runpy.run_path(path, run_name="example")
    for name, fn in ns.items():
        if name.startswith("test_"):
            fn()
    report = ns["show_a_wrong_rule"]()
    assert "reverse-mode (vjp) derivative of bad_softplus" in report and "relative error" in report
