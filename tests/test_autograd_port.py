"""Code written against HIPS autograd's API ports to funcgrad by changing imports
(``autograd.numpy`` -> ``funcgrad.numpy``, ``jacobian`` -> ``jacrev``) and gives the
same numbers. Each function below is written once, over a NumPy-like module ``np``
and a ``grad``, in the style of autograd's own test suite and examples, and run
under both libraries."""
from __future__ import annotations

import numpy as onp
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
import funcgrad.scipy.special as fsp

autograd = pytest.importorskip("autograd")
anp = pytest.importorskip("autograd.numpy")
asp = pytest.importorskip("autograd.scipy.special")

RNG = onp.random.default_rng(1)
A = RNG.standard_normal((5, 6, 4))
M = RNG.standard_normal((4, 3))
V3 = RNG.standard_normal(3)
INPUTS = RNG.standard_normal((6, 3))
TARGETS = onp.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])


def functions(np, special, grad):
    """Scalar functions of one argument, written once for either library."""

    def tanh(x):  # autograd's README
        return np.sum((1.0 - np.exp(-x)) / (1.0 + np.exp(-x)))

    def logsumexp(x):
        m = np.max(x)
        return m + np.log(np.sum(np.exp(x - m)))

    def library_logsumexp(x):
        return special.logsumexp(x)

    def logistic_loss(w):  # autograd's README: logistic regression
        preds = 0.5 * (np.tanh(np.dot(INPUTS, w) / 2.0) + 1.0)
        probs = preds * TARGETS + (1 - preds) * (1 - TARGETS)
        return -np.sum(np.log(probs))

    def mlp(w):
        h = np.tanh(np.dot(INPUTS, np.reshape(w[:9], (3, 3))) + w[9:12])
        out = np.dot(h, w[12:15])
        return np.mean((out - TARGETS) ** 2)

    def products(x):
        return np.prod(x ** 2 + 0.5) * x[0] * x[1] / (1.0 + x[2] ** 2)

    def fanout(x):
        return np.sum(np.sin(np.sin(x) + np.sin(x)))

    def indexing(x):
        a = x[3, 0, 1] + np.sum(x[::-1, 2:4, :] ** 2) + np.sum(x[[0, 1, 2], :, :] * 0.5)
        return a + np.sum(np.sin(x[3, 2:, [1, 3]])) + np.sum(x[:, [0, 0], 1])

    def dot_chain(x):
        y = np.dot(np.dot(M.T, np.reshape(x, (4, 6))), np.ones(6))
        return np.dot(y, np.dot(M.T, np.tanh(np.reshape(x, (4, 6))[:, 0])))

    def norms(x):
        return np.sqrt(np.sum(x ** 2)) + np.linalg.norm(x) + np.linalg.norm(np.reshape(x, (12, 10)), "fro")

    def reductions(x):
        return (np.sum(np.max(x, axis=1)) + np.sum(np.min(x, axis=(0, 2))) + np.var(x) +
                np.std(x, axis=0, ddof=1).sum() + np.mean(x, axis=0, keepdims=True).sum() +
                np.sum(np.cumsum(x, axis=1) ** 2))

    def shapes(x):
        y = np.concatenate((x, x * 2.0), axis=1)
        y = np.transpose(y, (2, 0, 1)).reshape(4, -1).T
        z = np.repeat(np.expand_dims(x[:, 0, :], 1), 2, axis=1)
        return np.sum(np.roll(y, 2, axis=0) ** 3) + np.sum(np.squeeze(z[:, :1, :]) ** 2) + x.ravel()[7]

    def matrices(x):
        m = np.reshape(x[:9], (3, 3)) + 3.0 * np.eye(3)
        s = np.dot(m, m.T)
        return (np.trace(np.triu(m, 1)) + np.sum(np.tril(m)) + np.log(np.linalg.det(s)) +
                np.sum(np.linalg.inv(s)) + np.sum(np.linalg.solve(s, V3)) + np.sum(np.linalg.cholesky(s)) +
                np.sum(np.outer(x[:3], x[3:6])) + np.tensordot(m, m, 2))

    def elementwise(x):
        y = np.where(x > 0, np.sqrt(np.abs(x) + 1.0), np.exp(x))
        return np.sum(np.clip(x, -0.5, 0.5) * y + np.arctan(x) * np.cosh(x / 3) + np.log1p(x ** 2) + x ** 3)

    def array_of_traced(x):  # autograd's test_2d_array
        a = np.array([[x[0], x[0] * 1.0, x[1] + 2.5], [x[1] ** 2, x[0], x[1] / 2.0]])
        return np.sum(a * a)

    def nested_grad(x):  # autograd's test_enclosing_scope_ref
        return np.sum(x * grad(lambda y: np.sum(x * y) * y[0])(np.ones(3)))

    def python_control_flow(x):
        total = 0.0
        for i in range(3):
            total = total + (np.sin(x[i]) if x[i] > 0 else np.cos(x[i]) ** 2)
        return total

    return {name: f for name, f in locals().items() if callable(f) and name not in ("np", "special", "grad")}


AG = functions(anp, asp, autograd.grad)
FG = functions(fnp, fsp, fg.grad)
ARGS = {"tanh": V3, "logsumexp": onp.array([1.0, -2.0, 3.0, 0.5]), "library_logsumexp": onp.array([1.0, 20.0, 3.0]),
        "logistic_loss": V3, "mlp": RNG.standard_normal(15) * 0.5, "products": onp.array([0.3, -1.2, 0.8, 2.0]),
        "fanout": A[0], "indexing": A, "dot_chain": RNG.standard_normal(24), "norms": RNG.standard_normal(120),
        "reductions": A, "shapes": A, "matrices": RNG.standard_normal(9) * 0.3, "elementwise": RNG.uniform(-1, 1, 8),
        "array_of_traced": onp.array([0.7, -1.3]), "nested_grad": V3, "python_control_flow": onp.array([0.5, -0.3, 1.2])}
SMALL = [n for n, x in ARGS.items() if x.size <= 15]  # Hessians on the small inputs


def test_every_function_has_arguments():
    assert sorted(AG) == sorted(FG) == sorted(ARGS)


@pytest.mark.parametrize("name", sorted(ARGS))
def test_value_and_grad_match_autograd(name):
    x = ARGS[name]
    value, g = fg.value_and_grad(FG[name])(x)
    a_value, a_g = autograd.value_and_grad(AG[name])(x)
    onp.testing.assert_allclose(value, a_value, rtol=1e-12, atol=1e-12)
    onp.testing.assert_allclose(g, a_g, rtol=1e-10, atol=1e-12)
    onp.testing.assert_allclose(fg.grad(FG[name])(x), a_g, rtol=1e-10, atol=1e-12)
    assert isinstance(g, onp.ndarray) and g.shape == x.shape and g.dtype == a_g.dtype


@pytest.mark.parametrize("name", SMALL)
def test_hessian_matches_autograd(name):
    x = ARGS[name]
    h = fg.hessian(FG[name])(x)
    onp.testing.assert_allclose(h, autograd.hessian(AG[name])(x), rtol=1e-9, atol=1e-10)


def vector_functions(np):
    """Array-valued functions for ``jacobian`` (autograd) / ``jacrev`` (funcgrad)."""
    return {
        "sin_outer": lambda x: np.sin(np.outer(x, x)),
        "softmax": lambda x: np.exp(x - np.max(x)) / np.sum(np.exp(x - np.max(x))),
        "matvec": lambda x: np.dot(np.reshape(x, (3, 4)), x[:4]) ** 2,
        "prod_axis": lambda x: np.prod(np.reshape(x, (3, 4)) + 2.0, axis=0),
        "stack": lambda x: np.stack([x * 2.0, np.tanh(x), x[::-1]], axis=1),
        "einsum": lambda x: np.einsum("ij,jk->ik", np.reshape(x, (3, 4)), np.reshape(x, (4, 3))),
    }


@pytest.mark.parametrize("name", sorted(vector_functions(onp)))
def test_jacobian_ports_to_jacrev(name):
    x = RNG.standard_normal(12)
    expected = autograd.jacobian(vector_functions(anp)[name])(x)
    onp.testing.assert_allclose(fg.jacrev(vector_functions(fnp)[name])(x), expected, rtol=1e-10, atol=1e-12)
    onp.testing.assert_allclose(fg.jacfwd(vector_functions(fnp)[name])(x), expected, rtol=1e-10, atol=1e-12)


def test_grad_with_several_arguments():
    def loss(np, w, b, x):
        return np.sum(np.tanh(np.dot(x, w) + b) ** 2)

    w, b = RNG.standard_normal(3), 0.3
    for i in range(2):  # autograd's argnum is funcgrad's argnums
        expected = autograd.grad(lambda *a: loss(anp, *a), argnum=i)(w, b, INPUTS)
        got = fg.grad(lambda *a: loss(fnp, *a), argnums=i)(w, b, INPUTS)
        onp.testing.assert_allclose(got, expected, rtol=1e-12)
