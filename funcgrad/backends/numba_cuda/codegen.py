"""CUDA kernel source for fused elementwise clusters, reductions and copies.

Every array on the device is a flat, C-ordered 1-D buffer; shapes are compile-time constants, so a
kernel turns its flat thread index into a multi-index with divisions by constants and reads each
operand at its broadcast (or view-remapped) position. A value comes from one of three places:

- ``Local(eqn)``: computed in this kernel by the elementwise equation ``eqn`` (emitted on demand,
  once, its operands first);
- ``Lit(text)``: a constant;
- ``Buf(slot, shape, imap)``: read from the buffer ``slot`` holding an array of ``shape``;
  ``imap`` (or None) maps the variable's index texts to the buffer's (a view: transpose, flip,
  broadcast, basic slicing).

Kernels are plain Python functions in generated source, compiled by ``numba.cuda.jit`` with an
explicit signature (all arguments are 1-D contiguous arrays).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.graph import Literal
from . import scalar

THREADS = 256  # threads per block of elementwise and reduction kernels
MAX_BLOCKS = 8192  # grid-stride loops cover the rest
SERIAL_MAX = 64  # reduced lengths up to which one thread reduces one output alone


@dataclass(frozen=True)
class Local:
    eqn: object


@dataclass(frozen=True)
class Lit:
    text: str


@dataclass(frozen=True)
class Buf:
    slot: int
    shape: tuple
    imap: object = None


@dataclass
class Kernel:
    """One generated kernel: its source, parameter slots (outputs first) and launch config."""
    name: str
    source: str
    slots: list
    dtypes: list
    grid: tuple
    block: tuple

    def signature(self) -> str:
        args = ", ".join(f"{_sig_type(d)}[::1]" for d in self.dtypes)
        return f"void({args})"


def _sig_type(dtype) -> str:
    dtype = np.dtype(dtype)
    return "boolean" if dtype == np.bool_ else dtype.name


def size_of(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def elementwise_launch(n: int):
    block = min(THREADS, max(32, -(-n // 32) * 32))
    return (min(-(-n // block), MAX_BLOCKS),), (block,)


# -- index arithmetic ---------------------------------------------------------------------------
def unravel(flat: str, shape, prefix: str) -> tuple[list[str], list[str]]:
    """Lines splitting ``flat`` into one index per dimension of ``shape`` (size-1 dims are '0')."""
    lines, idx = [], ["0"] * len(shape)
    live = [d for d in range(len(shape)) if shape[d] != 1]
    rest = flat
    for k, d in enumerate(reversed(live)):
        name = f"{prefix}{d}"
        if k == len(live) - 1:
            lines.append(f"{name} = {rest}")
        else:
            lines.append(f"{name} = {rest} % {shape[d]}")
            lines.append(f"{prefix}r{d} = {rest} // {shape[d]}")
            rest = f"{prefix}r{d}"
        idx[d] = name
    return lines, idx


def ravel(idx, shape) -> str:
    """Flat C-order offset of the index texts ``idx`` in an array of ``shape``."""
    terms, stride = [], 1
    for i, d in reversed(list(zip(idx, shape))):
        if d != 1 and i != "0":
            terms.append(i if stride == 1 else f"{i} * {stride}")
        stride *= d
    return " + ".join(reversed(terms)) or "0"


def bcast(idx, shape, in_shape):
    """Index texts of an operand of ``in_shape`` broadcast against ``shape`` (NumPy rules)."""
    lead = len(shape) - len(in_shape)
    return ["0" if d == 1 else idx[lead + j] for j, d in enumerate(in_shape)]


# -- emitting values ------------------------------------------------------------------------------
@dataclass
class Emitter:
    """Collects the lines computing values at one multi-index of ``shape``."""
    source_of: object  # var -> Local | Lit | Buf
    params: dict  # slot -> parameter name (shared by the kernel)
    dtypes: dict  # slot -> dtype
    idx: list
    shape: tuple
    lines: list = field(default_factory=list)
    names: dict = field(default_factory=dict)  # id(var) or load text -> local name
    counter: list = field(default_factory=lambda: [0])

    def fresh(self, stem="v"):
        self.counter[0] += 1
        return f"{stem}{self.counter[0]}"

    def param(self, slot, dtype):
        if slot not in self.params:
            self.params[slot] = f"a{len(self.params)}"
            self.dtypes[slot] = np.dtype(dtype)
        return self.params[slot]

    def value(self, v, idx=None, shape=None) -> str | None:
        """Text of ``v`` at ``idx`` (index texts of an array of ``shape``, default the loop's)."""
        idx = self.idx if idx is None else idx
        shape = self.shape if shape is None else shape
        if isinstance(v, Literal):
            return scalar.literal(v.val, v.aval.dtype)
        src = self.source_of(v)
        if isinstance(src, Lit):
            return src.text
        own = bcast(idx, shape, v.aval.shape)
        if isinstance(src, Buf):
            base = src.imap(own) if src.imap is not None else own
            load = f"{self.param(src.slot, v.aval.dtype)}[{ravel(base, src.shape)}]"
            name = self.names.get(load)
            if name is None:
                name = self.names[load] = self.fresh("x")
                self.lines.append(f"{name} = {load}")
            return name
        name = self.names.get(id(v))
        if name is not None:
            return name
        eqn = src.eqn
        args = [self.value(u, own, v.aval.shape) for u in eqn.inputs]
        if any(a is None for a in args):
            return None
        expr = scalar.device_expr(eqn, args)
        if expr is None:
            return None
        name = self.names[id(v)] = self.fresh()
        self.lines.append(f"{name} = {expr}")
        return name


def _indent(lines, n):
    pad = " " * n
    return [pad + line for line in lines]


def _header(name, params):
    return [f"def {name}({', '.join(params)}):"]


def _finish(name, emitter_params, dtypes, body, grid, block):
    slots = list(emitter_params)
    src = "\n".join(_header(name, [emitter_params[s] for s in slots]) + body) + "\n"
    return Kernel(name, src, slots, [dtypes[s] for s in slots], grid, block)


def elementwise_kernel(name, shape, stores, source_of):
    """One thread per element of ``shape``: compute and write ``stores`` = [(var, slot)], each
    var of ``shape``, into contiguous buffers. None when some value has no device lowering."""
    shape = tuple(shape)
    n = size_of(shape)
    params, dtypes = {}, {}
    for v, slot in stores:
        assert tuple(v.aval.shape) == shape, (v.aval.shape, shape)
        params[slot] = f"o{len(params)}"
        dtypes[slot] = np.dtype(v.aval.dtype)
    lines, idx = unravel("t", shape, "i")
    em = Emitter(source_of, params, dtypes, idx, shape)
    vals = [em.value(v) for v, _ in stores]
    if any(val is None for val in vals):
        return None
    writes = [f"{params[slot]}[t] = {val}" for (_, slot), val in zip(stores, vals)]
    grid, block = elementwise_launch(n)
    body = ["    t = cuda.grid(1)", f"    while t < {n}:"]
    body += _indent(lines + em.lines + writes, 8)
    body += ["        t += cuda.gridsize(1)"]
    return _finish(name, params, dtypes, body, grid, block)


def reduction_mode(shape, axes) -> tuple[str, int]:
    """How to reduce ``shape`` over ``axes``: ("serial", 1) one thread per output (short reductions,
    or many outputs along a contiguous kept axis); ("split", S) the reduced range cut into S chunks,
    one thread per (chunk, output), partial results reduced by a second kernel (long reductions
    over leading axes: coalesced reads, enough threads); ("block", 1) one block per output with a
    tree in shared memory (long reductions over trailing axes)."""
    shape = tuple(shape)
    axes = {a % max(len(shape), 1) for a in axes}
    kept = [d for d in range(len(shape)) if d not in axes]
    n_out = size_of(shape[d] for d in kept)
    n_red = size_of(shape[d] for d in axes)
    inner_kept = bool(kept) and kept[-1] == len(shape) - 1
    if n_red <= SERIAL_MAX or (inner_kept and n_out >= 16 * THREADS):
        return "serial", 1
    if inner_kept:
        return "split", max(2, min(-(-16 * THREADS // n_out), n_red // max(SERIAL_MAX, 1), 64))
    return "block", 1


def reduction_kernel(name, shape, axes, reductions, source_of, mode=None, split=1):
    """Reduce values of ``shape`` over ``axes``: ``reductions`` = [(kind, input var, out var, slot)],
    all over the same axes; ``mode``/``split`` as ``reduction_mode`` chooses (the default). With
    "split" each slot receives ``split`` partial results per output (chunk-major)."""
    shape = tuple(shape)
    axes = tuple(sorted(a % max(len(shape), 1) for a in axes))
    kept = [d for d in range(len(shape)) if d not in axes]
    kshape = tuple(shape[d] for d in kept)
    rshape = tuple(shape[d] for d in axes)
    n_out, n_red = size_of(kshape), size_of(rshape)
    if mode is None:
        mode, split = reduction_mode(shape, axes)
    params, dtypes = {}, {}
    for _, _, out, slot in reductions:
        params[slot] = f"o{len(params)}"
        dtypes[slot] = np.dtype(out.aval.dtype)
    klines, kidx = unravel("o", kshape, "k")
    rlines, ridx = unravel("r", rshape, "j")
    idx = ["0"] * len(shape)
    for d, i in zip(kept, kidx):
        idx[d] = i
    for d, i in zip(axes, ridx):
        idx[d] = i
    em = Emitter(source_of, params, dtypes, idx, shape)
    vals = [em.value(x) for _, x, _, _ in reductions]
    if any(v is None for v in vals):
        return None
    accs = [f"acc{i}" for i in range(len(reductions))]
    inits = [f"{a} = {scalar.reduce_identity(kind, out.aval.dtype)}"
             for a, (kind, _, out, _) in zip(accs, reductions)]
    combine = [f"{a} = {scalar.reduce_combine(kind, a, v, out.aval.dtype)}"
               for a, v, (kind, _, out, _) in zip(accs, vals, reductions)]
    if mode in ("serial", "split"):
        total = n_out * split
        loop = f"for r in range({n_red}):"
        if mode == "split":
            chunk = -(-n_red // split)
            klines = [f"sc = o // {n_out}", f"ko = o - sc * {n_out}"] + unravel("ko", kshape, "k")[0]
            klines += [f"rend = sc * {chunk} + {chunk}", f"if rend > {n_red}:", f"    rend = {n_red}"]
            loop = f"for r in range(sc * {chunk}, rend):"
        grid, block = elementwise_launch(total)
        body = ["    o = cuda.grid(1)", f"    while o < {total}:"]
        inner = klines + inits + [loop] + _indent(rlines + em.lines + combine, 4)
        inner += [f"{params[slot]}[o] = {a}" for a, (_, _, _, slot) in zip(accs, reductions)]
        body += _indent(inner, 8) + ["        o += cuda.gridsize(1)"]
        return _finish(name, params, dtypes, body, grid, block)
    nt = min(THREADS, max(32, 1 << max(n_red - 1, 1).bit_length()))
    shared = [f"    sh{i} = cuda.shared.array({nt}, {scalar.array_type_name(out.aval.dtype)})"
              for i, (_, _, out, _) in enumerate(reductions)]
    tree = [f"sh{i}[tid] = {a}" for i, a in enumerate(accs)] + ["cuda.syncthreads()", f"s = {nt // 2}",
                                                                "while s > 0:", "    if tid < s:"]
    tree += [f"        sh{i}[tid] = {scalar.reduce_combine(kind, f'sh{i}[tid]', f'sh{i}[tid + s]', out.aval.dtype)}"
             for i, (kind, _, out, _) in enumerate(reductions)]
    tree += ["    cuda.syncthreads()", "    s //= 2", "if tid == 0:"]
    tree += [f"    {params[slot]}[o] = sh{i}[0]" for i, (_, _, _, slot) in enumerate(reductions)]
    tree += ["cuda.syncthreads()"]
    body = shared + ["    tid = cuda.threadIdx.x", "    o = cuda.blockIdx.x", f"    while o < {n_out}:"]
    inner = klines + inits + [f"for r in range(tid, {n_red}, {nt}):"] + _indent(rlines + em.lines + combine, 4)
    body += _indent(inner + tree, 8) + ["        o += cuda.gridDim.x"]
    grid = (min(n_out, 65535 * 4),)
    return _finish(name, params, dtypes, body, grid, (nt,))


def piecewise_kernel(name, out, out_slot, pieces, default=None):
    """One thread per element of ``out``: the value of the first piece whose condition holds, read
    from its buffer, else ``default`` (a literal text). ``pieces`` = [(cond(idx) -> text or None for
    always, slot, shape, imap(idx) -> buffer index texts)] (concatenate, pad)."""
    shape = tuple(out.aval.shape)
    n = size_of(shape)
    params, dtypes = {out_slot: "o0"}, {out_slot: np.dtype(out.aval.dtype)}
    lines, idx = unravel("t", shape, "i")
    for k, (cond, slot, src_shape, imap) in enumerate(pieces):
        if slot not in params:
            params[slot] = f"a{len(params)}"
            dtypes[slot] = np.dtype(out.aval.dtype)
        test = cond(idx)
        load = f"v = {params[slot]}[{ravel(imap(idx), src_shape)}]"
        if test is None:  # always (the last piece)
            lines += [load] if k == 0 else ["else:", "    " + load]
            break
        lines += [f"{'elif' if k else 'if'} {test}:", "    " + load]
    else:
        default = default or scalar.literal(0, out.aval.dtype)
        lines += ["else:", f"    v = {default}"] if pieces else [f"v = {default}"]
    grid, block = elementwise_launch(n)
    body = ["    t = cuda.grid(1)", f"    while t < {n}:"]
    body += _indent(lines + ["o0[t] = v"], 8) + ["        t += cuda.gridsize(1)"]
    return _finish(name, params, dtypes, body, grid, block)
