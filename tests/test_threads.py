"""Threads of compiled programs (backends/numba_cpu/threads.py, gemm.py, workers.py): the thread
count and its knobs, the task pool, tiled BLAS products against NumPy for every layout, results
that do not depend on the number of threads, and BLAS kept at one thread inside products."""
import ast
import itertools
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from _compile_mode import sync_compile  # noqa: F401  (autouse: compile synchronously)
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.backends.numba_cpu import chunked, compiler, gemm, threads
from funcgrad.errors import FuncgradValueError


@pytest.fixture
def num_threads():
    """Set ``config.num_threads`` for one test."""
    old = fg.config.num_threads

    def set_(n):
        fg.config.update("num_threads", n)

    yield set_
    fg.config.update("num_threads", old)


# -- the thread count -------------------------------------------------------------------------
def test_count_defaults_to_the_available_cores(monkeypatch, num_threads):
    monkeypatch.delenv("FUNCGRAD_NUM_THREADS", raising=False)
    num_threads(None)
    assert threads.count() == threads.available_cores() >= 1
    if hasattr(os, "sched_getaffinity"):
        assert threads.available_cores() <= len(os.sched_getaffinity(0))


def test_count_from_environment_and_config(monkeypatch, num_threads):
    num_threads(None)
    monkeypatch.setenv("FUNCGRAD_NUM_THREADS", "3")
    assert threads.count() == 3
    monkeypatch.setenv("FUNCGRAD_NUM_THREADS", "0")
    assert threads.count() == threads.available_cores()
    num_threads(1)  # the config wins over the environment
    assert threads.count() == 1


@pytest.mark.parametrize("bad", ["-1", "two", "1.5"])
def test_bad_thread_count_is_a_clear_error(monkeypatch, num_threads, bad):
    num_threads(None)
    monkeypatch.setenv("FUNCGRAD_NUM_THREADS", bad)
    with pytest.raises(FuncgradValueError, match="FUNCGRAD_NUM_THREADS must be a whole number"):
        threads.count()
    monkeypatch.delenv("FUNCGRAD_NUM_THREADS")
    for value in (-2, 1.5, "2", True):
        with pytest.raises(FuncgradValueError, match="num_threads must be a whole number"):
            num_threads(value)


def test_mpi_ranks_share_the_cores(monkeypatch):
    threads.available_cores.cache_clear()
    try:
        monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "64")
        assert threads.available_cores() == 1
    finally:
        monkeypatch.delenv("OMPI_COMM_WORLD_LOCAL_SIZE")
        threads.available_cores.cache_clear()


def test_cgroup_quota_parsing():
    assert threads._parse_v2("max 100000\n") is None
    assert threads._parse_v2("150000 100000\n") == 1.5
    assert threads._parse_v1("-1\n") is None


# -- the task pool ----------------------------------------------------------------------------
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("n_tasks", [0, 1, 2, 7, 64])
def test_parallel_for_runs_every_task_once(num_threads, n_threads, n_tasks):
    num_threads(n_threads)
    seen = []
    lock = threading.Lock()

    def task(i):
        with lock:
            seen.append(i)

    threads.parallel_for(task, n_tasks)
    assert sorted(seen) == list(range(n_tasks))


def test_parallel_for_raises_the_tasks_error(num_threads):
    num_threads(2)

    def task(i):
        if i == 5:
            raise ValueError("task 5 failed")

    with pytest.raises(ValueError, match="task 5 failed"):
        threads.parallel_for(task, 16)
    threads.parallel_for(lambda i: None, 16)  # the pool still works


def test_parallel_for_from_several_threads_and_nested(num_threads):
    num_threads(2)
    totals = [0] * 4

    def caller(j):
        out = np.zeros(32)

        def task(i):
            inner = np.zeros(4)
            threads.parallel_for(lambda k: inner.__setitem__(k, 1.0), 4)
            out[i] = inner.sum()

        threads.parallel_for(task, 32)
        totals[j] = out.sum()

    ts = [threading.Thread(target=caller, args=(j,)) for j in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert totals == [128.0] * 4


def test_chunked_parts_depend_on_sizes_only():
    for n0, rows in [(1, 1), (10, 3), (100_000, 64), (10**7, 8), (12345, 17)]:
        parts = chunked.parts(n0, rows)
        assert parts[0][0] == 0 and parts[-1][1] == n0
        assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
        assert all(lo % rows == 0 for lo, _ in parts)
        assert len(parts) <= chunked.MAX_PARTS


# -- tiled products ---------------------------------------------------------------------------
def _operand(rng, shape, dtype, transposed, sliced):
    """An array of logical ``shape``: C order, a transposed view, or a slice of a wider array."""
    if transposed:
        return rng.normal(size=shape[::-1]).astype(dtype).T
    if sliced:
        wide = rng.normal(size=(shape[0], shape[1] + 5)).astype(dtype)
        return wide[:, 2:2 + shape[1]]
    return rng.normal(size=shape).astype(dtype)


@settings(max_examples=60)
@given(m=st.integers(1, 300), n=st.integers(1, 300), k=st.integers(1, 300),
       layout_a=st.sampled_from(["C", "T", "S"]), layout_b=st.sampled_from(["C", "T", "S"]),
       dtype=st.sampled_from([np.float32, np.float64]), tile_flops=st.sampled_from([1 << 12, 1 << 16, 1 << 24]))
def test_tiled_product_matches_numpy(m, n, k, layout_a, layout_b, dtype, tile_flops):
    rng = np.random.default_rng(m * 1000003 + n * 1009 + k)
    a = _operand(rng, (m, k), dtype, layout_a == "T", layout_a == "S")
    b = _operand(rng, (k, n), dtype, layout_b == "T", layout_b == "S")
    old = gemm.TILE_FLOPS, gemm.PARALLEL_FLOPS
    gemm.TILE_FLOPS = gemm.PARALLEL_FLOPS = tile_flops
    try:
        prod = gemm.Product(m, n, k, dtype)
        got = prod(a, b)
    finally:
        gemm.TILE_FLOPS, gemm.PARALLEL_FLOPS = old
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert got.dtype == dtype and got.shape == (m, n) and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(k) * np.abs(want).max())


def test_tiles_cover_the_output_in_aligned_blocks():
    for m, n, k in [(128, 512, 784), (784, 512, 128), (5, 3, 2), (4096, 4096, 4096), (100, 7, 10**6)]:
        axis, ranges = gemm.tiles(m, n, k)
        extent = m if axis == "m" else n
        assert ranges[0][0] == 0 and ranges[-1][1] == extent
        assert all(lo % gemm.ALIGN == 0 for lo, _ in ranges)
        assert 1 <= len(ranges) <= gemm.MAX_TILES and len(ranges) & (len(ranges) - 1) == 0
        if 2 * m * n * k < gemm.PARALLEL_FLOPS:
            assert len(ranges) == 1


def test_products_of_empty_and_integer_operands():
    assert np.array_equal(gemm.Product(3, 4, 0, np.float64)(np.zeros((3, 0)), np.zeros((0, 4))), np.zeros((3, 4)))
    a, b = np.arange(6).reshape(2, 3), np.arange(12).reshape(3, 4)
    assert np.array_equal(gemm.Product(2, 4, 3, np.int64)(a, b), a @ b)


def _step(p, x, y):
    def loss(p):
        h = fnp.maximum(x @ p["w1"] + p["b1"], 0.0)
        return fnp.mean((h @ p["w2"] - y) ** 2)
    g = fg.grad(loss)(p)
    return {k: p[k] - 0.1 * g[k] for k in p}


def _mlp_args(dtype):
    rng = np.random.default_rng(0)
    p = {"w1": rng.normal(size=(300, 256)).astype(dtype) / 17, "b1": np.zeros(256, dtype),
         "w2": rng.normal(size=(256, 96)).astype(dtype) / 16}
    return p, rng.normal(size=(160, 300)).astype(dtype), rng.normal(size=(160, 96)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_are_bit_identical_for_any_thread_count(num_threads, monkeypatch, dtype):
    """The jitted step's products are tiled (BLAS threads would change the bits) and the tiles
    depend on the shapes only, so one, two and three threads give the same numbers."""
    monkeypatch.setattr(gemm, "TILE_FLOPS", 1 << 20)
    monkeypatch.setattr(gemm, "PARALLEL_FLOPS", 1 << 20)
    p, x, y = _mlp_args(dtype)
    runs = []
    for n in (1, 2, 3, 2):
        num_threads(n)
        runs.append(fg.jit(_step)(p, x, y))
    for r in runs[1:]:
        for k in p:
            assert np.array_equal(r[k], runs[0][k]), k
    want = _step(p, x, y)  # the interpreter (NumPy's BLAS)
    for k in p:
        np.testing.assert_allclose(runs[0][k], want[k], rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-6)


def test_products_from_several_threads_at_once(num_threads):
    num_threads(2)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(256, 384)), rng.normal(size=(384, 320))
    prod = gemm.Product(256, 320, 384, np.float64)
    want = prod(a, b)
    bad = []

    def work():
        for _ in range(20):
            if not np.array_equal(prod(a, b), want):
                bad.append(1)

    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not bad


def test_blas_runs_single_threaded_inside_products():
    """SciPy's own BLAS copy stays at one thread; a BLAS shared with NumPy is restored."""
    from threadpoolctl import threadpool_info

    blas = threads.single_threaded_blas()
    before = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    inside = blas.run(lambda: {p["filepath"]: p["num_threads"] for p in threadpool_info()})
    after = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    for lib in blas.private + blas.shared:
        assert inside[lib.filepath] == 1
    for lib in blas.private:
        assert after[lib.filepath] == 1
    for lib in blas.shared:
        assert after[lib.filepath] == before[lib.filepath]
    numpy_libs = [f for f in before if "numpy" in f]
    for f in numpy_libs if blas.private else []:
        assert after[f] == before[f]  # NumPy's own BLAS is never touched


def test_thread_count_reaches_a_fresh_process():
    code = ("import funcgrad as fg, numpy as np\n"
            "from funcgrad.backends.numba_cpu import threads\n"
            "f = fg.jit(lambda a, b: a @ b)\n"
            "a = np.ones((256, 256), np.float32)\n"
            "assert np.array_equal(f(a, a), a @ a)\n"
            "import numba\n"
            "print(threads.count(), numba.config.NUMBA_NUM_THREADS, 'workers' in threads._shared)\n")
    env = dict(os.environ, FUNCGRAD_NUM_THREADS="1")
    env.pop("NUMBA_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1", "False"]


# -- reductions to scalars --------------------------------------------------------------------
_REDUCE = """
import numpy as np, funcgrad as fg, funcgrad.numpy as fnp
x = np.random.default_rng(3).normal(size=300_001)
f = fg.jit(lambda x: (fnp.sum(fnp.tanh(x)), fnp.max(fnp.exp(x * 0.1)), fnp.mean(fnp.log1p(x * x))))
print(repr([float(v) for v in f(x)]))
"""


def test_a_large_reduction_runs_on_threads_with_results_independent_of_them():
    """A reduction to scalars of 2^17 elements or more runs in fixed chunks on threads: the
    same bits for any thread count, and NumPy's value to rounding."""
    outs = []
    for n in ("1", "2"):
        env = dict(os.environ, FUNCGRAD_NUM_THREADS=n)
        run = subprocess.run([sys.executable, "-c", _REDUCE], env=env, capture_output=True, text=True,
                             timeout=300, check=True)
        outs.append(run.stdout.strip())
    assert outs[0] == outs[1]
    x = np.random.default_rng(3).normal(size=300_001)
    np.testing.assert_allclose(ast.literal_eval(outs[0]), [np.tanh(x).sum(), np.exp(x * 0.1).max(),
                                               np.log1p(x * x).mean()], rtol=1e-12)
    graph = fg.make_graph(lambda x: fnp.sum(fnp.tanh(x)))(x)
    assert "prange" in compiler.lower(graph).kernels[0].text
