"""Helpers of the collectives: the check that every rank passes the same structure, shapes
and dtypes, and the sum over ranks in one contiguous buffer per dtype."""
from __future__ import annotations

import hashlib
import sys

import numpy as np

from ..errors import FuncgradValueError

# The package module: the process's MPI state is ``funcgrad.distributed._state``, read through it
# at call time so that one object is shared by every submodule (and replacing it, as the tests do
# to start from scratch, takes effect everywhere).
_pkg = sys.modules[__package__]

_CHUNK = 1 << 30  # elements (or bytes) per MPI call: keeps counts below 2**31


def _signature(treedef, arrays) -> str:
    parts = [repr(treedef)] + [f"{a.dtype.str}{a.shape}" for a in arrays]
    return "|".join(parts)


def _sig_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 2


def _check_same_everywhere(op: str, treedef, arrays, extra: str = "", problem: str | None = None) -> None:
    """Raise on every rank when the ranks' trees differ in structure/shape/dtype.

    ``extra`` joins the compared signature (e.g. whether a weight was given);
    ``problem`` is this rank's reason for a differing ``extra``, used in its message."""
    sig = _signature(treedef, arrays) + extra
    h = _sig_int(sig)
    buf = np.array([h, -h], dtype=np.int64)
    _pkg._state.comm.Allreduce(_pkg._state.MPI.IN_PLACE, buf, op=_pkg._state.MPI.MAX)
    if buf[0] == h and buf[1] == -h:
        return
    every = np.empty(_pkg._state.size, dtype=np.int64)
    _pkg._state.comm.Allgather(np.array([h], dtype=np.int64), every)
    groups = _describe_groups(list(every))
    if problem:
        raise FuncgradValueError(f"{op}: {problem} on rank {_pkg._state.rank} ({groups})")
    what = "structure, shapes, dtypes or weights" if extra else "structure, shapes or dtypes"
    raise FuncgradValueError(
        f"{op}: the pytrees differ in {what} across ranks "
        f"({groups}); this rank ({_pkg._state.rank}) has {_short(sig)}"
    )


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _describe_groups(values: list) -> str:
    ref = values[0]
    differ = [r for r, v in enumerate(values) if v != ref]
    agree = [r for r, v in enumerate(values) if v == ref]
    return f"rank(s) {differ} differ from rank 0; rank(s) {agree} agree with rank 0"


def _allreduce_sum(arrays: list[np.ndarray], work_dtypes: list[np.dtype], extra=None):
    """Sum each array over all ranks: one contiguous buffer and one Allreduce per dtype.

    ``extra``: ``(value, dtype)``, a scalar summed in the buffer of ``dtype`` (one of
    ``work_dtypes``) at no extra cost; its sum is returned as a second result."""
    out: list[np.ndarray | None] = [None] * len(arrays)
    groups: dict[np.dtype, list[int]] = {}
    for i, dt in enumerate(work_dtypes):
        groups.setdefault(np.dtype(dt), []).append(i)
    extra_sum = None
    for dt, idx in groups.items():
        carries = extra is not None and np.dtype(extra[1]) == dt
        total = sum(arrays[i].size for i in idx) + (1 if carries else 0)
        buf = np.empty(total, dtype=dt)
        pos = 0
        for i in idx:
            n = arrays[i].size
            buf[pos:pos + n] = arrays[i].reshape(-1)
            pos += n
        if carries:
            buf[-1] = extra[0]
        if _pkg._state.size > 1 and total:
            for start in range(0, total, _CHUNK):
                _pkg._state.comm.Allreduce(_pkg._state.MPI.IN_PLACE, buf[start:start + _CHUNK], op=_pkg._state.MPI.SUM)
        pos = 0
        for i in idx:
            n = arrays[i].size
            out[i] = buf[pos:pos + n].reshape(arrays[i].shape)
            pos += n
        if carries:
            extra_sum = buf[-1].copy()
    return (out, extra_sum) if extra is not None else out


def _sum_dtype(dt: np.dtype) -> np.dtype:
    if dt == np.bool_:
        return np.dtype(np.int64)  # bools are counted, as np.sum does
    if dt == np.float16:
        return np.dtype(np.float32)  # MPI has no half type; summed in float32, rounded once
    return dt
