"""Arrays that live in GPU memory between calls.

``device_put(tree, "cuda")`` copies every leaf of a pytree to the GPU once; functions jitted with
``device="cuda"`` take such arrays and return them, so parameters and optimizer state stay on the
GPU across training steps. ``np.asarray(x)`` (or ``device_put(tree, "cpu")``) copies back.

>>> import numpy as np, funcgrad as fg
>>> params = fg.device_put({"w": np.ones((2, 2), np.float32)}, "cuda")  # doctest: +SKIP
>>> np.asarray(params["w"]).sum()  # doctest: +SKIP
4.0

Without a GPU, set ``NUMBA_ENABLE_CUDASIM=1`` before importing funcgrad to run the same code
on Numba's CUDA simulator (slow: every GPU thread is a Python thread; for tests only).
"""
from __future__ import annotations

import math

import numpy as np

from .errors import FuncgradError, FuncgradValueError
from .tree_util import tree_map

__all__ = ["CudaUnavailableError", "DeviceArray", "device_put"]


class CudaUnavailableError(FuncgradError, RuntimeError):
    """``device="cuda"`` was asked for, but no CUDA GPU and driver can be used."""


_cuda = None


def cuda_api():
    """``numba.cuda``, once a GPU (or the simulator) is known to work."""
    global _cuda
    if _cuda is not None:
        return _cuda
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba is a dependency
        raise CudaUnavailableError(f"device='cuda': numba.cuda cannot be imported ({exc})") from None
    if not cuda.is_available():
        reason = " ".join(str(cuda.cuda_error() or "no CUDA GPU was found").split())
        raise CudaUnavailableError(
            f"device='cuda': no usable CUDA GPU ({reason}). Install the NVIDIA driver and "
            "funcgrad's 'cuda' extra (pip install 'funcgrad[cuda]'), or, to test without a GPU, set "
            "NUMBA_ENABLE_CUDASIM=1 in the environment before importing funcgrad to run kernels on "
            "Numba's (slow) CUDA simulator")
    _cuda = cuda
    return cuda


class DeviceArray:
    """An array in GPU memory (a flat buffer plus its shape and dtype).

    ``np.asarray(x)`` copies it to the host; ``float(x)`` and ``x.item()`` read a scalar.
    """

    __slots__ = ("buf", "dtype", "shape")
    __array_priority__ = 100

    def __init__(self, buf, shape, dtype):
        self.buf = buf
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d DeviceArray")
        return self.shape[0]

    def copy_to_host(self) -> np.ndarray:
        """A new NumPy array with the contents."""
        if self.size == 0:
            return np.zeros(self.shape, self.dtype)
        return self.buf.copy_to_host().reshape(self.shape)

    def __array__(self, dtype=None, copy=None):
        out = self.copy_to_host()
        return out if dtype is None else out.astype(dtype, copy=False)

    def item(self):
        return self.copy_to_host().item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        return self.copy_to_host().__index__()

    def __bool__(self):
        return bool(self.copy_to_host())

    def tolist(self):
        return self.copy_to_host().tolist()

    @property
    def __cuda_array_interface__(self):
        iface = dict(self.buf.__cuda_array_interface__)
        iface.update(shape=self.shape, strides=None)
        return iface

    def __repr__(self):
        return f"DeviceArray({np.array2string(self.copy_to_host(), separator=', ')}, dtype={self.dtype.name})"


def to_device(x) -> DeviceArray:
    """``x`` (anything ``np.asarray`` takes, or a CUDA array of another library) on the GPU."""
    if isinstance(x, DeviceArray):
        return x
    cuda = cuda_api()
    if hasattr(x, "__cuda_array_interface__"):
        arr = cuda.as_cuda_array(x)
        if arr.is_c_contiguous():
            return DeviceArray(arr.reshape(arr.size) if arr.ndim != 1 else arr, arr.shape, arr.dtype)
        x = arr.copy_to_host()
    a = np.asarray(x)
    if a.dtype == object:
        raise FuncgradValueError(f"device_put: a leaf of type {type(x).__name__} is not an array")
    flat = np.ascontiguousarray(a).reshape(-1)
    return DeviceArray(cuda.to_device(flat), a.shape, a.dtype)


def device_put(tree, device: str = "cuda"):
    """Copy every array leaf of ``tree`` to ``device``: ``"cuda"`` gives ``DeviceArray`` leaves
    (kept in GPU memory), ``"cpu"`` gives NumPy arrays (copied back).

    >>> import numpy as np, funcgrad as fg
    >>> state = fg.device_put((np.zeros(3), np.ones(2)), "cuda")  # doctest: +SKIP
    >>> fg.device_put(state, "cpu")  # doctest: +SKIP
    (array([0., 0., 0.]), array([1., 1.]))
    """
    if device == "cuda":
        return tree_map(to_device, tree)
    if device == "cpu":
        return tree_map(lambda x: x.copy_to_host() if isinstance(x, DeviceArray) else np.asarray(x), tree)
    raise FuncgradValueError(f"device_put: unknown device {device!r}; choose 'cuda' or 'cpu'")
