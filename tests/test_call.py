"""The ``call`` primitive (a jitted function under grad, jvp and vmap stays compiled), custom
rules as primitives (kept inside jit, scan and cond), partial evaluation and inlining."""
from __future__ import annotations

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import lax
from funcgrad.backends.numba_cpu import compiler
from funcgrad.core.inline import inline_calls
from funcgrad.core.partial_eval import split_graph
from funcgrad.errors import ConcretizationError, FuncgradTypeError
from funcgrad.transforms.call import _vjp_split


@fg.custom_vjp
def times100(x):
    return fnp.sin(x)


times100.defvjp(lambda x: (fnp.sin(x), x), lambda x, g: (g * 100.0,))


@fg.custom_jvp
def jvp100(x):
    return fnp.sin(x)


@jvp100.defjvp
def _jvp100(primals, tangents):
    (x,), (t,) = primals, tangents
    return jvp100(x), 100.0 * t


ONES = np.ones(3)


FORMS = {
    "vmap": (lambda f: lambda x: fg.vmap(f)(x).sum(), 1),
    "jit.vmap": (lambda f: lambda x: fg.jit(fg.vmap(f))(x).sum(), 1),
    "vmap.jit": (lambda f: lambda x: fg.vmap(fg.jit(f))(x).sum(), 1),
    "jit": (lambda f: lambda x: fg.jit(f)(x).sum(), 1),
    "scan": (lambda f: lambda x: lax.scan(lambda c, xi: (c + f(xi), None), 0.0, x)[0], 1),
    "cond": (lambda f: lambda x: lax.cond(True, lambda y: f(y).sum(), lambda y: y.sum(), x), 1),
    "fori_loop": (lambda f: lambda x: lax.fori_loop(0, 2, lambda i, c: c + f(x).sum(), 0.0), 2),
}


@pytest.mark.parametrize("f", [times100, jvp100], ids=["custom_vjp", "custom_jvp"])
@pytest.mark.parametrize("form", list(FORMS))
def test_the_custom_rule_is_kept_in_every_composition(f, form):
    make, factor = FORMS[form]
    g = make(f)
    np.testing.assert_allclose(fg.grad(g)(ONES), 100.0 * factor)
    np.testing.assert_allclose(fg.jit(fg.grad(g))(ONES), 100.0 * factor)
    np.testing.assert_allclose(fg.jvp(g, (ONES,), (ONES / 3,))[1], 100.0 * factor)


def test_forward_mode_of_custom_vjp_uses_the_rule():
    assert fg.jvp(times100, (0.3,), (1.0,))[1] == pytest.approx(100.0)
    np.testing.assert_allclose(fg.jacfwd(times100)(np.array([0.1, 0.2])), 100.0 * np.eye(2))
    # second order through the rule's own derivative: d/dx (100 g) = 0
    np.testing.assert_allclose(fg.hessian(lambda x: times100(x).sum())(np.array([0.1, 0.2])), 0.0)


def test_grad_of_jit_runs_compiled_programs_and_compiles_once():
    f = fg.jit(lambda x: fnp.sum(fnp.tanh(x) * x))
    x = np.linspace(-1.0, 1.0, 7)
    before = compiler.stats["compiles"]
    g1 = fg.grad(f)(x)
    after_first = compiler.stats["compiles"]
    g2 = fg.grad(f)(x * 2)
    assert after_first > before  # the forward and backward programs were compiled
    assert compiler.stats["compiles"] == after_first  # and reused for new values
    for g, xv in ((g1, x), (g2, x * 2)):
        np.testing.assert_allclose(g, np.tanh(xv) + xv * (1 - np.tanh(xv) ** 2), rtol=1e-12)
    np.testing.assert_allclose(fg.jit(fg.grad(f))(x), g1, rtol=1e-14)
    assert f.trace_count == 1


def test_jvp_and_vmap_of_jit_are_compiled_and_right():
    f = fg.jit(lambda x, w: fnp.tanh(x @ w))
    x, w = np.arange(6.0).reshape(2, 3) / 5, np.linspace(-1, 1, 12).reshape(3, 4)
    before = compiler.stats["compiles"]
    _, t = fg.jvp(lambda x: f(x, w), (x,), (np.ones_like(x),))
    np.testing.assert_allclose(t, (1 - np.tanh(x @ w) ** 2) * (np.ones_like(x) @ w), rtol=1e-12)
    xs = np.stack([x, 2 * x])
    np.testing.assert_allclose(fg.vmap(f, in_axes=(0, None))(xs, w), np.tanh(xs @ w), rtol=1e-12)
    assert compiler.stats["compiles"] > before


def test_jit_closing_over_an_outer_traced_value():
    got = fg.grad(lambda x: fg.jit(lambda y: y * fnp.sin(x))(2.0))(1.0)
    assert got == pytest.approx(2.0 * np.cos(1.0))
    got = fg.vmap(lambda x: fg.jit(lambda y: y + x)(np.ones(2)))(np.arange(3.0))
    np.testing.assert_allclose(got, np.arange(3.0)[:, None] + np.ones(2))


def test_nested_jit_inside_jit_is_inlined():
    inner = fg.jit(lambda x: x * 2.0)
    outer = fg.jit(lambda x: fg.grad(lambda y: inner(y).sum())(x))
    graph = outer.lower(ONES)
    assert all(e.prim.name != "call" for e in graph.eqns)
    np.testing.assert_allclose(outer(ONES), 2.0)


def test_custom_rule_closing_over_a_differentiated_value_is_an_error():
    def loss(w):
        @fg.custom_vjp
        def f(x):
            return x * w

        f.defvjp(lambda x: (x * w, None), lambda res, g: (g,))
        return f(np.ones(2) * w).sum()

    with pytest.raises(FuncgradTypeError, match="closes over a value that is being differentiated"):
        fg.grad(loss)(1.5)


def test_a_custom_function_staged_by_jit_is_one_equation_and_compiles_inlined():
    graph = fg.make_graph(lambda x: times100(x) * 2.0)(ONES)
    assert [e.prim.name for e in graph.eqns] == ["custom_vjp_call", "mul"]
    assert [e.prim.name for e in inline_calls(graph).eqns] == ["sin", "mul"]
    np.testing.assert_allclose(fg.jit(lambda x: times100(x) * 2.0)(ONES), 2 * np.sin(ONES))


def test_partial_evaluation_computes_each_value_once():
    """Reverse mode of a call: the forward program computes tanh once and hands the backward
    program a residual; the backward program has no tanh of its own."""
    graph = fg.make_graph(lambda x: fnp.sum(fnp.tanh(x)))(ONES)
    split = _vjp_split(graph, (True,))
    fwd = [e.prim.name for e in split.known.eqns]
    bwd = [e.prim.name for e in split.unknown.eqns]
    assert "tanh" in fwd and "tanh" not in bwd
    assert len(split.known.outvars) == 1 + sum(i is None for i in split.residual_inputs)


def test_split_graph_refuses_a_known_output_that_depends_on_an_unknown_input():
    graph = fg.make_graph(lambda a, b: (a + b, a * 2.0))(1.0, 2.0)
    with pytest.raises(ValueError, match="known output depends"):
        split_graph(graph, 1, 1)
    split = split_graph(graph, 1, 0)
    assert [e.prim.name for e in split.unknown.eqns] == ["add"]


def test_numpy_functions_on_traced_values():
    np.testing.assert_allclose(fg.grad(lambda x: np.sum(np.concatenate([x, 2 * x])))(ONES), 3.0)
    with pytest.raises(ConcretizationError, match=r"numpy\.unwrap was called on a traced value.*has no unwrap"):
        fg.grad(lambda x: fnp.sum(np.unwrap(x)))(ONES)
