"""Linear regression written as a PyTorch user writes it: a Module, MSELoss and SGD.

The classic PyTorch primer's script with only the changes a functional library needs: the
model is built from a PRNG key, ``fg.value_and_grad`` replaces ``loss.backward()`` and
``opt.update`` / ``apply_updates`` replace ``optimizer.step()`` (there is no gradient to
zero). Same data (x = 1, 2, 3; y = 2, 4, 6), learning rate 0.01 and 100 epochs, after which
the prediction for x = 4 is 8.20 from seed 0 (the bias converges slowly at this rate, as
in PyTorch); ``--epochs 1000`` reaches 8.02 and 3000 reach 8.0002.

    python examples/linear_regression_module.py
    python examples/linear_regression_module.py --epochs 1000
"""
from __future__ import annotations

import numpy as np
from _common import parser

import funcgrad as fg
from funcgrad import optim, random
from funcgrad.nn import modules as nn

# Sample data
x_train = np.array([[1.0], [2.0], [3.0]], np.float32)
y_train = np.array([[2.0], [4.0], [6.0]], np.float32)


class LinearRegression(nn.Module):
    def __init__(self, key):
        super().__init__()
        self.linear = nn.Linear(1, 1, key=key)

    def forward(self, x):
        return self.linear(x)


def main(argv=None):
    args = parser(__doc__, epochs=100, lr=(0.01, "SGD learning rate")).parse_args(argv)
    model = LinearRegression(random.key(args.seed))
    criterion = nn.MSELoss()
    optimizer = optim.sgd(args.lr)
    opt_state = optimizer.init(model)

    @fg.jit
    def train_step(model, opt_state):
        loss, grads = fg.value_and_grad(lambda m: criterion(m(x_train), y_train))(model)
        updates, opt_state = optimizer.update(grads, opt_state, model)
        return optim.apply_updates(model, updates), opt_state, loss

    for epoch in range(args.epochs):
        model, opt_state, loss = train_step(model, opt_state)
        if (epoch + 1) % max(1, args.epochs // 10) == 0:
            print(f"Epoch [{epoch + 1}/{args.epochs}], Loss: {float(loss):.4f}")

    predicted = model(np.array([[4.0]], np.float32))
    print(f"Prediction for x=4: {float(predicted[0, 0]):.4f}")
    return float(predicted[0, 0])


if __name__ == "__main__":
    main()
