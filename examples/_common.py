"""Small helpers shared by the examples: data, minibatches, progress lines, plots."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from funcgrad import random


def parser(doc, epochs, **defaults):
    """An argument parser with the flags every example has (--epochs, --seed, --plot, --logdir);
    parsing sets the ``--logdir`` of the ``Progress`` objects made afterwards."""
    p = _Parser(description=doc.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=epochs, help="passes over the training data")
    p.add_argument("--seed", type=int, default=0, help="random seed (data split, init, shuffling)")
    p.add_argument("--plot", metavar="OUT.png", help="save the training curves (needs matplotlib)")
    p.add_argument("--logdir", metavar="DIR", help="write TensorBoard logs here (needs tensorboardX)")
    for name, (value, text) in defaults.items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, help=text)
    return p


class _Parser(argparse.ArgumentParser):
    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        Progress.logdir = parsed.logdir
        return parsed


def load_digits(key, test_fraction=0.2):
    """sklearn's 8x8 digits split by a random permutation: ``(x_train, y_train, x_test,
    y_test)``, x float32 of shape (n, 64) standardized with the training set's
    per-pixel mean and standard deviation."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise SystemExit("this example needs scikit-learn: pip install 'funcgrad[examples]'") from None
    data = sk_digits()
    x = data.data.astype(np.float32)
    y = data.target.astype(np.int32)
    order = np.asarray(random.permutation(key, len(y)))
    n_test = round(test_fraction * len(y))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(0), x[train].std(0) + 0.1
    x = (x - mean) / std
    return x[train], y[train], x[test], y[test]


def minibatches(key, n, batch_size):
    """Index arrays of shuffled full minibatches from ``range(n)``; the few examples left
    over change with every shuffle. One batch shape means one compiled training step."""
    order = np.asarray(random.permutation(key, n))
    return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


class Progress:
    """Records metrics per epoch and prints a line (loss, metrics, examples per second)
    every ``every`` epochs and at the last one (never when ``quiet``).

    On a terminal, with tqdm installed, a progress bar over the epochs shows the latest metrics
    and the lines are printed above it. With a ``logdir`` (by default the ``--logdir`` that
    ``parser`` parsed) every metric is also logged to TensorBoard as a scalar at its epoch
    through ``self.writer`` (a ``funcgrad.logging.SummaryWriter``, None without a logdir or
    tensorboardX). The bar and the writer are closed after the last epoch."""

    logdir = None

    def __init__(self, epochs, every=1, quiet=False, logdir=None):
        self.epochs, self.every, self.quiet = epochs, max(1, every), quiet
        self.history: dict[str, list[float]] = {}
        self.start = self.tick = time.perf_counter()
        self.seen = 0
        self.writer = None if quiet else _writer(logdir or Progress.logdir)
        self.bar = None if quiet else _bar(epochs)

    def epoch(self, epoch, examples, **metrics):
        self.seen += examples
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(float(value))
        if self.writer is not None:
            self.writer.add_scalars(metrics, epoch)
        if self.bar is not None:
            self.bar.set_postfix({name: _fmt(value) for name, value in metrics.items()}, refresh=False)
            self.bar.update(1)
        if not self.quiet and (epoch % self.every == 0 or epoch == self.epochs):
            now = time.perf_counter()
            rate = self.seen / max(now - self.tick, 1e-9)
            self.tick, self.seen = now, 0
            shown = "  ".join(f"{name.replace('_', ' ')} {_fmt(value)}" for name, value in metrics.items())
            width = len(str(self.epochs))
            line = f"epoch {epoch:{width}d}/{self.epochs}  {shown}  {rate:8.0f} examples/s"
            if self.bar is not None:
                self.bar.write(line, file=sys.stdout)
            else:
                print(line, flush=True)
        if epoch == self.epochs:
            self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def elapsed(self):
        return time.perf_counter() - self.start


def _writer(logdir):
    if not logdir:
        return None
    from funcgrad.logging import SummaryWriter, TensorBoardNotFoundError

    try:
        return SummaryWriter(logdir)
    except TensorBoardNotFoundError:
        print("--logdir: tensorboardX is not installed (pip install 'funcgrad[tensorboard]'); not logging")
        return None


def _bar(epochs):
    if not sys.stdout.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=epochs, unit="epoch", file=sys.stdout, leave=False, dynamic_ncols=True)


def _fmt(value):
    value = float(value)
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


def plot_curves(path, history, xlabel="epoch", start=1):
    """One panel per curve in ``history`` (name -> list of values, the first at ``xlabel``
    ``start``), saved to ``path``."""
    if not path:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib (pip install matplotlib); no plot written")
        return
    fig, axes = plt.subplots(1, len(history), figsize=(4.5 * len(history), 3.2), squeeze=False)
    for ax, (name, values) in zip(axes[0], history.items()):
        ax.plot(range(start, start + len(values)), values, marker="o" if len(values) < 40 else None)
        ax.set_xlabel(xlabel)
        ax.set_title(name.replace("_", " "))
        if "loss" in name and min(values) > 0:
            ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path)
    print(f"saved training curves to {path}")
