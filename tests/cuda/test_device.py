"""DeviceArray and device_put: arrays that stay in GPU memory."""
import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.device import DeviceArray, device_put
from funcgrad.errors import FuncgradValueError


def test_device_put_round_trip_of_a_pytree():
    tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": (np.int64(3), [np.zeros(0), True])}
    dev = device_put(tree, "cuda")
    leaves = fg.tree_util.tree_leaves(dev)
    assert all(isinstance(x, DeviceArray) for x in leaves)
    assert dev["w"].shape == (2, 3) and dev["w"].dtype == np.float32 and dev["w"].ndim == 2
    back = device_put(dev, "cpu")
    np.testing.assert_array_equal(back["w"], tree["w"])
    assert back["b"][0] == 3 and back["b"][0].dtype == np.int64
    assert back["b"][1][0].shape == (0,) and bool(back["b"][1][1]) is True
    assert device_put(dev, "cuda")["w"] is dev["w"]  # already there: not copied


def test_device_array_reads_back():
    x = device_put(np.array([[1.5, 2.0]]), "cuda")
    np.testing.assert_array_equal(np.asarray(x), [[1.5, 2.0]])
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    assert len(x) == 1 and x.size == 2
    s = device_put(np.float32(2.5))
    assert float(s) == 2.5 and s.item() == 2.5 and int(device_put(7)) == 7
    assert "DeviceArray" in repr(x)


def test_jit_returns_device_arrays_and_accepts_them():
    f = fg.jit(lambda x, y: (fnp.sin(x) * y, fnp.sum(x)), device="cuda")
    x = np.linspace(0.0, 1.0, 5)
    a, s = f(x, 2.0)
    assert isinstance(a, DeviceArray) and isinstance(s, DeviceArray) and s.shape == ()
    a2, _ = f(a, device_put(np.float64(2.0)))
    np.testing.assert_allclose(np.asarray(a2), np.sin(np.sin(x) * 2.0) * 2.0, rtol=1e-12)
    np.testing.assert_allclose(float(s), x.sum(), rtol=1e-12)
    # eager funcgrad code reads device arrays through __array__
    np.testing.assert_allclose(np.asarray(fnp.exp(np.asarray(a))), np.exp(np.sin(x) * 2.0))


def test_device_put_errors():
    with pytest.raises(FuncgradValueError, match="unknown device"):
        device_put(np.zeros(2), "tpu")
    with pytest.raises(FuncgradValueError, match="not an array"):
        device_put(object(), "cuda")
