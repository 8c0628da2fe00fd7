"""Run under ``mpirun -n N``: psum / pmean / broadcast / shard / check_in_sync on
deterministic random pytrees with mixed dtypes, compared exactly with what
NumPy computes from every rank's inputs. Prints ``OK rank R`` at the end."""
from __future__ import annotations

import collections
import functools
import sys

import numpy as np

from funcgrad import distributed as dist
from funcgrad.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.tree_util import tree_flatten, tree_map

Point = collections.namedtuple("Point", "x y")


def make_tree(seed: int, rank: int):
    """Rank-specific values; floats are multiples of 1/8 so that sums are exact in any order."""
    rng = np.random.default_rng([seed, rank])

    def f(dt, shape):
        return (rng.integers(-64, 64, size=shape) / 8).astype(dt)

    def i(dt, shape, lo=-20, hi=20):
        return rng.integers(lo, hi, size=shape).astype(dt)

    return {
        "f64": f(np.float64, (3, 4)),
        "f32": f(np.float32, (5,)),
        "f16": f(np.float16, (2, 2)),
        "c128": f(np.float64, (2,)) + 1j * f(np.float64, (2,)),
        "i8": i(np.int8, (4,)),
        "i16": i(np.int16, (2, 1)),
        "i32": i(np.int32, (3,)),
        "i64": i(np.int64, ()),
        "u8": i(np.uint8, (3,), 0, 50),
        "u32": i(np.uint32, (2,), 0, 1000),
        "u64": i(np.uint64, (2,), 0, 1000),
        "bool": rng.random(6) < 0.5,
        "scalar": float(rng.integers(-8, 8)) / 4,
        "int_scalar": int(rng.integers(0, 9)),
        "nested": [Point(x=f(np.float32, (2, 3)), y=None), (), {"z": f(np.float64, ())}],
        "empty": np.zeros((0, 2), np.float32),
    }


def check_identical(got, want, what):
    g_leaves, g_def = tree_flatten(got)
    w_leaves, w_def = tree_flatten(want)
    assert g_def == w_def, (what, g_def, w_def)
    for k, (g, w) in enumerate(zip(g_leaves, w_leaves)):
        w = np.asarray(w)
        assert isinstance(g, np.ndarray), (what, k, type(g))
        assert g.dtype == w.dtype and g.shape == w.shape, (what, k, g.dtype, w.dtype, g.shape, w.shape)
        assert g.tobytes() == np.ascontiguousarray(w).tobytes(), (what, k, g, w)


def expected_sum(trees):
    def add(*xs):
        xs = [np.asarray(x) for x in xs]
        if xs[0].dtype == np.bool_:
            xs = [x.astype(np.int64) for x in xs]
        return functools.reduce(np.add, xs)

    return tree_map(add, *trees)


def expected_mean(trees):
    return tree_map(lambda *xs: np.asarray(np.mean(np.stack([np.asarray(x) for x in xs]), axis=0)), *trees)


def expect_error(exc_type, pattern, fn, *args):
    try:
        fn(*args)
    except exc_type as e:
        assert pattern in str(e), (pattern, str(e))
        return str(e)
    raise AssertionError(f"{fn.__name__} did not raise {exc_type.__name__}")


def main(expected_size: int) -> None:
    dist.init()
    r, n = dist.rank(), dist.size()
    assert n == expected_size and dist.is_distributed(), (n, expected_size)
    assert sys.excepthook is dist._mpi_excepthook

    for seed in range(4):
        mine = make_tree(seed, r)
        everyone = [make_tree(seed, k) for k in range(n)]
        check_identical(dist.psum(mine), expected_sum(everyone), f"psum seed {seed}")
        check_identical(dist.pmean(mine), expected_mean(everyone), f"pmean seed {seed}")
        for root in (0, n - 1):
            check_identical(dist.broadcast(mine, root=root), everyone[root], f"broadcast root {root}")
            got = dist.broadcast(mine if r == root else None, root=root)
            want = tree_map(np.asarray, everyone[root])
            if r != root:
                want["nested"][0] = tuple(want["nested"][0])  # namedtuple -> tuple without a template
            check_identical(got, want, f"broadcast to None root {root}")
        digest = dist.check_in_sync(everyone[0], what="params")
        check_identical(dist.broadcast(np.frombuffer(bytes.fromhex(digest), np.uint8)),
                        np.frombuffer(bytes.fromhex(digest), np.uint8), "digest")

    # shard: np.array_split semantics, including fewer rows than ranks
    for rows in (0, 1, 5, 7, 12):
        x = np.arange(rows * 2).reshape(rows, 2)
        y = np.arange(rows, dtype=np.float32)
        got = dist.shard({"x": x, "y": y})
        check_identical(got, {"x": np.array_split(x, n)[r], "y": np.array_split(y, n)[r]}, f"shard {rows}")
        assert sum(int(v) for v in dist.psum(np.int64(got["x"].shape[0])).reshape(1)) == rows
    expect_error(FuncgradValueError, "0-d", dist.shard, {"a": np.float32(1)})

    # mismatches are reported on every rank, naming the odd rank, instead of hanging
    tree = make_tree(0, 0)
    odd = make_tree(0, 0)
    if r == 1:
        odd["f32"] = odd["f32"] + 1
    msg = expect_error(FuncgradValueError, "rank(s) [1] differ from rank 0", dist.check_in_sync, odd, "params")
    assert "params" in msg and "['f32']" in msg, msg
    if r == 1:
        odd["f64"] = odd["f64"][:2]
    expect_error(FuncgradValueError, "rank(s) [1] differ from rank 0", dist.psum, odd)
    expect_error(FuncgradValueError, "rank(s) [1] differ from rank 0", dist.pmean, odd)
    msg = expect_error(FuncgradValueError, "rank(s) [1] differ", dist.check_in_sync, odd)
    assert "structure, shapes or dtypes" in msg
    if r == 1:
        expect_error(FuncgradValueError, "structure differs", dist.broadcast, [1.0, 2.0])
    else:
        dist.broadcast({"a": 1.0})
    # a root that cannot send makes every rank raise
    if r == 0:
        expect_error(FuncgradTypeError, "dtype <U", dist.broadcast, {"s": "text"})
    else:
        expect_error(FuncgradValueError, "root rank 0 could not send", dist.broadcast, None)
    expect_error(FuncgradValueError, "not a rank", dist.broadcast, tree, n)
    check_identical(dist.broadcast(tree), tree_map(np.asarray, tree), "still in step")
    dist.barrier()
    print(f"OK rank {r}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
