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
