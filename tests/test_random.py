"""funcgrad.random: Threefry known answers, JAX bit-compatibility, eager == jit,
statistical sanity with fixed keys, and clear errors for misused keys."""
import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hs

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import random as fr
from funcgrad.errors import FuncgradError, FuncgradTypeError, FuncgradValueError

DEVICES = ("cpu", "interpreter")


# -- the block cipher ------------------------------------------------------------------------------
@pytest.mark.parametrize("key_words, counts, expected", [
    # Random123's known-answer vectors for Threefry-2x32 with 20 rounds
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_threefry_known_answers(key_words, counts, expected):
    ks = tuple(np.uint32(v) for v in key_words)
    cs = tuple(np.array([v, v], np.uint32) for v in counts)
    y0, y1 = fr.threefry_2x32(ks, cs)
    assert y0.dtype == np.uint32
    assert [int(v) for v in y0] == [expected[0]] * 2
    assert [int(v) for v in y1] == [expected[1]] * 2


@given(hs.lists(hs.integers(0, 2**32 - 1), min_size=4, max_size=4), hs.integers(1, 5))
@settings(max_examples=25)
def test_threefry_primitive_agrees_everywhere(words, n):
    """The cipher's primitive gives the same bits eagerly, compiled (one shared helper, not the
    rounds inlined into each kernel), and batched by vmap over keys and counters."""
    from funcgrad.primitives.elementwise import threefry2x32_p

    k0, k1, c0, c1 = (np.uint32(w) for w in words)
    counts = (np.full(n, c0, np.uint32), np.arange(n, dtype=np.uint32) + c1)
    want = [fr.threefry_2x32((k0, k1), counts)[i].tolist() for i in (0, 1)]
    got = fg.jit(lambda k, a, b: fr.threefry_2x32((k[0], k[1]), (a, b)))(np.array([k0, k1]), *counts)
    assert [g.tolist() for g in got] == want
    packed = threefry2x32_p.impl(k0, k1, *counts)
    assert packed.dtype == np.uint64 and ((packed >> 32).astype(np.uint32)).tolist() == want[0]
    keys = np.stack([np.array([k0, k1]), np.array([k1, k0])])
    batched = fg.vmap(lambda k: fr.threefry_2x32((k[0], k[1]), counts))(keys)
    assert [b[0].tolist() for b in batched] == want
    assert [b[1].tolist() for b in batched] == [fr.threefry_2x32((k1, k0), counts)[i].tolist() for i in (0, 1)]


def test_compiled_draws_call_the_shared_cipher():
    from funcgrad.backends.numba_cpu import compiler

    graph = fg.make_graph(lambda k: fr.uniform(k, (4, 3)) < 0.5)(fr.key(0))
    text = "".join(k.text for k in compiler.lower(graph).kernels)
    assert "_tf(" in text and "<< np.uint32(13)" not in text


def test_threefry_rejects_other_dtypes():
    from funcgrad.primitives.elementwise import threefry2x32_p

    with pytest.raises(FuncgradTypeError, match="uint32"):
        fg.jit(lambda a: threefry2x32_p.bind(a, a, a, a))(np.zeros(2, np.int32))


def test_key_layout():
    assert fr.key(42).tolist() == [0, 42]
    assert fr.key(2**40 + 3).tolist() == [256, 3]
    assert fr.key(-1).tolist() == [0xFFFFFFFF, 0xFFFFFFFF]
    assert fr.PRNGKey(7).dtype == np.uint32 and fr.PRNGKey is fr.key
    assert fr.key(np.int64(5)).tolist() == [0, 5]


def test_split_and_fold_in_give_distinct_keys():
    k = fr.key(0)
    ks = fr.split(k, 8)
    assert ks.shape == (8, 2) and ks.dtype == np.uint32
    rows = {tuple(r) for r in ks.tolist()} | {tuple(k.tolist())}
    assert len(rows) == 9
    folds = {tuple(fr.fold_in(k, i).tolist()) for i in range(100)} | {tuple(k.tolist())}
    assert len(folds) == 101
    k1, k2 = fr.split(k)
    assert not np.array_equal(fr.uniform(k1, (4,)), fr.uniform(k2, (4,)))


def test_same_key_same_numbers():
    k = fr.key(123)
    assert np.array_equal(fr.normal(k, (5, 3)), fr.normal(k, (5, 3)))
    assert np.array_equal(fr.randint(k, (7,), 0, 9), fr.randint(k, (7,), 0, 9))


# -- bit compatibility with JAX (when it is installed) -----------------------------------------------
def test_matches_jax_bit_for_bit():
    jax = pytest.importorskip("jax")
    jr = jax.random
    logits = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], np.float32))

    def draws(r, k):
        return {
            "split": r.split(k, 3), "fold_in": r.fold_in(k, 7), "bits": r.bits(k, (3, 4)),
            "uniform": r.uniform(k, (1000,)), "randint": r.randint(k, (500,), -5, 17),
            "bernoulli": r.bernoulli(k, 0.3, (500,)), "permutation": r.permutation(k, 50),
            "categorical": r.categorical(k, logits, shape=(6, 2)),
            "scaled": r.uniform(k, (1000,), minval=-2.0, maxval=3.0), "normal": r.normal(k, (2000,)),
            "truncated": r.truncated_normal(k, -1.0, 2.0, (2000,)),
        }

    ours = draws(fr, fr.key(42))
    theirs = {name: np.asarray(v) for name, v in jax.jit(lambda k: draws(jr, k))(jr.PRNGKey(42)).items()}
    for name in ("split", "fold_in", "bits", "uniform", "randint", "bernoulli", "permutation", "categorical"):
        assert np.array_equal(ours[name], theirs[name]), name
    # XLA fuses the scaling into one multiply-add: equal up to rounding
    np.testing.assert_allclose(ours["scaled"], theirs["scaled"], rtol=0, atol=5e-7)
    np.testing.assert_allclose(ours["normal"], theirs["normal"], rtol=5e-5, atol=5e-5)
    np.testing.assert_allclose(ours["truncated"], theirs["truncated"], atol=5e-6)


# -- eager and jitted agree --------------------------------------------------------------------------
def _draws(k):
    k1, k2, k3, k4 = fr.split(k, 4)
    return {
        "uniform": fr.uniform(k1, (5, 2), minval=-1.0, maxval=2.0),
        "uniform64": fr.uniform(k1, (5,), fnp.float64),
        "normal": fr.normal(k2, (3, 4)),
        "normal64": fr.normal(k2, (6,), fnp.float64),
        "truncated": fr.truncated_normal(k3, -0.5, 1.5, (7,)),
        "bernoulli": fr.bernoulli(k4, 0.25, (9,)),
        "categorical": fr.categorical(k1, np.zeros((4, 3), np.float32)),
        "randint": fr.randint(k2, (6,), 3, 40),
        "permutation": fr.permutation(k3, 11),
        "permuted_rows": fr.permutation(k3, np.arange(12.0).reshape(4, 3)),
        "gumbel": fr.gumbel(k4, (3,)),
        "fold": fr.fold_in(k, 99),
        "bits": fr.bits(k4, (2, 2)),
    }


@pytest.mark.parametrize("device", DEVICES)
def test_jit_equals_eager(device):
    k = fr.key(2024)
    eager = _draws(k)
    jitted = fg.jit(_draws, device=device)(k)
    for name in eager:
        assert jitted[name].dtype == eager[name].dtype, name
        if name in _THROUGH_TRANSCENDENTALS:
            # the bits are identical; compiled log/exp are within an ulp or two of NumPy's libm
            rtol = 8 * np.finfo(eager[name].dtype).eps
            np.testing.assert_allclose(jitted[name], eager[name], rtol=rtol, atol=rtol, err_msg=name)
        else:
            assert np.array_equal(jitted[name], eager[name]), name


_THROUGH_TRANSCENDENTALS = {"normal", "normal64", "truncated", "gumbel"}


@pytest.mark.parametrize("device", DEVICES)
def test_traced_seed_and_keys_in_pytrees(device):
    f = fg.jit(lambda s, tree: (fr.normal(fr.key(s), (3,)), fr.uniform(tree["k"], (2,))), device=device)
    out = f(np.int32(5), {"k": fr.key(9)})
    assert np.array_equal(out[0], fr.normal(fr.key(5), (3,)))
    assert np.array_equal(out[1], fr.uniform(fr.key(9), (2,)))


def test_vmap_over_a_batch_of_keys():
    keys = fr.split(fr.key(5), 4)
    batched = fg.vmap(lambda k: (fr.normal(k, (3,)), fr.split(k), fr.randint(k, (5,), 0, 10),
                                 fr.permutation(k, 6), fr.fold_in(k, 3)))(keys)
    for i, k in enumerate(keys):
        single = (fr.normal(k, (3,)), fr.split(k), fr.randint(k, (5,), 0, 10), fr.permutation(k, 6),
                  fr.fold_in(k, 3))
        for b, s in zip(batched, single):
            assert np.array_equal(b[i], s)


# -- statistics with fixed keys ------------------------------------------------------------------------
N = 20000


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_statistics(dtype):
    u = fr.uniform(fr.key(1), (N,), dtype)
    assert u.dtype == dtype and u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.003
    assert st.kstest(u, "uniform").pvalue > 1e-3


def test_uniform_float64_uses_more_than_float32_bits():
    u = fr.uniform(fr.key(3), (1000,), np.float64)
    assert np.any(u * 2.0**23 != np.floor(u * 2.0**23))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_statistics(dtype):
    z = fr.normal(fr.key(2), (N,), dtype)
    assert z.dtype == dtype and np.isfinite(z).all()
    assert abs(z.mean()) < 0.03 and abs(z.var() - 1.0) < 0.04
    assert st.kstest(z, "norm").pvalue > 1e-3


def test_truncated_normal_statistics():
    t = fr.truncated_normal(fr.key(4), -1.0, 2.0, (N,))
    assert t.min() > -1.0 and t.max() < 2.0
    assert st.kstest(t, st.truncnorm(-1.0, 2.0).cdf).pvalue > 1e-3


def test_bernoulli_randint_categorical_frequencies():
    b = fr.bernoulli(fr.key(5), 0.3, (N,))
    assert b.dtype == np.bool_ and abs(b.mean() - 0.3) < 0.015
    r = fr.randint(fr.key(6), (N,), -3, 7)
    assert r.dtype == np.int32 and r.min() == -3 and r.max() == 6
    counts = np.bincount(r + 3, minlength=10)
    assert st.chisquare(counts).pvalue > 1e-3
    p = np.array([0.1, 0.6, 0.3])
    c = fr.categorical(fr.key(7), np.log(p), shape=(N,))
    freq = np.bincount(c, minlength=3) / N
    np.testing.assert_allclose(freq, p, atol=0.015)


def test_permutation_is_a_uniform_shuffle():
    perms = np.stack([fr.permutation(k, 5) for k in fr.split(fr.key(8), 600)])
    assert all(sorted(p) == list(range(5)) for p in perms.tolist())
    # each value lands in each position about 1/5 of the time
    freq = np.stack([(perms == v).mean(0) for v in range(5)])
    np.testing.assert_allclose(freq, 0.2, atol=0.07)
    x = np.arange(24.0).reshape(6, 4)
    px = fr.permutation(fr.key(1), x, axis=1)
    assert sorted(px[0].tolist()) == x[0].tolist() and np.array_equal(np.sort(px, axis=1), x)


def test_split_streams_are_uncorrelated():
    a, b = fr.split(fr.key(11))
    r = np.corrcoef(fr.normal(a, (N,)), fr.normal(b, (N,)))[0, 1]
    assert abs(r) < 0.03


@settings(max_examples=20)
@given(seed=hs.integers(0, 2**32 - 1), lo=hs.floats(-10, 10), width=hs.floats(0.01, 10))
def test_uniform_stays_in_range(seed, lo, width):
    u = fr.uniform(fr.key(seed), (64,), np.float64, lo, lo + width)
    assert u.min() >= lo and u.max() < lo + width


# -- misuse gives clear errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("bad, fragment", [
    (np.zeros(2), "dtype float64"),
    (np.zeros(3, np.uint32), "shape (3,)"),
    (fr.split(fr.key(0), 2), "shape (2, 2)"),
    (0, "int"),
    ([0, 1], "list"),
])
def test_bad_keys_raise(bad, fragment):
    with pytest.raises(FuncgradTypeError) as info:
        fr.normal(bad, (3,))
    msg = str(info.value)
    assert "random.normal" in msg and "PRNG key" in msg and fragment in msg and "test_random.py" in msg


def test_bad_key_inside_jit_raises():
    with pytest.raises(FuncgradTypeError, match="random.uniform"):
        fg.jit(lambda k: fr.uniform(k, (2,)), device="interpreter")(np.zeros(2, np.float32))


def test_other_misuse():
    k = fr.key(0)
    with pytest.raises(FuncgradTypeError, match="shape must be a tuple of ints"):
        fr.normal(k, np.array([2, 3]))
    with pytest.raises(FuncgradTypeError, match="shape must be a tuple of ints"):
        fr.normal(k, k)
    with pytest.raises(FuncgradValueError, match="negative dimension"):
        fr.uniform(k, (2, -1))
    with pytest.raises(FuncgradTypeError, match="floating type"):
        fr.normal(k, (2,), np.int32)
    with pytest.raises(FuncgradTypeError, match="integer type"):
        fr.randint(k, (2,), 0, 5, np.float32)
    with pytest.raises(FuncgradTypeError, match="fold_in"):
        fr.fold_in(k, 1.5)
    with pytest.raises(FuncgradTypeError, match="seed must be an integer"):
        fr.key(1.0)
    with pytest.raises(FuncgradValueError, match="do not broadcast"):
        fr.uniform(k, (3,), minval=np.zeros(4))
    with pytest.raises(FuncgradError):
        fr.categorical(k, np.zeros((2, 3), np.float32), shape=(4,))
