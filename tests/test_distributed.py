"""funcgrad.distributed: size-1 behaviour in this process, and real multi-rank
runs under mpirun (skipped when no MPI launcher / working mpi4py is installed)."""
from __future__ import annotations

import collections
import functools
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from funcgrad import checkpoint
from funcgrad import distributed as dist
from funcgrad.errors import CheckpointError, FuncgradError, FuncgradValueError
from funcgrad.tree_util import tree_flatten

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "tests", "mpi_scripts")
_LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                "PMI_FD", "MPI_LOCALNRANKS", "FUNCGRAD_DISTRIBUTED")

Point = collections.namedtuple("Point", "x y")


@pytest.fixture
def fresh(monkeypatch):
    """funcgrad.distributed as if never initialised, in a plain (non-mpirun) process."""
    monkeypatch.setattr(dist, "_state", dist._State())
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    for v in _LAUNCH_VARS:
        monkeypatch.delenv(v, raising=False)
    return dist


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _identical(got, want):
    g_leaves, g_def = tree_flatten(got)
    w_leaves, w_def = tree_flatten(want)
    assert g_def == w_def
    for g, w in zip(g_leaves, w_leaves):
        w = np.asarray(w)
        assert isinstance(g, np.ndarray) and g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == np.ascontiguousarray(w).tobytes()


# ----------------------------------------------------------------------------- one process


def test_import_does_not_import_mpi4py():
    code = "import sys, funcgrad.distributed as d; print('mpi4py' in sys.modules, d.size(), 'mpi4py' in sys.modules)"
    env = {k: v for k, v in _env().items() if k not in _LAUNCH_VARS}
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "1", "False"]  # no launcher: size 1 without touching MPI


def test_size_one_collectives(fresh):
    dist.init()
    dist.init()  # idempotent
    assert (dist.rank(), dist.size(), dist.is_distributed()) == (0, 1, False)
    assert sys.excepthook is not dist._mpi_excepthook
    dist.barrier()
    tree = {
        "f32": np.arange(3, dtype=np.float32),
        "f16": np.ones(2, np.float16),
        "i8": np.array([-3, 4], np.int8),
        "u64": np.array([2**64 - 1], np.uint64),
        "b": np.array([True, False]),
        "s": 2.5,
        "pt": Point(np.zeros((2, 0)), None),
    }
    total = dist.psum(tree)
    _identical(total, {**tree, "b": np.array([1, 0]), "s": np.float64(2.5)})
    assert total["f32"] is not tree["f32"]  # fresh arrays
    assert isinstance(total["pt"], Point)
    mean = dist.pmean(tree)
    assert mean["f32"].dtype == np.float32 and mean["f16"].dtype == np.float16
    assert mean["i8"].dtype == np.float64 and mean["b"].dtype == np.float64
    np.testing.assert_array_equal(mean["u64"], np.array([2.0**64]))
    assert isinstance(mean["s"], np.ndarray) and mean["s"].shape == ()
    copy = dist.broadcast(tree)
    _identical(copy, tree)
    assert copy["f32"] is not tree["f32"]
    with pytest.raises(FuncgradValueError, match="root=1 is not a rank"):
        dist.broadcast(tree, root=1)
    _identical(dist.shard({"x": np.arange(5)}), {"x": np.arange(5)})
    with pytest.raises(FuncgradValueError, match=r"shard: leaf \['s'\] is 0-d"):
        dist.shard({"s": 1.0})
    d1 = dist.check_in_sync(tree)
    assert d1 == dist.check_in_sync(dict(tree)) and len(d1) == 64
    assert d1 != dist.check_in_sync({**tree, "s": 2.5000001})
    with pytest.raises(TypeError, match="dtype <U"):
        dist.psum({"x": "text"})


def test_size_one_checkpoints(fresh, tmp_path):
    p = str(tmp_path / "c.ckpt")
    tree = {"params": Point(np.eye(2, dtype=np.float32), np.zeros(2)), "step": 3}
    dist.save_checkpoint(p, tree)
    assert type(dist.load_checkpoint(p)["params"]) is tuple
    _identical(dist.load_checkpoint(p, like=tree), tree)
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        dist.load_checkpoint(p + ".nope")


def test_without_mpi4py(fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `from mpi4py import MPI` now fails
    dist.init()
    assert dist.size() == 1
    monkeypatch.setattr(dist, "_state", dist._State())
    monkeypatch.setenv("PMI_SIZE", "1")  # `mpirun -n 1` without mpi4py: still fine
    assert dist.size() == 1 and dist.psum({"a": np.ones(2)})["a"][0] == 1.0
    monkeypatch.setattr(dist, "_state", dist._State())
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")  # one of 4 ranks: running alone would be wrong
    with pytest.raises(dist.DistributedError, match="one of 4 MPI ranks but mpi4py cannot be used") as info:
        dist.init()
    assert isinstance(info.value, FuncgradError) and isinstance(info.value, RuntimeError)
    monkeypatch.setattr(dist, "_state", dist._State())
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE")
    monkeypatch.delenv("PMI_SIZE")
    with pytest.raises(dist.DistributedError, match="use_mpi=True"):
        dist.init(use_mpi=True)
    monkeypatch.setattr(dist, "_state", dist._State())
    dist.init(use_mpi=False)
    assert dist.size() == 1


def test_mpirun_command(monkeypatch):
    try:
        cmd = dist.mpirun_command(3, sys.executable, "train.py", "--lr", "0.1")
    except dist.DistributedError:
        cmd = None
    if cmd is not None:
        assert os.path.isfile(cmd[0]) and os.path.basename(cmd[0]) in ("mpirun", "mpiexec")
        assert cmd[1:3] == ["-n", "3"] and cmd[-4:] == [sys.executable, "train.py", "--lr", "0.1"]
        if dist._mpi_flavor(cmd[0]) == "openmpi":
            assert "--oversubscribe" in cmd
            assert ("--allow-run-as-root" in cmd) == (os.geteuid() == 0)
    with pytest.raises(FuncgradValueError, match="positive int"):
        dist.mpirun_command(0, "x")
    monkeypatch.setattr(sys, "executable", "/nonexistent/bin/python")
    monkeypatch.setattr(sys, "prefix", "/nonexistent")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(dist.DistributedError, match="no mpirun or mpiexec found"):
        dist.mpirun_command(2, "x")


# ----------------------------------------------------------------------------- under mpirun


@functools.cache
def _mpi_problem() -> str | None:
    try:
        dist.mpirun_command(1)
    except dist.DistributedError as e:
        return str(e)
    probe = "from mpi4py import MPI; print(MPI.Get_library_version())"
    try:
        out = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "mpi4py import timed out"
    if out.returncode != 0:
        return "mpi4py cannot load an MPI library: " + out.stderr.strip().splitlines()[-1]
    return None


def mpirun(n, *checks, timeout=120):
    """Run ``checks`` (``[module, *args]`` lists of tests/mpi_scripts) in one job on ``n`` ranks."""
    argv = [os.path.join(SCRIPTS, "run.py")]
    for i, check in enumerate(checks):
        argv += (["--"] if i else []) + [str(a) for a in check]
    return run_script(n, *argv, timeout=timeout)


def run_script(n, script, *args, timeout=120):
    problem = _mpi_problem()
    if problem:
        pytest.skip(f"no usable MPI ({problem}); pip install 'funcgrad[mpi]'")
    cmd = dist.mpirun_command(n, sys.executable, os.path.join(SCRIPTS, script), *args)
    env = {k: v for k, v in _env().items() if k not in _LAUNCH_VARS}
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def assert_ok(out, n, check):
    """The job succeeded and ``check`` printed its OK line on every rank."""
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    for r in range(n):
        assert any(line.startswith(f"OK {check} rank {r}") for line in lines), out.stdout + out.stderr


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """One job on 2 ranks and one on 3: collectives, and a checkpoint saved on 2 ranks, loaded on 3."""
    folder = tmp_path_factory.mktemp("mpi")
    path = str(folder / "run.ckpt")
    two = mpirun(2, ["collectives", 2], ["checkpoint_run", "save", path])
    three = mpirun(3, ["collectives", 3], ["checkpoint_run", "load", path])
    return {2: two, 3: three, "folder": folder, "path": path}


@pytest.mark.parametrize("n", [2, 3])
def test_collectives_on_several_ranks(jobs, n):
    assert_ok(jobs[n], n, "collectives")


def test_exception_on_one_rank_aborts_the_job():
    start = time.monotonic()
    out = run_script(2, "crash.py", timeout=60)  # TimeoutExpired (a hang) fails the test
    elapsed = time.monotonic() - start
    assert out.returncode != 0
    assert "[rank 1] Traceback (most recent call last)" in out.stderr
    assert "[rank 1] RuntimeError: deliberate failure on rank 1" in out.stderr
    assert "got past the barrier" not in out.stdout
    assert elapsed < 60


def test_checkpoint_saved_on_two_ranks_resumes_on_one_and_three(jobs, fresh):
    assert_ok(jobs[2], 2, "checkpoint_run")
    assert sorted(os.listdir(jobs["folder"])) == ["run.ckpt"]
    path = jobs["path"]
    params = Point(np.arange(12, dtype=np.float32).reshape(3, 4) / 7, np.full(4, -0.5))
    want = {"step": np.int64(42), "params": params, "opt": [np.arange(3, dtype=np.int32), np.array(True)]}
    _identical(checkpoint.load(path, like=want), want)
    _identical(dist.load_checkpoint(path, like=want), want)  # size 1, in this process
    assert_ok(jobs[3], 3, "checkpoint_run")
