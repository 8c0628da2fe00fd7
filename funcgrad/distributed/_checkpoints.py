"""Checkpoints on any number of ranks: rank 0 writes or reads the file with
:mod:`funcgrad.checkpoint`, and the tree travels by :func:`broadcast`."""
from __future__ import annotations

import os
import sys

from .. import checkpoint as _ckpt
from ..errors import CheckpointError, FuncgradError
from ._collectives import _bcast_bytes, broadcast
from ._setup import _ensure_init

# The package module: the process's MPI state is ``funcgrad.distributed._state``, read through it
# at call time so that one object is shared by every submodule (and replacing it, as the tests do
# to start from scratch, takes effect everywhere).
_pkg = sys.modules[__package__]


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
    if _pkg._state.rank == 0:
        try:
            _ckpt.save(path, tree)
        except FuncgradError as e:
            if _pkg._state.size == 1:
                raise
            error = f"{type(e).__name__}: {e}"
    if _pkg._state.size == 1:
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
    if _pkg._state.size == 1:
        return _ckpt.load(path, like=like)
    tree = None
    error = ""
    if _pkg._state.rank == 0:
        try:
            tree = _ckpt.load(path, like=like)
        except FuncgradError as e:
            error = f"{type(e).__name__}: {e}"
    error = _bcast_bytes(error.encode(), 0).decode()
    if error:
        raise CheckpointError(f"load_checkpoint: rank 0 could not load {os.fspath(path)!r}: {error}")
    return broadcast(tree if _pkg._state.rank == 0 else like, root=0)
