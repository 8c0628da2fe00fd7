"""Collectives over pytrees: ``psum``, ``pmean``, ``broadcast``, ``shard``, ``check_in_sync``."""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

from .. import checkpoint as _ckpt
from ..errors import FuncgradError, FuncgradValueError, at_user_line
from ..tree_util import tree_flatten
from ._codec import _flatten, _leaf_paths, _pack, _rebuild, _unpack
from ._helpers import _CHUNK, _allreduce_sum, _check_same_everywhere, _describe_groups, _signature, _sum_dtype
from ._setup import _ensure_init

# The package module: the process's MPI state is ``funcgrad.distributed._state``, read through it
# at call time so that one object is shared by every submodule (and replacing it, as the tests do
# to start from scratch, takes effect everywhere).
_pkg = sys.modules[__package__]


def psum(tree):
    """Sum every leaf elementwise over all ranks; every rank gets the result.

    Leaves keep their dtype (integers wrap like NumPy), except bool leaves,
    which are counted (int64). All leaves of one dtype travel in one
    contiguous buffer with one ``MPI_Allreduce``.

    >>> from funcgrad import distributed as dist
    >>> import numpy as np
    >>> total = dist.psum({"n": np.int64(1)})["n"]   # == dist.size()
    """
    _ensure_init()
    arrays, treedef, _ = _flatten(tree, "psum")
    if _pkg._state.size > 1:
        _check_same_everywhere("psum", treedef, arrays)
    work = [_sum_dtype(a.dtype) for a in arrays]
    sums = _allreduce_sum(arrays, work)
    result = [
        s.astype(a.dtype) if a.dtype == np.float16 else s
        for a, s in zip(arrays, sums)
    ]
    return treedef.unflatten(result)


def _mean_dtype(dt: np.dtype) -> np.dtype:
    return _sum_dtype(dt) if dt.kind in "fc" else np.dtype(np.float64)


def _weight_value(weight) -> tuple[float, str | None]:
    """``(weight as a float, None)``, or ``(0.0, reason)`` when it is not a usable weight."""
    a = np.asarray(weight)
    if a.shape != () or a.dtype.kind not in "iuf":
        return 0.0, f"weight must be a real number, got {type(weight).__name__} (shape {a.shape}, dtype {a.dtype})"
    w = float(a)
    if not np.isfinite(w) or w < 0:
        return 0.0, f"weight must be finite and >= 0, got {w!r}"
    return w, None


def _scaled(a: np.ndarray, w: float, dt: np.dtype) -> np.ndarray:
    if w == 0:  # contributes nothing, even where the leaf is NaN (a mean over no rows)
        return np.zeros(a.shape, dt)
    return np.multiply(a, np.asarray(w, np.finfo(dt).dtype), dtype=dt)


def _divided(arrays, sums, divisor: float) -> list[np.ndarray]:
    result = []
    for a, s in zip(arrays, sums):
        m = np.divide(s, np.asarray(divisor, np.finfo(s.dtype).dtype), out=s)  # in place: keeps 0-d arrays
        if a.dtype == np.float16:
            m = m.astype(np.float16)
        result.append(m)
    return result


def pmean(tree, weight=None):
    """Average every leaf elementwise over all ranks (``psum(tree) / size()``).

    Floating (and complex) leaves keep their dtype; integer and bool leaves
    give float64, as ``np.mean`` does.

    With ``weight`` (a finite number >= 0, given on every rank), the weighted
    mean ``sum_r(weight_r * tree_r) / sum_r(weight_r)``. Pass each rank's number
    of rows to turn per-rank means over unequal shards into the mean over all
    rows. A rank with weight 0 contributes nothing (even NaNs); weights that sum
    to 0 raise FuncgradValueError on every rank. The weights' sum travels in
    one of the tree's buffers, so this is still one Allreduce per dtype.

    >>> from funcgrad import distributed as dist
    >>> import numpy as np
    >>> dist.pmean({"loss": np.float32(2.0)})["loss"].dtype
    dtype('float32')
    >>> x = np.ones((5, 3))                       # this rank's rows
    >>> mean = dist.pmean(x.mean(axis=0), weight=len(x))  # mean over every rank's rows
    """
    _ensure_init()
    arrays, treedef, _ = _flatten(tree, "pmean")
    work = [_mean_dtype(a.dtype) for a in arrays]
    w, problem = (None, None) if weight is None else _weight_value(weight)
    if _pkg._state.size > 1:
        extra = "" if weight is None else ("|weighted" if problem is None else "|invalid weight")
        _check_same_everywhere("pmean", treedef, arrays, extra, problem)
    if problem:
        raise FuncgradValueError(at_user_line(f"pmean: {problem}"))
    if weight is None or _pkg._state.size == 1 or not arrays:
        if w == 0:
            raise FuncgradValueError("pmean: the weights sum to 0 over all ranks (1 rank, weight 0)")
        return treedef.unflatten(_divided(arrays, _allreduce_sum(arrays, work), _pkg._state.size))
    carrier = max(work, key=lambda d: np.finfo(d).bits)  # the weights' sum rides in the widest buffer
    sums, total = _allreduce_sum([_scaled(a, w, d) for a, d in zip(arrays, work)], work, extra=(w, carrier))
    total = float(total.real)
    if total == 0:
        raise FuncgradValueError(f"pmean: the weights sum to 0 over all {_pkg._state.size} ranks")
    return treedef.unflatten(_divided(arrays, sums, total))


def _bcast_bytes(data: bytes | None, root: int) -> bytes:
    comm = _pkg._state.comm
    n = np.array([len(data) if _pkg._state.rank == root else 0], dtype=np.int64)
    comm.Bcast(n, root=root)
    buf = np.frombuffer(bytearray(data), np.uint8) if _pkg._state.rank == root else np.empty(int(n[0]), np.uint8)
    _bcast_buffer(buf, root)
    return buf.tobytes()


def _bcast_buffer(buf: np.ndarray, root: int) -> None:
    for start in range(0, buf.size, _CHUNK):
        _pkg._state.comm.Bcast(buf[start:start + _CHUNK], root=root)


def _check_root(root: int, op: str) -> None:
    if not isinstance(root, (int, np.integer)) or isinstance(root, bool) or not 0 <= root < _pkg._state.size:
        raise FuncgradValueError(f"{op}: root={root!r} is not a rank of this job (size {_pkg._state.size})")


def broadcast(tree, root: int = 0):
    """Every rank gets ``root``'s pytree (as fresh arrays).

    Ranks other than ``root`` may pass a pytree of the same structure (its
    container types -- namedtuples, registered dataclasses -- are then used
    for the result) or ``None``, in which case they get plain containers
    (namedtuples and registered nodes become tuples). Their leaves' values,
    shapes and dtypes are ignored. Dict keys must be str.

    >>> from funcgrad import distributed as dist
    >>> import numpy as np
    >>> params = dist.broadcast({"w": np.zeros(3)} if dist.rank() == 0 else None)
    """
    _ensure_init()
    _check_root(root, "broadcast")
    me = _pkg._state.rank
    header = None
    root_error = None
    if me == root:
        try:
            arrays, treedef, _ = _flatten(tree, "broadcast")
            structure = _ckpt.encode_structure(treedef, "broadcast")
        except FuncgradError as e:
            if _pkg._state.size == 1:
                raise
            # tell the other ranks, so that they raise too instead of waiting forever
            root_error = e
            header = json.dumps({"error": f"{type(e).__name__}: {e}"}).encode()
        else:
            if _pkg._state.size == 1:
                return treedef.unflatten([a.copy() for a in arrays])
            header = json.dumps(
                {"tree": structure, "leaves": [[a.dtype.str, list(a.shape)] for a in arrays]},
                separators=(",", ":"),
            ).encode()
    header = json.loads(_bcast_bytes(header, root))
    if root_error is not None:
        raise root_error
    if "error" in header:
        raise FuncgradValueError(f"broadcast: root rank {root} could not send its pytree: {header['error']}")
    specs = [(np.dtype(dt), tuple(shape)) for dt, shape in header["leaves"]]
    if me == root:
        buf = _pack(arrays)
    else:
        buf = np.empty(sum(int(np.prod(s, dtype=np.int64)) * d.itemsize for d, s in specs), np.uint8)
    _bcast_buffer(buf, root)
    leaves = _unpack(buf, specs)
    if me == root:
        return treedef.unflatten(leaves)
    return _rebuild(header["tree"], leaves, tree, "broadcast", root)


def shard(tree):
    """This rank's contiguous block of the leading axis of every leaf.

    Blocks follow ``np.array_split``: with ``n`` rows over ``size()`` ranks,
    the first ``n % size()`` ranks get one row more. The result leaves are
    views of the inputs. 0-d leaves raise FuncgradValueError.

    >>> from funcgrad import distributed as dist
    >>> import numpy as np
    >>> x_local = dist.shard(np.arange(10).reshape(5, 2))  # on 2 ranks: rows 0-2 / rows 3-4
    """
    _ensure_init()
    leaves, treedef = tree_flatten(tree)
    paths = _leaf_paths(treedef)
    out = []
    for x, p in zip(leaves, paths):
        a = np.asarray(x)
        if a.ndim == 0:
            raise FuncgradValueError(
                f"shard: leaf {p} is 0-d (shape (), dtype {a.dtype}); only leaves with a leading axis can be split"
            )
        n = a.shape[0]
        q, r = divmod(n, _pkg._state.size)
        start = _pkg._state.rank * q + min(_pkg._state.rank, r)
        stop = start + q + (1 if _pkg._state.rank < r else 0)
        out.append(a[start:stop])
    return treedef.unflatten(out)


def _leaf_digests(arrays) -> list[bytes]:
    out = []
    for a in arrays:
        h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8)))
        out.append(h.digest())
    return out


def check_in_sync(tree, what: str = "tree") -> str:
    """Check that every rank holds exactly the same pytree (bit for bit).

    Returns the SHA-256 hex digest of the tree. Raises FuncgradValueError on
    every rank, naming the ranks (and leaves) that differ from rank 0, when
    they do not all agree. ``what`` names the tree in the message.

    >>> from funcgrad import distributed as dist
    >>> import numpy as np
    >>> digest = dist.check_in_sync({"w": np.ones(2)}, what="params")
    """
    _ensure_init()
    arrays, treedef, paths = _flatten(tree, "check_in_sync")
    sig = _signature(treedef, arrays)
    struct_digest = hashlib.sha256(sig.encode()).digest()
    leaf_digests = _leaf_digests(arrays)
    total = hashlib.sha256(struct_digest + b"".join(leaf_digests)).digest()
    if _pkg._state.size == 1:
        return total.hex()
    comm = _pkg._state.comm
    mine = np.frombuffer(bytearray(total + struct_digest), dtype=np.uint8)
    every = np.empty((_pkg._state.size, 64), dtype=np.uint8)
    comm.Allgather(mine, every)
    totals = [bytes(row[:32]) for row in every]
    if all(t == totals[0] for t in totals):
        return total.hex()
    structs = [bytes(row[32:]) for row in every]
    detail = ""
    if all(s == structs[0] for s in structs):
        # same structure everywhere: find which leaves differ from rank 0
        mine_leaves = np.frombuffer(bytearray(b"".join(leaf_digests)), dtype=np.uint8)
        all_leaves = np.empty((_pkg._state.size, mine_leaves.size), dtype=np.uint8)
        comm.Allgather(mine_leaves, all_leaves)
        per_leaf = all_leaves.reshape(_pkg._state.size, len(arrays), 32)
        bad = [p for i, p in enumerate(paths) if (per_leaf[:, i] != per_leaf[0, i]).any()]
        more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
        detail = f"; differing leaves: {', '.join(bad[:8])}{more}"
    else:
        detail = "; they differ in structure, shapes or dtypes"
    raise FuncgradValueError(
        f"check_in_sync: the {what} is not the same on every rank: {_describe_groups(totals)}{detail}"
    )
