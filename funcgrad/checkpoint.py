"""Save and load pytrees of arrays: one file, atomic writes, no pickle.

>>> import numpy as np, tempfile, os
>>> from funcgrad import checkpoint
>>> path = os.path.join(tempfile.mkdtemp(), "params.fgckpt")
>>> checkpoint.save(path, {"w": np.ones((2, 3), np.float32), "step": 7})
>>> restored = checkpoint.load(path)
>>> restored["w"].dtype, restored["w"].shape, restored["step"]
(dtype('float32'), (2, 3), array(7))

Leaves are converted with :func:`numpy.asarray` when saved and come back as
NumPy arrays (a Python scalar comes back as a 0-d array). Supported dtypes:
bool, int8/16/32/64, uint8/16/32/64, float16/32/64, complex64/128.

Containers: dict (``str`` keys only), list, tuple, None, namedtuple and
registered pytree nodes (dataclasses...). Without ``like``, namedtuples and
registered nodes come back as plain tuples; pass ``like=tree`` to get the
exact original types back (``load(path, like=params)``), which also checks
that the file holds the same number of leaves with the same shapes, dtypes and
dict keys.

File layout (all integers little-endian)::

    16 bytes   magic  b"FUNCGRADCKPT\\x00v1\\n"
     8 bytes   uint64 length H of the JSON header
     H bytes   JSON header (UTF-8): tree structure, per-leaf dtype/shape/offset
     D bytes   raw little-endian C-order bytes of every leaf, back to back
    32 bytes   SHA-256 of everything above

Writes go to a temporary file in the same directory that is flushed, fsynced
and then renamed over ``path`` (and the directory is fsynced), so a crash or a
kill mid-write leaves the previous checkpoint intact. A killed writer may leave
a ``.NAME.*.tmp`` file behind; it is never read and can be deleted.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
from typing import Any

import numpy as np

from .errors import CheckpointError, FuncgradTypeError, at_user_line
from .tree_util import PyTreeDef, tree_flatten, treedef_is_leaf

__all__ = ["CheckpointError", "CheckpointNotFoundError", "CheckpointTypeError", "load", "save"]

MAGIC = b"FUNCGRADCKPT\x00v1\n"  # 16 bytes
FORMAT_VERSION = 1
_LEN = struct.Struct("<Q")
_DIGEST_SIZE = 32
_MIN_SIZE = len(MAGIC) + _LEN.size + _DIGEST_SIZE
_MAX_HEADER = 1 << 30

# dtype.str (little-endian / byte-order-free spelling) -> numpy dtype
_ALLOWED_DTYPES = {
    np.dtype(t).newbyteorder("<").str: np.dtype(t)
    for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
        np.float16, np.float32, np.float64, np.complex64, np.complex128,
    )
}


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (also a ``FileNotFoundError``)."""


class CheckpointTypeError(CheckpointError, FuncgradTypeError):
    """A pytree holds something a checkpoint cannot store (also a ``TypeError``)."""


# --------------------------------------------------------------------------- tree structure <-> JSON


def _is_namedtuple_type(t) -> bool:
    return isinstance(t, type) and issubclass(t, tuple) and hasattr(t, "_fields")


def encode_structure(treedef: PyTreeDef, op: str = "checkpoint.save") -> dict:
    """The JSON-able description of ``treedef`` stored in a checkpoint header.

    Nodes are objects with a ``"t"`` key: ``leaf``, ``none``, ``tuple``,
    ``list``, ``dict`` (``"k"``: the sorted str keys), ``namedtuple``
    (``"name"``, ``"fields"``) or ``node`` (a registered type, ``"name"``);
    containers list their children under ``"c"``.
    """

    def enc(td: PyTreeDef, path: str) -> dict:
        if treedef_is_leaf(td):
            return {"t": "leaf"}
        kind = td.kind
        if kind is type(None):
            return {"t": "none"}
        kids = td.children
        if kind is tuple or kind is list:
            name = "tuple" if kind is tuple else "list"
            return {"t": name, "c": [enc(c, f"{path}[{i}]") for i, c in enumerate(kids)]}
        if kind is dict:
            keys = list(td.aux)
            for k in keys:
                if not isinstance(k, str):
                    raise CheckpointTypeError(
                        f"{op}: dict keys must be str, got {k!r} ({type(k).__name__}) in the dict at "
                        f"{path or 'the root'}"
                    )
            return {"t": "dict", "k": keys, "c": [enc(c, f"{path}[{k!r}]") for k, c in zip(keys, kids)]}
        if _is_namedtuple_type(td.aux):
            nt = td.aux
            return {
                "t": "namedtuple",
                "name": f"{nt.__module__}.{nt.__qualname__}",
                "fields": list(nt._fields),
                "c": [enc(c, f"{path}.{f}") for f, c in zip(nt._fields, kids)],
            }
        name = f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', repr(kind))}"
        return {"t": "node", "name": name, "c": [enc(c, f"{path}[{i}]") for i, c in enumerate(kids)]}

    return enc(treedef, "")


def _fail_format(where: str, msg: str):
    raise CheckpointError(f"{where}: malformed header: {msg}")


def build_tree(structure: Any, leaves: list, where: str = "checkpoint.load"):
    """Rebuild plain containers from :func:`encode_structure` output.

    ``leaves`` are consumed in order; namedtuples and registered nodes become
    tuples. Anything that does not match the format raises CheckpointError.
    """
    it = iter(leaves)
    sentinel = object()

    def build(node, depth):
        if depth > 1000:
            _fail_format(where, "tree nested deeper than 1000 levels")
        if not isinstance(node, dict) or not isinstance(node.get("t"), str):
            _fail_format(where, f"tree node {str(node)[:80]!r} is not an object with a 't' field")
        t = node["t"]
        if t == "leaf":
            x = next(it, sentinel)
            if x is sentinel:
                _fail_format(where, "the tree has more leaves than the header lists")
            return x
        if t == "none":
            return None
        kids = node.get("c")
        if not isinstance(kids, list):
            _fail_format(where, f"'{t}' node without a list of children")
        if t == "dict":
            keys = node.get("k")
            if not isinstance(keys, list) or len(keys) != len(kids) or not all(isinstance(k, str) for k in keys):
                _fail_format(where, "dict node whose keys are not a list of str, one per child")
            if keys != sorted(set(keys)):
                _fail_format(where, "dict keys are not unique and sorted")
            return {k: build(c, depth + 1) for k, c in zip(keys, kids)}
        if t in ("tuple", "namedtuple", "node"):
            return tuple(build(c, depth + 1) for c in kids)
        if t == "list":
            return [build(c, depth + 1) for c in kids]
        _fail_format(where, f"unknown tree node type {t!r}")

    try:
        out = build(structure, 0)
    except RecursionError:
        _fail_format(where, "tree nested too deeply")
    if next(it, sentinel) is not sentinel:
        _fail_format(where, "the header lists more leaves than the tree has")
    return out


def _canonical(node) -> Any:
    """Structure with the container kinds that ``like`` may change erased."""
    t = node["t"]
    if t == "leaf":
        return "*"
    if t == "none":
        return None
    kids = tuple(_canonical(c) for c in node["c"])
    if t == "dict":
        return ("dict", tuple(node["k"]), kids)
    return ("seq", kids)


def structure_difference(a: dict, b: dict, path: str = "") -> str | None:
    """A description of the first place where two encoded structures differ
    (namedtuple/tuple/list/registered nodes count as the same kind), or None."""
    ta, tb = a["t"], b["t"]
    seqs = ("tuple", "list", "namedtuple", "node")
    loc = path or "the root"
    if ta in seqs and tb in seqs:
        if len(a["c"]) != len(b["c"]):
            return f"at {loc}: a {ta} of {len(a['c'])} children vs a {tb} of {len(b['c'])}"
        for i, (x, y) in enumerate(zip(a["c"], b["c"])):
            d = structure_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if ta != tb:
        return f"at {loc}: {ta} vs {tb}"
    if ta == "dict":
        if a["k"] != b["k"]:
            return f"at {loc}: dict keys {a['k']} vs {b['k']}"
        for k, x, y in zip(a["k"], a["c"], b["c"]):
            d = structure_difference(x, y, f"{path}[{k!r}]")
            if d:
                return d
    return None


def leaf_paths(structure: dict) -> list[str]:
    """``["['w']", "[1][0]", ...]``: the path of every leaf, in leaf order."""
    out: list[str] = []

    def walk(node, path):
        t = node["t"]
        if t == "leaf":
            out.append(path or "<root>")
        elif t == "dict":
            for k, c in zip(node["k"], node["c"]):
                walk(c, f"{path}[{k!r}]")
        elif t == "namedtuple":
            for f, c in zip(node["fields"], node["c"]):
                walk(c, f"{path}.{f}")
        elif t != "none":
            for i, c in enumerate(node["c"]):
                walk(c, f"{path}[{i}]")

    walk(structure, "")
    return out


# --------------------------------------------------------------------------- leaves


def leaf_array(x, path: str, op: str) -> np.ndarray:
    """``np.asarray(x)`` checked to have a storable dtype."""
    try:
        a = np.asarray(x)
    except Exception as e:
        raise CheckpointTypeError(f"{op}: leaf {path} of type {type(x).__name__} is not an array: {e}") from e
    if a.dtype.newbyteorder("<").str not in _ALLOWED_DTYPES:
        raise CheckpointTypeError(
            f"{op}: leaf {path} has dtype {a.dtype} (shape {a.shape}), which is not supported; "
            f"supported dtypes: bool, int8-64, uint8-64, float16/32/64, complex64/128"
        )
    return a


def _little_endian_bytes(a: np.ndarray) -> memoryview:
    le = a.dtype.newbyteorder("<")
    a = np.ascontiguousarray(a, dtype=le)
    return memoryview(a.reshape(-1).view(np.uint8))


def _prepare(tree, op: str):
    try:
        leaves, treedef = tree_flatten(tree)
    except TypeError as e:  # e.g. dict keys that cannot be sorted
        raise CheckpointTypeError(f"{op}: cannot flatten the pytree: {e}") from e
    structure = encode_structure(treedef, op)
    paths = leaf_paths(structure)
    arrays = [leaf_array(x, p, op) for x, p in zip(leaves, paths)]
    return structure, arrays, treedef


# --------------------------------------------------------------------------- save


def _fsync_dir(dirpath: str) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(dirpath, flags)
    except OSError:
        return  # platforms (Windows) where a directory cannot be opened
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename is still done
    finally:
        os.close(fd)


def save(path, tree) -> None:
    """Write the pytree ``tree`` to the file ``path``, atomically.

    Every leaf is converted with ``np.asarray``; dict keys must be str.
    An existing file at ``path`` is replaced only once the new one is
    completely written and fsynced.

    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "ckpt")
    >>> save(p, {"layers": [np.zeros(3), np.ones((2, 2), np.int32)], "lr": 0.1})
    >>> load(p)["layers"][1]
    array([[1, 1],
           [1, 1]], dtype=int32)
    """
    path = os.fspath(path)
    structure, arrays, _ = _prepare(tree, "checkpoint.save")
    leaves_meta = []
    offset = 0
    for a in arrays:
        leaves_meta.append({"dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape), "offset": offset})
        offset += a.nbytes
    header = {
        "format": "funcgrad-checkpoint",
        "version": FORMAT_VERSION,
        "tree": structure,
        "leaves": leaves_meta,
        "data_size": offset,
    }
    header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    dirpath = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    tmp = os.path.join(dirpath, f".{base}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        raise CheckpointError(f"checkpoint.save: cannot write {path!r}: {e}") from e
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:

            def put(b) -> None:
                digest.update(b)
                f.write(b)

            put(MAGIC)
            put(_LEN.pack(len(header_bytes)))
            put(header_bytes)
            for a in arrays:
                if a.nbytes:
                    put(_little_endian_bytes(a))
            f.write(digest.digest())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise CheckpointError(f"checkpoint.save: cannot write {path!r}: {e}") from e
        raise
    _fsync_dir(dirpath)


# --------------------------------------------------------------------------- load


def _read_all(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as e:
        raise CheckpointNotFoundError(f"checkpoint.load: no checkpoint file at {path!r}") from e
    except IsADirectoryError as e:
        raise CheckpointError(f"checkpoint.load: {path!r} is a directory, not a checkpoint file") from e
    except OSError as e:
        raise CheckpointError(f"checkpoint.load: cannot read {path!r}: {e}") from e


def _size_hint(buf) -> str:
    """For a corrupt file: a note when its size differs from what its header says."""
    n = len(buf)
    (hlen,) = _LEN.unpack_from(buf, len(MAGIC))
    hstart = len(MAGIC) + _LEN.size
    try:
        hdr = json.loads(bytes(buf[hstart: hstart + hlen]))
        expected = hstart + hlen + int(hdr["data_size"]) + _DIGEST_SIZE
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError):  # the header may be corrupt
        return ""
    if expected == n:
        return ""
    return f" (the header describes a {expected}-byte file but it has {n} bytes: truncated?)"


def _parse(path: str, buf) -> tuple[Any, list[np.ndarray]]:
    where = f"checkpoint.load({path!r})"
    n = len(buf)
    magic = bytes(buf[: len(MAGIC)])
    if n < len(MAGIC) and MAGIC.startswith(magic):
        raise CheckpointError(f"{where}: checksum does not match: the file is truncated ({n} bytes)")
    if magic != MAGIC:
        damaged = len(magic) == len(MAGIC) and sum(a != b for a, b in zip(magic, MAGIC)) <= 2
        if damaged:
            raise CheckpointError(
                f"{where}: checksum does not match: the file is corrupt (its magic header is damaged)"
            )
        raise CheckpointError(
            f"{where}: not a funcgrad checkpoint (the file starts with {magic[:16]!r}, "
            f"expected {MAGIC!r}); refusing to read it"
        )
    if n < _MIN_SIZE:
        raise CheckpointError(f"{where}: checksum does not match: the file is truncated ({n} bytes)")
    mv = memoryview(buf)
    stored = bytes(mv[n - _DIGEST_SIZE:])
    actual = hashlib.sha256(mv[: n - _DIGEST_SIZE]).digest()
    if stored != actual:
        hint = _size_hint(buf)
        raise CheckpointError(
            f"{where}: checksum does not match: the file is corrupt or was modified{hint}; "
            "nothing was loaded: restore the file from a backup or save the checkpoint again"
        )

    (hlen,) = _LEN.unpack_from(buf, len(MAGIC))
    hstart = len(MAGIC) + _LEN.size
    if hlen > min(_MAX_HEADER, n - _MIN_SIZE):
        _fail_format(where, f"header length {hlen} does not fit in a {n}-byte file")
    try:
        header = json.loads(bytes(mv[hstart: hstart + hlen]).decode("utf-8"))
    except (ValueError, RecursionError) as e:
        _fail_format(where, f"header is not valid JSON: {e}")
    if not isinstance(header, dict) or header.get("format") != "funcgrad-checkpoint":
        _fail_format(where, "not a funcgrad checkpoint header")
    if header.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: checkpoint format version {header.get('version')!r} is not supported "
            f"(this funcgrad reads version {FORMAT_VERSION})"
        )
    metas = header.get("leaves")
    data_size = header.get("data_size")
    if not isinstance(metas, list) or not isinstance(data_size, int) or isinstance(data_size, bool):
        _fail_format(where, "missing 'leaves' list or 'data_size'")
    dstart = hstart + hlen
    if dstart + data_size + _DIGEST_SIZE != n:
        _fail_format(where, f"data size {data_size} does not match the file size {n}")

    arrays = []
    offset = 0
    for i, m in enumerate(metas):
        if not isinstance(m, dict):
            _fail_format(where, f"leaf {i} is not an object")
        dt = m.get("dtype")
        shape = m.get("shape")
        if not isinstance(dt, str) or dt not in _ALLOWED_DTYPES:
            raise CheckpointError(
                f"{where}: leaf {i} has dtype {dt!r}, which funcgrad checkpoints never contain "
                f"(no object or pickled data is read); refusing to load"
            )
        if (
            not isinstance(shape, list)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
            or len(shape) > 64
        ):
            _fail_format(where, f"leaf {i} has an invalid shape {shape!r}")
        if m.get("offset") != offset:
            _fail_format(where, f"leaf {i} has offset {m.get('offset')!r}, expected {offset}")
        dtype = _ALLOWED_DTYPES[dt]
        count = 1
        for d in shape:
            count *= d
        nbytes = count * dtype.itemsize
        if offset + nbytes > data_size:
            _fail_format(where, f"leaf {i} (shape {tuple(shape)}, {dtype}) runs past the end of the data")
        if nbytes:
            a = np.frombuffer(mv, dtype=np.dtype(dt), count=count, offset=dstart + offset)
            a = a.astype(dtype, copy=True).reshape(shape)  # native byte order, owns its memory
            if dtype == np.bool_ and count and a.view(np.uint8).max() > 1:
                _fail_format(where, f"leaf {i} is a bool array holding bytes other than 0 and 1")
        else:
            a = np.empty(shape, dtype)
        arrays.append(a)
        offset += nbytes
    if offset != data_size:
        _fail_format(where, f"leaves cover {offset} bytes but data_size is {data_size}")
    return header["tree"], arrays


def _like_leaf_spec(x, path: str):
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        try:
            return tuple(int(d) for d in x.shape), np.dtype(x.dtype)
        except TypeError:
            pass
    a = leaf_array(x, path, "checkpoint.load(like=...)")
    return a.shape, a.dtype


def load(path, like=None):
    """Read a pytree written by :func:`save`.

    The SHA-256 checksum is verified before anything is decoded; a corrupt,
    truncated or foreign file (a pickle, a ``.npy``...) raises
    :class:`~funcgrad.errors.CheckpointError`, a missing one
    :class:`CheckpointNotFoundError` (both ``ValueError``; the latter also a
    ``FileNotFoundError``).

    ``like``: a pytree (arrays, or anything with ``.shape`` and ``.dtype``)
    whose structure the result takes. The file must hold the same number of
    leaves with the same shapes and dtypes, and the same dict keys.

    >>> import numpy as np, tempfile, os, collections
    >>> P = collections.namedtuple("P", "w b")
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt")
    >>> save(path, P(w=np.eye(2), b=np.zeros(2)))
    >>> type(load(path)).__name__, type(load(path, like=P(np.eye(2), np.zeros(2)))).__name__
    ('tuple', 'P')
    """
    path = os.fspath(path)
    try:
        structure, arrays = _parse(path, _read_all(path))
    except CheckpointError as e:  # say which line of the user's program was loading
        raise type(e)(at_user_line(str(e))) from e.__cause__
    if like is None:
        return build_tree(structure, arrays, f"checkpoint.load({path!r})")
    return unflatten_like(structure, arrays, like, f"checkpoint.load({path!r}, like=...)")


def unflatten_like(structure: dict, arrays: list, like, where: str):
    """Put ``arrays`` (described by ``structure``) into ``like``'s treedef,
    checking leaf count, shapes, dtypes and dict keys."""
    try:
        like_leaves, like_def = tree_flatten(like)
    except TypeError as e:
        raise CheckpointTypeError(f"{where}: cannot flatten `like`: {e}") from e
    like_structure = encode_structure(like_def, where)
    if len(like_leaves) != len(arrays):
        raise CheckpointError(
            f"{where}: the file holds {len(arrays)} leaves but `like` has {len(like_leaves)}"
        )
    diff = structure_difference(structure, like_structure)
    if diff:
        raise CheckpointError(f"{where}: the tree structure of the file differs from `like` {diff}")
    paths = leaf_paths(like_structure)
    bad = []
    for p, x, a in zip(paths, like_leaves, arrays):
        shape, dtype = _like_leaf_spec(x, p)
        if shape != a.shape or dtype != a.dtype:
            bad.append(f"{p}: file has {a.dtype}{list(a.shape)}, like has {dtype}{list(shape)}")
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise CheckpointError(
            f"{where}: leaf shapes/dtypes differ from `like`: " + "; ".join(bad[:5]) + more
        )
    return like_def.unflatten(arrays)
