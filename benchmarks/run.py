"""Run the benchmarks B1-B7 and print a table of medians and ratios; write them as JSON.

    python -m benchmarks.run [--quick] [--only B2,B3] [--json benchmarks/results.json] [--blas-threads 1]

Implementations of one workload run interleaved in one process (warm-up, then repeated blocks),
so ratios hold while the machine's speed drifts; B5 (first-call latency) runs fresh processes,
with an empty cache (cold) and the cache the cold run filled (warm).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import machine
from .workloads import LIMIT, REFERENCE, WORKLOADS


def calibrate(fn, target):
    """Calls per timed block so that a block lasts about ``target`` seconds."""
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    return max(1, min(100_000, int(target / max(once, 1e-7))))


SETTLE = 0.25  # seconds of idling before each timed block


def measure(impls, reps, target, settle=SETTLE):
    """Medians of ``reps`` interleaved blocks of about ``target`` seconds per implementation.

    Each block starts after ``settle`` seconds of idling, so that the thread pools the previous
    implementation used (OpenBLAS spins for about 0.1 s after a threaded call) are asleep again
    and every implementation starts its block on the same quiet machine.
    """
    for fn in impls.values():  # warm-up: compile, fill caches
        fn()
        fn()
    sizes = {name: calibrate(fn, target) for name, fn in impls.items()}
    times = {name: [] for name in impls}
    for _ in range(reps):
        for name, fn in impls.items():
            n = sizes[name]
            time.sleep(settle)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(ts) for name, ts in times.items()}


def first_calls(reps):
    """B5: seconds of the first call of the B1 step in fresh processes."""
    results = {}
    root = Path(__file__).resolve().parent.parent
    for impl in ("funcgrad", "funcgrad-sync", "jax"):
        if impl == "jax" and not _have("jax"):
            continue
        cold, warm = [], []
        for _ in range(reps):
            with tempfile.TemporaryDirectory() as d:
                env = dict(os.environ, FUNCGRAD_CACHE_DIR=d, NUMBA_CACHE_DIR=os.path.join(d, "numba"),
                           PYTHONPATH=str(root))
                for bucket in (cold, warm):
                    out = subprocess.run([sys.executable, "-m", "benchmarks.first_call", impl], env=env,
                                         capture_output=True, text=True, check=True, cwd=root)
                    bucket.append(json.loads(out.stdout.strip().splitlines()[-1]))
        results[impl] = {
            "cold": statistics.median(r["first_call"] for r in cold),
            "warm": statistics.median(r["first_call"] for r in warm),
        }
        if "compiled" in cold[0]:
            results[impl]["cold_compiled"] = statistics.median(r["compiled"] for r in cold)
            results[impl]["warm_compiled"] = statistics.median(r["compiled"] for r in warm)
    return results


def _have(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def fmt(t):
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.1f} ms"
    return f"{t * 1e6:.1f} us"


def table(results, b5):
    lines = ["| id | workload | funcgrad | peers (median) | funcgrad / ref | funcgrad / limit |",
             "| --- | --- | --- | --- | --- | --- |"]
    for wid, res in results.items():
        times = res["median_s"]
        fgt = times["funcgrad"]
        peers = " · ".join(f"{k} {fmt(v)}" for k, v in times.items() if k != "funcgrad")
        ref = REFERENCE.get(wid)
        ref = ref if ref in times else next((k for k in times if k.startswith(ref or "-")), None)
        lim = LIMIT.get(wid)
        r_ref = f"{fgt / times[ref]:.2f}x {ref}" if ref in times else "-"
        r_lim = f"{fgt / times[lim]:.2f}x {lim}" if lim in times else "-"
        lines.append(f"| {wid} | {res['title']} | {fmt(fgt)} | {peers} | {r_ref} | {r_lim} |")
    if b5:
        fgc = b5.get("funcgrad", {})
        sync = b5.get("funcgrad-sync", {})
        jx = b5.get("jax", {})
        jref = jx.get("cold")
        ratio = (f"warm {fgc['warm'] / jref:.2f}x, cold {fgc['cold'] / jref:.2f}x jax" if jref else "-")
        lines.append(
            f"| B5 | first call of the B1 step, fresh process | tiered: cold {fmt(fgc.get('cold', 0))}, "
            f"warm {fmt(fgc.get('warm', 0))} (compiled after {fmt(fgc.get('cold_compiled', 0))} / "
            f"{fmt(fgc.get('warm_compiled', 0))}); synchronous: cold {fmt(sync.get('cold', 0))}, "
            f"warm {fmt(sync.get('warm', 0))} | jax {fmt(jref) if jref else '-'} | {ratio} | - |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller B3, fewer repeats, one B5 round")
    ap.add_argument("--only", default="", help="comma-separated workload ids (B1..B7)")
    ap.add_argument("--json", default=str(Path(__file__).with_name("results.json")))
    ap.add_argument("--blas-threads", type=int, default=0,
                    help="limit NumPy's BLAS to this many threads (threadpoolctl), for every implementation")
    args = ap.parse_args(argv)
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.blas_threads, user_api="blas")
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)  # B5's fresh processes too
    only = {w.strip().upper() for w in args.only.split(",") if w.strip()}
    reps, target = (3, 0.05) if args.quick else (7, 0.2)
    import funcgrad as fg

    fg.config.update("async_compile", False)  # steady-state timings measure the compiled code
    results = {}
    for wid, (title, make) in WORKLOADS.items():
        if only and wid not in only:
            continue
        impls = make(quick=args.quick)
        med = measure(impls, reps, target)
        results[wid] = {"title": title, "median_s": med}
        print(f"{wid}: " + ", ".join(f"{k} {fmt(v)}" for k, v in med.items()), flush=True)
    b5 = first_calls(1 if args.quick else 3) if not only or "B5" in only else {}
    info = machine.describe()
    text = table(results, b5)
    print()
    print("Machine: " + machine.summary(info))
    print(text)
    Path(args.json).write_text(json.dumps({"machine": info, "workloads": results, "B5": b5, "quick": args.quick,
                                           "blas_threads": args.blas_threads, "table": text}, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
