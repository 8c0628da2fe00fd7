"""The composition matrix: every ordered chain of up to three of {grad, jvp, vjp, vmap, jit,
hessian}, applied to functions built from each construct whose derivative a transform could
lose (custom_jvp, custom_vjp, cond, switch, fori_loop, scan, a jitted inner function, and
while_loop forward only), in float64, and every chain of up to two in float32.

Each transform maps a scalar function of a 2-vector to another one (a fixed linear functional
of its result), so chains compose freely. The reference applies the same chain to a reference
function written without the construct: custom rules written out (a function whose true
derivative *is* the rule: ``3 sin(x) - stop_gradient(2 sin(x))`` has the value of ``sin`` and
the derivative ``3 cos``), branches as ``where``, loops unrolled in Python; in the reference
``jit`` is the identity and ``vmap`` a Python loop. The custom rules differ from the true
derivative, so a chain that drops a rule gives a different number.

The matrix runs ``jit`` on the NumPy interpreter backend (the transforms, the ``call``
primitive and the inlining are the same for every backend); a smaller set of chains runs it
on the Numba CPU backend.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import lax

TRANSFORMS = ("grad", "jvp", "vjp", "vmap", "jit", "hessian")
FORWARD_ONLY = ("vmap", "jit")


def _const(x, values):
    return np.asarray(values, dtype=x.dtype)


def apply(name, g, *, reference, device="interpreter"):
    """``name`` applied to ``g`` (R^2 -> R), as a function R^2 -> R."""
    if name == "grad":
        return lambda x: fnp.sum(fg.grad(g)(x) * _const(x, [0.7, -1.3]))
    if name == "jvp":
        return lambda x: fg.jvp(g, (x,), (_const(x, [0.4, 0.9]),))[1]
    if name == "vjp":
        def vjp_t(x):
            _, back = fg.vjp(g, x)
            return fnp.sum(back(_const(x, 1.3))[0] * _const(x, [-0.6, 1.1]))
        return vjp_t
    if name == "hessian":
        return lambda x: fnp.sum(fg.hessian(g)(x) * _const(x, [[0.3, -0.5], [0.2, 0.9]]))
    if name == "vmap":
        scales = (1.0, -0.6)
        weights = (0.8, 0.5)
        if reference:
            return lambda x: sum(g(x * _const(x, s)) * _const(x, w) for s, w in zip(scales, weights))
        return lambda x: fnp.sum(fg.vmap(g)(x[None, :] * _const(x, scales)[:, None]) * _const(x, weights))
    if name == "jit":
        return g if reference else fg.jit(g, device=device)
    raise AssertionError(name)


def chain(names, f, *, reference, device="interpreter"):
    for name in names:  # innermost first
        f = apply(name, f, reference=reference, device=device)
    return f


# -- the functions: (construct, reference) --------------------------------------------------------
@fg.custom_jvp
def sin_jvp3(x):
    return fnp.sin(x)


@sin_jvp3.defjvp
def _sin_jvp3_rule(primals, tangents):
    (x,), (t,) = primals, tangents
    return sin_jvp3(x), 3.0 * fnp.cos(x) * t


@fg.custom_vjp
def sin_vjp3(x):
    return fnp.sin(x)


sin_vjp3.defvjp(lambda x: (sin_vjp3(x), x), lambda x, g: (3.0 * fnp.cos(x) * g,))


def sin_rule3(x):
    """The value of sin with every derivative three times sin's (what the rules say)."""
    return 3.0 * fnp.sin(x) - lax.stop_gradient(2.0 * fnp.sin(x))


def coupled(s):
    return lambda x: fnp.sum(s(x * fnp.sum(x)) * fnp.cos(x))


def branch_a(x):
    return fnp.sum(fnp.sin(x) * x)


def branch_b(x):
    return fnp.sum(fnp.cos(x * x[::-1]))


def branch_c(x):
    return fnp.prod(fnp.tanh(x) + 2.0)


def cond_f(x):
    return lax.cond(fnp.sum(x) > 0, branch_a, branch_b, x)


def cond_ref(x):
    return fnp.where(fnp.sum(x) > 0, branch_a(x), branch_b(x))


def _index(x):
    return fnp.clip(fnp.floor(fnp.sum(x)), 0, 2).astype(np.int32)


def switch_f(x):
    return lax.switch(_index(x), [branch_a, branch_b, branch_c], x)


def switch_ref(x):
    i = _index(x)
    return fnp.where(i == 0, branch_a(x), fnp.where(i == 1, branch_b(x), branch_c(x)))


def _fori_body(i, c, x):
    return fnp.sin(c) * x + c * 0.5 + fnp.asarray(i, dtype=x.dtype) * 0.1


def fori_f(x):
    return fnp.sum(lax.fori_loop(0, 3, lambda i, c: _fori_body(i, c, x), x))


def fori_ref(x):
    c = x
    for i in range(3):
        c = _fori_body(i, c, x)
    return fnp.sum(c)


def _scan_step(c, xi):
    c = c * fnp.cos(xi) + fnp.sin(c * xi)
    return c, c * xi


def scan_f(x):
    c, ys = lax.scan(_scan_step, fnp.sum(x) * 0.5, x)
    return c + fnp.sum(ys)


def scan_ref(x):
    c, total = fnp.sum(x) * 0.5, 0.0
    for i in range(x.shape[0]):
        c, y = _scan_step(c, x[i])
        total = total + y
    return c + total


def inner(x):
    return fnp.sum(fnp.tanh(x) * x[::-1]) + fnp.sum(x ** 3) * 0.2


def while_f(x):
    c = lax.while_loop(lambda c: fnp.sum(c) < 5.0, lambda c: c * 1.5 + 0.1, x * x + 0.1)
    return fnp.sum(fnp.sin(c))


def while_ref(x):
    c = np.asarray(x * x + 0.1)
    while np.sum(c) < 5.0:
        c = c * np.asarray(1.5, c.dtype) + np.asarray(0.1, c.dtype)
    return fnp.sum(fnp.sin(c))


KINDS = {
    "plain": (lambda x: fnp.sum(fnp.sin(x) * fnp.exp(x[::-1] * 0.5)),) * 2,
    "custom_jvp": (coupled(sin_jvp3), coupled(sin_rule3)),
    "custom_vjp": (coupled(sin_vjp3), coupled(sin_rule3)),
    "cond": (cond_f, cond_ref),
    "switch": (switch_f, switch_ref),
    "fori_loop": (fori_f, fori_ref),
    "scan": (scan_f, scan_ref),
    "jitted_inner": (fg.jit(inner, device="interpreter"), inner),
}
INPUTS = ([0.7, 0.4], [-0.3, 0.45])  # index 1 and 0 for switch; both branches of cond under vmap


def chains(alphabet, longest=3):
    for n in range(1, longest + 1):
        yield from itertools.product(alphabet, repeat=n)


CASES = [(kind, c) for kind in KINDS for c in chains(TRANSFORMS)] + \
        [("while_loop", c) for c in chains(FORWARD_ONLY)]


def _check(kind, names, dtype, device="interpreter"):
    f, ref = KINDS[kind] if kind != "while_loop" else (while_f, while_ref)
    if device != "interpreter" and kind == "jitted_inner":
        f = fg.jit(inner, device=device)
    got_f = chain(names, f, reference=False, device=device)
    ref_f = chain(names, ref, reference=True)
    tol = {"rtol": 1e-9, "atol": 1e-9} if dtype == np.float64 else {"rtol": 2e-3, "atol": 2e-3}
    for values in INPUTS:
        x = np.asarray(values, dtype=dtype)
        got, want = got_f(x), ref_f(x)
        assert np.asarray(got).dtype == dtype, (np.asarray(got).dtype, dtype)
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), **tol,
                                   err_msg=f"{kind}: {' of '.join(reversed(names))} at {values}")


@pytest.mark.parametrize("kind,names", CASES, ids=[f"{k}-{'.'.join(c)}" for k, c in CASES])
def test_composition_matches_the_reference(kind, names):
    _check(kind, names, np.float64)


F32_CASES = [(kind, c) for kind, c in CASES if len(c) <= 2]


@pytest.mark.parametrize("kind,names", F32_CASES, ids=[f"{k}-{'.'.join(c)}" for k, c in F32_CASES])
def test_composition_matches_the_reference_in_float32(kind, names):
    """float32 stays float32 and matches through every chain of up to two (the three-deep
    chains, which repeat the same rules at higher order, run in float64 above)."""
    _check(kind, names, np.float32)


CPU_CASES = [(kind, c) for kind in KINDS for c in chains(TRANSFORMS, 2) if "jit" in c]


@pytest.mark.parametrize("kind,names", CPU_CASES, ids=[f"{k}-{'.'.join(c)}" for k, c in CPU_CASES])
def test_composition_with_the_numba_backend(kind, names):
    _check(kind, names, np.float64, device="cpu")


def test_the_rules_matter():
    """The custom rules differ from the true derivative, so the matrix can see a dropped one."""
    x = np.array([0.7, 0.4])
    true = fg.grad(coupled(fnp.sin))(x)
    for f in (coupled(sin_jvp3), coupled(sin_vjp3)):
        assert not np.allclose(fg.grad(f)(x), true)
        np.testing.assert_allclose(fg.grad(f)(x), fg.grad(coupled(sin_rule3))(x), rtol=1e-12)
