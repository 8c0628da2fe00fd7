"""A multilayer perceptron on scikit-learn's 8x8 handwritten digits.

1797 images of 64 pixels, 20% held out. The network is 64-256-128-10 with
ReLU and dropout, trained with Adam (cosine learning-rate decay) on
minibatches; the training step (forward, backward, update) is one jitted
function.

With ``--distributed`` the script runs data-parallel under MPI: every process
starts from rank 0's parameters, computes gradients on its shard of each
minibatch, and the gradients are averaged across processes before the update
(give each process one BLAS thread, as below, when they share a few cores).

    python examples/mlp_digits.py
    python examples/mlp_digits.py --epochs 10 --plot mlp.png
    python examples/mlp_digits.py --module     # the same network as PyTorch-style modules
    OMP_NUM_THREADS=1 mpirun -n 2 python examples/mlp_digits.py --distributed
"""
from __future__ import annotations

import numpy as np
from _common import Progress, load_digits, minibatches, parser, plot_curves

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, optim, random
from funcgrad.nn import modules


def build_model(dropout):
    return nn.serial(nn.Dense(256), nn.Relu, nn.Dropout(dropout),
                     nn.Dense(128), nn.Relu, nn.Dropout(dropout),
                     nn.Dense(10))


def build_module(dropout):
    """The same network as ``nn.modules`` (PyTorch's layer names, layouts and initialization),
    as an ``(init, apply)`` pair whose params are the module itself."""
    def init(key, input_shape):
        k1, k2, k3 = random.split(key, 3)
        return None, modules.Sequential(
            modules.Linear(input_shape[-1], 256, key=k1), modules.ReLU(), modules.Dropout(dropout),
            modules.Linear(256, 128, key=k2), modules.ReLU(), modules.Dropout(dropout),
            modules.Linear(128, 10, key=k3))

    def apply(model, x, *, key=None, train=False):
        return model(x, key=key, train=train)

    return nn.Layer(init, apply)


def arguments(doc, epochs):
    p = parser(doc, epochs=epochs, lr=(2e-3, "initial Adam learning rate (cosine decay to 0)"),
               batch_size=(32, "minibatch size"), dropout=(0.2, "dropout rate"))
    p.add_argument("--distributed", action="store_true", help="data-parallel over MPI processes")
    return p


def add_module_flag(p):
    p.add_argument("--module", action="store_true", help="build the network from funcgrad.nn.modules")
    return p


def make_steps(apply, opt):
    """The jitted training pieces: the loss and its gradient, the optimizer update,
    and both fused into one step."""
    def loss_and_grads(params, x, y, key):
        return fg.value_and_grad(lambda p: nn.softmax_cross_entropy(apply(p, x, key=key, train=True), y))(params)

    def update(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    def train_step(params, state, x, y, key):
        loss, grads = loss_and_grads(params, x, y, key)
        return (*update(params, state, grads), loss)

    return fg.jit(loss_and_grads), fg.jit(update), fg.jit(train_step)


def train(args, model, input_shape, return_params=False):
    """Train ``model`` on the digits (images reshaped to ``input_shape``); returns the
    held-out accuracy (and the trained parameters with ``return_params``)."""
    dist = None
    if args.distributed:
        from funcgrad import distributed as dist

        dist.init()
    root = dist is None or dist.rank() == 0

    k_data, k_init, k_train = random.split(random.key(args.seed), 3)
    x_train, y_train, x_test, y_test = load_digits(k_data)
    x_train, x_test = x_train.reshape(input_shape), x_test.reshape(input_shape)
    init, apply = model
    _, params = init(k_init, input_shape)
    if dist:
        params = dist.broadcast(params)
    steps_per_epoch = len(y_train) // args.batch_size
    opt = optim.adam(optim.cosine_decay(args.lr, args.epochs * steps_per_epoch))
    state = opt.init(params)
    loss_and_grads, update, train_step = make_steps(apply, opt)
    predict = fg.jit(lambda params, x: fnp.argmax(apply(params, x), axis=-1))

    progress = Progress(args.epochs, quiet=not root)
    log = progress.writer  # TensorBoard (with --logdir): the loss's graph once, parameter histograms per epoch
    if log is not None:
        log.add_graph_text("loss", lambda p, x, y: nn.softmax_cross_entropy(apply(p, x), y),
                           params, x_train[:args.batch_size], y_train[:args.batch_size])
    for epoch in range(1, args.epochs + 1):
        k_epoch = random.fold_in(k_train, epoch)
        losses = []
        for i, idx in enumerate(minibatches(k_epoch, len(y_train), args.batch_size)):
            key = random.fold_in(k_epoch, i)
            if dist:
                x, y = dist.shard((x_train[idx], y_train[idx]))
                loss, grads = loss_and_grads(params, x, y, random.fold_in(key, dist.rank()))
                loss, grads = dist.pmean((loss, grads))
                params, state = update(params, state, grads)
            else:
                params, state, loss = train_step(params, state, x_train[idx], y_train[idx], key)
            losses.append(float(loss))
        acc = float(np.mean(predict(params, x_test) == y_test))
        if log is not None:
            log.add_histograms("params", params, epoch)
        progress.epoch(epoch, steps_per_epoch * args.batch_size, loss=np.mean(losses), held_out_accuracy=acc)
    if root:
        plot_curves(args.plot, progress.history)
        workers = f" on {dist.size()} processes" if dist else ""
        print(f"held-out accuracy: {acc:.2%} ({len(y_test)} digits, {progress.elapsed():.1f} s{workers})")
    return (acc, params) if return_params else acc


def main(argv=None):
    args = add_module_flag(arguments(__doc__, epochs=30)).parse_args(argv)
    model = build_module(args.dropout) if args.module else build_model(args.dropout)
    return train(args, model, (-1, 64))


if __name__ == "__main__":
    main()
