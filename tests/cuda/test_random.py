"""Counter-based random numbers on the GPU equal the CPU's."""
import numpy as np
import pytest
from _cuda_util import check

import funcgrad as fg
import funcgrad.random as fr


@pytest.mark.parametrize("seed", [0, 42])
def test_bits_split_uniform_bit_for_bit(seed):
    def draw(k):
        k1, k2 = fr.split(k)
        return (fr.bits(k1, (3, 5)), fr.uniform(k2, (7,)), fr.uniform(k1, (2, 3), dtype=np.float64),
                fr.split(k2, 3), fr.fold_in(k, 7), fr.randint(k2, (4,), 0, 10), fr.bernoulli(k1, 0.3, (6,)))

    k = fr.key(seed)
    check(draw, k, exact=True)
    np.testing.assert_array_equal(np.asarray(fg.jit(draw, device="cuda")(k)[1]), np.asarray(draw(k)[1]))


def test_normal_matches_cpu():
    def draw(k):
        return fr.normal(k, (4, 6)), fr.normal(k, (5,), dtype=np.float64)

    got32, got64 = fg.jit(draw, device="cuda")(fr.key(3))
    want32, want64 = draw(fr.key(3))
    np.testing.assert_allclose(np.asarray(got32), want32, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got64), want64, rtol=1e-13)
