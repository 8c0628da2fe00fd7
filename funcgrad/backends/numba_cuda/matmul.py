"""Batched matrix multiply ``C[b] = A[b] @ B[b]`` as a tiled shared-memory CUDA kernel.

Each block computes a ``BM x BN`` tile of C; its threads stage ``BK``-deep slices of A and B in
shared memory (loads ordered along the operand's contiguous axis, so they coalesce) and each
thread accumulates a ``TM x TN`` register tile, with rows and columns strided across the block so
shared-memory reads and global writes hit consecutive addresses. Operands are flat buffers read
through three strides (batch, row, contraction) — a transposed operand costs no copy.

``dot_general`` lowers to this through ``funcgrad.primitives.linalg.contraction_plan``.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import scalar
from .codegen import Kernel

MAX_GRID_Y = 65535
MIN_BLOCKS = 256  # blocks below which a long contraction is split (a GPU has ~100 multiprocessors)
SPLIT_CHUNK_MIN = 256  # shortest contraction chunk of a split product


@dataclass(frozen=True)
class TileConfig:
    bm: int
    bn: int
    bk: int
    tm: int
    tn: int

    @property
    def threads(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)


LARGE = TileConfig(64, 64, 16, 4, 4)  # 256 threads, 16 outputs per thread
SMALL = TileConfig(16, 16, 16, 2, 2)  # 64 threads, for thin or small products


def choose_config(m: int, n: int) -> TileConfig:
    return LARGE if m >= 64 and n >= 64 else SMALL


def split_k(nb: int, m: int, n: int, k: int) -> int:
    """Chunks of the contraction to compute in parallel (summed afterwards) when a product has
    too few output tiles to fill a GPU: 1 (no split) or a power of two dividing ``k``."""
    cfg = choose_config(m, n)
    blocks = nb * -(-m // cfg.bm) * -(-n // cfg.bn)
    split = 1
    while blocks * split < MIN_BLOCKS and k % (2 * split) == 0 and k // (2 * split) >= SPLIT_CHUNK_MIN \
            and split < 64:
        split *= 2
    return split if nb == 1 else 1


def _load_lines(buf, sh, rows, cols, r_name, c_name, r_lim, c_lim, offset, r_stride, c_stride,
                rows_fast, cfg, zero):
    """Stage a (rows x cols) tile of ``buf`` into ``sh[c, r]`` (the contraction index first)."""
    n = rows * cols
    if rows_fast:
        split = [f"{r_name} = e % {rows}", f"{c_name} = e // {rows}"]
    else:
        split = [f"{r_name} = e // {cols}", f"{c_name} = e % {cols}"]
    return [
        f"for e in range(tid, {n}, {cfg.threads}):",
        *["    " + s for s in split],
        f"    g{r_name} = {r_lim[0]} + {r_name}",
        f"    g{c_name} = {c_lim[0]} + {c_name}",
        f"    w = {zero}",
        f"    if g{r_name} < {r_lim[1]} and g{c_name} < {c_lim[1]}:",
        f"        w = {buf}[{offset} + g{r_name} * {r_stride} + g{c_name} * {c_stride}]",
        f"    {sh}[{c_name}, {r_name}] = w",
    ]


def matmul_kernel(name, dtype, nb, m, n, k, a_strides, b_strides, c_strides, cfg=None) -> Kernel:
    """Kernel ``name(c, a, b)``: for each batch ``i < nb``, ``C[i] (m x n) = A[i] (m x k) @ B[i] (k x n)``;
    ``*_strides`` are (batch, row, column) element strides of each flat buffer."""
    cfg = cfg or choose_config(m, n)
    t = scalar.type_name(dtype)
    at = scalar.array_type_name(dtype)
    zero = scalar.literal(0, dtype)
    tx_n, ty_n = cfg.bn // cfg.tn, cfg.bm // cfg.tm
    tiles_n = -(-n // cfg.bn)
    tiles_m = -(-m // cfg.bm)
    sab, sam, sak = a_strides
    sbb, sbk, sbn = b_strides
    scb, scm, scn = c_strides
    lines = [
        f"def {name}(c, a, b):",
        f"    sa = cuda.shared.array(({cfg.bk}, {cfg.bm + 1}), {at})",
        f"    sb = cuda.shared.array(({cfg.bk}, {cfg.bn + 1}), {at})",
        f"    acc = cuda.local.array(({cfg.tm}, {cfg.tn}), {at})",
        f"    ra = cuda.local.array({cfg.tm}, {at})",
        f"    rb = cuda.local.array({cfg.tn}, {at})",
        "    tid = cuda.threadIdx.x",
        f"    tx = tid % {tx_n}",
        f"    ty = tid // {tx_n}",
        f"    m0 = (cuda.blockIdx.x // {tiles_n}) * {cfg.bm}",
        f"    n0 = (cuda.blockIdx.x % {tiles_n}) * {cfg.bn}",
        "    bz = cuda.blockIdx.y",
        f"    while bz < {nb}:",
        f"        for r in range({cfg.tm}):",
        f"            for q in range({cfg.tn}):",
        f"                acc[r, q] = {zero}",
        f"        for k0 in range(0, {k}, {cfg.bk}):",
    ]
    load_a = _load_lines("a", "sa", cfg.bm, cfg.bk, "mi", "ki", ("m0", m), ("k0", k), f"bz * {sab}",
                         sam, sak, sam == 1 and sak != 1, cfg, zero)
    load_b = _load_lines("b", "sb", cfg.bn, cfg.bk, "ni", "kj", ("n0", n), ("k0", k), f"bz * {sbb}",
                         sbn, sbk, sbn == 1 and sbk != 1, cfg, zero)
    lines += ["            " + s for s in load_a + load_b]
    lines += [
        "            cuda.syncthreads()",
        f"            for kk in range({cfg.bk}):",
        f"                for r in range({cfg.tm}):",
        f"                    ra[r] = sa[kk, ty + r * {ty_n}]",
        f"                for q in range({cfg.tn}):",
        f"                    rb[q] = sb[kk, tx + q * {tx_n}]",
        f"                for r in range({cfg.tm}):",
        f"                    for q in range({cfg.tn}):",
        f"                        acc[r, q] = {t}(acc[r, q] + ra[r] * rb[q])",
        "            cuda.syncthreads()",
        f"        for r in range({cfg.tm}):",
        f"            gm = m0 + ty + r * {ty_n}",
        f"            if gm < {m}:",
        f"                for q in range({cfg.tn}):",
        f"                    gn = n0 + tx + q * {tx_n}",
        f"                    if gn < {n}:",
        f"                        c[bz * {scb} + gm * {scm} + gn * {scn}] = acc[r, q]",
        "        bz += cuda.gridDim.y",
    ]
    grid = (tiles_m * tiles_n, min(nb, MAX_GRID_Y))
    return Kernel(name, "\n".join(lines) + "\n", None, None, grid, (cfg.threads,))
