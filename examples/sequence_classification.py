"""Classify noisy waveforms (sine, square, sawtooth, chirp) with a GRU.

The GRU is a ``lax.scan`` over time, so the jitted training step (forward,
backward through time, Adam update) is one graph with two loops in it,
whatever the sequence length. The data are generated with a fixed seed:
random frequency, phase and amplitude per sequence, plus Gaussian noise.

    python examples/sequence_classification.py
    python examples/sequence_classification.py --epochs 4 --plot waves.png
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, optim, random

CLASSES = ("sine", "square", "sawtooth", "chirp")


def make_waveforms(n, length, noise, rng):
    """``n`` sequences ``(n, length, 1)`` float32 and their labels (balanced classes)."""
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    t = np.linspace(0.0, 1.0, length)[None, :]
    freq = rng.uniform(2.0, 5.0, (n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 1))
    amp = rng.uniform(0.6, 1.4, (n, 1))
    cycles = freq * t + phase / (2 * np.pi)
    f_end = rng.uniform(6.0, 9.0, (n, 1))
    chirp_cycles = freq * t + 0.5 * (f_end - freq) * t ** 2 + phase / (2 * np.pi)
    waves = np.stack([
        np.sin(2 * np.pi * cycles),
        np.sign(np.sin(2 * np.pi * cycles)),
        2.0 * (cycles % 1.0) - 1.0,
        np.sin(2 * np.pi * chirp_cycles),
    ])[labels, np.arange(n)]
    x = amp * waves + noise * rng.standard_normal((n, length))
    return x[..., None].astype(np.float32), labels.astype(np.int64)


def build_model(hidden):
    return nn.serial(nn.GRU(hidden), nn.Dense(len(CLASSES)))


def train(args):
    rng = np.random.default_rng(args.seed)
    x_train, y_train = make_waveforms(args.train_size, args.length, args.noise, rng)
    x_test, y_test = make_waveforms(args.test_size, args.length, args.noise, rng)
    init, apply = build_model(args.hidden)
    _, params = init(random.key(args.seed), (-1, args.length, 1))
    opt = optim.adam(args.lr)
    state = opt.init(params)

    def loss_fn(params, x, y):
        return nn.softmax_cross_entropy(apply(params, x), y)

    def train_step(params, state, x, y):
        loss, grads = fg.value_and_grad(loss_fn)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss

    step = fg.jit(train_step, device=args.device)
    predict = fg.jit(lambda p, x: fnp.argmax(apply(p, x), axis=-1), device=args.device)

    history = []
    n_batches = args.train_size // args.batch_size
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(args.train_size)
        losses = []
        for b in range(n_batches):
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            params, state, loss = step(params, state, x_train[idx], y_train[idx])
            losses.append(float(loss))
        dt = time.perf_counter() - t0
        acc = float(np.mean(predict(params, x_test) == y_test))
        history.append((float(np.mean(losses)), acc))
        print(f"epoch {epoch:2d}  loss {history[-1][0]:.4f}  held-out accuracy {acc:6.2%}  "
              f"{n_batches * args.batch_size / dt:7.0f} sequences/s  ({dt:.1f} s)", flush=True)
    total = time.perf_counter() - start
    acc = history[-1][1]
    print(f"final held-out accuracy {acc:.2%} on {args.test_size} sequences "
          f"({args.epochs} epochs, {total:.1f} s including compilation)")
    return params, (x_test, y_test), history, predict


def plot(path, params, test, history, predict):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib (pip install matplotlib); skipped")
        return
    x, y = test
    pred = predict(params, x[:64])
    fig, axes = plt.subplots(1, len(CLASSES) + 1, figsize=(4 * (len(CLASSES) + 1), 3))
    for c, ax in enumerate(axes[:-1]):
        i = int(np.flatnonzero(y[:64] == c)[0])
        ax.plot(x[i, :, 0])
        ax.set_title(f"{CLASSES[c]} (predicted {CLASSES[int(pred[i])]})")
    losses, accs = zip(*history)
    axes[-1].plot(range(1, len(losses) + 1), losses, "o-", label="training loss")
    axes[-1].plot(range(1, len(accs) + 1), accs, "o-", label="held-out accuracy")
    axes[-1].set_xlabel("epoch")
    axes[-1].legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=32, help="GRU hidden size")
    p.add_argument("--length", type=int, default=40, help="time steps per sequence")
    p.add_argument("--noise", type=float, default=0.25, help="standard deviation of the added noise")
    p.add_argument("--train-size", type=int, default=2048)
    p.add_argument("--test-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=("cpu", "interpreter", "cuda"), help="jit device")
    p.add_argument("--plot", metavar="OUT.png", help="save example waveforms and the training curve")
    args = p.parse_args(argv)
    params, test, history, predict = train(args)
    if args.plot:
        plot(args.plot, params, test, history, predict)
    return history[-1][1]


if __name__ == "__main__":
    main()
