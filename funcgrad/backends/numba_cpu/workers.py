"""Native worker threads that run the tiles of large matrix products (``gemm.py``).

Python threads cannot take work without the GIL, and every GIL hand-over wakes a sleeping
thread (tens of microseconds on a virtual machine): too slow for products that take a few
hundred. These workers run compiled code that holds no GIL. A product is a *job*: its tiles
are claimed one at a time with an atomic compare-and-swap by the workers and by the calling
thread, which takes part too, so a worker that the operating system has parked behind another
process simply claims fewer tiles and the caller never waits for a tile nobody has started.

Between jobs a worker first polls for up to ``SPIN`` rounds, yielding its core at each
(``sched_yield``), then sleeps in ``POLL_US`` naps for up to ``POLL`` rounds, then parks on a
condition variable until the next job (no CPU at all). The caller waits for the tiles that
workers are still finishing the same way: yield briefly, then nap, so its core is free for them.
No thread ever spins without yielding, and none polls for longer than ``SPIN + POLL`` rounds.

The job is described in one ``uint64`` array shared by all threads (``_CTRL`` fields below).
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

SPIN = 2000  # polls between jobs that yield the core (about 1 ms on an idle machine)
POLL = 200  # then naps of POLL_US each (about 20 ms), then the worker parks
POLL_US = 100
WAIT_SPIN = 400  # the caller's yielding polls for unfinished tiles before it naps

# fields of the control array
SEQ, CLAIM, DONE, NTILES, KIND, DIMS, OFFSETS, PP, PQ, PC, STOP = range(11)
ARGS = 11  # 8 addresses of the arguments shared by every tile
SIZE = ARGS + 8
_CLOSED = np.uint64(0xFFFFFFFF)

_sched_yield = types.ExternalFunction("sched_yield", types.intc())
_usleep = types.ExternalFunction("usleep", types.intc(types.uintc))


def _pointer(context, builder, arrty, arr, idx):
    ary = context.make_array(arrty)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arrty, ary, [idx])


@intrinsic
def _load(typingctx, arr, idx):
    """Sequentially consistent load of ``arr[idx]`` (uint64)."""
    def codegen(context, builder, sig, args):
        return builder.load_atomic(_pointer(context, builder, sig.args[0], args[0], args[1]), "seq_cst", 8)
    return types.uint64(arr, idx), codegen


@intrinsic
def _store(typingctx, arr, idx, val):
    """Sequentially consistent store of ``val`` into ``arr[idx]`` (uint64)."""
    def codegen(context, builder, sig, args):
        builder.store_atomic(args[2], _pointer(context, builder, sig.args[0], args[0], args[1]), "seq_cst", 8)
        return context.get_dummy_value()
    return types.none(arr, idx, types.uint64), codegen


@intrinsic
def _cas(typingctx, arr, idx, expected, new):
    """Compare-and-swap on ``arr[idx]``; returns the value found."""
    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.extract_value(builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst"), 0)
    return types.uint64(arr, idx, types.uint64, types.uint64), codegen


@intrinsic
def _add(typingctx, arr, idx, val):
    """Atomic ``arr[idx] += val``; returns the old value."""
    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")
    return types.uint64(arr, idx, types.uint64), codegen


@njit(nogil=True, cache=True)
def _work(ctrl, sgemm, dgemm, seq):
    """Claim and compute tiles of job ``seq`` until none is left (or the job is another)."""
    while True:
        c = _load(ctrl, CLAIM)
        t = c & np.uint64(0xFFFFFFFF)
        if (c >> np.uint64(32)) != seq or t >= ctrl[NTILES]:
            return
        if _cas(ctrl, CLAIM, c, c + np.uint64(1)) != c:
            continue
        dims = ctrl[DIMS] + np.uint64(8) * t
        offs = ctrl[OFFSETS] + np.uint64(24) * t
        o = (offs, offs + np.uint64(8), offs + np.uint64(16))
        op = _read(o[0])
        oq = _read(o[1])
        oc = _read(o[2])
        a = ARGS
        if ctrl[KIND] == 0:
            sgemm(ctrl[a], ctrl[a + 1], dims, dims + np.uint64(4), ctrl[a + 2], ctrl[a + 3], ctrl[PP] + op,
                  ctrl[a + 5], ctrl[PQ] + oq, ctrl[a + 6], ctrl[a + 4], ctrl[PC] + oc, ctrl[a + 7])
        else:
            dgemm(ctrl[a], ctrl[a + 1], dims, dims + np.uint64(4), ctrl[a + 2], ctrl[a + 3], ctrl[PP] + op,
                  ctrl[a + 5], ctrl[PQ] + oq, ctrl[a + 6], ctrl[a + 4], ctrl[PC] + oc, ctrl[a + 7])
        _add(ctrl, DONE, np.uint64(1))


@intrinsic
def _read(typingctx, addr):
    """The uint64 at address ``addr``."""
    def codegen(context, builder, sig, args):
        ptr = builder.inttoptr(args[0], context.get_value_type(types.uint64).as_pointer())
        return builder.load(ptr)
    return types.uint64(types.uint64), codegen


@njit(nogil=True, cache=True)
def _serve(ctrl, sgemm, dgemm, seen, spin, poll, nap):
    """A worker's loop: returns (last job seen, stop) when told to stop or idle for long."""
    idle = 0
    while True:
        if _load(ctrl, STOP) != 0:
            return seen, True
        seq = _load(ctrl, SEQ)
        if seq != seen:
            _work(ctrl, sgemm, dgemm, seq)
            seen = seq
            idle = 0
            continue
        idle += 1
        if idle <= spin:
            _sched_yield()
        elif idle <= spin + poll:
            _usleep(nap)
        else:
            return seen, False


@njit(nogil=True, cache=True)
def _publish(ctrl, kind, ntiles, dims, offsets, pp, pq, pc, args):
    """Describe a job and open it: its tiles can be claimed from the last store on."""
    seq = ctrl[SEQ]
    _store(ctrl, CLAIM, (seq << np.uint64(32)) | _CLOSED)  # a late worker of the last job claims nothing
    ctrl[DONE] = 0
    ctrl[NTILES] = ntiles
    ctrl[KIND] = kind
    ctrl[DIMS] = dims
    ctrl[OFFSETS] = offsets
    ctrl[PP] = pp
    ctrl[PQ] = pq
    ctrl[PC] = pc
    for i in range(8):
        ctrl[ARGS + i] = args[i]
    seq += np.uint64(1)
    _store(ctrl, CLAIM, seq << np.uint64(32))  # sequentially consistent: the fields above come first
    _store(ctrl, SEQ, seq)
    return seq


@njit(nogil=True, cache=True)
def _finish(ctrl, sgemm, dgemm, seq, spin, nap):
    """Take part in job ``seq``, then wait (yielding, then napping) for the tiles of others."""
    _work(ctrl, sgemm, dgemm, seq)
    n = ctrl[NTILES]
    i = 0
    while _load(ctrl, DONE) < n:
        i += 1
        if i <= spin:
            _sched_yield()
        else:
            _usleep(nap)


def prepare(sgemm, dgemm) -> None:
    """Compile the workers' code for these routines (the argument types ``Workers`` calls with)."""
    from numba import typeof

    ctrl, u, i = typeof(np.zeros(1, np.uint64)), types.uint64, types.int64
    fs, fd = typeof(sgemm), typeof(dgemm)
    _publish.compile((ctrl, u, u, u, u, u, u, u, ctrl))
    _finish.compile((ctrl, fs, fd, u, i, i))
    _serve.compile((ctrl, fs, fd, u, i, i, i))


class Workers:
    """``size - 1`` native workers and the control array of their jobs."""

    def __init__(self, size: int, sgemm, dgemm):
        self.size = size
        self.routines = (sgemm, dgemm)
        self.ctrl = np.zeros(SIZE, np.uint64)
        self.lock = threading.Lock()  # one job at a time
        self.parked = threading.Condition()
        self.n_parked = 0
        self.threads = [threading.Thread(target=self._main, name=f"funcgrad-blas-{i}", daemon=True)
                        for i in range(size - 1)]
        for t in self.threads:
            t.start()

    def _main(self) -> None:
        seen = np.uint64(0)
        while True:
            seen, stop = _serve(self.ctrl, *self.routines, seen, SPIN, POLL, POLL_US)
            seen = np.uint64(seen)  # a uint64 again: one compiled version of _serve and _work
            if stop:
                return
            with self.parked:
                self.n_parked += 1
                seq = self.ctrl[SEQ]
                while self.ctrl[SEQ] == seq and self.ctrl[STOP] == 0:
                    self.parked.wait()
                self.n_parked -= 1

    def run(self, job: tuple, pp: int, pq: int, pc: int) -> None:
        """The tiles of one product. ``job`` is ``(kind, ntiles, dims, offsets, args)`` as uint64:
        kind 0 for float32 and 1 for float64, the tile count, the addresses of the tiles' (m, n)
        (int32 pairs) and byte offsets (uint64 triples), and ``args``, a uint64 array of the shared
        arguments' addresses; all of it stays alive until this returns. ``pp``, ``pq``, ``pc``
        are the addresses of the two operands and the result."""
        with self.lock:
            c = self.ctrl
            seq = _publish(c, *job[:4], np.uint64(pp), np.uint64(pq), np.uint64(pc), job[4])
            if self.n_parked:
                with self.parked:
                    self.parked.notify_all()
            _finish(c, *self.routines, np.uint64(seq), WAIT_SPIN, POLL_US)

    def close(self, timeout: float = 0.5) -> None:
        """Stop the workers (they return within one nap)."""
        self.ctrl[STOP] = 1
        with self.parked:
            self.parked.notify_all()
        for t in self.threads:
            t.join(timeout)
