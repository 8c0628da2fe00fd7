"""dot_general as tiled shared-memory matmul kernels."""
import numpy as np
import pytest
from _cuda_util import check

import funcgrad.numpy as fnp
from funcgrad.backends.numba_cuda import matmul
from funcgrad.primitives import dot_general

RNG = np.random.default_rng(2)

SPECS = [
    ("ij,jk->ik", (5, 7), (7, 3)),
    ("ik,jk->ij", (4, 6), (5, 6)),  # B transposed: read through strides
    ("ji,jk->ik", (6, 4), (6, 3)),  # A transposed
    ("ij,jk->ki", (3, 4), (4, 5)),  # output permuted
    ("bij,bjk->bik", (3, 4, 5), (3, 5, 2)),
    ("bij,bkj->bik", (2, 3, 4), (2, 5, 4)),
    ("ij,j->i", (5, 4), (4,)),
    ("i,ij->j", (4,), (4, 6)),
    ("i,i->", (7,), (7,)),
    ("i,j->ij", (3,), (4,)),
    ("abc,cd->abd", (2, 3, 4), (4, 5)),  # two free axes merged into one row axis
    ("acb,cd->abd", (2, 4, 3), (4, 5)),  # free axes not adjacent: copied first
    ("abc,bcd->ad", (2, 3, 4), (3, 4, 5)),  # two contracted axes
    ("bij,jk->bki", (2, 3, 4), (4, 5)),
]


@pytest.mark.parametrize("spec,sa,sb", SPECS)
def test_dot_general_specs(spec, sa, sb):
    x = RNG.normal(size=sa)
    y = RNG.normal(size=sb)
    check(lambda x, y: dot_general(x, y, spec), x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_matmul_dtypes(dtype):
    x = RNG.integers(-3, 4, size=(6, 5)).astype(dtype)
    y = RNG.integers(-3, 4, size=(5, 7)).astype(dtype)
    check(lambda x, y: (x @ y, fnp.dot(x.T, x), fnp.einsum("ij,kj->ik", y.T, x)), x, y)


@pytest.mark.parametrize("cfg", [matmul.SMALL, matmul.LARGE])
def test_tile_configs_with_ragged_edges(cfg, monkeypatch):
    monkeypatch.setattr(matmul, "choose_config", lambda m, n: cfg)
    x = RNG.normal(size=(cfg.bm + 3, 2 * cfg.bk + 5)).astype(np.float32)
    y = RNG.normal(size=(2 * cfg.bk + 5, cfg.bn + 1)).astype(np.float32)
    check(lambda x, y: x @ y, x, y, tol={"rtol": 1e-4, "atol": 1e-5})


def test_matmul_inside_fused_graph():
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    w = RNG.normal(size=(3, 5)).astype(np.float32)
    b = RNG.normal(size=(5,)).astype(np.float32)
    check(lambda x, w, b: fnp.tanh(x @ w + b) @ w.T * 2.0, x, w, b)


@pytest.mark.parametrize("spec,sa,sb", [("ij,jk->ik", (3, 40), (40, 5)), ("ji,jk->ki", (40, 3), (40, 5)),
                                        ("i,i->", (48,), (48,))])
def test_split_contraction(spec, sa, sb, monkeypatch):
    """Few output tiles and a long contraction: partial products over k-chunks, summed after."""
    monkeypatch.setattr(matmul, "SPLIT_CHUNK_MIN", 8)
    k = sa[0] if spec.startswith("j") else sa[-1]
    assert matmul.split_k(1, 3, 5, k) > 1
    x = RNG.normal(size=sa)
    y = RNG.normal(size=sb)
    check(lambda x, y: dot_general(x, y, spec), x, y)
