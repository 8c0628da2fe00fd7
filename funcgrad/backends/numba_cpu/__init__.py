"""The Numba CPU backend: ``compile(graph) -> run(list_of_arrays) -> list_of_ndarrays``.

>>> import numpy as np, funcgrad as fg, funcgrad.numpy as fnp
>>> from funcgrad.backends import numba_cpu
>>> g = fg.make_graph(lambda x: fnp.sum(fnp.sin(x) ** 2))(np.ones(3))
>>> run = numba_cpu.compile(g)          # doctest: +SKIP
>>> run([np.zeros(3)])                  # doctest: +SKIP
[array(0.)]

How a graph is partitioned and lowered is described in ``plan.py``; the source generated for
it in ``emit.py``; the disk cache in ``funcgrad/backends/cache.py``. Importing this package
does not import Numba: the first ``compile`` does.
"""
from . import threads

threads.before_numba_import()

from .compiler import compile, stats  # noqa: F401
