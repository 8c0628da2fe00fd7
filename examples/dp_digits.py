"""The digits MLP of mlp_digits.py trained with differentially private SGD (DP-SGD).

Each step takes the gradient of every example of the minibatch separately (``vmap`` of
``grad``), clips each to an L2 norm of at most --l2-norm-clip, adds Gaussian noise of standard
deviation --noise-multiplier x --l2-norm-clip to their sum and divides by the batch size
(``funcgrad.privacy.dp_sgd``); the whole step is one jitted function. After each epoch the
script prints the held-out accuracy and the privacy spent so far: epsilon at --delta from the
Rényi-DP accountant (``privacy.RDPAccountant``). The guarantee covers the trained parameters;
the training loss printed next to them is a diagnostic computed without noise.

The batches are shuffled and of a fixed size B out of the N training digits, and accounted as
Poisson sampling with rate B / N, where each digit would join each batch independently: the
customary approximation (TensorFlow Privacy's and JAX's DP-SGD examples make it too).

    python examples/dp_digits.py
    python examples/dp_digits.py --noise-multiplier 2 --epochs 40 --plot dp.png
"""
from __future__ import annotations

import numpy as np
from _common import Progress, load_digits, minibatches, parser, plot_curves
from mlp_digits import build_model

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, optim, privacy, random


def arguments(doc):
    return parser(doc, epochs=12, lr=(0.2, "learning rate (SGD with momentum, cosine decay to 0)"),
                  momentum=(0.9, "momentum"), batch_size=(128, "minibatch size"),
                  l2_norm_clip=(1.0, "each example's gradient is clipped to this L2 norm"),
                  noise_multiplier=(1.2, "noise standard deviation over the clipping norm"),
                  delta=(1e-5, "the delta of the reported (epsilon, delta)"))


def make_step(apply, opt):
    """The jitted DP-SGD step: per-example gradients, clipped, summed, noised, averaged, applied."""
    def loss_fn(params, x, y):
        return nn.softmax_cross_entropy(apply(params, x), y)

    def train_step(params, state, x, y):
        grads = privacy.per_example_grads(loss_fn, params, x, y)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss_fn(params, x, y)

    return fg.jit(train_step)


def train_epoch(train_step, params, state, batches, x, y):
    """One step per index array of ``batches``: the params, the state and the mean loss."""
    losses = []
    for idx in batches:
        params, state, loss = train_step(params, state, x[idx], y[idx])
        losses.append(float(loss))
    return params, state, float(np.mean(losses))


def main(argv=None):
    args = arguments(__doc__).parse_args(argv)
    k_data, k_init, k_train, k_noise = random.split(random.key(args.seed), 4)
    x_train, y_train, x_test, y_test = load_digits(k_data)
    init, apply = build_model(dropout=0.0)
    _, params = init(k_init, (-1, 64))
    steps_per_epoch = len(y_train) // args.batch_size
    lr = optim.cosine_decay(args.lr, args.epochs * steps_per_epoch)
    opt = privacy.dp_sgd(lr, args.l2_norm_clip, args.noise_multiplier, key=k_noise, momentum=args.momentum)
    state = opt.init(params)
    train_step = make_step(apply, opt)
    predict = fg.jit(lambda params, x: fnp.argmax(apply(params, x), axis=-1))
    accountant = privacy.RDPAccountant()
    sample_rate = args.batch_size / len(y_train)

    progress = Progress(args.epochs)
    for epoch in range(1, args.epochs + 1):
        batches = minibatches(random.fold_in(k_train, epoch), len(y_train), args.batch_size)
        params, state, loss = train_epoch(train_step, params, state, batches, x_train, y_train)
        accountant.step(args.noise_multiplier, sample_rate, num_steps=len(batches))
        eps = accountant.get_epsilon(args.delta)
        acc = float(np.mean(predict(params, x_test) == y_test))
        progress.epoch(epoch, len(batches) * args.batch_size, loss=loss, held_out_accuracy=acc, epsilon=eps)
    plot_curves(args.plot, progress.history)
    print(f"held-out accuracy: {acc:.2%} ({len(y_test)} digits, {progress.elapsed():.1f} s); "
          f"epsilon {eps:.2f} at delta {args.delta:g} (noise multiplier {args.noise_multiplier:g}, "
          f"clip {args.l2_norm_clip:g}, {accountant.steps} steps of sample rate {sample_rate:.4f})")
    return acc, eps


if __name__ == "__main__":
    main()
