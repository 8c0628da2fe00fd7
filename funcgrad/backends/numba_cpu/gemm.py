"""Large matrix products of compiled programs: one BLAS ``gemm`` cut into tiles of the output,
run by native worker threads (``workers.py``) and the caller, with single-threaded BLAS in each.

The output is cut along its longer side (rows or columns), in multiples of ``ALIGN``, into
about ``2 m n k / TILE_FLOPS`` tiles (a power of two, at most ``MAX_TILES``); a product below
``PARALLEL_FLOPS`` is one call on the calling thread. Tiles never split the contracted
dimension and depend only on the shapes, so every element is summed in the same order whatever
the number of threads or the order in which they finish. BLAS is called through SciPy's
``cython_blas`` with explicit leading dimensions, so a tile writes straight into its block of
the result and transposed or row-sliced operands are never copied.
"""
from __future__ import annotations

import ctypes

import numpy as np

from . import threads

TILE_FLOPS = 1 << 24  # about 0.1-0.2 ms of single-threaded work per tile
PARALLEL_FLOPS = 1 << 23  # smaller products run whole on the calling thread
ALIGN = 32  # tile edges are multiples of this many rows or columns (whole register blocks)
MAX_TILES = 64
_INT_MAX = 2**31 - 1  # cython_blas takes 32-bit integers

_routines: dict = {}


def _routine(dtype: np.dtype):
    """The ctypes function of ``sgemm``/``dgemm`` from ``scipy.linalg.cython_blas``."""
    fn = _routines.get(dtype)
    if fn is None:
        from scipy.linalg import cython_blas

        capsule = cython_blas.__pyx_capi__["sgemm" if dtype == np.float32 else "dgemm"]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        addr = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
        fn = ctypes.CFUNCTYPE(None, *[ctypes.c_uint64] * 13)(addr)  # releases the GIL while it runs
        _routines[dtype] = fn
    return fn


def supported(dtype) -> bool:
    return np.dtype(dtype) in (np.dtype(np.float32), np.dtype(np.float64))


def tiles(m: int, n: int, k: int) -> tuple[str, list[tuple[int, int]]]:
    """``(axis, [(lo, hi), ...])``: the output's rows (``"m"``) or columns (``"n"``) per tile."""
    axis, extent = ("m", m) if m >= n else ("n", n)
    flops = 2 * m * n * k
    count = 1 if flops < PARALLEL_FLOPS else max(1, min(MAX_TILES, flops // TILE_FLOPS, extent // ALIGN))
    count = 1 << (count.bit_length() - 1)  # a power of two: equal tiles for power-of-two sizes
    size = -(-extent // max(1, count))
    size = -(-size // ALIGN) * ALIGN
    return axis, [(lo, min(lo + size, extent)) for lo in range(0, max(extent, 1), size)]


def _layout(x: np.ndarray):
    """``("C", ld)`` for rows with unit stride, ``("F", ld)`` for columns, None otherwise."""
    r, c = x.shape
    if x.flags.c_contiguous:
        return "C", max(1, c)
    if x.flags.f_contiguous:
        return "F", max(1, r)
    it = x.itemsize
    s0, s1 = x.strides
    if s1 == it and s0 % it == 0 and s0 >= it * c:
        return "C", s0 // it
    if s0 == it and s1 % it == 0 and s1 >= it * r:
        return "F", s1 // it
    return None


class Product:
    """``out = a @ b`` for 2-D ``a`` (m, k) and ``b`` (k, n) of one float dtype, as tiles."""

    def __init__(self, m: int, n: int, k: int, dtype):
        self.m, self.n, self.k = m, n, k
        self.dtype = np.dtype(dtype)
        self.axis, self.ranges = tiles(m, n, k)
        self.plans: dict = {}  # operand layouts -> _Plan
        self.ok = supported(dtype) and max(m, n, k) <= _INT_MAX and min(m, n, k) > 0

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if not self.ok or a.dtype != self.dtype or b.dtype != self.dtype:
            return np.asarray(np.dot(a, b), dtype=self.dtype)
        la, lb = _layout(a), _layout(b)
        if la is None or la[1] > _INT_MAX:
            a = np.ascontiguousarray(a)
            la = _layout(a)
        if lb is None or lb[1] > _INT_MAX:
            b = np.ascontiguousarray(b)
            lb = _layout(b)
        plan = self.plans.get((la, lb))
        if plan is None:
            plan = self.plans[(la, lb)] = _Plan(self, la, lb)
        out = np.empty((self.m, self.n), self.dtype)
        plan.run(b.ctypes.data, a.ctypes.data, out.ctypes.data)
        return out


class _Plan:
    """The BLAS arguments of every tile for one pair of operand layouts.

    Row-major C = A B is column-major C^T = B^T A^T: the routine multiplies P = B^T (n x k) by
    Q = A^T (k x m) into C^T (n x m, leading dimension n).
    """

    def __init__(self, prod: Product, la, lb):
        (fa, lda), (fb, ldb) = la, lb
        tp, tq = ("N" if fb == "C" else "T"), ("N" if fa == "C" else "T")
        it = prod.dtype.itemsize
        one, zero = prod.dtype.type(1).tobytes(), prod.dtype.type(0).tobytes()
        self.keep = [ctypes.create_string_buffer(tp.encode(), 2), ctypes.create_string_buffer(tq.encode(), 2),
                     ctypes.c_int(prod.k), ctypes.create_string_buffer(one, len(one)),
                     ctypes.create_string_buffer(zero, len(zero)), ctypes.c_int(ldb), ctypes.c_int(lda),
                     ctypes.c_int(prod.n)]
        self.args = np.array([ctypes.addressof(o) for o in self.keep], np.uint64)
        dims, offsets = [], []
        for lo, hi in prod.ranges:
            if prod.axis == "m":  # columns lo:hi of Q and of C^T
                dims.append((prod.n, hi - lo))
                offsets.append((0, (lo * lda if tq == "N" else lo) * it, lo * prod.n * it))
            else:  # rows lo:hi of P and of C^T
                dims.append((hi - lo, prod.m))
                offsets.append(((lo if tp == "N" else lo * ldb) * it, 0, lo * it))
        self.dims = np.array(dims, np.int32)
        self.offsets = np.array(offsets, np.uint64)
        self.routine = _routine(prod.dtype)
        self.job = (np.uint64(0 if prod.dtype == np.float32 else 1), np.uint64(len(dims)),
                    np.uint64(self.dims.ctypes.data), np.uint64(self.offsets.ctypes.data), self.args)
        self.blas = threads.single_threaded_blas()
        a, d = [int(x) for x in self.args], self.dims.ctypes.data
        self.calls = [((a[0], a[1], d + 8 * t, d + 8 * t + 4, a[2], a[3]), a[5], a[6], (a[4],), a[7],
                       tuple(int(o) for o in self.offsets[t])) for t in range(len(dims))]

    def tile(self, t: int, pp: int, pq: int, pc: int) -> None:
        head, lp, lq, beta, lc, (op, oq, oc) = self.calls[t]
        self.routine(*head, pp + op, lp, pq + oq, lq, *beta, pc + oc, lc)

    def run(self, pp: int, pq: int, pc: int) -> None:
        """The tiles, with P, Q and C^T at these addresses."""
        workers = None
        if len(self.calls) > 1:
            workers = threads.blas_workers(_routine(np.dtype(np.float32)), _routine(np.dtype(np.float64)))
        if workers is None:
            self.blas.run(self._serial, pp, pq, pc)
        else:
            self.blas.run(workers.run, self.job, pp, pq, pc)

    def _serial(self, pp: int, pq: int, pc: int) -> None:
        for t in range(len(self.calls)):
            self.tile(t, pp, pq, pc)
