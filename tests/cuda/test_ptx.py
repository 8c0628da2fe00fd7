"""Every kind of generated kernel compiles to PTX for a real GPU (the simulator checks values, not
types: this catches device code Numba's CUDA target cannot compile). Needs the CUDA toolkit's NVVM,
not a GPU."""
import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
import funcgrad.random as fr
from funcgrad.backends.numba_cuda import codegen, lower, matmul
from funcgrad.backends.numba_cuda.module import load_module
from funcgrad.tree_util import tree_map


def _nvvm_ok():
    try:
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()
        return True
    except Exception:  # noqa: BLE001 - any failure means no usable toolkit
        return False


if not _nvvm_ok():
    pytest.skip("the CUDA toolkit (NVVM) is not installed", allow_module_level=True)

from numba import cuda

CC = (8, 0)


class _Device:
    compute_capability = CC


@pytest.fixture(autouse=True)
def _no_gpu_needed(monkeypatch):
    """Device functions are compiled for the current device's compute capability: name one."""
    import numba.cuda.dispatcher

    monkeypatch.setattr(numba.cuda.dispatcher, "get_current_device", lambda: _Device())


def _compile_all(f, *args):
    prog = lower(fg.make_graph(f)(*args))
    mod = load_module(prog.source)
    for k in prog.kernels:
        cuda.compile_ptx(getattr(mod, k.name), k.signature(), cc=CC)
    return prog


def _float_ops(x, y):
    return (fnp.tanh(x) * fnp.exp(-x) + fnp.sin(x) + fnp.cos(y) + fnp.tan(x) + fnp.arcsin(x / 3) + fnp.arccos(x / 3)
            + fnp.arctan(x) + fnp.sinh(x) + fnp.cosh(x) + fnp.arcsinh(x) + fnp.arccosh(y + 1) + fnp.arctanh(x / 3)
            + fnp.log(y) + fnp.log2(y) + fnp.log10(y) + fnp.log1p(y) + fnp.expm1(x) + fnp.exp2(x) + fnp.sqrt(y)
            + fnp.cbrt(x) + fnp.arctan2(x, y) + x ** y + x ** 3 + x ** -2 + x ** 7 + fnp.abs(x) + fnp.sign(x)
            + fnp.round(x) + fnp.floor(x) + fnp.ceil(x) + fnp.trunc(x) + fnp.fmod(x, y) + fnp.mod(x, y)
            + fnp.floor_divide(x, y) + fnp.maximum(x, y) + fnp.minimum(x, y) + fnp.square(x) + x / y
            + fg.scipy.special.erf(x) + fg.scipy.special.expit(x) + fg.scipy.special.gammaln(y),
            fnp.isnan(x) | fnp.isinf(y) | ~fnp.isfinite(x), fnp.where(x > y, x, -y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_elementwise(dtype):
    x = np.ones((3, 4), dtype)
    _compile_all(_float_ops, x, x)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64])
def test_integer_elementwise(dtype):
    def f(x, y):
        one = dtype(1)
        return (x + y, x - y, x * y, x // y, x % y, fnp.fmod(x, y), x & y, x | y, x ^ y, ~x, -x, x << one,
                x >> one, fnp.maximum(x, y), fnp.minimum(x, y), x ** 2, x ** 5, fnp.abs(x), fnp.sign(x),
                x < y, x == y, fnp.where(x >= y, x, y), x.astype(np.float32), x.astype(bool))

    x = np.ones(5, dtype)
    _compile_all(f, x, x)


def test_bool_and_conversions():
    def f(a, b, x):
        return (a & b, a | b, a ^ b, ~a, fnp.logical_not(a), a.astype(np.float32), x.astype(np.int8),
                x.astype(np.uint32), x.astype(np.float32), x.astype(bool), fnp.where(a, x, 0.0))

    a = np.ones(4, bool)
    _compile_all(f, a, a, np.ones(4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint32, np.bool_])
@pytest.mark.parametrize("serial_max", [codegen.SERIAL_MAX, 0])
def test_reductions(dtype, serial_max, monkeypatch):
    monkeypatch.setattr(codegen, "SERIAL_MAX", serial_max)

    def f(x):
        return fnp.sum(x, axis=0), fnp.max(x, axis=1), fnp.min(x), fnp.prod(x, axis=(0, 2))

    prog = _compile_all(f, np.ones((3, 4, 5), dtype))
    assert ("cuda.shared.array" in prog.source) == (serial_max == 0)
    _compile_all(lambda x: (fnp.sum(x, axis=0), fnp.max(x, axis=0)), np.ones((300, 3), dtype))  # split mode


@pytest.mark.parametrize("dtype,cfg", [(np.float32, matmul.LARGE), (np.float64, matmul.SMALL),
                                       (np.int32, matmul.LARGE), (np.int64, matmul.SMALL)])
def test_matmul(dtype, cfg, monkeypatch):
    monkeypatch.setattr(matmul, "choose_config", lambda m, n: cfg)
    monkeypatch.setattr(matmul, "SPLIT_CHUNK_MIN", 2)  # the split contraction too
    x = np.ones((2, 5, 6), dtype)
    _compile_all(lambda x, w: (x @ w, fnp.einsum("bij,bkj->bik", x, x), fnp.einsum("bij,bik->jk", x, x)),
                 x, np.ones((6, 3), dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_concatenate_and_pad(dtype):
    x = np.ones((2, 3), dtype)
    _compile_all(lambda x: (fnp.concatenate([x, x[:, :1]], axis=1), fnp.stack([x, x]), fnp.pad(x, ((1, 0), (2, 2)))),
                 x)


def test_training_step_and_random():
    def loss(p, x, y):
        h = fnp.tanh(x @ p[0] + p[1])
        return fnp.mean((h @ p[2] - y) ** 2)

    def step(p, x, y, k):
        g = fg.grad(loss)(p, x, y)
        noise = fr.normal(k, (3,))
        return tree_map(lambda a, b: a - 0.1 * b, p, g), noise, fr.uniform(k, (2, 2))

    p = (np.ones((4, 3), np.float32), np.zeros(3, np.float32), np.ones((3, 2), np.float32))
    _compile_all(step, p, np.ones((5, 4), np.float32), np.ones((5, 2), np.float32), fr.key(0))
