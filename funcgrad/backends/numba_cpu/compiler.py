"""Compile a graph: plan it, find or generate its module in the cache, bind the glue."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from ...core.graph import Graph
from .. import cache
from . import loops
from . import plan as planmod
from .emit import Emitter, glue_eqns, glue_literals
from .glue import _fix, make_glue

_CODEGEN_FILES = ("plan.py", "emit.py", "lowering.py", "chunked.py", "kernels.py", "compiler.py", "loops.py",
                  "vecmath.py", "indexing.py")
_codegen_version: str | None = None


def codegen_version() -> str:
    """A hash of the code generator's own source: any change to it invalidates the disk cache."""
    global _codegen_version
    if _codegen_version is None:
        h = hashlib.sha256()
        here = Path(__file__).parent
        for name in _CODEGEN_FILES:
            h.update((here / name).read_bytes())
        _codegen_version = h.hexdigest()[:16]
    return _codegen_version

stats = {"codegen": 0, "disk_loads": 0, "memory_hits": 0, "compiles": 0}
_modules: dict = {}
_lock = threading.RLock()


def structure_key(graph: Graph, splats: dict) -> str:
    """A hash of everything the generated source depends on (not the constants' values,
    which are passed as arguments, except the splatted ones, which are inlined)."""
    from importlib.metadata import version

    import funcgrad

    shell = Graph(graph.constvars, [np.zeros(0, v.aval.dtype) for v in graph.constvars],
                  graph.invars, graph.eqns, graph.outvars)
    h = hashlib.sha256(shell.fingerprint().encode())
    for v in graph.constvars:
        lit = splats.get(id(v))
        h.update(b"-" if lit is None else repr(np.asarray(lit.val).item()).encode())
    prims = sorted({e.prim.name: e.prim for e in loops.all_eqns(graph)}.items())
    for name, p in prims:
        h.update(f"{name}:{p.kind}:{p.extra.get('numba')}:{p.multiple_results}:{p.effectful};".encode())
    h.update(f"{codegen_version()}:{funcgrad.__version__}:{version('numba')}:{np.__version__}".encode())
    h.update(f"{planmod.DOT_INLINE_MAX}:{planmod.PARALLEL_MIN}:{planmod.CHUNKED_MIN}".encode())
    return h.hexdigest()


def in_memory(graph: Graph) -> bool:
    """Whether ``compile(graph)`` would find its module already loaded (a fast compile)."""
    graph = loops.hoist(graph)
    return structure_key(graph, planmod.splat_consts(graph)) in _modules


def load(plan):
    """The compiled module for ``plan`` (from memory, disk, or freshly generated)."""
    key = structure_key(plan.graph, plan.splats)
    with _lock:
        mod = _modules.get(key)
        if mod is not None:
            stats["memory_hits"] += 1
            return mod

        def make_source():
            stats["codegen"] += 1
            return Emitter(plan).build().source()

        mod, generated = cache.load_module(key, make_source)
        if not generated:
            stats["disk_loads"] += 1
        _modules[key] = mod
        return mod


def compile(graph: Graph):
    """``run(args) -> outputs`` for ``graph``, with every lowerable part compiled by Numba."""
    stats["compiles"] += 1
    graph = loops.hoist(graph)
    plan = planmod.make_plan(graph, mode="top")
    mod = load(plan)
    glue = [loops.make_glue(e) if e.prim.name in loops.CONTROL_FLOW else make_glue(e, planmod.classify)
            for e in glue_eqns(plan)]
    consts = [_fix(c, v.aval.dtype) for v, c in zip(graph.constvars, graph.consts)]
    run = mod.make_run(glue, glue_literals(plan), consts)
    effectful = any(loops.effectful(e) for e in glue_eqns(plan))
    return _guard(run, effectful, [v.aval.dtype for v in graph.invars])


def _guard(run, effectful, dtypes):
    """Compiled functions take writeable C-contiguous arrays; others are copied first (up
    front when the graph has effects, else on the rare dispatch failure)."""
    def normalize(args):
        return [_fix(a, d) for a, d in zip(args, dtypes)]

    if effectful:
        return lambda args: run(normalize(args))

    def guarded(args):
        try:
            return run(args)
        except TypeError as exc:
            if "No matching definition" not in str(exc):
                raise
            return run(normalize(args))

    return guarded



