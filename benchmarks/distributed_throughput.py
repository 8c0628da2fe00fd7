"""Data-parallel training throughput: 2 MPI ranks against 1 process.

The workload is a digits MLP (64-H-H-10, ReLU, softmax cross-entropy, float32)
trained with Adam through ``distributed.DataParallel`` on global batches of
``--batch`` rows (sampled from scikit-learn's 8x8 digits): each of the 2 ranks
computes the gradient on half of every batch, the gradients are averaged with
one Allreduce, and both ranks apply the update. The baseline is the same step
in one plain process on the whole batch. Every process is single-threaded
(Numba, OpenMP and BLAS threads = 1), so 2 ranks use the 2 cores the single
process leaves idle.

Each run times ``--windows`` windows of ``--steps`` steps after a warm-up
(compilation included there) and keeps the median window, and records the CPU
time each rank got per second of wall time. The 1-process and 2-rank runs
alternate ``--repeats`` times; the summary gives the medians over all repeats
and over the repeats in which every process had a core to itself (at least 0.9
of a core: on a shared machine other programs take the rest).

    python benchmarks/distributed_throughput.py
    python benchmarks/distributed_throughput.py --batch 4096 --hidden 512 --repeats 7
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
sys.path.insert(0, REPO)  # run from a checkout without installing
LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "PMI_FD",
               "FUNCGRAD_DISTRIBUTED")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--batch", type=int, default=2048, help="global batch size (rows per step, all ranks)")
    p.add_argument("--hidden", type=int, default=512, help="width of the two hidden layers")
    p.add_argument("--steps", type=int, default=10, help="training steps per timed window")
    p.add_argument("--windows", type=int, default=3, help="timed windows per run (the median is kept)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    p.add_argument("--repeats", type=int, default=5, help="runs of each configuration")
    p.add_argument("--ranks", type=int, default=2, help="ranks of the distributed runs")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --------------------------------------------------------------------------- one run (every rank)


def worker(args) -> None:
    from funcgrad import distributed as dist
    from funcgrad import nn, optim, random

    dist.init()
    from sklearn.datasets import load_digits

    digits = load_digits()
    x_all = (digits.data / 16.0).astype(np.float32)
    y_all = digits.target.astype(np.int32)
    rng = np.random.default_rng(0)  # the same global batches on every rank
    batches = []
    for _ in range(4):
        idx = rng.integers(0, len(y_all), args.batch)
        batches.append(dist.shard((x_all[idx], y_all[idx])))

    init, apply = nn.serial(nn.Dense(args.hidden), nn.Relu, nn.Dense(args.hidden), nn.Relu, nn.Dense(10))
    _, params = init(random.key(0), (-1, 64))

    def loss_fn(params, x, y):
        return nn.softmax_cross_entropy(apply(params, x), y)

    step = dist.DataParallel(loss_fn, optim.adam(1e-3))
    params, state = step.init(params)
    for i in range(args.warmup):
        params, state, loss = step(params, state, *batches[i % len(batches)])
    step.local_value_and_grad.wait_compiled()  # time compiled code only
    params, state, loss = step(params, state, *batches[0])
    windows, shares = [], []
    for _ in range(args.windows):
        dist.barrier()
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(args.steps):
            params, state, loss = step(params, state, *batches[i % len(batches)])
        dist.barrier()
        windows.append(time.perf_counter() - start)
        shares.append((time.process_time() - cpu) / windows[-1])
    step.check(params, state)
    share = float(dist.pmean(np.float64(statistics.median(shares))))  # of a core, per rank
    if dist.rank() == 0:
        seconds = statistics.median(windows) / args.steps
        print("RESULT " + json.dumps({"ranks": dist.size(), "step_s": seconds, "cpu_share": share,
                                      "samples_per_s": args.batch / seconds, "loss": float(loss)}), flush=True)


# --------------------------------------------------------------------------- driver


def run(n: int, args) -> dict:
    from funcgrad import distributed as dist

    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update({v: "1" for v in THREAD_VARS})
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    argv = [os.path.abspath(__file__), "--worker", "--batch", str(args.batch), "--hidden", str(args.hidden),
            "--steps", str(args.steps), "--windows", str(args.windows), "--warmup", str(args.warmup)]
    cmd = [sys.executable, *argv] if n == 1 else dist.mpirun_command(n, sys.executable, *argv)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=900)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return json.loads(lines[-1][len("RESULT "):])


def machine() -> str:
    blas = "unknown BLAS"
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{info.get('name')} {info.get('version', '')}".strip()
    except (KeyError, TypeError, ValueError):
        pass
    return (f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__} with {blas}, "
            f"load average {os.getloadavg()[0]:.1f}; every process single-threaded ({', '.join(THREAD_VARS)}=1)")


def summary(title: str, pairs: list[tuple[dict, dict]], batch: int, n: int) -> None:
    one = statistics.median(a["samples_per_s"] for a, _ in pairs)
    many = statistics.median(b["samples_per_s"] for _, b in pairs)
    ratio = statistics.median(b["samples_per_s"] / a["samples_per_s"] for a, b in pairs)
    print(f"\n{title} ({len(pairs)} of them): medians")
    print("| processes | samples/s | ms per step |")
    print("| --- | ---: | ---: |")
    for k, rate in ((1, one), (n, many)):
        print(f"| {k} | {rate:.0f} | {1000 * batch / rate:.1f} |")
    print(f"speed-up of {n} ranks over 1 process: {ratio:.2f}x (median of the repeats' ratios)")


def main(argv=None) -> None:
    args = parse(argv)
    if args.worker:
        worker(args)
        return
    n = args.ranks
    print(f"digits MLP 64-{args.hidden}-{args.hidden}-10, float32, Adam, global batch {args.batch}, "
          f"{args.steps} steps x {args.windows} windows per run, {args.repeats} repeats")
    print(machine())
    print(f"\n| repeat | 1 process: samples/s | CPU | {n} ranks: samples/s | CPU per rank | ratio | load average |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
    pairs = []
    for r in range(args.repeats):
        order = (1, n) if r % 2 == 0 else (n, 1)  # alternate: a drifting load hits both
        got = {k: run(k, args) for k in order}
        a, b = got[1], got[n]
        pairs.append((a, b))
        print(f"| {r + 1} | {a['samples_per_s']:.0f} | {a['cpu_share']:.2f} | {b['samples_per_s']:.0f} | "
              f"{b['cpu_share']:.2f} | {b['samples_per_s'] / a['samples_per_s']:.2f} | "
              f"{os.getloadavg()[0]:.1f} |", flush=True)
    summary("all repeats", pairs, args.batch, n)
    # a rank that got less than 90% of a core shared it with other programs: not what is measured
    clean = [(a, b) for a, b in pairs if min(a["cpu_share"], b["cpu_share"]) >= 0.9]
    if clean:
        summary("repeats in which every process had a core to itself", clean, args.batch, n)
    else:
        print("\nno repeat had a core per process (other programs were running): rerun on a quieter machine")


if __name__ == "__main__":
    main()
