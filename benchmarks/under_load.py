"""B1 with and without another process keeping a core busy: funcgrad jit against JAX jit.

    python -m benchmarks.under_load [--rounds 5] [--steps 400] [--load 0,1] [--json PATH]
                                    [--variant NAME=VALUE ...] [--compare-with PATH ...]

Each measurement is a fresh process that warms the jitted B1 step up (compiling it, or loading
it from the cache) and then times ``--steps`` single steps, as a user's training loop runs them.
funcgrad and JAX alternate process by process (interleaved pairs), ``--rounds`` times, first on
the quiet machine and then with ``--load`` busy loops (``while True: pass`` in other Python
processes, started and stopped by this script). The table gives, per implementation, the median
of the per-round medians, the 10th and 90th percentiles of all steps, and the median of the
per-round ratios to JAX. ``--variant`` adds funcgrad runs with an environment variable set,
e.g. ``--variant FUNCGRAD_NUM_THREADS=1 --variant OPENBLAS_NUM_THREADS=1``, and
``--compare-with PATH`` runs of another checkout (an earlier commit, say). Each child also
reports the thread pools it holds after its steps (threadpoolctl, Numba's threading layer,
funcgrad's pool) and how many threads the process has.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(impl: str, steps: int) -> dict:
    tree = os.environ.get("FUNCGRAD_BENCH_TREE")
    if tree:  # funcgrad from another checkout (--compare-with)
        sys.path.insert(0, tree)
    from .workloads import b1

    step = b1()[impl]
    for _ in range(20):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"times": times, "pools": pools()}


def pools() -> dict:
    """The thread pools this process holds now."""
    info: dict = {"os_threads": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None}
    try:
        from threadpoolctl import threadpool_info

        info["threadpoolctl"] = [{k: p.get(k) for k in ("internal_api", "filepath", "version", "num_threads")}
                                 for p in threadpool_info()]
    except ImportError:
        info["threadpoolctl"] = "not installed"
    if "numba" in sys.modules:
        import numba

        try:
            info["numba_threading_layer"] = numba.threading_layer()
        except ValueError:
            info["numba_threading_layer"] = "not started (no parallel loop ran)"
        info["numba_threads"] = numba.get_num_threads()
    if "funcgrad.backends.numba_cpu.threads" in sys.modules:
        from funcgrad.backends.numba_cpu import threads

        info["funcgrad_threads"] = threads.count()
    return info


def run_child(impl: str, steps: int, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.under_load", "--child", impl, "--steps", str(steps)],
                         env=env, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def busy_loops(n: int) -> list:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def summarize(runs: list[dict]) -> dict:
    per_round = [statistics.median(r["times"]) for r in runs]
    pooled = sorted(t for r in runs for t in r["times"])
    q = statistics.quantiles(pooled, n=10)
    return {"median": statistics.median(per_round), "p10": q[0], "p90": q[-1], "max": pooled[-1],
            "round_medians": per_round}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--load", default="0,1", help="comma-separated numbers of busy processes (default 0,1)")
    ap.add_argument("--variant", action="append", default=[], help="NAME=VALUE: an extra funcgrad run")
    ap.add_argument("--compare-with", action="append", default=[], metavar="PATH",
                    help="another checkout of funcgrad, run interleaved as 'funcgrad@PATH'")
    ap.add_argument("--json", default=str(Path(__file__).with_name("results_under_load.json")))
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return
    from . import machine
    from .workloads import have

    base = dict(os.environ, PYTHONPATH=str(ROOT))
    impls = {"funcgrad": {"impl": "funcgrad", "env": base}}
    for v in args.variant:
        name, _, value = v.partition("=")
        impls[f"funcgrad {v}"] = {"impl": "funcgrad", "env": dict(base, **{name: value})}
    for tree in args.compare_with:
        impls[f"funcgrad@{tree}"] = {"impl": "funcgrad", "env": dict(base, FUNCGRAD_BENCH_TREE=os.path.abspath(tree))}
    if have("jax"):
        impls["jax"] = {"impl": "jax", "env": base}
    for spec in impls.values():  # fill the compile caches before anything is timed
        if spec["impl"] == "funcgrad":
            run_child("funcgrad", 1, spec["env"])
    info = machine.describe()
    print("Machine: " + machine.summary(info), flush=True)
    results: dict = {}
    for n_busy in (int(x) for x in args.load.split(",")):
        procs = busy_loops(n_busy)
        try:
            time.sleep(0.5)
            runs = {name: [] for name in impls}
            for _ in range(args.rounds):
                for name, spec in impls.items():
                    runs[name].append(run_child(spec["impl"], args.steps, spec["env"]))
        finally:
            for p in procs:
                p.kill()
                p.wait()
        stats = {name: summarize(r) for name, r in runs.items()}
        if "jax" in runs:
            for name, r in runs.items():
                ratios = [statistics.median(a["times"]) / statistics.median(b["times"]) for a, b in zip(r, runs["jax"])]
                stats[name]["ratio_to_jax"] = statistics.median(ratios)
        stats["pools"] = {name: r[-1]["pools"] for name, r in runs.items()}
        results[f"busy={n_busy}"] = stats
        print(f"\nB1 step, {n_busy} busy process(es), {args.rounds} interleaved rounds of {args.steps} steps:")
        print("| implementation | median | p10 | p90 | p90/median | max | / jax |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name in impls:
            s = stats[name]
            ratio = f"{s['ratio_to_jax']:.2f}x" if "ratio_to_jax" in s else "-"
            print(f"| {name} | {s['median'] * 1e3:.2f} ms | {s['p10'] * 1e3:.2f} | {s['p90'] * 1e3:.2f} | "
                  f"{s['p90'] / s['median']:.2f} | {s['max'] * 1e3:.1f} | {ratio} |", flush=True)
    print("\nThread pools after the steps (funcgrad child):")
    print(json.dumps(results[next(iter(results))]["pools"]["funcgrad"], indent=1))
    Path(args.json).write_text(json.dumps({"machine": info, "steps": args.steps, "rounds": args.rounds,
                                           "results": results}, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
