"""The kernel cache: a graph lowered to canonical kernels (``lower``), each found in memory, in
the disk cache, or compiled (``load_kernels``); ``runner.py`` binds them into the callable."""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.cse import cse
from ...core.graph import Graph
from ...core.inline import inline_calls
from .. import cache
from . import loops, precompile, table
from .emit import HEADER, Emitter

_CODEGEN_FILES = ("../fusion.py", "table.py", "emit.py", "canonical.py", "lowering.py", "chunked.py", "kernels.py",
                  "compiler.py", "loops.py", "vecmath.py", "indexing.py")
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
_kernels: dict = {}  # kernel key -> compiled function
_lock = threading.RLock()


def kernel_key(text: str) -> str:
    """The cache key of a canonical kernel: its text and everything its machine code depends on."""
    from importlib.metadata import version

    import funcgrad

    h = hashlib.sha256(text.encode())
    h.update(f"{codegen_version()}:{funcgrad.__version__}:{version('numba')}:{np.__version__}".encode())
    return h.hexdigest()


@dataclass
class Program:
    """A graph lowered to canonical kernels (``kernels``, one per group of ``emitter``) and the
    runner that calls them (``runner``, Python source of ``make_run``)."""
    plan: object
    emitter: Emitter
    kernels: list
    runner: str

    @property
    def keys(self) -> list:
        return [kernel_key(k.text) for k in self.kernels]

    def key(self) -> str:
        """A hash of everything the compiled program depends on (the kernels, the sizes and
        constants their calls pass, the runner), not the values of the graph's constants except
        splatted ones."""
        h = hashlib.sha256(self.runner.encode())
        for k in self.kernels:
            h.update(kernel_key(k.text).encode())
            h.update(repr([(kind, a) for kind, a in k.args if kind != "var"]).encode())
        for lit in self.plan.splats.values():
            h.update(repr(np.asarray(lit.val).item()).encode())
        return h.hexdigest()


def lower(graph: Graph) -> Program:
    """Plan ``graph`` (repeated equations merged, control-flow constants hoisted) and write its
    kernels and runner."""
    graph = loops.hoist(cse(inline_calls(graph)))
    plan = table.make_plan(graph, mode="top")
    em = Emitter(plan, table.RULES).build()
    kernels = em.kernels()
    return Program(plan, em, kernels, em.runner_text(em.var_by_id(), kernels))


def in_memory(graph: Graph) -> bool:
    """Whether every kernel ``compile(graph)`` needs is already loaded (a fast compile)."""
    return all(k in _kernels for k in lower(graph).keys)


def _source(text: str) -> str:
    return HEADER + "\n\n" + text


def load_kernel(text: str):
    """The compiled function of a canonical kernel (from memory, the disk cache, or compiled)."""
    key = kernel_key(text)
    with _lock:
        fn = _kernels.get(key)
        if fn is not None:
            stats["memory_hits"] += 1
            return fn

        def make_source():
            stats["codegen"] += 1
            return _source(text)

        mod, generated = cache.load_module(key, make_source)
        if not generated and key not in _written:
            stats["disk_loads"] += 1
        fn = _kernels[key] = mod.kernel
        return fn


_written: set = set()  # keys of the entries this process wrote ahead of compiling them


def load_kernels(kernels) -> list:
    """The compiled functions of ``kernels``; when several are new, part of them is compiled by
    a forked process at the same time (``precompile.py``)."""
    todo: dict = {}
    for k in kernels:
        key = kernel_key(k.text)
        if key not in _kernels and key not in todo and not cache.entry_path(key).exists():
            todo[key] = k.text
    if len(todo) >= 2 and precompile.enabled():
        for key, text in todo.items():
            if cache.ensure(key, lambda text=text: _source(text)):
                stats["codegen"] += 1
                _written.add(key)
        mine, theirs = precompile.split(list(todo.items()))
        pid = precompile.start(theirs)
        for _, text in mine if pid is not None else []:
            load_kernel(text)
        precompile.wait(pid)
    return [load_kernel(k.text) for k in kernels]
