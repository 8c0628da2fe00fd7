"""Composition of the autodiff transforms: higher-order derivatives, jacfwd vs jacrev,
Hessians, jvp of grad, linearize, custom rules, stop_gradient, has_aux and argnums."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
from _numerics import check_jvp, check_vjp
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.core.trace import Tracer

# -- higher order ------------------------------------------------------------------------------------


def test_third_derivative_of_tanh_is_analytic():
    t = np.tanh(0.5)
    expected = -2.0 * (1 - t * t) * (1 - 3 * t * t)
    got = fg.grad(fg.grad(fg.grad(fnp.tanh)))(0.5)
    assert abs(float(got) - expected) <= 1e-12
    assert isinstance(got, np.ndarray) and got.shape == ()


def test_higher_derivatives_of_sin_cycle():
    f = fnp.sin
    x = 0.7
    expected = [np.sin(x), np.cos(x), -np.sin(x), -np.cos(x), np.sin(x), np.cos(x)]
    for k, e in enumerate(expected):
        np.testing.assert_allclose(f(x), e, rtol=1e-13, atol=1e-13, err_msg=f"order {k}")
        f = fg.grad(f)


def rosenbrock(x):
    return fnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_hessian(x):
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] = h[i + 1, i] = -400 * x[i]
    return h


def test_hessian_of_rosenbrock_is_analytic():
    x = np.array([1.2, -0.3, 0.5, 2.0, 0.7])
    h = fg.hessian(rosenbrock)(x)
    assert h.shape == (5, 5)
    np.testing.assert_allclose(h, rosenbrock_hessian(x), rtol=0, atol=1e-10)
    np.testing.assert_allclose(fg.grad(rosenbrock)(x), [
        -400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0])] + [
        200 * (x[i] - x[i - 1] ** 2) - 400 * x[i] * (x[i + 1] - x[i] ** 2) - 2 * (1 - x[i]) for i in range(1, 4)] + [
        200 * (x[4] - x[3] ** 2)], rtol=1e-13)


def _mixed(x):
    return fnp.sum(fnp.sin(x) * fnp.exp(x[::-1]) + fnp.outer(x, x).sum(0) ** 2 / (1 + x ** 2)) + fnp.prod(x)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4))
def test_hessian_is_symmetric_and_forward_reverse_orders_agree(seed, n):
    x = np.random.default_rng(seed).uniform(-1, 1, n)
    h = fg.hessian(_mixed)(x)
    np.testing.assert_allclose(h, h.T, rtol=1e-12, atol=1e-12)
    for other in (fg.jacrev(fg.jacrev(_mixed)), fg.jacfwd(fg.jacfwd(_mixed)), fg.jacrev(fg.jacfwd(_mixed)),
                  fg.jacfwd(fg.grad(_mixed))):
        np.testing.assert_allclose(other(x), h, rtol=1e-10, atol=1e-10)


def test_jvp_of_grad_is_hessian_vector_product():
    x = np.array([0.3, -1.2, 0.8, 1.1])
    v = np.array([1.0, 0.5, -2.0, 0.25])
    g, hv = fg.jvp(fg.grad(rosenbrock), (x,), (v,))
    np.testing.assert_allclose(g, fg.grad(rosenbrock)(x))
    np.testing.assert_allclose(hv, rosenbrock_hessian(x) @ v, rtol=1e-12, atol=1e-10)
    # reverse-over-forward gives the same product
    hv2 = fg.grad(lambda y: fg.jvp(rosenbrock, (y,), (v,))[1])(x)
    np.testing.assert_allclose(hv2, hv, rtol=1e-12, atol=1e-10)


def test_nested_derivatives_do_not_confuse_perturbations():
    # d/dx [x * d/dy (x + y)] = 1 (the inner derivative must not see x's perturbation)
    f = fg.grad(lambda x: x * fg.grad(lambda y: x + y)(1.0))
    assert float(f(2.0)) == 1.0
    g = lambda x: fg.jvp(lambda y: x * y, (1.0,), (1.0,))[1] * x  # = x^2
    assert float(fg.grad(g)(3.0)) == 6.0
    h = lambda x: fg.grad(lambda y: fnp.sin(x * y))(x)  # x cos(x^2)
    np.testing.assert_allclose(fg.grad(h)(0.7), np.cos(0.49) - 2 * 0.49 * np.sin(0.49), rtol=1e-13)


# -- jacobians --------------------------------------------------------------------------------------------


def _vector_fun(x, y):
    return {"a": fnp.tanh(x) * y[0], "b": (fnp.sum(x ** 3) * y, fnp.outer(x, y))}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3), m=st.integers(1, 3))
def test_jacfwd_and_jacrev_agree_on_pytrees(seed, n, m):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(n), rng.standard_normal(m)
    jf = fg.jacfwd(_vector_fun, argnums=(0, 1))(x, y)
    jr = fg.jacrev(_vector_fun, argnums=(0, 1))(x, y)
    lf, df = fg.tree_util.tree_flatten(jf)
    lr, dr = fg.tree_util.tree_flatten(jr)
    assert df == dr
    for a, b in zip(lf, lr):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert jf["b"][1][0].shape == (n, m, n) and jf["b"][1][1].shape == (n, m, m)
    assert jf["a"][1].shape == (n, m)
    # against finite differences, column by column
    eps = 1e-6
    for k in range(n):
        e = np.zeros(n)
        e[k] = eps
        fd = (_vector_fun(x + e, y)["b"][1] - _vector_fun(x - e, y)["b"][1]) / (2 * eps)
        np.testing.assert_allclose(jf["b"][1][0][..., k], fd, rtol=1e-6, atol=1e-7)


def test_jacobian_shapes_follow_out_shape_plus_in_shape():
    x = np.ones((2, 3))
    assert fg.jacrev(lambda a: a.sum(0))(x).shape == (3, 2, 3)
    assert fg.jacfwd(lambda a: a.sum(0))(x).shape == (3, 2, 3)
    assert fg.jacrev(lambda a: fnp.sum(a))(x).shape == (2, 3)
    assert fg.jacfwd(lambda a: a * 2.0)(3.0).shape == ()
    assert fg.jacobian is fg.jacrev
    assert fg.hessian(lambda a: fnp.sum(a ** 3))(x).shape == (2, 3, 2, 3)


# -- jvp, vjp, linearize ---------------------------------------------------------------------------------


def test_jvp_and_vjp_on_pytrees_match_finite_differences():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(3), rng.standard_normal((2, 3))

    def f(a, b):
        return (fnp.sin(a) * b, {"s": fnp.sum(b ** 2) * a[0]})

    check_jvp(f, [x, y], rng)
    check_vjp(f, [x, y], rng)


def test_linearize_matches_jvp_for_many_tangents():
    x = np.array([0.5, -0.2, 1.3])
    f = lambda a, b: fnp.tanh(a) * fnp.exp(b) + a ** 3
    out, f_jvp = fg.linearize(f, x, 0.5)
    np.testing.assert_allclose(out, f(x, 0.5))
    rng = np.random.default_rng(1)
    for _ in range(3):
        ta, tb = rng.standard_normal(3), float(rng.standard_normal())
        np.testing.assert_allclose(f_jvp(ta, tb), fg.jvp(f, (x, 0.5), (ta, tb))[1], rtol=1e-13)
    with pytest.raises(ValueError):
        f_jvp(np.ones(3))


def test_linearize_does_not_call_the_function_again():
    calls = []

    def f(a):
        calls.append(1)
        return fnp.sin(a) * 2.0

    _, f_jvp = fg.linearize(f, np.array([0.1, 0.2]))
    n = len(calls)
    f_jvp(np.ones(2))
    f_jvp(np.zeros(2))
    assert len(calls) == n


def test_vjp_with_several_outputs_and_has_aux():
    def f(a):
        return (a * 2.0, fnp.sum(a)), {"norm": fnp.linalg.norm(a)}

    out, vjp_fn, aux = fg.vjp(f, np.array([3.0, 4.0]), has_aux=True)
    np.testing.assert_allclose(out[0], [6.0, 8.0])
    assert isinstance(aux["norm"], np.ndarray) and float(aux["norm"]) == 5.0
    (g,) = vjp_fn((np.array([1.0, 0.0]), 1.0))
    np.testing.assert_allclose(g, [3.0, 1.0])


def test_jvp_with_has_aux():
    out, t, aux = fg.jvp(lambda a: (a ** 2, a + 1), (3.0,), (1.0,), has_aux=True)
    assert (float(out), float(t), float(aux)) == (9.0, 6.0, 4.0)
    assert not isinstance(aux, Tracer)


# -- grad and value_and_grad: argnums, has_aux, pytrees -----------------------------------------------------


def _three(x, y, z):
    return fnp.sum(x * y) + fnp.sin(z) * fnp.sum(y)


def test_argnums_tuples_and_negative_argnums():
    x, y, z = np.array([1.0, 2.0]), np.array([3.0, -1.0]), 0.3
    gx, gz = fg.grad(_three, argnums=(0, 2))(x, y, z)
    np.testing.assert_allclose(gx, y)
    np.testing.assert_allclose(gz, np.cos(z) * y.sum())
    np.testing.assert_allclose(fg.grad(_three, argnums=-2)(x, y, z), x + np.sin(z))
    (gy,) = fg.grad(_three, argnums=(1,))(x, y, z)
    np.testing.assert_allclose(gy, x + np.sin(z))
    v, (g0, g1) = fg.value_and_grad(_three, argnums=(0, 1))(x, y, z)
    np.testing.assert_allclose(g0, y)
    np.testing.assert_allclose(v, _three(x, y, z))
    np.testing.assert_allclose(g1, x + np.sin(z))


def test_has_aux_returns_concrete_aux():
    def loss(w, x):
        pred = fnp.tanh(x @ w)
        return fnp.mean(pred ** 2), {"pred": pred, "n": 3}

    w, x = np.array([0.5, -0.5]), np.array([[1.0, 2.0], [0.5, 0.1]])
    g, aux = fg.grad(loss, has_aux=True)(w, x)
    assert isinstance(aux["pred"], np.ndarray) and aux["n"] == 3
    np.testing.assert_allclose(aux["pred"], np.tanh(x @ w))
    (v, aux2), g2 = fg.value_and_grad(loss, has_aux=True)(w, x)
    np.testing.assert_allclose(aux2["pred"], aux["pred"])
    np.testing.assert_allclose(g2, g)
    np.testing.assert_allclose(v, np.mean(np.tanh(x @ w) ** 2))
    check_vjp(lambda w_: loss(w_, x)[0], [w], np.random.default_rng(2))


Params = namedtuple("Params", ["w", "b"])


def test_grad_of_pytree_arguments():
    p = {"layers": [Params(np.array([1.0, 2.0]), 0.5), Params(np.array([[1.0]]), -1.0)], "scale": 2.0}

    def f(p):
        total = 0.0
        for layer in p["layers"]:
            total = total + fnp.sum(layer.w ** 2) * layer.b
        return total * p["scale"]

    g = fg.grad(f)(p)
    assert isinstance(g["layers"][0], Params)
    np.testing.assert_allclose(g["layers"][0].w, 2 * np.array([1.0, 2.0]) * 0.5 * 2.0)
    np.testing.assert_allclose(g["layers"][1].b, 1.0 * 2.0)
    np.testing.assert_allclose(g["scale"], 5 * 0.5 - 1.0)


def test_value_and_grad_and_constant_functions():
    v, g = fg.value_and_grad(lambda x: fnp.sum(x ** 2))(np.array([1.0, 2.0]))
    assert float(v) == 5.0
    np.testing.assert_allclose(g, [2.0, 4.0])
    np.testing.assert_array_equal(fg.grad(lambda x: 3.0 * fnp.sum(np.ones(2)))(np.ones(2)), np.zeros(2))
    np.testing.assert_array_equal(fg.grad(lambda x, y: fnp.sum(y))(np.ones(3), np.ones(2)), np.zeros(3))


def test_value_dependent_python_control_flow_under_grad():
    def f(x):
        if x > 0:
            return x ** 2
        while x < -1:
            x = x / 2
        return fnp.sin(x)

    assert float(fg.grad(f)(3.0)) == 6.0
    np.testing.assert_allclose(fg.grad(f)(-3.0), np.cos(-0.75) * 0.25)
    np.testing.assert_allclose(fg.grad(fg.grad(f))(3.0), 2.0)


# -- stop_gradient -------------------------------------------------------------------------------------------


def test_stop_gradient_in_every_mode():
    f = lambda x: x * fg.stop_gradient(x) + fnp.sin(fg.stop_gradient(x ** 2))
    x = 1.5
    assert float(fg.grad(f)(x)) == x
    assert float(fg.jvp(f, (x,), (1.0,))[1]) == x
    assert float(fg.grad(fg.grad(f))(x)) == 0.0  # the first derivative is stop_gradient(x)
    np.testing.assert_allclose(fg.jacfwd(lambda v: fg.stop_gradient(v) * v)(np.ones(2)), np.eye(2))
    assert fg.stop_gradient(np.float32(2.0)) == 2.0
    assert float(fg.grad(lambda v: fnp.stop_gradient(v) * v)(2.0)) == 2.0


# -- custom rules ------------------------------------------------------------------------------------------------


@fg.custom_jvp
def softplus(x):
    return fnp.log1p(fnp.exp(x))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return softplus(x), t * fg.scipy.special.expit(x)


def test_custom_jvp_is_used_by_every_mode_and_to_second_order():
    x = np.array([-1.0, 0.0, 2.0])
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(softplus(x), np.log1p(np.exp(x)))
    np.testing.assert_allclose(fg.jvp(softplus, (x,), (np.ones(3),))[1], s)
    np.testing.assert_allclose(fg.grad(lambda v: fnp.sum(softplus(v)))(x), s, rtol=1e-14)
    np.testing.assert_allclose(fg.jacfwd(softplus)(x), np.diag(s), rtol=1e-14)
    np.testing.assert_allclose(fg.jacrev(softplus)(x), np.diag(s), rtol=1e-14)
    # second order through the rule: d/dx expit = s (1 - s)
    np.testing.assert_allclose(fg.grad(fg.grad(lambda v: softplus(v)))(0.7),
                               np.exp(-0.7) / (1 + np.exp(-0.7)) ** 2, rtol=1e-13)
    np.testing.assert_allclose(fg.hessian(lambda v: fnp.sum(softplus(v)))(x), np.diag(s * (1 - s)), rtol=1e-13)


def test_custom_jvp_rule_replaces_the_function_derivative():
    @fg.custom_jvp
    def f(x):
        return fnp.sin(x)

    f.defjvp(lambda p, t: (f(p[0]), 3.0 * t[0]))  # deliberately not cos
    assert float(fg.grad(f)(0.2)) == 3.0
    assert float(fg.jvp(f, (0.2,), (2.0,))[1]) == 6.0


def test_custom_jvp_with_nondiff_argnums():
    from functools import partial

    @partial(fg.custom_jvp, nondiff_argnums=(0,))
    def power(n, x):
        return x ** n

    @power.defjvp
    def _(n, primals, tangents):
        (x,), (t,) = primals, tangents
        return power(n, x), n * x ** (n - 1) * t

    assert float(fg.grad(lambda x: power(3, x))(2.0)) == 12.0
    assert float(fg.grad(fg.grad(lambda x: power(3, x)))(2.0)) == 12.0


@fg.custom_vjp
def clip_gradient(x):
    return x


def _clip_fwd(x):
    return x, None


def _clip_bwd(_, g):
    return (fnp.clip(g, -1.0, 1.0),)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def test_custom_vjp_changes_reverse_mode_only():
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(fg.grad(lambda v: fnp.sum(clip_gradient(v) * 5.0))(x), [1.0, 1.0])
    np.testing.assert_allclose(clip_gradient(x), x)
    np.testing.assert_allclose(fg.grad(lambda v: fnp.sum(clip_gradient(v) * 0.5))(x), [0.5, 0.5])


@fg.custom_vjp
def logexp(x):
    return fnp.log(fnp.exp(x) + 1.0)


def _logexp_fwd(x):
    return logexp(x), x


def _logexp_bwd(x, g):
    return (g * fg.scipy.special.expit(x),)


logexp.defvjp(_logexp_fwd, _logexp_bwd)


def test_grad_of_custom_vjp_and_second_order():
    x = np.array([-2.0, 0.5])
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(fg.grad(lambda v: fnp.sum(logexp(v)))(x), s, rtol=1e-14)
    np.testing.assert_allclose(fg.jacrev(logexp)(x), np.diag(s), rtol=1e-14)
    # the backward rule is written with funcgrad.numpy, so it is differentiable itself
    np.testing.assert_allclose(fg.grad(fg.grad(lambda v: logexp(v)))(0.5),
                               np.exp(-0.5) / (1 + np.exp(-0.5)) ** 2, rtol=1e-13)


def test_custom_vjp_with_several_arguments_and_pytrees():
    @fg.custom_vjp
    def f(a, b):
        return {"p": a["u"] * b, "q": a["v"]}

    def fwd(a, b):
        return f(a, b), (a, b)

    def bwd(res, g):
        a, b = res
        return {"u": g["p"] * b, "v": g["q"] * 10.0}, fnp.sum(g["p"] * a["u"])

    f.defvjp(fwd, bwd)
    a = {"u": np.array([1.0, 2.0]), "v": 3.0}
    ga, gb = fg.grad(lambda a, b: fnp.sum(f(a, b)["p"]) + f(a, b)["q"], argnums=(0, 1))(a, 2.0)
    np.testing.assert_allclose(ga["u"], [2.0, 2.0])
    assert float(ga["v"]) == 10.0
    assert float(gb) == 3.0


def test_custom_jvp_with_several_outputs_under_reverse_mode():
    @fg.custom_jvp
    def sincos(x):
        return fnp.sin(x), fnp.cos(x)

    @sincos.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return sincos(x), (fnp.cos(x) * t, -fnp.sin(x) * t)

    # only one output reaches the loss: the other's cotangent is zero
    np.testing.assert_allclose(fg.grad(lambda x: sincos(x)[0] * 2.0)(0.3), 2 * np.cos(0.3), rtol=1e-14)
    np.testing.assert_allclose(fg.grad(lambda x: sincos(x)[0] * sincos(x)[1])(0.3), np.cos(0.6), rtol=1e-14)
    np.testing.assert_allclose(fg.hessian(lambda x: sincos(x)[1])(0.3), -np.cos(0.3), rtol=1e-14)


# -- custom rules in compositions: every transformation below vmap sees the rule ---------------------------------


def _sin_times_100_vjp():
    @fg.custom_vjp
    def f(x):
        return fnp.sin(x)

    f.defvjp(lambda x: (fnp.sin(x), x), lambda x, g: (g * 100.0,))
    return f


def _sin_with_jvp_3():
    @fg.custom_jvp
    def f(x):
        return fnp.sin(x)

    f.defjvp(lambda p, t: (f(p[0]), 3.0 * t[0]))  # deliberately not cos
    return f


def test_grad_of_vmap_keeps_the_custom_vjp_rule():
    f = _sin_times_100_vjp()
    x = np.ones(3)
    np.testing.assert_array_equal(fg.grad(lambda v: f(v).sum())(x), [100.0] * 3)
    np.testing.assert_array_equal(fg.grad(lambda v: fg.vmap(f)(v).sum())(x), [100.0] * 3)
    np.testing.assert_array_equal(fg.jit(fg.grad(lambda v: fg.vmap(f)(v).sum()))(x), [100.0] * 3)
    np.testing.assert_array_equal(fg.vmap(fg.grad(f))(x), [100.0] * 3)
    np.testing.assert_array_equal(fg.grad(lambda v: fg.vmap(fg.vmap(f))(v).sum())(np.ones((2, 3))),
                                  np.full((2, 3), 100.0))
    np.testing.assert_allclose(fg.vmap(f)(x), np.sin(x), rtol=1e-15)  # the primal is the function's


def test_vmap_of_custom_jvp_keeps_the_rule_in_every_mode():
    f = _sin_with_jvp_3()
    x = np.array([0.1, 0.2, 0.3])
    np.testing.assert_array_equal(fg.grad(lambda v: fg.vmap(f)(v).sum())(x), [3.0] * 3)
    np.testing.assert_array_equal(fg.jvp(fg.vmap(f), (x,), (np.ones(3),))[1], [3.0] * 3)
    np.testing.assert_array_equal(fg.jacfwd(fg.vmap(f))(x), 3.0 * np.eye(3))
    np.testing.assert_array_equal(fg.jacrev(fg.vmap(f))(x), 3.0 * np.eye(3))
    np.testing.assert_array_equal(fg.vmap(fg.grad(f))(x), [3.0] * 3)
    np.testing.assert_array_equal(fg.jit(fg.vmap(fg.grad(f)))(x), [3.0] * 3)


def test_second_order_sees_the_custom_jvp_rule_at_both_levels():
    f = _sin_with_jvp_3()

    def g(x):
        return f(x) ** 2  # under the rule: g' = 6 f(x), g'' = 6 * 3

    x = 0.4
    np.testing.assert_allclose(fg.grad(g)(x), 6 * np.sin(x), rtol=1e-15)
    assert float(fg.grad(fg.grad(g))(x)) == 18.0
    assert float(fg.jacfwd(fg.jacrev(g))(x)) == 18.0
    assert float(fg.jacfwd(fg.jacfwd(g))(x)) == 18.0
    assert float(fg.hessian(g)(x)) == 18.0
    np.testing.assert_array_equal(fg.vmap(fg.hessian(g))(np.array([0.1, 0.5])), [18.0, 18.0])


def test_vmap_of_custom_vjp_sums_the_cotangent_of_a_shared_argument():
    @fg.custom_vjp
    def scale(w, x):
        return w * x

    def fwd(w, x):
        return w * x, (w, x)

    def bwd(res, g):
        w, x = res
        return 2.0 * g * x, 2.0 * g * w  # twice the true cotangents

    scale.defvjp(fwd, bwd)
    w = np.array([1.0, -2.0])
    xs = np.arange(6.0).reshape(3, 2)

    def loss(w, xs, axes):
        return fg.vmap(scale, in_axes=axes)(w, xs).sum()

    gw, gx = fg.grad(loss, argnums=(0, 1))(w, xs, (None, 0))
    np.testing.assert_allclose(gw, 2.0 * xs.sum(0), rtol=1e-15)
    np.testing.assert_allclose(gx, 2.0 * np.broadcast_to(w, (3, 2)), rtol=1e-15)
    # a batch axis other than 0: the cotangent comes back on the argument's own axis
    gx_t = fg.grad(lambda xt: fg.vmap(scale, in_axes=(None, 1))(w, xt).sum())(xs.T.copy())
    np.testing.assert_allclose(gx_t, 2.0 * np.broadcast_to(w, (3, 2)).T, rtol=1e-15)


def test_vmap_of_custom_vjp_with_pytrees_and_nondiff_argnums():
    from functools import partial

    @partial(fg.custom_vjp, nondiff_argnums=(0,))
    def f(k, a):
        return {"s": a["u"] * k + a["v"]}

    def fwd(k, a):
        return f(k, a), a

    def bwd(k, a, g):
        return ({"u": g["s"] * 10.0 * k, "v": None},)

    f.defvjp(fwd, bwd)
    a = {"u": np.ones((4, 2)), "v": np.ones((4, 2))}
    ga = fg.grad(lambda a: fg.vmap(partial(f, 3.0))(a)["s"].sum())(a)
    np.testing.assert_array_equal(ga["u"], np.full((4, 2), 30.0))
    np.testing.assert_array_equal(ga["v"], np.zeros((4, 2)))


def test_vmap_of_custom_jvp_with_a_shared_argument_and_nondiff_argnums():
    from functools import partial

    @partial(fg.custom_jvp, nondiff_argnums=(0,))
    def f(n, w, x):
        return w * x ** n

    @f.defjvp
    def _(n, primals, tangents):
        (w, x), (tw, tx) = primals, tangents
        return f(n, w, x), tw * x ** n + 7.0 * tx  # deliberately 7 for d/dx

    xs = np.array([1.0, 2.0, 3.0])
    gw, gx = fg.grad(lambda w, xs: fg.vmap(partial(f, 2), in_axes=(None, 0))(w, xs).sum(), argnums=(0, 1))(0.5, xs)
    np.testing.assert_allclose(gw, np.sum(xs ** 2), rtol=1e-15)
    np.testing.assert_array_equal(gx, [7.0] * 3)


def test_vmap_of_a_custom_rule_with_a_batched_nondiff_argument_is_an_error():
    from functools import partial

    @partial(fg.custom_jvp, nondiff_argnums=(0,))
    def f(n, x):
        return x * n

    f.defjvp(lambda n, p, t: (f(n, p[0]), t[0] * n))
    with pytest.raises(fg.errors.FuncgradValueError, match="nondiff_argnums"):
        fg.vmap(f)(np.ones(3), np.ones(3))


def test_grad_of_a_constant_python_float_is_zero():
    # as in JAX: a function that ignores its input has a zero gradient, not an error
    np.testing.assert_array_equal(fg.grad(lambda x: 3.0)(np.ones(2)), [0.0, 0.0])
    value, g = fg.value_and_grad(lambda p: 1.5)({"a": np.ones(2, np.float32)})
    assert float(value) == 1.5 and g["a"].dtype == np.float32 and not g["a"].any()
    np.testing.assert_array_equal(fg.jit(fg.grad(lambda x: 3.0))(np.ones(2)), [0.0, 0.0])
    with pytest.raises(fg.errors.FuncgradTypeError, match="scalar"):
        fg.grad(lambda x: [1.0])(1.0)
