"""Every error funcgrad raises.

Each class derives from the built-in exception that fits (so ``except
TypeError`` keeps working) and from :class:`FuncgradError`, so a user can catch
everything funcgrad raises with one clause.
"""
from __future__ import annotations

import os
import sys

__all__ = [
    "CheckpointError",
    "ConcretizationError",
    "FuncgradError",
    "FuncgradFloatingPointError",
    "FuncgradIndexError",
    "FuncgradTypeError",
    "FuncgradValueError",
    "GradientCheckError",
    "GraphvizNotFoundError",
    "ShapeError",
    "UnexpectedTracerError",
    "user_frame",
    "user_location",
]


class FuncgradError(Exception):
    """Base class of every error raised by funcgrad."""


class FuncgradTypeError(FuncgradError, TypeError):
    """A value of the wrong type or dtype was given to an operation."""


class FuncgradValueError(FuncgradError, ValueError):
    """A value of the right type but a wrong content (axis, argnums, ...)."""


class ShapeError(FuncgradValueError):
    """Operand shapes do not fit together."""


class FuncgradIndexError(FuncgradValueError, IndexError):
    """An index is out of bounds (also a ValueError, like NumPy's AxisError)."""


class ConcretizationError(FuncgradTypeError):
    """A traced (abstract) value was used where a concrete one is needed."""


class UnexpectedTracerError(FuncgradTypeError):
    """A traced value escaped the transformation that created it."""


class FuncgradFloatingPointError(FuncgradError, FloatingPointError):
    """A NaN or Inf appeared while ``debug_nans`` is on."""


class CheckpointError(FuncgradValueError):
    """A checkpoint file is missing, corrupt or not a funcgrad checkpoint."""


class GraphvizNotFoundError(FuncgradError, FileNotFoundError):
    """``Graph.to_svg`` needs the Graphviz ``dot`` program, which is not installed."""


class GradientCheckError(FuncgradError, AssertionError):
    """``funcgrad.testing.check_grads`` found a derivative that disagrees with finite differences."""


_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def _is_internal(filename: str) -> bool:
    filename = os.path.abspath(filename)
    if filename.startswith(_PKG_DIR + os.sep):
        # funcgrad's own tests and examples live outside the package directory
        return True
    return "contextlib" in filename or filename.startswith("<frozen")


def user_frame(skip: int = 1):
    """The innermost stack frame that belongs to user code, or None."""
    f = sys._getframe(skip)
    while f is not None:
        if not _is_internal(f.f_code.co_filename):
            return f
        f = f.f_back
    return None


def user_location(skip: int = 1) -> str | None:
    """``"file.py:LINE"`` of the innermost user frame (None if there is none)."""
    f = user_frame(skip + 1)
    if f is None:
        return None
    return f"{f.f_code.co_filename}:{f.f_lineno}"


def at_user_line(msg: str, location: str | None = None) -> str:
    loc = location or user_location(2)
    return f"{msg}\n  at {loc}" if loc else msg
