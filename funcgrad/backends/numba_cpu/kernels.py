"""Fixed Numba kernels shared by every generated module (compiled once, cached on disk)."""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "reassoc", "nsz"})
def bmm_nt(pa, pb, out):
    """``out[b, m, n] += sum_q pa[b, m, q] * pb[b, n, q]``: a batched product of packed matrices.

    The contracted index is contiguous in both operands and the trip counts are only known at
    run time, the form LLVM vectorises best; reassociation lets it split the sums.
    """
    for b in range(pa.shape[0]):
        for m in range(pa.shape[1]):
            for n in range(pb.shape[1]):
                acc = out[b, m, n]
                for q in range(pa.shape[2]):
                    acc += pa[b, m, q] * pb[b, n, q]
                out[b, m, n] = acc


@njit(cache=True, nogil=True, error_model="numpy")
def matmul(a, b):
    """``np.dot(a, b)`` through BLAS, compiled once per argument type (layouts included): a
    generated function calling it does not lower Numba's ``np.dot`` again at each call site."""
    return np.dot(a, b)


_M32 = np.uint64(0xFFFFFFFF)


@njit(inline="always")
def _rotl(x, r):
    return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & _M32


@njit(inline="always")
def _four_rounds(x0, x1, ra, rb, rc, rd):
    x0 = (x0 + x1) & _M32
    x1 = _rotl(x1, ra) ^ x0
    x0 = (x0 + x1) & _M32
    x1 = _rotl(x1, rb) ^ x0
    x0 = (x0 + x1) & _M32
    x1 = _rotl(x1, rc) ^ x0
    x0 = (x0 + x1) & _M32
    x1 = _rotl(x1, rd) ^ x0
    return x0, x1


@njit(cache=True, nogil=True, error_model="numpy")
def threefry2x32(k0, k1, c0, c1):
    """Threefry-2x32 (20 rounds) of one counter pair: the two words packed as ``x0 << 32 | x1``
    (``primitives.elementwise.threefry2x32_p``). One function every kernel calls, so the 20
    rounds are compiled once, not in each kernel drawing random numbers."""
    ks0, ks1 = np.uint64(k0), np.uint64(k1)
    ks2 = ks0 ^ ks1 ^ np.uint64(0x1BD11BDA)
    x0 = (np.uint64(c0) + ks0) & _M32
    x1 = (np.uint64(c1) + ks1) & _M32
    x0, x1 = _four_rounds(x0, x1, 13, 15, 26, 6)
    x0, x1 = (x0 + ks1) & _M32, (x1 + ks2 + np.uint64(1)) & _M32
    x0, x1 = _four_rounds(x0, x1, 17, 29, 16, 24)
    x0, x1 = (x0 + ks2) & _M32, (x1 + ks0 + np.uint64(2)) & _M32
    x0, x1 = _four_rounds(x0, x1, 13, 15, 26, 6)
    x0, x1 = (x0 + ks0) & _M32, (x1 + ks1 + np.uint64(3)) & _M32
    x0, x1 = _four_rounds(x0, x1, 17, 29, 16, 24)
    x0, x1 = (x0 + ks1) & _M32, (x1 + ks2 + np.uint64(4)) & _M32
    x0, x1 = _four_rounds(x0, x1, 13, 15, 26, 6)
    x0, x1 = (x0 + ks2) & _M32, (x1 + ks0 + np.uint64(5)) & _M32
    return (x0 << np.uint64(32)) | x1
