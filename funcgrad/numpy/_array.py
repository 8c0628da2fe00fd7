"""``Array``: what ``funcgrad.numpy``'s creation functions return outside traced code.

A NumPy array in every way (``isinstance(a, np.ndarray)``; it prints, pickles and computes as
one, and NumPy functions accept it), with two additions for code that funcgrad transforms:
indexing with a traced value (``fnp.eye(10)[i]`` inside ``jit``) gives the traced result, and
``a.at[idx].set(v)`` / ``.add(v)`` ... are the functional updates of traced arrays.

>>> import funcgrad.numpy as fnp
>>> fnp.zeros(4).at[1].add(2.0)
array([0., 2., 0., 0.])
"""
from __future__ import annotations

import numpy as np

from ._indexing import _has_tracer, _IndexUpdateHelper, getitem


class Array(np.ndarray):
    """A NumPy array that also takes traced indices and has ``.at`` (see the module docstring)."""

    def __getitem__(self, idx):
        if _has_tracer(idx):
            return getitem(self.view(np.ndarray), idx)
        return np.ndarray.__getitem__(self, idx)

    @property
    def at(self):
        """Functional updates, as in JAX: ``a.at[idx].set(v)`` is a copy of ``a`` with ``a[idx] = v``."""
        return _IndexUpdateHelper(self.view(np.ndarray))

    def __repr__(self):
        return repr(self.view(np.ndarray))

    def __str__(self):
        return str(self.view(np.ndarray))

    def __reduce__(self):  # unpickles as a plain ndarray
        return self.view(np.ndarray).__reduce__()


def wrap(x):
    """``x`` as an :class:`Array` (a view, no copy) when it is a NumPy array, else ``x``."""
    return x.view(Array) if type(x) is np.ndarray else x


def at(x):
    """``fnp.at(x)[idx].set(v)``: the functional updates of ``x.at`` for any array (a NumPy array
    from elsewhere, a traced value, a Python list)."""
    from ._util import asarray_arg

    return _IndexUpdateHelper(asarray_arg(x))
