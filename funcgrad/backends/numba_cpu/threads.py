"""Threads of compiled programs: how many, who runs what, and BLAS's own threads.

A compiled step has three kinds of parallel work, and each runs on ``count()`` threads, the
calling thread among them, with work split into more tasks than threads and claimed one task
at a time, so a thread that the operating system has parked behind another process simply
takes fewer tasks and the caller never waits for a task nobody has started:

- large matrix products (``gemm.py``): tiles of one BLAS ``gemm`` on the native workers of
  ``workers.py`` (compiled code that holds no GIL; between products they poll for about a
  millisecond, yielding their core at every poll, then nap, then park);
- large transcendental-heavy clusters (``chunked.py``): blocks of NumPy ufunc calls on
  ``Pool``, Python threads that sleep on a queue;
- Numba's ``prange`` loops over clusters of a million elements or more, whose OpenMP threads
  sleep when idle (``OMP_WAIT_POLICY=passive`` unless the environment already says).

BLAS itself runs single-threaded inside the tiles (``single_threaded_blas``): OpenBLAS splits a
product statically between its threads and spins while it waits for them, so with another
process on one of the cores a step stalls for a scheduler time slice at a time.

The thread count is, in order: ``fg.config.update("num_threads", n)``, the environment variable
``FUNCGRAD_NUM_THREADS``, else the cores this process may run on (``os.sched_getaffinity``,
reduced by a cgroup CPU quota such as a container's ``--cpus`` and divided among the MPI ranks
that ``mpirun`` started on this node). Numba's parallel loops get the count in force when Numba
is first imported.

Which thread runs a task depends on timing; what a task computes does not: how work is split
depends only on the shapes, never on the thread count, so results are bit-identical for any
number of threads and any load.
"""
from __future__ import annotations

import atexit
import functools
import os
import queue
import threading
import warnings

from ...config import config
from ...errors import FuncgradValueError

_ENV = "FUNCGRAD_NUM_THREADS"


@functools.lru_cache(maxsize=1)
def available_cores() -> int:
    """Cores this process may use (read once): its CPU affinity, capped by a cgroup CPU quota,
    shared with the other MPI ranks of this node."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, int(quota + 0.5)))
    for var in _LOCAL_RANKS:  # MPI ranks on this node share its cores
        local = os.environ.get(var, "")
        if local.isdigit() and int(local) > 1:
            n //= int(local)
            break
    return max(1, n)


_LOCAL_RANKS = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")  # Open MPI, MPICH


def _cgroup_quota() -> float | None:
    """CPUs allowed by cgroup v2 ``cpu.max`` (or v1 ``cfs_quota_us``), None when unlimited."""
    for path, parse in (("/sys/fs/cgroup/cpu.max", _parse_v2), ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", _parse_v1)):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        return parse(text)
    return None


def _parse_v2(text: str) -> float | None:
    quota, _, period = text.strip().partition(" ")
    if quota == "max" or not period:
        return None
    return int(quota) / int(period)


def _parse_v1(text: str) -> float | None:
    quota = int(text.strip())
    if quota <= 0:
        return None
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            return quota / int(f.read().strip())
    except OSError:
        return None


def count() -> int:
    """Threads a compiled program may use (the caller included)."""
    n = config.num_threads
    source = "config num_threads"
    if n is None:
        env = os.environ.get(_ENV, "").strip()
        if not env:
            return available_cores()
        n, source = env, _ENV
    try:
        n = int(n)
    except (TypeError, ValueError):
        n = -1
    if n < 0:
        raise FuncgradValueError(f"{source} must be a whole number of threads >= 0 (0: every available core), "
                                 f"got {config.num_threads if source.startswith('config') else os.environ[_ENV]!r}")
    return n or available_cores()


class _Job:
    __slots__ = ("done", "error", "finished", "fn", "lock", "n", "next")

    def __init__(self, fn, n):
        self.fn, self.n = fn, n
        self.next = 0
        self.done = 0
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.error: BaseException | None = None

    def claim(self) -> int:
        with self.lock:
            i = self.next
            self.next += 1
            return i

    def work(self) -> None:
        """Run tasks until none is left unclaimed."""
        while True:
            i = self.claim()
            if i >= self.n:
                return
            try:
                if self.error is None:
                    self.fn(i)
            except BaseException as exc:  # noqa: BLE001  (raised again in the caller)
                self.error = exc
            with self.lock:
                self.done += 1
                last = self.done == self.n
            if last:
                self.finished.set()


class Pool:
    """``size - 1`` daemon worker threads that sleep on a queue until a job arrives."""

    def __init__(self, size: int):
        self.size = size
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._serve, name=f"funcgrad-worker-{i}", daemon=True)
                        for i in range(size - 1)]
        for t in self.threads:
            t.start()

    def _serve(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            job.work()

    def run(self, fn, n: int) -> None:
        job = _Job(fn, n)
        for _ in range(min(n, self.size) - 1):
            self.jobs.put(job)
        job.work()
        job.finished.wait()
        if job.error is not None:
            raise job.error

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)


_shared: dict = {}  # "pool" / "workers": objects with ``size`` and ``close()``
_shared_lock = threading.Lock()


def _sized(name: str, n: int, make):
    """The shared object ``name`` of ``n`` threads, made anew when the thread count changes."""
    obj = _shared.get(name)
    if obj is not None and obj.size == n:
        return obj
    with _shared_lock:
        obj = _shared.get(name)
        if obj is None or obj.size != n:
            if obj is not None:
                obj.close()
            obj = _shared[name] = make(n)
        return obj


def pool() -> Pool:
    """The shared task pool."""
    return _sized("pool", count(), Pool)


def blas_workers(sgemm, dgemm):
    """The native workers of large products (``workers.py``), ``count() - 1`` of them; None when
    one thread is all there is, and while their compiled code is being prepared: the first
    product of a process starts that in the background and its tiles (and those of the products
    until the workers are ready) run on the calling thread, with the same results."""
    n = count() if os.name == "posix" else 1  # the workers call sched_yield and usleep
    if n == 1:
        return None
    obj = _shared.get("workers")
    if obj is not None and obj.size == n:
        return obj
    with _shared_lock:
        if _preparing or _failed:
            return None
        _preparing.add(n)
    # not a daemon: LLVM aborts when the interpreter is torn down in the middle of a compile
    threading.Thread(target=_start_workers, args=(n, sgemm, dgemm), name="funcgrad-blas-start").start()
    return None


_preparing: set = set()
_failed: list = []


def _start_workers(n: int, sgemm, dgemm) -> None:
    from .workers import Workers, prepare

    try:
        prepare(sgemm, dgemm)
        _sized("workers", n, lambda n: Workers(n, sgemm, dgemm))
    except Exception as exc:  # noqa: BLE001  (products keep running on the calling thread)
        _failed.append(exc)
        warnings.warn(f"funcgrad: the product workers could not start ({type(exc).__name__}: {exc}); "
                      "large matrix products run on one thread", RuntimeWarning, stacklevel=1)
    finally:
        with _shared_lock:
            _preparing.discard(n)


def wait_for_workers(timeout: float = 60.0) -> bool:
    """Block until no product workers are being prepared; True when none are (tests, benchmarks)."""
    import time

    deadline = time.monotonic() + timeout
    while _preparing and time.monotonic() < deadline:
        time.sleep(0.005)
    return not _preparing


def _close_all() -> None:
    for obj in list(_shared.values()):
        obj.close()


atexit.register(_close_all)


def _forget_threads() -> None:
    """A forked child has none of its parent's threads: it makes pools of its own."""
    _shared.clear()
    _preparing.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads)


def parallel_for(fn, n: int) -> None:
    """``fn(0) ... fn(n - 1)`` on the pool and the calling thread; the first error is raised."""
    if n <= 0:
        return
    p = pool()
    if n == 1 or p.size == 1:
        for i in range(n):
            fn(i)
        return
    p.run(fn, n)


# -- BLAS: single-threaded inside funcgrad's tasks -----------------------------------------------
class _Blas:
    """The BLAS behind ``scipy.linalg.cython_blas``, which compiled products call, kept on one
    thread while they run.

    SciPy's wheels bundle a copy of OpenBLAS that only SciPy (and Numba's ``np.dot``) use: it is
    set to one thread and left there (raising an OpenBLAS's thread count wakes its threads, which
    costs more than a tile; a program that raises it again gets it lowered at the next product).
    A library that SciPy shares with NumPy (a system or conda BLAS) is set to one thread around
    each product and restored afterwards, so the user's NumPy code keeps its threads.
    """

    def __init__(self):
        import scipy
        import scipy.linalg.cython_blas  # loads the library
        from threadpoolctl import ThreadpoolController

        scipy_dirs = (os.path.dirname(scipy.__file__), os.path.dirname(scipy.__file__) + ".libs")
        libs = ThreadpoolController().select(user_api="blas").lib_controllers
        self.private = [lib for lib in libs if lib.filepath.startswith(scipy_dirs)]
        self.shared = [] if self.private else libs

    def run(self, fn, *args):
        """``fn(*args)`` with that BLAS on one thread."""
        for lib in self.private:
            if lib.get_num_threads() != 1:
                lib.set_num_threads(1)
        saved = [lib.get_num_threads() for lib in self.shared]
        if all(n == 1 for n in saved):
            return fn(*args)
        for lib in self.shared:
            lib.set_num_threads(1)
        try:
            return fn(*args)
        finally:
            for lib, n in zip(self.shared, saved):
                lib.set_num_threads(n)


_blas: _Blas | None = None


def single_threaded_blas() -> _Blas:
    """The BLAS of compiled products (found once per process)."""
    global _blas
    if _blas is None:
        with _shared_lock:
            if _blas is None:
                _blas = _Blas()
    return _blas


def before_numba_import() -> None:
    """Numba's parallel loops use funcgrad's thread count, and their OpenMP workers sleep when
    idle. Takes effect when Numba has not been imported yet and the environment does not
    already choose (``NUMBA_NUM_THREADS``, ``OMP_WAIT_POLICY``)."""
    import sys

    if "numba" in sys.modules:
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    if "NUMBA_NUM_THREADS" not in os.environ:
        try:
            os.environ["NUMBA_NUM_THREADS"] = str(count())
        except FuncgradValueError:
            pass  # reported where the pool is made
