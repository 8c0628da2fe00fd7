"""The Numba CPU backend: ``compile(graph) -> run(list_of_arrays) -> list_of_ndarrays``.

>>> import numpy as np, funcgrad as fg, funcgrad.numpy as fnp
>>> from funcgrad.backends import numba_cpu
>>> g = fg.make_graph(lambda x: fnp.sum(fnp.sin(x) ** 2))(np.ones(3))
>>> run = numba_cpu.compile(g)          # doctest: +SKIP
>>> run([np.zeros(3)])                  # doctest: +SKIP
[array(0.)]

The backend is a pipeline, one stage per file, in data-flow order:

1. ``../fusion.py``: the graph partitioned into clusters, BLAS products and glue (shared with
   the CUDA backend), by the rules of
2. ``table.py``: the lowering table, one entry per ``Primitive``;
3. per-cluster lowering: ``lowering.py`` (one element of an elementwise primitive),
   ``emit.py`` (loop nests, small products, the runner text), ``loops.py`` (control flow),
   ``indexing.py`` (scatters and gathers), ``chunked.py`` (NumPy SIMD blocks), made
   shape-generic by ``canonical.py``;
4. ``compiler.py``: the kernel cache (memory, disk via ``../cache.py``, ``precompile.py``);
5. ``runner.py``: the compiled kernels and the glue (``glue.py``, ``gemm.py``) bound together.

Importing this package does not import Numba: the first ``compile`` does.
"""
from . import threads

threads.before_numba_import()

from .compiler import stats  # noqa: F401
from .runner import compile  # noqa: F401
