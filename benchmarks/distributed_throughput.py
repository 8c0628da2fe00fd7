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
(compilation included there) and keeps the median window; the 1-rank and 2-rank
runs alternate ``--repeats`` times and the table shows the medians.

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


def main(argv=None) -> None:
    args = parse(argv)
    if args.worker:
        worker(args)
        return
    print(f"digits MLP 64-{args.hidden}-{args.hidden}-10, float32, Adam, global batch {args.batch}, "
          f"{args.steps} steps x {args.windows} windows per run, {args.repeats} repeats")
    print(machine(), flush=True)
    results: dict[int, list[dict]] = {1: [], args.ranks: []}
    for r in range(args.repeats):
        order = (1, args.ranks) if r % 2 == 0 else (args.ranks, 1)  # alternate: drifting load hits both
        for n in order:
            results[n].append(run(n, args))
            last = results[n][-1]
            print(f"  repeat {r + 1}: {n} rank(s) {last['samples_per_s']:8.0f} samples/s, "
                  f"{last['cpu_share']:.2f} of a core per rank, load average {os.getloadavg()[0]:.1f}", flush=True)
    med = {n: statistics.median(x["samples_per_s"] for x in rs) for n, rs in results.items()}
    print()
    print("| processes | samples/s (median) | ms per step | CPU per rank (median, cores) | all repeats (samples/s) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for n, rs in results.items():
        every = ", ".join(f"{x['samples_per_s']:.0f}" for x in rs)
        share = statistics.median(x["cpu_share"] for x in rs)
        print(f"| {n} | {med[n]:.0f} | {1000 * args.batch / med[n]:.1f} | {share:.2f} | {every} |")
    ratio = med[args.ranks] / med[1]
    print(f"\nspeed-up of {args.ranks} ranks over 1 process: {ratio:.2f}x (median samples/s ratio)")
    print("(CPU per rank below 1.0 means other processes took the cores: the machine was not idle)")


if __name__ == "__main__":
    main()
