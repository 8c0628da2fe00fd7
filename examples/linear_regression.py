"""Fit y = w * x + b to three points with gradient descent.

The data are x = [1, 2, 3], y = [2, 4, 6]; the model has one weight and one
bias, the loss is the mean squared error and the optimizer is plain SGD
(learning rate 0.01). The whole training step -- loss, gradient, update --
is one jitted function.

    python examples/linear_regression.py
    python examples/linear_regression.py --epochs 5000 --plot line.png
"""
from __future__ import annotations

import numpy as np
from _common import Progress, parser, plot_curves

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import optim

X = np.array([1.0, 2.0, 3.0], np.float32)
Y = np.array([2.0, 4.0, 6.0], np.float32)


def predict(params, x):
    return params["w"] * x + params["b"]


def loss_fn(params, x, y):
    return fnp.mean((predict(params, x) - y) ** 2)


def main(argv=None):
    args = parser(__doc__, epochs=2000, lr=(0.01, "SGD learning rate")).parse_args(argv)
    params = {"w": np.float32(0.0), "b": np.float32(0.0)}
    opt = optim.sgd(args.lr)
    state = opt.init(params)

    @fg.jit
    def step(params, state):
        loss, grads = fg.value_and_grad(loss_fn)(params, X, Y)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss

    progress = Progress(args.epochs, every=args.epochs // 10)
    for epoch in range(1, args.epochs + 1):
        params, state, loss = step(params, state)
        progress.epoch(epoch, len(X), loss=loss, w=params["w"], b=params["b"])
    print(f"trained in {progress.elapsed():.2f} s ({args.epochs / progress.elapsed():.0f} steps/s)")
    plot_curves(args.plot, progress.history)
    y4 = float(predict(params, np.float32(4.0)))
    print(f"prediction for x = 4: {y4:.4f}")
    return y4


if __name__ == "__main__":
    main()
