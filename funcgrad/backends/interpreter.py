"""The reference backend: evaluate the graph with NumPy, one primitive at a time."""
from __future__ import annotations

import numpy as np

from ..core.interpreter import eval_graph


def compile(graph):
    consts = graph.consts

    def run(args):
        return [np.asarray(o) for o in eval_graph(graph, consts, args)]

    return run
