"""First-call latency (F1-F4 of BENCHMARKS.md), every figure from fresh processes.

``python -m benchmarks.first_call`` runs the suite: rounds of interleaved fresh processes, each
scenario against JAX's first call, medians and ratios printed and written to
``benchmarks/results_first_call.json``:

- F1 (B5): the jitted B1 step, cold (empty cache) and warm (cache filled by an earlier process);
- F2: the training step of ``examples/cnn_digits.py`` cold, against its JAX twin (``cnn_jax``);
- F3: in one process, the B1 step at batch 64 and 200 after batch 128;
- F4: a 784-256-128-10 MLP at batch 32 in a fresh process after the B1 model warmed the cache,
  against its own cold first call;
- F1 and F2 again as whole processes (interpreter start, imports, set-up and the first call):
  JAX initialises its runtime on import, Numba on its first compile, so only the whole process
  compares what each user waits for;
- a profile of a cold B5 call: tracing, planning and code generation, Numba typing, Numba
  lowering, LLVM, cache I/O, the product workers.

``python -m benchmarks.first_call funcgrad|funcgrad-sync|jax`` (used by ``benchmarks.run``) prints
one JSON line for B5: ``first_call`` (seconds from calling the step to its result) and, for
funcgrad's tiered mode, ``compiled`` (seconds until the Numba version is in place).
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

ROOT = Path(__file__).resolve().parent.parent
B1 = (784, 512, 512, 10)
F4 = (784, 256, 128, 10)


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _mlp(impl, sizes, batch):
    from benchmarks.workloads import _mlp_data, funcgrad_step, jax_step

    params, x, y = _mlp_data(sizes, batch)
    step = funcgrad_step("relu", 0.01) if impl.startswith("funcgrad") else jax_step("relu", 0.01)
    return step, (params, x, y)


def b5(impl):
    """The first call of the B1 step (``impl``: funcgrad, funcgrad-sync or jax)."""
    out = {"impl": impl}
    if impl.startswith("funcgrad"):
        import funcgrad as fg

        fg.config.update("async_compile", impl == "funcgrad")
    step, args = _mlp(impl, B1, 128)
    t0 = time.perf_counter()
    float(step(*args)[1])
    out["first_call"] = time.perf_counter() - t0
    if impl == "funcgrad":
        step.wait_compiled()
        out["compiled"] = time.perf_counter() - t0
    return out


def batches(impl):
    """F3: the B1 step at batch 128, then 64 and 200, in one process."""
    step, _ = _mlp(impl, B1, 128)
    out = {}
    for batch in (128, 64, 200):
        _, args = _mlp(impl, B1, batch)
        out[f"batch{batch}"] = _timed(lambda args=args: float(step(*args)[1]))
    return out


def second_model(impl):
    """F4: a 784-256-128-10 MLP step at batch 32 (the cache as the parent left it)."""
    step, args = _mlp(impl, F4, 32)
    return {"first_call": _timed(lambda: float(step(*args)[1]))}


def cnn(impl):
    """F2: the first call of the training step of examples/cnn_digits.py (batch 32)."""
    import numpy as np

    if impl == "jax":
        from benchmarks.cnn_jax import first_step

        return {"first_call": first_step(32)}
    sys.path.insert(0, str(ROOT / "examples"))
    from cnn_digits import build_model
    from mlp_digits import make_steps

    from funcgrad import optim, random

    init, apply = build_model(0.2)
    _, params = init(random.key(0), (-1, 8, 8, 1))
    opt = optim.adam(optim.cosine_decay(2e-3, 1000))
    state = opt.init(params)
    _, _, train_step = make_steps(apply, opt)
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 32)
    key = random.key(1)
    return {"first_call": _timed(lambda: float(train_step(params, state, x, y, key)[2]))}


_CATEGORIES = (  # (label, path fragments): exclusive time of a function goes to the first match
    ("LLVM (optimisation, machine code)", ("llvmlite/binding",)),
    ("Numba typing", ("numba/core/typeinfer", "numba/core/typing", "numba/core/types")),
    ("Numba lowering (IR building)", ("numba/core/lowering", "numba/core/base", "numba/core/imputils",
                                      "numba/np/", "numba/cpython/", "numba/core/cgutils", "llvmlite/ir")),
    ("cache I/O", ("numba/core/caching", "numba/core/serialize", "funcgrad/backends/cache")),
    ("other Numba (bytecode, IR passes)", ("numba/",)),
    ("funcgrad (tracing, planning, code generation, glue)", ("funcgrad/",)),
)


def profile(impl):
    """Where a cold B5 call spends its time: exclusive time by category, and the inclusive time
    of funcgrad's own stages (cProfile, so every figure is inflated by its overhead)."""
    import cProfile
    import pstats

    step, args = _mlp(impl, B1, 128)
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    float(step(*args)[1])
    pr.disable()
    total = time.perf_counter() - t0
    stats = pstats.Stats(pr).stats
    parts = {label: 0.0 for label, _ in _CATEGORIES}
    parts["other (Python, NumPy, BLAS)"] = 0.0
    for (file, _, _), (_, _, tt, _, _) in stats.items():
        label = next((lb for lb, frags in _CATEGORIES if any(f in file for f in frags)), "other (Python, NumPy, BLAS)")
        parts[label] += tt

    def cum(path_part, name):
        return max((v[3] for (file, _, fn), v in stats.items() if path_part in file and fn == name), default=0.0)

    stages = {"tracing": cum("funcgrad/transforms/jit.py", "_trace"),
              "planning and code generation": cum("backends/numba_cpu/compiler.py", "lower"),
              "kernels: cache lookups and compiles": cum("backends/numba_cpu/compiler.py", "load_kernel"),
              "product workers (first use)": cum("backends/numba_cpu/workers.py", "run")}
    return {"total (profiled)": round(total, 4), "exclusive": {k: round(v, 4) for k, v in parts.items()},
            "stages": {k: round(v, 4) for k, v in stages.items()}}


CHILDREN = {"b5": b5, "batches": batches, "second_model": second_model, "cnn": cnn, "profile": profile}


def _child(scenario, impl, cache_dir):
    env = dict(os.environ, FUNCGRAD_CACHE_DIR=cache_dir, NUMBA_CACHE_DIR=os.path.join(cache_dir, "numba"),
               PYTHONPATH=str(ROOT), FUNCGRAD_ASYNC_COMPILE="0")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "benchmarks.first_call", "--child", scenario, impl], env=env,
                         capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    if out.returncode:
        raise RuntimeError(f"{scenario} {impl} failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process"] = wall  # from starting the interpreter to its exit: imports, set-up, first call
    return res


def _have_jax():
    import importlib.util

    return importlib.util.find_spec("jax") is not None


def suite(rounds):
    samples: dict = {}

    def add(name, value):
        samples.setdefault(name, []).append(value)

    jax = _have_jax()
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as d:
            for name in ("F1 cold", "F1 warm"):
                res = _child("b5", "funcgrad-sync", d)
                add(name, res["first_call"])
                add(name + " (process)", res["process"])
            add("F4 after B1", _child("second_model", "funcgrad", d)["first_call"])
        if jax:
            res = _child("b5", "jax", tempfile.gettempdir())
            add("JAX B1", res["first_call"])
            add("JAX B1 (process)", res["process"])
        with tempfile.TemporaryDirectory() as d:
            add("F4 cold", _child("second_model", "funcgrad", d)["first_call"])
        with tempfile.TemporaryDirectory() as d:
            res = _child("cnn", "funcgrad", d)
            add("F2 cold", res["first_call"])
            add("F2 cold (process)", res["process"])
        if jax:
            res = _child("cnn", "jax", tempfile.gettempdir())
            add("JAX CNN", res["first_call"])
            add("JAX CNN (process)", res["process"])
        with tempfile.TemporaryDirectory() as d:
            for k, v in _child("batches", "funcgrad", d).items():
                add(f"F3 {k}", v)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as d:
        prof = _child("profile", "funcgrad", d)
    med = {k: statistics.median(v) for k, v in samples.items()}
    return {"rounds": rounds, "median_s": med, "samples_s": samples, "profile_s": prof}


def report(res):
    m = res["median_s"]

    def ratio(a, b):
        return f"{m[a] / m[b]:.2f}x" if a in m and b in m else "-"

    rows = [
        ("F1 B5 cold", "F1 cold", ratio("F1 cold", "JAX B1"), "JAX first call", "<= 3x"),
        ("F1 B5 warm", "F1 warm", ratio("F1 warm", "JAX B1"), "JAX first call", "<= 1x"),
        ("F2 CNN step cold", "F2 cold", ratio("F2 cold", "JAX CNN"), "JAX first call", "<= 3x"),
        ("F1 B5 cold, whole process", "F1 cold (process)", ratio("F1 cold (process)", "JAX B1 (process)"),
         "JAX's process", "-"),
        ("F1 B5 warm, whole process", "F1 warm (process)", ratio("F1 warm (process)", "JAX B1 (process)"),
         "JAX's process", "-"),
        ("F2 CNN cold, whole process", "F2 cold (process)", ratio("F2 cold (process)", "JAX CNN (process)"),
         "JAX's process", "-"),
        ("F3 batch 64 after 128", "F3 batch64", ratio("F3 batch64", "F3 batch128"), "first compile", "<= 0.15x"),
        ("F3 batch 200 after 128", "F3 batch200", ratio("F3 batch200", "F3 batch128"), "first compile", "<= 0.15x"),
        ("F4 second model, warm by B1", "F4 after B1", ratio("F4 after B1", "F4 cold"), "its own cold call",
         "<= 0.35x"),
    ]
    lines = ["| first call | funcgrad | ratio | against | target |", "| --- | --- | --- | --- | --- |"]
    for title, key, r, against, target in rows:
        lines.append(f"| {title} | {m[key]:.3f} s | {r} | {against} | {target} |")
    lines.append("")
    lines.append("References (medians): " + ", ".join(f"{k} {m[k]:.3f} s" for k in
                                                      ("JAX B1", "JAX CNN", "JAX B1 (process)", "JAX CNN (process)",
                                                       "F3 batch128", "F4 cold") if k in m))
    lines.append("")
    prof = res["profile_s"]
    lines.append(f"Profile of a cold B5 call ({prof['total (profiled)']:.2f} s under cProfile), exclusive time:")
    lines += [f"- {k}: {v:.3f} s" for k, v in prof["exclusive"].items()]
    lines.append("funcgrad's stages (inclusive):")
    lines += [f"- {k}: {v:.3f} s" for k, v in prof["stages"].items()]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("funcgrad", "funcgrad-sync", "jax"):
        print(json.dumps(b5(argv[0])))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results_first_call.json"))
    p.add_argument("--child", nargs=2, metavar=("SCENARIO", "IMPL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](args.child[1])))
        return
    res = suite(args.rounds)
    res["table"] = report(res)
    print(res["table"])
    Path(args.json).write_text(json.dumps(res, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
