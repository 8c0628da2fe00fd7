"""Logistic regression on a separable synthetic 2-D data set.

Two Gaussian clouds, drawn with funcgrad.random from a fixed seed, are
labelled 0 and 1. The model is p(y = 1 | x) = sigmoid(x . w + b) and the loss
is the negative log-likelihood written out as its formula. Full-batch
gradient descent with a jitted step; the held-out accuracy is printed at the end.

    python examples/logistic_regression.py
    python examples/logistic_regression.py --epochs 300 --plot logreg.png
"""
from __future__ import annotations

import numpy as np
from _common import Progress, parser, plot_curves

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, optim, random


def make_data(key, n):
    """``n`` points per class: class 0 around (-1.5, -1), class 1 around (1.5, 1)."""
    k0, k1 = random.split(key)
    x0 = random.normal(k0, (n, 2)) * 0.8 + np.array([-1.5, -1.0], np.float32)
    x1 = random.normal(k1, (n, 2)) * 0.8 + np.array([1.5, 1.0], np.float32)
    x = np.concatenate([x0, x1])
    y = np.concatenate([np.zeros(n, np.float32), np.ones(n, np.float32)])
    return x, y


def loss_fn(params, x, y):
    z = x @ params["w"] + params["b"]
    # -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))], with log sigmoid(z) = -softplus(-z)
    # and log(1 - sigmoid(z)) = -softplus(z), which stay finite for any z
    return fnp.mean(y * nn.softplus(-z) + (1.0 - y) * nn.softplus(z))


def accuracy(params, x, y):
    return float(np.mean(((x @ params["w"] + params["b"]) > 0) == (y > 0.5)))


def main(argv=None):
    args = parser(__doc__, epochs=100, lr=(0.5, "SGD learning rate"),
                  n=(500, "training points per class")).parse_args(argv)
    k_train, k_test = random.split(random.key(args.seed))
    x_train, y_train = make_data(k_train, args.n)
    x_test, y_test = make_data(k_test, 500)
    params = {"w": np.zeros(2, np.float32), "b": np.float32(0.0)}
    opt = optim.sgd(args.lr)
    state = opt.init(params)

    @fg.jit
    def step(params, state):
        loss, grads = fg.value_and_grad(loss_fn)(params, x_train, y_train)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss

    progress = Progress(args.epochs, every=args.epochs // 10)
    for epoch in range(1, args.epochs + 1):
        params, state, loss = step(params, state)
        progress.epoch(epoch, len(x_train), loss=loss, train_accuracy=accuracy(params, x_train, y_train))
    plot_curves(args.plot, progress.history)
    acc = accuracy(params, x_test, y_test)
    print(f"w = {np.round(params['w'], 3)}, b = {float(params['b']):.3f}")
    print(f"held-out accuracy: {acc:.2%} ({len(y_test)} points, {progress.elapsed():.2f} s)")
    return acc


if __name__ == "__main__":
    main()
