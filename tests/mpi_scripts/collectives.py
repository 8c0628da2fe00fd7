"""Run under ``mpirun -n N``: psum / pmean (plain and weighted) / broadcast /
shard / check_in_sync on deterministic random pytrees and on hypothesis-drawn
pytrees with mixed dtypes, compared exactly with what NumPy computes from every
rank's inputs. Prints ``OK collectives rank R`` at the end.

Every rank draws the same hypothesis examples (derandomized, no database, no
timing-dependent health checks) and the ranks agree on each example's verdict
before it is reported, so shrinking runs in lockstep."""
from __future__ import annotations

import collections
import functools
import sys

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from funcgrad import distributed as dist
from funcgrad.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.testing import strategies as fst
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


def expected_weighted_mean(trees, weights):
    """sum_r(w_r * x_r) / sum_r(w_r) in the leaf's mean dtype (float16: float32, rounded once)."""
    def mean(*xs):
        xs = [np.asarray(x) for x in xs]
        dt = xs[0].dtype if xs[0].dtype.kind in "fc" else np.dtype(np.float64)
        dt = np.dtype(np.float32) if dt == np.float16 else dt
        real = np.finfo(dt).dtype
        total = functools.reduce(np.add, [np.multiply(x, real.type(w), dtype=dt) for x, w in zip(xs, weights)])
        out = np.divide(total, real.type(sum(weights)))
        return np.asarray(out.astype(xs[0].dtype) if xs[0].dtype == np.float16 else out)

    return tree_map(mean, *trees)


DTYPES = [np.float64, np.float32, np.float16, np.complex128, np.int8, np.int32, np.int64, np.uint8, np.bool_]


class Spec:
    """A leaf's dtype and shape (a pytree leaf, unlike a tuple)."""

    def __init__(self, dtype, shape):
        self.dtype, self.shape = np.dtype(dtype), shape


def leaf_values(spec):
    """Small values whose sums and weighted sums are exact in any order."""
    ints = hnp.arrays(np.int64, spec.shape, elements=st.integers(-64, 64))
    if spec.dtype == np.bool_:
        return hnp.arrays(np.bool_, spec.shape)
    if spec.dtype.kind == "u":
        return hnp.arrays(spec.dtype, spec.shape, elements=st.integers(0, 16))
    if spec.dtype.kind in "i":
        return hnp.arrays(spec.dtype, spec.shape, elements=st.integers(-8, 8))
    if spec.dtype.kind == "c":
        return st.tuples(ints, ints).map(lambda p: (p[0] / 8 + 1j * p[1] / 8).astype(spec.dtype))
    return ints.map(lambda a: (a / 8).astype(spec.dtype))


@st.composite
def rank_trees(draw, n):
    """``n`` pytrees of one structure (one per rank), a weight per rank (not all 0), a root."""
    specs = st.builds(Spec, st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    structure = draw(fst.pytrees(specs, max_leaves=5))
    trees = [tree_map(lambda spec: draw(leaf_values(spec)), structure) for _ in range(n)]
    weights = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n).filter(any))
    return trees, weights, draw(st.integers(0, n - 1))


def agreed(check):
    """Run ``check()`` here and fail on every rank when it failed on any rank."""
    try:
        check()
        failure = None
    except AssertionError as e:
        failure = e
    failed = int(dist.psum(np.int64(failure is not None)))
    if failed:
        raise AssertionError(f"{failed} rank(s) failed; here: {failure!r}")


def check_random_pytrees(n: int, r: int) -> None:
    @settings(max_examples=15, deadline=None, derandomize=True, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(rank_trees(n))
    def collectives_are_exact(case):
        trees, weights, root = case
        mine = trees[r]
        got = (dist.psum(mine), dist.pmean(mine), dist.pmean(mine, weight=weights[r]), dist.broadcast(mine, root))
        agreed(lambda: [
            check_identical(got[0], expected_sum(trees), "psum"),
            check_identical(got[1], expected_mean(trees), "pmean"),
            check_identical(got[2], expected_weighted_mean(trees, weights), f"pmean weights {weights}"),
            check_identical(got[3], tree_map(np.asarray, trees[root]), f"broadcast root {root}"),
        ])

    collectives_are_exact()


def check_weights(n: int, r: int) -> None:
    """Weighted means: a weight-0 rank's NaNs are ignored; bad or missing weights raise everywhere."""
    got = dist.pmean({"m": np.full(2, np.nan if r == 1 else float(r + 1))}, weight=0 if r == 1 else 2)
    others = [k + 1 for k in range(n) if k != 1]
    check_identical(got, {"m": np.full(2, sum(others) / len(others))}, "weight 0 ignores NaN")
    msg = expect_error(FuncgradValueError, "weights sum to 0 over all", dist.pmean, np.ones(3), 0)
    assert f"all {n} ranks" in msg, msg
    if r == 1:
        expect_error(FuncgradValueError, "weight must be finite and >= 0, got -1.0 on rank 1", dist.pmean, [1.0], -1)
    else:
        expect_error(FuncgradValueError, "structure, shapes, dtypes or weights", dist.pmean, [1.0], 1)
    expect_error(FuncgradValueError, "rank(s) [1] differ from rank 0", dist.pmean, [1.0], None if r == 1 else 3)


def expect_error(exc_type, pattern, fn, *args):
    try:
        fn(*args)
    except exc_type as e:
        assert pattern in str(e), (pattern, str(e))
        return str(e)
    raise AssertionError(f"{fn.__name__} did not raise {exc_type.__name__}")


def main(expected_size) -> None:
    dist.init()
    r, n = dist.rank(), dist.size()
    assert n == int(expected_size) and dist.is_distributed(), (n, expected_size)
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
    check_weights(n, r)
    check_random_pytrees(n, r)
    dist.barrier()
    print(f"OK collectives rank {r}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
