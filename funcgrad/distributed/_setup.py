"""Setup: starting MPI (mpi4py is imported by :func:`init`, never at import time), this
process's rank and the job's size, and the excepthook that aborts the whole job."""
from __future__ import annotations

import os
import sys
import traceback

from ..errors import FuncgradError

# The package module: the process's MPI state is ``funcgrad.distributed._state``, read through it
# at call time so that one object is shared by every submodule (and replacing it, as the tests do
# to start from scratch, takes effect everywhere).
_pkg = sys.modules[__package__]

# Environment variables set by the launchers (Open MPI / PRRTE / PMIx, MPICH Hydra,
# Intel MPI, srun with PMI); their presence means "started by mpirun".
_LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "PMI_FD")
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS")


class DistributedError(FuncgradError, RuntimeError):
    """MPI is needed but cannot be used (mpi4py or the MPI library is missing)."""


class _State:
    initialized = False
    MPI = None
    comm = None
    rank = 0
    size = 1
    previous_excepthook = None


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
    if _pkg._state.initialized:
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
            _pkg._state.MPI = MPI
            _pkg._state.comm = comm
            _pkg._state.rank = comm.Get_rank()
            _pkg._state.size = comm.Get_size()
            if _pkg._state.size > 1:
                _install_excepthook()
    _pkg._state.initialized = True


def _mpi_excepthook(exc_type, exc, tb) -> None:
    prefix = f"[rank {_pkg._state.rank}] "
    try:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        lines = "".join(prefix + line for line in text.splitlines(True))
        sys.stderr.write(lines)
        sys.stderr.write(
            f"{prefix}funcgrad.distributed: uncaught {exc_type.__name__}; aborting all {_pkg._state.size} ranks "
            f"(MPI_Abort)\n"
        )
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        try:
            _pkg._state.comm.Abort(1)
        finally:
            os._exit(1)


def _install_excepthook() -> None:
    if sys.excepthook is not _mpi_excepthook:
        _pkg._state.previous_excepthook = sys.excepthook
        sys.excepthook = _mpi_excepthook


def _ensure_init() -> None:
    if not _pkg._state.initialized:
        init()


def rank() -> int:
    """This process's index in ``0 .. size() - 1``."""
    _ensure_init()
    return _pkg._state.rank


def size() -> int:
    """The number of processes in the job (1 without mpirun)."""
    _ensure_init()
    return _pkg._state.size


def is_distributed() -> bool:
    """True when more than one process takes part."""
    return size() > 1


def barrier() -> None:
    """Wait until every rank reaches this call."""
    _ensure_init()
    if _pkg._state.size > 1:
        _pkg._state.comm.Barrier()
