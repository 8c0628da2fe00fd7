"""Second-order optimisation: Newton's method with exact Hessians and with
Hessian-vector products.

The problem is L2-regularised logistic regression on synthetic data (float64).
First, Newton's method with the full Hessian from ``fg.hessian``: each step
solves H d = -g. Then the matrix-free variant for many parameters: the
Hessian is never formed; conjugate gradients only need products H v, which
``fg.jvp`` of ``fg.grad`` computes at the cost of about two gradients
(forward-over-reverse). Both converge to machine precision in a handful of
steps: near the minimum each step doubles the number of correct digits.

    python examples/newton_hessian.py
    python examples/newton_hessian.py --features 500 --plot newton.png
"""
from __future__ import annotations

import numpy as np
from _common import parser, plot_curves

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, random

L2 = 1e-3


def make_problem(key, n, d):
    kx, kw, ky = random.split(key, 3)
    x = random.normal(kx, (n, d), fnp.float64)
    w_true = random.normal(kw, (d,), fnp.float64) / np.sqrt(d)
    y = np.asarray(random.bernoulli(ky, nn.sigmoid(x @ w_true)), np.float64)
    return x, y


def make_loss(x, y):
    def loss(w):
        z = x @ w
        return fnp.mean(y * nn.softplus(-z) + (1.0 - y) * nn.softplus(z)) + 0.5 * L2 * fnp.sum(w * w)

    return loss


def newton(loss, w, direction, steps, tol):
    """Damped Newton: step along ``direction(w, g)`` (the solution of H d = -g), halving
    the step until the loss drops enough (Armijo); returns w and the gradient norms."""
    value_and_grad = fg.jit(fg.value_and_grad(loss))
    norms = []
    for i in range(steps + 1):
        value, g = value_and_grad(w)
        norms.append(float(np.linalg.norm(g)))
        print(f"  step {i}: loss {float(value):.12f}  |gradient| {norms[-1]:.3e}", flush=True)
        if norms[-1] < tol or i == steps:
            break
        d = direction(w, g)
        t = 1.0
        while float(loss(w + t * d)) > float(value) + 1e-4 * t * float(g @ d) and t > 1e-8:
            t *= 0.5
        w = w + t * d
    return w, norms


def hessian_direction(loss):
    """Newton direction from the full Hessian (``fg.hessian``) and a linear solve."""
    solve = fg.jit(lambda w, g: fnp.linalg.solve(fg.hessian(loss)(w), -g))
    return solve


def conjugate_gradient(hvp, b, iters, tol):
    """Solve H x = b using only products H v."""
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = r @ r
    for _ in range(iters):
        hp = hvp(p)
        alpha = rr / (p @ hp)
        x += alpha * p
        r -= alpha * hp
        rr_new = r @ r
        if np.sqrt(rr_new) < tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def hvp_direction(loss):
    """Newton direction by conjugate gradients on Hessian-vector products: forward-mode
    ``jvp`` of the reverse-mode gradient. The Hessian is never built."""
    hvp = fg.jit(lambda w, v: fg.jvp(fg.grad(loss), (w,), (v,))[1])

    def direction(w, g):
        return conjugate_gradient(lambda v: hvp(w, v), -g, iters=200, tol=1e-6 * float(np.linalg.norm(g)))

    return direction


def main(argv=None):
    args = parser(__doc__, epochs=10, samples=(2000, "data points"),
                  features=(20, "features for the full-Hessian Newton run"),
                  many_features=(300, "features for the Hessian-vector-product run")).parse_args(argv)
    tol = 1e-10
    k1, k2 = random.split(random.key(args.seed))

    x, y = make_problem(k1, args.samples, args.features)
    print(f"Newton with the full {args.features}x{args.features} Hessian (fg.hessian):")
    loss = make_loss(x, y)
    _, exact = newton(loss, np.zeros(args.features), hessian_direction(loss), args.epochs, tol)

    x, y = make_problem(k2, args.samples, args.many_features)
    print(f"Newton-CG with Hessian-vector products (fg.jvp of fg.grad), {args.many_features} parameters:")
    loss = make_loss(x, y)
    _, matrix_free = newton(loss, np.zeros(args.many_features), hvp_direction(loss), args.epochs, tol)

    plot_curves(args.plot, {"log10 |gradient|, full Hessian": np.log10(exact),
                            "log10 |gradient|, Hessian-vector products": np.log10(matrix_free)},
                xlabel="Newton step", start=0)
    print(f"full Hessian: |gradient| {exact[-1]:.1e} after {len(exact) - 1} Newton steps")
    print(f"Hessian-vector products: |gradient| {matrix_free[-1]:.1e} after {len(matrix_free) - 1} Newton steps")
    return exact[-1], matrix_free[-1]


if __name__ == "__main__":
    main()
