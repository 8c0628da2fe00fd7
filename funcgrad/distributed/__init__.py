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

The package's modules: ``_setup`` (MPI start-up, rank and size, the excepthook),
``_codec`` (pytrees as funcgrad.checkpoint's JSON structure plus one byte buffer),
``_helpers`` (the same-structure check and the per-dtype Allreduce), ``_collectives``,
``_checkpoints``, ``_training`` and ``_launching``.
"""
from __future__ import annotations

from ._checkpoints import load_checkpoint, save_checkpoint
from ._collectives import broadcast, check_in_sync, pmean, psum, shard
from ._launching import _mpi_flavor, mpirun_command  # noqa: F401
from ._setup import (
    DistributedError,
    _mpi_excepthook,  # noqa: F401  (tests check that init installs it)
    _State,
    barrier,
    init,
    is_distributed,
    rank,
    size,
)
from ._training import DataParallel, data_parallel

# The process's MPI state: one object, read by every submodule as ``funcgrad.distributed._state``
# at call time (so replacing it with a fresh ``_State()`` starts from scratch everywhere).
_state = _State()

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

for _name in __all__:  # documented, printed and pickled as funcgrad.distributed.NAME, as before the split
    globals()[_name].__module__ = __name__
del _name
