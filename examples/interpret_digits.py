"""Which pixels does the digits CNN look at? Saliency, integrated gradients and SmoothGrad.

Trains the convolutional network of cnn_digits.py (or loads it with ``--checkpoint PATH``
when that file exists; a fresh training run saves it there), picks one correctly classified
held-out digit per class and computes, for the predicted class:

- the saliency map, ``|d score / d pixel|``;
- integrated gradients from an all-zero baseline (the average digit, since the pixels are
  standardized), with the completeness error: how far the attributions' sum is from
  ``score(x) - score(baseline)``;
- SmoothGrad, gradients averaged over noisy copies of the digit.

The maps are written as one PNG grid (a row per class: digit, saliency, integrated gradients,
SmoothGrad) when matplotlib is installed, else as a .npy file of shape (10, 4, 8, 8).

    python examples/interpret_digits.py
    python examples/interpret_digits.py --checkpoint cnn.fgck --out maps.png
"""
from __future__ import annotations

import os

import numpy as np
from _common import load_digits
from cnn_digits import build_model
from mlp_digits import arguments, train

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import checkpoint, interpret, random


def pick_examples(params, apply, x, y):
    """The first correctly classified held-out digit of each class (the first of the class
    when the model gets none of them right)."""
    predicted = np.asarray(fg.jit(lambda p, v: fnp.argmax(apply(p, v), axis=-1))(params, x))
    rows = [np.concatenate([np.flatnonzero((y == c) & (predicted == c)), np.flatnonzero(y == c)])[0]
            for c in range(10)]
    return x[rows], y[rows]


def attributions(f, x, target, steps, samples, key):
    saliency = np.abs(interpret.saliency(f, x, target))
    ig = interpret.integrated_gradients(f, x, target=target, steps=steps)
    error = interpret.completeness_error(f, x, ig, target=target)
    smooth = np.abs(interpret.smooth_grad(f, x, target, key=key, samples=samples))
    return np.stack([x, saliency, ig, smooth], axis=1)[..., 0], error


def save_grid(path, maps):
    titles = ("digit", "saliency", "integrated gradients", "SmoothGrad")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        path = os.path.splitext(path)[0] + ".npy"
        np.save(path, maps)
        print(f"matplotlib is not installed: saved the maps, shape {maps.shape}, to {path}")
        return
    fig, axes = plt.subplots(10, 4, figsize=(6.4, 15))
    for c in range(10):
        for j in range(4):
            ax = axes[c, j]
            img = maps[c, j]
            if j == 2:  # signed: red adds to the score, blue takes from it
                bound = np.abs(img).max() or 1.0
                ax.imshow(img, cmap="bwr", vmin=-bound, vmax=bound)
            else:
                ax.imshow(img, cmap="gray" if j == 0 else "hot")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_title(titles[j], fontsize=8)
        axes[c, 0].set_ylabel(str(c))
    fig.tight_layout()
    fig.savefig(path)
    print(f"saved the attribution maps to {path}")


def main(argv=None):
    p = arguments(__doc__, epochs=15)
    p.add_argument("--checkpoint", help="load the trained CNN from this file if it exists, else save it there")
    p.add_argument("--out", default="interpret_digits.png", help="where to write the grid of maps")
    p.add_argument("--steps", type=int, default=64, help="integration steps of integrated gradients")
    p.add_argument("--samples", type=int, default=32, help="noisy copies per digit for SmoothGrad")
    args = p.parse_args(argv)
    model = build_model(args.dropout)
    init, apply = model
    if args.checkpoint and os.path.exists(args.checkpoint):
        _, like = init(random.key(0), (-1, 8, 8, 1))
        params = checkpoint.load(args.checkpoint, like=like)
        print(f"loaded the trained CNN from {args.checkpoint}")
    else:
        _, params = train(args, model, (-1, 8, 8, 1), return_params=True)
        if args.checkpoint:
            checkpoint.save(args.checkpoint, params)
            print(f"saved the trained CNN to {args.checkpoint}")
    k_data, _, _ = random.split(random.key(args.seed), 3)  # the split train() used
    _, _, x_test, y_test = load_digits(k_data)
    x, y = pick_examples(params, apply, x_test.reshape(-1, 8, 8, 1), y_test)

    def f(v):
        return apply(params, v)

    maps, error = attributions(f, x, y, args.steps, args.samples, random.key(args.seed + 1))
    scores = np.asarray(f(x))[np.arange(10), y]
    print(f"integrated gradients, {args.steps} steps: completeness error max {error.max():.2e} "
          f"(relative to the scores: {np.max(error / np.abs(scores)):.2e})")
    save_grid(args.out, maps)
    return error


if __name__ == "__main__":
    main()
