"""The dtypes funcgrad supports and NumPy 2 (NEP 50) promotion between them."""
from __future__ import annotations

import numpy as np

from .errors import FuncgradTypeError

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")

SUPPORTED = frozenset(
    np.dtype(d) for d in ("float16", "float32", "float64", "int8", "int16", "int32",
                          "int64", "uint8", "uint16", "uint32", "uint64", "bool")
)


def is_float(x) -> bool:
    """Whether ``x`` is floating: a dtype, anything with one (array, aval, tracer), or a
    Python float."""
    dt = getattr(x, "dtype", None)
    if dt is None:
        if isinstance(x, float):
            return True
        try:
            dt = np.dtype(x)
        except TypeError:
            return False
    return dt.kind == "f"


def check_supported(dtype, what: str = "value") -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in SUPPORTED:
        raise FuncgradTypeError(
            f"funcgrad does not support dtype {dt} (for {what}); use one of "
            "float32, float64, int32, int64, uint8, bool"
        )
    return dt


def result_type(*args) -> np.dtype:
    """NumPy 2 promotion: Python scalars are weak and never upcast arrays."""
    return np.result_type(*[_dtype_or_weak(a) for a in args])


def _dtype_or_weak(a):
    if isinstance(a, (bool, int, float, complex)):
        return a
    dt = getattr(a, "dtype", None)
    if dt is not None:
        return dt
    return np.asarray(a).dtype


def float_type_for(*args) -> np.dtype:
    """The float dtype an op such as ``sin`` computes in (ints go to float64)."""
    dt = result_type(*args)
    return dt if dt.kind == "f" else float64
