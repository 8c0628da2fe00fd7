"""M1: the training step of ``examples/mlp_digits.py`` built from ``nn.modules`` (a
``Sequential`` of ``Linear``, ``ReLU`` and ``Dropout`` modules) against the same network as
``(init, apply)`` layers: the jitted step (forward, backward, Adam update) at batch 32.

    python -m benchmarks.module_step [--rounds 40]

Both steps run interleaved (alternating order), ``--calls`` calls per block; the ratio printed
is the median of the per-round ratios module / layers, with each one's median step time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))


def steps(batch=32):
    import mlp_digits

    from funcgrad import optim, random

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 64)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int32)
    out = {}
    for name, model in (("layers", mlp_digits.build_model(0.2)), ("module", mlp_digits.build_module(0.2))):
        _, params = model.init(random.key(0), (-1, 64))
        opt = optim.adam(1e-3)
        state = opt.init(params)
        _, _, step = mlp_digits.make_steps(model.apply, opt)
        args = (params, state, x, y, random.key(1))
        step(*args)  # compile
        out[name] = (step, args)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--calls", type=int, default=50)
    args = p.parse_args(argv)
    runs = list(steps().items())
    times: dict = {name: [] for name, _ in runs}
    for r in range(args.rounds):
        for name, (step, a) in runs if r % 2 else runs[::-1]:
            t0 = time.perf_counter()
            for _ in range(args.calls):
                step(*a)
            times[name].append((time.perf_counter() - t0) / args.calls)
    ratio = statistics.median(m / s for m, s in zip(times["module"], times["layers"]))
    med = {n: statistics.median(v) * 1e6 for n, v in times.items()}
    print(f"M1 step, batch 32: layers {med['layers']:.0f} us, module {med['module']:.0f} us; "
          f"module / layers {ratio:.3f}x (median of {args.rounds} interleaved rounds)")
    return ratio


if __name__ == "__main__":
    main()
