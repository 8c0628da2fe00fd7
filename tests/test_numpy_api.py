"""``funcgrad.numpy`` against NumPy (and ``funcgrad.scipy.special`` against SciPy): same
values, shapes and dtypes for every function of the public list, called eagerly and
on traced values; the differentiable ones also against finite differences."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sps
from _numerics import check_jvp, check_second_order, check_vjp, distinct_values, well_conditioned
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funcgrad as fg
import funcgrad.numpy as fnp
import funcgrad.scipy.special as fsp
from funcgrad.errors import FuncgradValueError
from funcgrad.testing import check_grads
from funcgrad.tree_util import tree_flatten


def _names(text):
    return text.split()


# The public list of funcgrad.numpy (API.md), by group.
ELEMENTWISE = _names("""add subtract multiply divide true_divide floor_divide power negative positive abs sign exp
exp2 expm1 log log2 log10 log1p sqrt cbrt square reciprocal sin cos tan arcsin arccos arctan arctan2
sinh cosh tanh arcsinh arccosh arctanh hypot logaddexp maximum minimum fmax fmin clip where floor ceil
round trunc fmod mod remainder isfinite isnan isinf sinc logical_and logical_or logical_not logical_xor
equal not_equal less less_equal greater greater_equal""")
REDUCTIONS = _names("sum mean prod max min amax amin argmax argmin var std all any cumsum cumprod")
LINALG = _names("dot matmul vdot inner outer tensordot einsum trace kron")
LINALG_MODULE = ["linalg." + n for n in _names("norm inv solve det slogdet cholesky")]
SHAPE = _names("""reshape ravel transpose swapaxes moveaxis expand_dims squeeze broadcast_to atleast_1d atleast_2d
concatenate stack vstack hstack split tile repeat flip roll pad take take_along_axis diag diagonal triu
tril""")
CREATION = _names("""array asarray zeros ones full empty zeros_like ones_like full_like eye identity arange
linspace""")
OTHER = _names("sort argsort diff select")
SPECIAL = ["special." + n for n in _names("logsumexp expit logit erf gammaln xlogy")]
PUBLIC = ELEMENTWISE + REDUCTIONS + LINALG + LINALG_MODULE + SHAPE + CREATION + OTHER + SPECIAL

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
shapes1 = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)
pair_shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


def resolve(name, ours=True):
    if name.startswith("special."):
        return getattr(fsp if ours else sps, name[8:])
    mod = fnp if ours else np
    for part in name.split("."):
        mod = getattr(mod, part)
    return mod


# -- cases: name -> draw(data, rng) -> (args, kwargs); ``DIFF`` names are differentiable ---------------
CASES: dict = {}
DIFF: set = set()


def case(*names, diff=True):
    def register(draw):
        for n in names:
            CASES[n] = draw
            if diff:
                DIFF.add(n)
        return draw

    return register


def real(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape)


def _int_or_float(data, rng, shape, lo, hi):
    """Floats in [lo, hi], or (sometimes) integers there, for NumPy's int -> float64 rule."""
    if np.ceil(lo) <= np.floor(hi) and data.draw(st.integers(0, 3)) == 0:
        return rng.integers(int(np.ceil(lo)), int(np.floor(hi)) + 1, shape)
    return real(rng, shape, lo, hi)


def _unary_domain(lo, hi, *names, diff=True):
    def draw(data, rng):
        return (_int_or_float(data, rng, data.draw(shapes), lo, hi),), {}

    case(*names, diff=diff)(draw)


_unary_domain(-2, 2, "exp", "exp2", "expm1", "sin", "cos", "arctan", "sinh", "cosh", "tanh", "arcsinh",
              "square", "negative", "positive", "special.expit", "special.erf", "sinc")
_unary_domain(0.3, 3, "log", "log2", "log10", "sqrt", "special.gammaln")
_unary_domain(-0.6, 3, "log1p")
_unary_domain(-1.2, 1.2, "tan")
_unary_domain(1.2, 3, "arccosh")
_unary_domain(0.05, 0.95, "special.logit")


@case("reciprocal")
def _(data, rng):  # integers: see test_reciprocal_of_integers_is_float
    return (real(rng, data.draw(shapes), 0.3, 3) * rng.choice([-1, 1]),), {}


@case("arcsin", "arccos", "arctanh")
def _(data, rng):
    return (real(rng, data.draw(shapes), -0.9, 0.9),), {}


@case("abs", "cbrt")
def _(data, rng):
    shape = data.draw(shapes)
    x = rng.choice([-1, 1], shape) * _int_or_float(data, rng, shape, 1, 3)
    return (x,), {}


def _with_specials(data, rng):
    x = real(rng, data.draw(shapes), -3, 3)
    if x.size:
        x.flat[rng.integers(0, x.size, 2)] = rng.choice([np.nan, np.inf, -np.inf, 0.0, 2.5, -0.5], 2)
    return x


@case("round", diff=False)
def _(data, rng):
    x = (real(rng, data.draw(shapes), -300, 300) if data.draw(st.booleans()) else
         rng.integers(-300, 300, data.draw(shapes)))
    return (x,), {"decimals": data.draw(st.integers(-2, 2))}


@case("sign", "floor", "ceil", "trunc", "isfinite", "isnan", "isinf", diff=False)
def _(data, rng):
    if data.draw(st.booleans()):
        return (rng.integers(-5, 5, data.draw(shapes)),), {}
    return (_with_specials(data, rng),), {}


def _binary(lo, hi, *names, ylo=None, yhi=None, nonzero_y=False, diff=True):
    def draw(data, rng):
        sx, sy = data.draw(pair_shapes).input_shapes
        x = _int_or_float(data, rng, sx, lo, hi)
        y = _int_or_float(data, rng, sy, ylo if ylo is not None else lo, yhi if yhi is not None else hi)
        if nonzero_y:
            y = np.where(np.abs(y) < 0.5, 1, y) if y.dtype.kind == "i" else np.sign(y + 0.01) * (np.abs(y) + 0.5)
        kind = data.draw(st.integers(0, 4))
        if kind == 0:  # a Python scalar on one side (weakly typed)
            y = float(y.flat[0]) if y.dtype.kind == "f" else int(y.flat[0])
        elif kind == 1:
            x = float(x.flat[0]) if x.dtype.kind == "f" else int(x.flat[0])
        return (x, y), {}

    case(*names, diff=diff)(draw)


_binary(-2, 2, "add", "subtract", "multiply", "arctan2", "hypot", "logaddexp")
_binary(-2, 2, "divide", "true_divide", nonzero_y=True)


@case("power")
def _(data, rng):
    sx, sy = data.draw(pair_shapes).input_shapes
    x = _int_or_float(data, rng, sx, 0.5, 2)
    y = _int_or_float(data, rng, sy, -2, 2)
    if x.dtype.kind == y.dtype.kind == "i":  # NumPy refuses integers to negative integer powers
        y = np.abs(y)
    if data.draw(st.booleans()):  # a Python int exponent (integer_pow) or float exponent
        y = data.draw(st.sampled_from([-3, -2, -1, 0, 1, 2, 3, 0.5, -1.5, 2.0])) if x.dtype.kind == "f" else 3
    return (x, y), {}
_binary(-4, 4, "floor_divide", "fmod", "mod", "remainder", nonzero_y=True, diff=False)
_binary(-2, 2, "maximum", "minimum", "fmax", "fmin", "equal", "not_equal", "less", "less_equal",
        "greater", "greater_equal", diff=False)
_binary(0.0, 2, "special.xlogy", ylo=0.3, yhi=3)


@case("logical_and", "logical_or", "logical_xor", diff=False)
def _(data, rng):
    sx, sy = data.draw(pair_shapes).input_shapes
    return (rng.integers(0, 2, sx) * rng.integers(0, 3, sx), rng.random(sy) < 0.5), {}


@case("logical_not", diff=False)
def _(data, rng):
    return (rng.integers(-1, 2, data.draw(shapes)),), {}


@case("where")
def _(data, rng):
    sc, sx, sy = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3)).input_shapes
    return (rng.random(sc) < 0.5, real(rng, sx), real(rng, sy)), {}


@case("clip")
def _(data, rng):
    x = real(rng, data.draw(shapes), -3, 3)
    x = np.where(np.abs(np.abs(x) - 1.0) < 0.1, 0.0, x)  # away from the clip points
    lo, hi = data.draw(st.sampled_from([(-1.0, 1.0), (None, 1.0), (-1.0, None), (-1, 1)]))
    return (x, lo, hi), {}


@case("select")
def _(data, rng):
    shape = data.draw(shapes)
    x = real(rng, shape)
    return ([x < -0.5, x > 0.5], [x * 2.0, x ** 2]), {"default": data.draw(st.sampled_from([0, -1.5]))}


# reductions
def _axis(data, ndim, allow_tuple=True):
    choices = [None] + list(range(-ndim, ndim))
    axis = data.draw(st.sampled_from(choices))
    if allow_tuple and ndim >= 2 and data.draw(st.booleans()):
        axis = tuple(data.draw(st.sets(st.integers(0, ndim - 1), min_size=1, max_size=ndim)))
    return axis


@case("sum", "mean", "prod", "var")
def _(data, rng):
    return _reduction_args(data, rng, data.draw(shapes))


@case("max", "min", "amax", "amin")
def _(data, rng):
    args, kwargs = _reduction_args(data, rng, data.draw(shapes))
    kind = data.draw(st.integers(0, 2))
    if kind:  # NumPy's initial= (and where=, which needs it); values stay apart from it
        kwargs["initial"] = data.draw(st.sampled_from([0.25, -0.25, 1]))
    if kind == 2:
        kwargs["where"] = rng.random(args[0].shape[-1:]) < 0.6
    return args, kwargs


@case("std")
def _(data, rng):  # std is not differentiable where it is 0 (reductions over one element)
    return _reduction_args(data, rng, data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=3)))


def _reduction_args(data, rng, shape):
    x = distinct_values(rng, shape) if data.draw(st.booleans()) else rng.integers(-3, 4, shape)
    return (x,), {"axis": _axis(data, len(shape)), "keepdims": data.draw(st.booleans())}


@case("all", "any", diff=False)
def _(data, rng):
    shape = data.draw(shapes)
    return (rng.random(shape) < 0.7,), {"axis": _axis(data, len(shape)), "keepdims": data.draw(st.booleans())}


@case("argmax", "argmin", diff=False)
def _(data, rng):
    shape = data.draw(shapes)
    x = rng.integers(-2, 3, shape) if data.draw(st.booleans()) else real(rng, shape)  # ties: first wins
    return (x,), {"axis": _axis(data, len(shape), allow_tuple=False), "keepdims": data.draw(st.booleans())}


@case("cumsum", "cumprod")
def _(data, rng):
    shape = data.draw(shapes)
    x = real(rng, shape, 0.5, 1.5) * rng.choice([-1, 1], shape) if data.draw(st.booleans()) else \
        rng.integers(-3, 4, shape)
    return (x,), {"axis": _axis(data, len(shape), allow_tuple=False)}


# products
@case("dot")
def _(data, rng):
    m, k, n, b = (data.draw(st.integers(1, 3)) for _ in range(4))
    sa, sb = data.draw(st.sampled_from([((), (k,)), ((k,), ()), ((k,), (k,)), ((m, k), (k,)), ((k,), (k, n)),
                                        ((m, k), (k, n)), ((b, m, k), (k,)), ((b, m, k), (k, n)),
                                        ((m, k), (b, k, n))]))
    return (real(rng, sa), real(rng, sb)), {}


@case("matmul")
def _(data, rng):
    m, k, n, b = (data.draw(st.integers(1, 3)) for _ in range(4))
    sa, sb = data.draw(st.sampled_from([((k,), (k,)), ((m, k), (k,)), ((k,), (k, n)), ((m, k), (k, n)),
                                        ((b, m, k), (k, n)), ((b, m, k), (b, k, n)), ((1, m, k), (b, k, n)),
                                        ((2, 1, m, k), (b, k, n)), ((k,), (b, k, n)), ((b, m, k), (k,))]))
    return (real(rng, sa), real(rng, sb)), {}


@case("vdot")
def _(data, rng):
    shape = data.draw(shapes1)
    return (real(rng, shape), real(rng, shape)), {}


@case("inner")
def _(data, rng):
    k = data.draw(st.integers(1, 3))
    extra = data.draw(st.sampled_from([(), (2,)]))
    return (real(rng, extra + (k,)), real(rng, (k,) if data.draw(st.booleans()) else (2, k))), {}


@case("outer")
def _(data, rng):
    return (real(rng, data.draw(shapes)), real(rng, data.draw(shapes))), {}


@case("tensordot")
def _(data, rng):
    a, b, c, d = (data.draw(st.integers(1, 3)) for _ in range(4))
    x, y, axes = data.draw(st.sampled_from([
        ((a, b, c), (b, c, d), 2), ((a, b), (b, c), 1), ((a, b), (c, d), 0),
        ((a, b, c), (c, a), ([0, 2], [1, 0])), ((a, b), (d, b), (1, 1))]))
    return (real(rng, x), real(rng, y)), {"axes": axes}


EINSUMS = [("ij,jk->ik", [(2, 3), (3, 2)]), ("ij,jk", [(2, 3), (3, 2)]), ("i,i", [(3,), (3,)]),
           ("ii", [(3, 3)]), ("ii->i", [(3, 3)]), ("ij->ji", [(2, 3)]), ("ij->", [(2, 3)]),
           ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]), ("...ij,...jk->...ik", [(2, 2, 3), (3, 2)]),
           ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]), ("i,j->ij", [(2,), (3,)]),
           ("ijk,ik->j", [(2, 3, 2), (2, 2)]), ("ij,ij->i", [(2, 3), (2, 3)]), ("ba,ca->bc", [(2, 3), (2, 3)]),
           ("iij->j", [(2, 2, 3)]), ("i,ij,j", [(2,), (2, 3), (3,)]),
           ("ij,ij->ij", [(1, 3), (2, 3)]), ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]),
           ("i,->i", [(3,), ()]), ("...i,i->...", [(2, 3, 4), (4,)])]


@case("einsum")
def _(data, rng):
    spec, shp = data.draw(st.sampled_from(EINSUMS))
    return (spec,) + tuple(real(rng, s) for s in shp), {}


@case("trace")
def _(data, rng):
    x = real(rng, data.draw(hnp.array_shapes(min_dims=2, max_dims=3, max_side=3)))
    nd = x.ndim
    a1, a2 = data.draw(st.permutations(range(nd)))[:2]
    return (x,), {"offset": data.draw(st.integers(-1, 1)), "axis1": a1, "axis2": a2}


@case("kron")
def _(data, rng):
    return (real(rng, data.draw(hnp.array_shapes(max_dims=2, max_side=3))),
            real(rng, data.draw(hnp.array_shapes(max_dims=3, max_side=2)))), {}


def matrices(rng, data, lead=None):
    """A well-conditioned matrix (or stack), of either sign of determinant."""
    lead = data.draw(st.sampled_from([(), (2,)])) if lead is None else lead
    return well_conditioned(rng, data.draw(st.integers(1, 3)), lead) * rng.choice([-1.0, 1.0])


@case("linalg.norm")
def _(data, rng):
    x = distinct_values(rng, data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3)))
    x = np.where(x == 0, 0.3, x)
    nd = x.ndim
    kind = data.draw(st.integers(0, 3))
    if kind == 0:
        return (x,), {}
    if kind == 1 or nd == 1:
        return (x,), {"ord": data.draw(st.sampled_from([None, 2, 1, np.inf, -np.inf, 3, 0.5])),
                      "axis": data.draw(st.integers(-nd, nd - 1)), "keepdims": data.draw(st.booleans())}
    axes = tuple(data.draw(st.permutations(range(nd)))[:2])
    return (x,), {"ord": data.draw(st.sampled_from([None, "fro", 1, -1, np.inf, -np.inf])), "axis": axes,
                  "keepdims": data.draw(st.booleans())}


@case("linalg.inv", "linalg.det", "linalg.slogdet")
def _(data, rng):
    return (matrices(rng, data),), {}


@case("linalg.solve")
def _(data, rng):
    lead = data.draw(st.sampled_from([(), (2,)]))
    a = matrices(rng, data, lead=lead)
    n = a.shape[-1]
    b = real(rng, data.draw(st.sampled_from([(n,), (n, 2), lead + (n, 1)])))
    return (a, b), {}


@case("linalg.cholesky", diff=False)
def _(data, rng):
    a = matrices(rng, data)
    return (a @ np.swapaxes(a, -1, -2) + a.shape[-1] * np.eye(a.shape[-1]),), {}


# shape functions
@case("reshape")
def _(data, rng):
    shape = data.draw(shapes)
    new = list(data.draw(st.permutations(shape)))
    if new and data.draw(st.booleans()):
        new[data.draw(st.integers(0, len(new) - 1))] = -1
    return (real(rng, shape), tuple(new)), {"order": data.draw(st.sampled_from(["C", "F"]))}


@case("ravel", "atleast_1d", "atleast_2d", "squeeze")
def _(data, rng):
    return (real(rng, data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=2))),), {}


@case("transpose")
def _(data, rng):
    x = real(rng, data.draw(shapes))
    axes = None if data.draw(st.booleans()) else tuple(data.draw(st.permutations(range(x.ndim))))
    return (x, axes), {}


@case("swapaxes")
def _(data, rng):
    x = real(rng, data.draw(shapes1))
    return (x, data.draw(st.integers(-x.ndim, x.ndim - 1)), data.draw(st.integers(-x.ndim, x.ndim - 1))), {}


@case("moveaxis")
def _(data, rng):
    x = real(rng, data.draw(shapes1))
    if x.ndim >= 2 and data.draw(st.booleans()):
        src = tuple(data.draw(st.permutations(range(x.ndim)))[:2])
        dst = tuple(data.draw(st.permutations(range(x.ndim)))[:2])
        return (x, src, dst), {}
    return (x, data.draw(st.integers(-x.ndim, x.ndim - 1)), data.draw(st.integers(-x.ndim, x.ndim - 1))), {}


@case("expand_dims")
def _(data, rng):
    x = real(rng, data.draw(shapes))
    return (x, data.draw(st.integers(-x.ndim - 1, x.ndim))), {}


@case("broadcast_to")
def _(data, rng):
    target = data.draw(shapes)
    k = data.draw(st.integers(0, len(target)))
    src = tuple(1 if data.draw(st.booleans()) else d for d in target[k:])
    return (real(rng, src), (2,) + target), {}


@case("concatenate", "stack")
def _(data, rng):
    base = data.draw(shapes1)
    axis = data.draw(st.integers(0, len(base) - 1))
    xs = [real(rng, base) for _ in range(data.draw(st.integers(1, 3)))]
    return (xs,), {"axis": axis}


@case("vstack", "hstack")
def _(data, rng):
    base = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    return ([real(rng, base) for _ in range(data.draw(st.integers(1, 3)))],), {}


@case("split")
def _(data, rng):
    x = real(rng, data.draw(shapes1))
    axis = data.draw(st.integers(0, x.ndim - 1))
    n = x.shape[axis]
    sections = n if data.draw(st.booleans()) else sorted(data.draw(st.lists(st.integers(0, n), max_size=2)))
    return (x, sections), {"axis": axis}


@case("tile")
def _(data, rng):
    x = real(rng, data.draw(shapes))
    reps = data.draw(st.one_of(st.integers(1, 2), st.lists(st.integers(1, 2), min_size=1, max_size=3).map(tuple)))
    return (x, reps), {}


@case("repeat")
def _(data, rng):
    x = real(rng, data.draw(shapes1))
    axis = data.draw(st.sampled_from([None] + list(range(x.ndim))))
    n = x.size if axis is None else x.shape[axis]
    reps = data.draw(st.one_of(st.integers(1, 3), st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    return (x, reps), {"axis": axis}


@case("flip")
def _(data, rng):
    x = real(rng, data.draw(shapes))
    return (x,), {"axis": _axis(data, x.ndim)}


@case("roll")
def _(data, rng):
    x = real(rng, data.draw(shapes1))
    axis = data.draw(st.sampled_from([None] + list(range(-x.ndim, x.ndim))))
    return (x, data.draw(st.integers(-4, 4))), {"axis": axis}


@case("pad")
def _(data, rng):
    x = real(rng, data.draw(shapes1))
    mode = data.draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
    w = data.draw(st.sampled_from([1, (1, 2), [(0, 1)] * x.ndim]))
    if mode in ("reflect", "symmetric", "wrap"):  # widths NumPy handles in one reflection
        w = 1 if min(x.shape) > 1 or mode != "reflect" else 0
    kw = {"mode": mode}
    if mode == "constant" and data.draw(st.booleans()):  # one value, one per side, or per axis and side
        kw["constant_values"] = data.draw(st.sampled_from([1.5, (1.5, -2.0), [(k, -k) for k in range(1, x.ndim + 1)]]))
    if data.draw(st.booleans()):
        x = np.round(x * 3).astype(np.int64)  # NumPy casts the constants to the array's dtype
    return (x, w), kw


@case("take")
def _(data, rng):
    x = real(rng, data.draw(shapes1))
    axis = data.draw(st.sampled_from([None] + list(range(x.ndim))))
    n = x.size if axis is None else x.shape[axis]
    idx = rng.integers(-n, n, data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)))
    return (x, idx), {"axis": axis}


@case("take_along_axis")
def _(data, rng):
    x = real(rng, data.draw(shapes1))
    axis = data.draw(st.integers(0, x.ndim - 1))
    ishape = list(x.shape)
    ishape[axis] = data.draw(st.integers(1, 3))
    return (x, rng.integers(0, x.shape[axis], tuple(ishape)), axis), {}


@case("diag")
def _(data, rng):
    x = real(rng, data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3)))
    return (x,), {"k": data.draw(st.integers(-2, 2))}


@case("diagonal")
def _(data, rng):
    x = real(rng, data.draw(hnp.array_shapes(min_dims=2, max_dims=3, max_side=3)))
    a1, a2 = data.draw(st.permutations(range(x.ndim)))[:2]
    return (x,), {"offset": data.draw(st.integers(-2, 2)), "axis1": a1, "axis2": a2}


@case("triu", "tril")
def _(data, rng):
    x = real(rng, data.draw(hnp.array_shapes(min_dims=2, max_dims=3, max_side=3)))
    return (x,), {"k": data.draw(st.integers(-2, 2))}


@case("sort")
def _(data, rng):
    x = distinct_values(rng, data.draw(shapes1))
    return (x,), {"axis": data.draw(st.sampled_from([None] + list(range(-x.ndim, x.ndim))))}


@case("argsort", diff=False)
def _(data, rng):
    x = distinct_values(rng, data.draw(shapes1))
    return (x,), {"axis": data.draw(st.sampled_from([None] + list(range(-x.ndim, x.ndim))))}


@case("diff")
def _(data, rng):
    x = real(rng, data.draw(shapes1))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    return (x,), {"n": data.draw(st.integers(0, 2)), "axis": axis}


# creation
@case("zeros", "ones", "empty", "eye", "identity", diff=False)
def _(data, rng):
    dtype = data.draw(st.sampled_from([None, np.float32, np.int64, bool]))
    return (data.draw(st.integers(1, 3)),), ({} if dtype is None else {"dtype": dtype})


@case("full", diff=False)
def _(data, rng):
    return (data.draw(shapes), data.draw(st.sampled_from([1.5, 2, True]))), {}


@case("zeros_like", "ones_like", "asarray")
def _(data, rng):
    x = real(rng, data.draw(shapes)).astype(data.draw(st.sampled_from([np.float64, np.float32])))
    return (x,), {}


@case("array")
def _(data, rng):
    x = real(rng, data.draw(shapes)).astype(data.draw(st.sampled_from([np.float64, np.float32])))
    return (x,), {"ndmin": data.draw(st.integers(0, 4))}


@case("full_like", diff=False)
def _(data, rng):
    return (real(rng, data.draw(shapes)), data.draw(st.sampled_from([1.5, 2]))), {}


@case("arange", diff=False)
def _(data, rng):
    return data.draw(st.sampled_from([(5,), (1, 7, 2), (0.5, 3.0, 0.5), (3, 0, -1)])), {}


@case("linspace", diff=False)
def _(data, rng):
    return (data.draw(st.sampled_from([0.0, -1.0])), 2.0, data.draw(st.integers(1, 5))), {
        "endpoint": data.draw(st.booleans())}


@case("special.logsumexp")
def _(data, rng):  # (SciPy turns a 0-d input into shape (1,) under keepdims: compare from 1-D up)
    x = real(rng, data.draw(shapes1), -5, 5)
    kw = {"axis": _axis(data, x.ndim, allow_tuple=False), "keepdims": data.draw(st.booleans())}
    if data.draw(st.booleans()):
        kw["b"] = rng.uniform(0.5, 2.0, x.shape)
    return (x,), kw


# -- the tests ----------------------------------------------------------------------------------------


def test_every_public_function_exists_and_has_a_case():
    for name in PUBLIC:
        assert callable(resolve(name)), name
    assert sorted(set(PUBLIC) - set(CASES)) == []


def test_reciprocal_of_integers_is_float():
    # NumPy's integer reciprocal truncates (1 // x); funcgrad computes in float64, as JAX does
    out = fnp.reciprocal(np.array([1, 2, -4]))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, 0.5, -0.25])


@pytest.mark.parametrize("name", ["sum", "prod", "mean", "var", "std", "max", "min", "argmax", "argmin"])
def test_out_arguments_are_refused(name):
    with pytest.raises(ValueError, match="out="):
        resolve(name)(np.ones(3), out=np.zeros(()))


def test_max_of_empty_needs_initial():
    with pytest.raises(ValueError, match="initial"):
        fnp.max(np.zeros((0, 2)), axis=0)
    np.testing.assert_array_equal(fnp.max(np.zeros((0, 2)), axis=0, initial=-1.0), [-1.0, -1.0])
    np.testing.assert_array_equal(fnp.min(np.zeros((2, 0)), axis=1, keepdims=True, initial=3),
                                  np.min(np.zeros((2, 0)), axis=1, keepdims=True, initial=3))


def test_constants_and_dtype_names():
    assert (fnp.pi, fnp.e, fnp.inf) == (np.pi, np.e, np.inf) and np.isnan(fnp.nan)
    for name in ("float16", "float32", "float64", "int32", "int64", "uint8", "bool_"):
        assert np.dtype(getattr(fnp, name)) == np.dtype(getattr(np, name))


def assert_same(got, expected, name):
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(expected), name
        for g, e in zip(got, expected):
            assert_same(g, e, name)
        return
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{name}: shape {got.shape} != NumPy's {expected.shape}"
    assert got.dtype == expected.dtype, f"{name}: dtype {got.dtype} != NumPy's {expected.dtype}"
    if name in ("empty",):
        return
    if expected.dtype.kind == "f":
        tol = 1e-5 if expected.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol, err_msg=name)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=name)


def _with_traced(fn, args, kwargs, select):
    """``(f, arrays)``: ``f(*arrays)`` calls ``fn`` with the array leaves of ``args`` that
    ``select`` picks replaced by its arguments."""
    leaves, treedef = tree_flatten(list(args))
    positions = [i for i, x in enumerate(leaves) if isinstance(x, np.ndarray) and select(x)]

    def f(*arrays):
        full = list(leaves)
        for i, a in zip(positions, arrays):
            full[i] = a
        return fn(*treedef.unflatten(full), **kwargs)

    return f, [leaves[i] for i in positions]


def _draw(name, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    args, kwargs = CASES[name](data, rng)
    return args, kwargs, rng


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_matches_numpy(name, data):
    args, kwargs, _ = _draw(name, data)
    expected = resolve(name, ours=False)(*args, **kwargs)
    ours = resolve(name)
    assert_same(ours(*args, **kwargs), expected, name)
    f, arrays = _with_traced(ours, args, kwargs, lambda x: True)
    if arrays:  # the same call with its arrays traced by funcgrad's reverse mode
        assert_same(fg.vjp(f, *arrays)[0], expected, name + " (traced)")


@pytest.mark.parametrize("name", sorted(DIFF))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_derivatives_match_finite_differences(name, data):
    f, inputs, rng = _differentiable_call(name, data)
    if inputs:
        check_jvp(f, inputs, rng)
        check_vjp(f, inputs, rng)


def _differentiable_call(name, data):
    """``(f, float64 inputs, rng)``: a drawn call as a function of its float64 arrays."""
    args, kwargs, rng = _draw(name, data)
    f, inputs = _with_traced(resolve(name), args, kwargs, lambda x: x.dtype == np.float64)
    return f, inputs, rng


def test_hypot_neither_overflows_nor_underflows():
    for v in (1e200, 1e-200, 3.0):
        np.testing.assert_allclose(fnp.hypot(v, -v), np.hypot(v, -v), rtol=1e-15)
    assert float(fnp.hypot(0.0, 0.0)) == 0.0
    np.testing.assert_array_equal(fg.grad(lambda a: fnp.hypot(a, 0.0))(0.0), 0.0)


def test_xlogy_special_values_and_derivative_at_zero():
    x = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.5, 0.0])
    y = np.array([0.0, -1.0, np.nan, np.inf, 2.0, 0.0, -1.0, 3.0, -2.0])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(fsp.xlogy(x, y), sps.xlogy(x, y))
        np.testing.assert_array_equal(fsp.xlog1py(x, y), sps.xlog1py(x, y))
    # x log y is smooth in x: at x = 0 the derivative is log y, not 0
    np.testing.assert_allclose(fg.grad(lambda a: fsp.xlogy(a, 2.0))(0.0), np.log(2.0), rtol=1e-15)
    np.testing.assert_allclose(fg.grad(lambda a: fsp.xlog1py(a, 2.0))(0.0), np.log(3.0), rtol=1e-15)


def test_logsumexp_of_empty_is_minus_infinity():
    assert float(fsp.logsumexp(np.zeros(0))) == -np.inf
    np.testing.assert_array_equal(fsp.logsumexp(np.zeros((2, 0)), axis=1), sps.logsumexp(np.zeros((2, 0)), axis=1))


@pytest.mark.parametrize("name", sorted(DIFF))
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_second_derivatives_match_finite_differences(name, data):
    f, inputs, rng = _differentiable_call(name, data)
    if inputs:
        check_second_order(f, inputs, rng)


@pytest.mark.parametrize("args", [
    lambda A, B, X, C: (A, [0, 1], B, [1, 2], [0, 2]),
    lambda A, B, X, C: (A, [0, 1], B, [1, 2]),
    lambda A, B, X, C: (X, [Ellipsis, 1], C, [1, 2], [Ellipsis, 2]),
    lambda A, B, X, C: (A, [1, 0], [0, 1]),
    lambda A, B, X, C: (A, [0, 1], A, [0, 1], []),
], ids=["explicit", "implicit", "ellipsis", "transpose", "full"])
def test_einsum_interleaved_sublist_form(args):
    rng = np.random.default_rng(0)
    A, B, X, C = (rng.normal(size=s) for s in ((2, 3), (3, 4), (2, 3, 4), (4, 5)))
    a = args(A, B, X, C)
    np.testing.assert_allclose(fnp.einsum(*a), np.einsum(*a), rtol=1e-12)
    np.testing.assert_allclose(fg.jit(lambda x: fnp.einsum(x, *a[1:]))(a[0]), np.einsum(*a), rtol=1e-12)
    check_grads(lambda x: fnp.einsum(x, *a[1:]), (a[0],), order=2)


def test_einsum_sublist_with_a_bad_index_is_a_clear_error():
    with pytest.raises(FuncgradValueError, match="sublist holds ints"):
        fnp.einsum(np.ones((2, 2)), [0, "x"])
