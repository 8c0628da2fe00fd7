"""Common-subexpression elimination (``core/cse.py``): equal equations computed once, nothing
else changed."""
import numpy as np

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.core.cse import cse
from funcgrad.core.interpreter import eval_graph


def _graph(f, *args):
    return fg.make_graph(f)(*args)


def _prims(g):
    return [e.prim.name for e in g.eqns]


def test_repeated_work_is_computed_once_and_results_do_not_change():
    def f(x, t):
        c1 = 1.0 - 0.9 ** t  # an optimiser's bias correction, once per parameter
        c2 = 1.0 - 0.9 ** t
        return fnp.sin(x) * c1 + fnp.sin(x) / c2

    x, t = np.linspace(-1, 1, 5), np.float64(3.0)
    g = _graph(f, x, t)
    h = cse(g)
    assert _prims(h).count("sin") == 1 and _prims(h).count("pow") == 1
    assert len(h.eqns) < len(g.eqns)
    for a, b in zip(eval_graph(g, g.consts, [x, t]), eval_graph(h, h.consts, [x, t])):
        assert a.tobytes() == b.tobytes()
    assert cse(h) is h  # nothing left to merge


def test_different_literals_params_and_dtypes_stay_apart():
    def f(x):
        return (x + 1.0, x + 2.0, fnp.sum(x, axis=0), fnp.sum(x, axis=1),
                fnp.asarray(x, np.float32) * 2.0, x * 2.0)

    g = _graph(f, np.ones((2, 3)))
    assert len(cse(g).eqns) == len(g.eqns)


def test_two_outputs_stay_two_arrays():
    f = fg.jit(lambda x: (x * 2.0, x * 2.0))
    a, b = f(np.arange(3.0))
    assert a is not b and not np.shares_memory(a, b)
    a[0] = 7.0
    assert b[0] == 0.0


def test_effects_are_not_merged(capsys):
    def f(x):
        fg.debug.print("x is {}", x)
        fg.debug.print("x is {}", x)
        return x + 1.0

    g = _graph(f, np.float64(1.0))
    assert _prims(cse(g)).count(_prims(g)[0]) == 2
    fg.jit(f)(np.float64(1.0))
    assert capsys.readouterr().out.count("x is 1.0") == 2


def test_jit_compiles_the_merged_graph():
    from funcgrad.backends.numba_cpu import compiler

    def f(x):
        return fnp.tanh(x) + fnp.tanh(x) * fnp.exp(x) + fnp.exp(x)

    x = np.linspace(-2, 2, 7)
    text = "".join(k.text for k in compiler.lower(_graph(f, x)).kernels)
    assert text.count("_vm.exp64(") == 1
    np.testing.assert_allclose(fg.jit(f)(x), f(x), rtol=1e-15)
