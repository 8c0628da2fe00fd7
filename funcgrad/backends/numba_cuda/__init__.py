"""The CUDA backend: ``jit(f, device="cuda")`` compiles the graph to ``numba.cuda`` kernels.

The graph is partitioned by the shared fusion stage (``backends/fusion.py``, rules in ``table.py``), then

- each fused elementwise cluster becomes one kernel (one thread per element, grid-stride loop),
  generated from the primitives' scalar templates with device ``math`` functions; integer
  arithmetic wraps like NumPy's (so Threefry random bits match the CPU bit for bit);
- reductions (sum, prod, max, min over any axes) become tree reductions in shared memory (one
  block per output), one-thread-per-output loops when the reduced length is short, or chunked
  partial sums plus a second pass when reducing leading axes (bias gradients);
- ``dot_general`` becomes a tiled shared-memory matmul with register tiles (batched; transposed
  operands are read through strides, other layouts are copied first; a long contraction with
  few output tiles is split into chunks summed afterwards);
- reshapes are free, views (transpose, broadcast, flip, basic slicing) are index remappings,
  concatenate and pad are copy kernels;
- everything else (indexing with integer arrays and scatters, sort, cumsum/cumprod, argmax/argmin,
  linear-algebra decompositions, control flow, special functions such as digamma) runs on the
  host: operands are copied to the CPU, NumPy computes, results are copied back. Correct, but
  slow: keep such operations out of the hot loop.

Jitted CUDA functions return ``funcgrad.device.DeviceArray`` leaves and accept them (and NumPy
arrays, which are copied in): keep parameters on the GPU with ``funcgrad.device_put``.

Transcendental functions use CUDA's libdevice and NVVM may fuse ``a * b + c`` into one FMA, so
floating-point results can differ from NumPy's in the last bits; integer and bit operations are
exact. Without a GPU, set ``NUMBA_ENABLE_CUDASIM=1`` before importing funcgrad to run everything
on Numba's CUDA simulator (very slow; for tests).
"""
from __future__ import annotations

from .program import lower


def compile(graph):
    """``run(flat_args) -> flat_outs`` for ``graph`` on the GPU (outputs are DeviceArrays)."""
    from .runtime import Executable

    return Executable(lower(graph))


__all__ = ["compile", "lower"]
