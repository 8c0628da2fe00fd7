"""Compiling a program's missing kernels on more than one core.

Numba compiles one function at a time per process (a global lock), so a cold program with
several new kernels uses one core. When a program needs at least two kernels that are neither
loaded nor on disk, ``split`` hands part of them to a forked child process, which compiles them
into the disk cache (``cache.py``; Numba stores the machine code beside each entry) and exits,
while the parent compiles the rest; the parent then loads the child's share from the cache. The
child is a copy of the parent (Numba already imported, no start-up), and the machine code it
writes is what the parent would have produced from the same source, so results do not depend on
which process compiled a kernel. A child that fails only costs time: the parent compiles what
is missing itself. There is no fork while another Python thread may be inside Numba (the
product workers being compiled, a background ``jit`` compile, a user's thread): the child would
inherit the locks that thread holds, and wait for them forever. Then the parent compiles alone.

Opt-in, with ``FUNCGRAD_PARALLEL_COMPILE=1``: a forked child has been seen to wait forever on a
lock inherited from the parent in a program with several jitted functions, so it is not the
default. Off in any case when funcgrad has one thread (``threads.count()``), under MPI (forking
an MPI process is unsafe with some transports), or without ``os.fork``.
"""
from __future__ import annotations

import os
import threading

from .. import cache
from . import threads

_MPI_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS")


def enabled() -> bool:
    if os.environ.get("FUNCGRAD_PARALLEL_COMPILE", "0").strip().lower() not in ("1", "true", "yes", "on"):
        return False
    if not hasattr(os, "fork") or any(v in os.environ for v in _MPI_VARS):
        return False
    return threads.count() >= 2


_IDLE = ("funcgrad-worker-", "funcgrad-blas-")  # pool and product threads: compiled code, never Numba


def _quiet() -> bool:
    """Whether every other Python thread is one of funcgrad's pool or product threads."""
    me = threading.current_thread()
    return all(t is me or t.name.startswith(_IDLE) for t in threading.enumerate())


def split(missing: list) -> tuple[list, list]:
    """``(parent's, child's)``: ``missing`` (``(key, source)`` pairs) in two shares of about equal
    work (the longest source first, each to the lighter share)."""
    shares: tuple[list, list] = ([], [])
    load = [0, 0]
    for item in sorted(missing, key=lambda kv: -len(kv[1])):
        i = 0 if load[0] <= load[1] else 1
        shares[i].append(item)
        load[i] += len(item[1])
    return shares


def start(items: list):
    """Fork a child compiling ``items`` (``(key, source)`` pairs, already written to the cache)
    into the disk cache; returns its pid, or None when it could not start."""
    if not _quiet():
        return None
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid:
        return pid
    code = 1
    try:
        for key, _ in items:
            cache.import_entry(key)
        code = 0
    finally:
        os._exit(code)


def wait(pid) -> bool:
    """Wait for a child of ``start``; True when it compiled everything it was given."""
    if pid is None:
        return False
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return False
    return os.waitstatus_to_exitcode(status) == 0
