"""Every differentiable primitive: JVP and VJP against central finite differences in
float64, over random shapes (0-d and broadcasting included) and parameters, with
inputs drawn inside each function's domain; second derivatives (forward-over-reverse and
reverse-over-reverse) the same way, since every rule is written with primitives."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from _numerics import (
    check_jvp,
    check_second_order,
    check_vjp,
    distinct_sv,
    distinct_values,
    sym,
    symmetric,
    well_conditioned,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.core.primitive import Primitive, registry
from funcgrad.numpy._indexing import index_update, parse_index
from funcgrad.primitives import elementwise as E
from funcgrad.primitives import linalg as L
from funcgrad.primitives import reductions as R
from funcgrad.primitives import structural as S

# derivative rules must not warn where the user's own code would not (tests/test_rule_warnings.py)
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

CORE_MODULES = (E, R, S, L)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
pair_shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
seeds = st.integers(0, 2**32 - 1)

# -- input domains -------------------------------------------------------------------------------


def uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


def away_from_zero(lo, hi):
    return lambda rng, shape: rng.choice([-1.0, 1.0], shape) * rng.uniform(lo, hi, shape)


REAL = uniform(-2.0, 2.0)
POSITIVE = uniform(0.3, 3.0)
UNIT = uniform(-0.9, 0.9)
NONZERO = away_from_zero(0.3, 2.0)

UNARY = {
    "neg": REAL, "exp": REAL, "exp2": REAL, "expm1": REAL, "log": POSITIVE, "log2": POSITIVE,
    "log10": POSITIVE, "log1p": uniform(-0.6, 3.0), "sqrt": POSITIVE, "cbrt": NONZERO, "sin": REAL,
    "cos": REAL, "tan": uniform(-1.2, 1.2), "asin": UNIT, "acos": UNIT, "atan": REAL, "sinh": REAL,
    "cosh": REAL, "tanh": REAL, "asinh": REAL, "acosh": uniform(1.2, 3.0), "atanh": UNIT,
    "abs": NONZERO, "square": REAL, "logistic": uniform(-4.0, 4.0), "erf": REAL,
    "lgamma": uniform(0.5, 4.0), "digamma": uniform(0.5, 4.0), "trigamma": uniform(0.5, 4.0),
}


def separated(rng, shape_x, shape_y):
    """(x, y) at least 0.2 apart everywhere after broadcasting (no ties for max/min)."""
    x = rng.integers(-2, 3, shape_x) + 0.5 + rng.uniform(-0.2, 0.2, shape_x)
    y = rng.integers(-2, 3, shape_y) + rng.uniform(-0.1, 0.1, shape_y)
    return x, y


def ratio_pair(rng, shape_x, shape_y):
    """(x, y) whose ratio x / y stays at least 0.1 away from every integer (no jumps of
    fmod and remainder), for any broadcasting of the two shapes."""
    # y in {±1, ±2} * (1 + small); x = n + 1/2 + small: x / y is n/y + 1/(2y) + small
    y = rng.choice([-2.0, -1.0, 1.0, 2.0], shape_y)
    x = rng.integers(-3, 4, shape_x) + 0.5 + rng.uniform(-0.15, 0.15, shape_x)
    # with |y| in {1, 2} the ratio's fractional part is 1/2 ± 0.075 or 1/4, 3/4 ± 0.075
    return x, y


BINARY = {
    "add": lambda rng, sx, sy: (REAL(rng, sx), REAL(rng, sy)),
    "sub": lambda rng, sx, sy: (REAL(rng, sx), REAL(rng, sy)),
    "mul": lambda rng, sx, sy: (REAL(rng, sx), REAL(rng, sy)),
    "div": lambda rng, sx, sy: (REAL(rng, sx), NONZERO(rng, sy)),
    "pow": lambda rng, sx, sy: (POSITIVE(rng, sx), REAL(rng, sy)),
    "atan2": lambda rng, sx, sy: (REAL(rng, sx), NONZERO(rng, sy)),
    "max": separated,
    "min": separated,
    "fmod": ratio_pair,
    "rem": ratio_pair,
}

# -- the table of cases: primitive name -> draw(data, rng) -> (fun, args) -------------------------
CASES: dict = {}


def case(name):
    def register(draw):
        CASES[name] = draw
        return draw

    return register


def _unary_case(name, domain):
    prim = registry[name]

    def draw(data, rng):
        return (lambda x: prim.bind(x)), [domain(rng, data.draw(shapes))]

    return draw


def _binary_case(name, make):
    prim = registry[name]

    def draw(data, rng):
        sx, sy = data.draw(pair_shapes).input_shapes
        x, y = make(rng, sx, sy)
        if data.draw(st.booleans()):  # swap which operand broadcasts
            x, y = make(rng, sy, sx)
        return (lambda a, b: prim.bind(a, b)), [np.asarray(x, float), np.asarray(y, float)]

    return draw


for _name, _domain in UNARY.items():
    case(_name)(_unary_case(_name, _domain))
for _name, _make in BINARY.items():
    case(_name)(_binary_case(_name, _make))


@case("integer_pow")
def _(data, rng):
    y = data.draw(st.sampled_from([-3, -2, -1, 0, 1, 2, 3, 5]))
    return (lambda x: E.integer_pow_p.bind(x, y=y)), [NONZERO(rng, data.draw(shapes))]


@case("polygamma")
def _(data, rng):
    n = data.draw(st.integers(0, 3))
    return (lambda x: E.polygamma_p.bind(x, n=n)), [uniform(0.5, 4.0)(rng, data.draw(shapes))]


@case("select")
def _(data, rng):
    sc, sx, sy = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3)).input_shapes
    c = rng.random(sc) < 0.5
    return (lambda x, y: E.select_p.bind(c, x, y)), [REAL(rng, sx), REAL(rng, sy)]


@case("convert_element_type")
def _(data, rng):
    # float64 -> float64 through the primitive itself (the wrapper skips no-op conversions)
    return (lambda x: E.convert_p.bind(x, dtype=np.dtype(np.float64))), [REAL(rng, data.draw(shapes))]


# reductions
def _axes(data, ndim):
    return tuple(sorted(data.draw(st.sets(st.integers(0, max(ndim - 1, 0)), max_size=ndim))))


@case("reduce_sum")
def _(data, rng):
    x = REAL(rng, data.draw(shapes))
    axes = _axes(data, x.ndim)
    return (lambda a: R.reduce_sum_p.bind(a, axes=axes)), [x]


for _name, _prim in (("reduce_max", R.reduce_max_p), ("reduce_min", R.reduce_min_p)):
    def _extremum_case(data, rng, _prim=_prim):
        x = distinct_values(rng, data.draw(shapes))
        axes = _axes(data, x.ndim)
        return (lambda a: _prim.bind(a, axes=axes)), [x]

    case(_name)(_extremum_case)


def _with_zeros(data, x):
    """Sometimes put exact zeros in ``x``: the rules of products must not divide by x."""
    if x.size > 1 and data.draw(st.booleans()):
        for i in data.draw(st.lists(st.integers(0, x.size - 1), min_size=1, max_size=2)):
            x.flat[i] = 0.0
    return x


@case("reduce_prod")
def _(data, rng):
    x = _with_zeros(data, NONZERO(rng, data.draw(shapes)))
    axes = _axes(data, x.ndim)
    return (lambda a: R.reduce_prod_p.bind(a, axes=axes)), [x]


for _name, _prim, _zeros in (("cumsum", R.cumsum_p, False), ("cumprod", R.cumprod_p, True)):
    def _scan_case(data, rng, _prim=_prim, _zeros=_zeros):
        x = NONZERO(rng, data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5)))
        if _zeros:
            x = _with_zeros(data, x)
        axis = data.draw(st.integers(0, x.ndim - 1))
        reverse = data.draw(st.booleans())
        return (lambda a: _prim.bind(a, axis=axis, reverse=reverse)), [x]

    case(_name)(_scan_case)


# structural
@case("reshape")
def _(data, rng):
    x = REAL(rng, data.draw(shapes))
    new = tuple(data.draw(st.permutations(x.shape))) + (1,) * data.draw(st.integers(0, 1))
    return (lambda a: S.reshape_p.bind(a, shape=new)), [x]


@case("transpose")
def _(data, rng):
    x = REAL(rng, data.draw(shapes))
    perm = tuple(data.draw(st.permutations(range(x.ndim))))
    return (lambda a: S.transpose_p.bind(a, perm=perm)), [x]


@case("broadcast_to")
def _(data, rng):
    target = data.draw(shapes)
    # a source shape that broadcasts to ``target``: drop leading dims, set some to 1
    k = data.draw(st.integers(0, len(target)))
    src = tuple(1 if data.draw(st.booleans()) else d for d in target[k:])
    lead = data.draw(st.integers(1, 2))
    return (lambda a: S.broadcast_p.bind(a, shape=(lead,) + target)), [REAL(rng, src)]


@case("concatenate")
def _(data, rng):
    base = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    axis = data.draw(st.integers(0, len(base) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=2, max_size=3))
    xs = [REAL(rng, base[:axis] + (n,) + base[axis + 1:]) for n in sizes]
    return (lambda *a: S.concatenate_p.bind(*a, axis=axis)), xs


@case("pad")
def _(data, rng):
    x = REAL(rng, data.draw(shapes))
    widths = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in x.shape)
    return (lambda a: S.pad_p.bind(a, widths=widths)), [x]


@case("flip")
def _(data, rng):
    x = REAL(rng, data.draw(shapes))
    axes = _axes(data, x.ndim)
    return (lambda a: S.flip_p.bind(a, axes=axes)), [x]


def _numpy_index(data, shape, unique=False):
    """A NumPy index (basic, integer-array or mixed) into an array of ``shape``."""
    if data.draw(st.booleans()):
        return data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    idx = list(data.draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(max_dims=2, max_side=3))))
    if unique:  # one distinct position per element (for set: no write collisions)
        first = np.asarray(idx[0])
        idx[0] = np.arange(first.size).reshape(first.shape) % shape[0]
        if first.size > shape[0]:
            idx[0] = np.arange(min(first.size, shape[0]))
            idx[1:] = [np.zeros_like(idx[0]) for _ in idx[1:]]
    if len(idx) < len(shape) and data.draw(st.booleans()):
        idx.append(slice(None, None, -1))  # mixed advanced and basic indexing
    return tuple(idx)


index_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@case("getitem")
def _(data, rng):
    x = REAL(rng, data.draw(index_shapes))
    spec, arrays = parse_index(_numpy_index(data, x.shape), x.shape)
    return (lambda a: S.getitem_p.bind(a, *arrays, spec=spec)), [x]


for _name, _prim, _unique in (("index_add", S.index_add_p, False), ("index_set", S.index_set_p, True)):
    def _scatter_case(data, rng, _prim=_prim, _unique=_unique):
        x = REAL(rng, data.draw(index_shapes))
        spec, arrays = parse_index(_numpy_index(data, x.shape, _unique), x.shape)
        target = np.zeros(x.shape)[S.spec_to_index(spec, arrays)].shape
        # the value broadcasts: sometimes drop its leading axes
        v = REAL(rng, target[data.draw(st.integers(0, len(target))):])
        return (lambda a, b: _prim.bind(a, b, *arrays, spec=spec)), [x, v]

    case(_name)(_scatter_case)


# linear algebra
DOT_SPECS = ["ij,jk->ik", "i,i->", "j,jk->k", "ij,j->i", "i,j->ij", "bij,bjk->bik", "ij,kj->ik",
             "ijk,k->ij", "abc,cb->a", "ab,cd->abcd", "ab,b->ba", "bij,bkj->bki", ",ij->ij"]


@case("dot_general")
def _(data, rng):
    spec = data.draw(st.sampled_from(DOT_SPECS))
    sizes = {c: data.draw(st.integers(1, 3)) for c in set(spec) - set(",->")}
    a, b, _ = L.parse_spec(spec)
    x = REAL(rng, tuple(sizes[c] for c in a))
    y = REAL(rng, tuple(sizes[c] for c in b))
    return (lambda u, v: L.dot_general_p.bind(u, v, spec=spec)), [x, y]


def matrices(rng, data):
    """A well-conditioned matrix or stack of them, of a drawn size."""
    return well_conditioned(rng, data.draw(st.integers(1, 3)), data.draw(st.sampled_from([(), (2,)])))


def spd(rng, data):
    """A x A^T + n I: symmetric positive definite and well conditioned."""
    a = matrices(rng, data)
    n = a.shape[-1]
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


@case("inv")
def _(data, rng):
    return (lambda a: L.inv_p.bind(a)), [matrices(rng, data)]


@case("solve")
def _(data, rng):
    a = matrices(rng, data)
    b = REAL(rng, a.shape[:-1] + (data.draw(st.integers(1, 3)),))
    return (lambda u, v: L.solve_p.bind(u, v)), [a, b]


@case("det")
def _(data, rng):
    a = matrices(rng, data) * rng.choice([-1.0, 1.0])
    return (lambda u: L.det_p.bind(u)), [a]


@case("slogdet")
def _(data, rng):
    a = matrices(rng, data) * rng.choice([-1.0, 1.0])
    return (lambda u: tuple(L.slogdet_p.bind(u))), [a]


def _sym(a):
    return 0.5 * (a + L.mT(a))


@case("cholesky")
def _(data, rng):
    # NumPy's cholesky reads only the lower triangle: differentiate through a symmetric input
    return (lambda a: L.cholesky_p.bind(_sym(a))), [spd(rng, data)]


# -- the tests ----------------------------------------------------------------------------------------


def _owners():
    """id(primitive) -> the modules that hold it as a global (funcgrad's, or a test's own)."""
    owners: dict = {}
    for mod in list(sys.modules.values()):
        try:
            values = list(vars(mod).values())
        except TypeError:
            continue
        for v in values:
            if isinstance(v, Primitive):
                owners.setdefault(id(v), []).append(mod)
    return owners


def core_differentiable_primitives():
    """Differentiable primitives defined in the core modules, or in no module we can find.
    Those of other modules (control flow, conv, random, debug, a test's own) belong to their
    owners' tests."""
    owners = _owners()
    out = []
    for name, prim in registry.items():
        mods = owners.get(id(prim), [])
        if prim.differentiable and (not mods or any(m in CORE_MODULES for m in mods)):
            out.append(name)
    return sorted(out)


def test_every_core_differentiable_primitive_has_a_gradient_test():
    names = core_differentiable_primitives()
    assert len(names) >= 50  # the table is not silently empty
    missing = [n for n in names if n not in CASES]
    assert not missing, f"differentiable primitives without a gradient test: {missing}"


def test_cases_name_real_primitives():
    assert set(CASES) <= set(registry)


# eigh, svd, qr: matrices with well-separated spectra, through functions of the outputs that do
# not depend on the arbitrary signs of eigen- and singular vectors
@case("eigh")
def _eigh_case(data, rng):
    a = symmetric(rng, data.draw(st.integers(1, 3)), data.draw(st.sampled_from([(), (2,)])))

    def f(x):
        w, v = L.eigh_p.bind(sym(x), uplo="L")
        return w, v * v
    return f, [a]


@case("svd")
def _svd_case(data, rng):
    m, n = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    a = distinct_sv(rng, m, n, data.draw(st.sampled_from([(), (2,)])))
    compute_uv = data.draw(st.booleans())

    def f(x):
        outs = L.svd_p.bind(x, full_matrices=False, compute_uv=compute_uv)
        if not compute_uv:
            return outs[0]
        u, s, vh = outs
        return u * u, s, vh * vh, L.mm(u * s[..., None, :], vh)
    return f, [a]


@case("qr")
def _qr_case(data, rng):
    n = data.draw(st.integers(1, 3))
    m = n + data.draw(st.integers(0, 2))
    a = distinct_sv(rng, m, n, data.draw(st.sampled_from([(), (2,)])))
    mode = data.draw(st.sampled_from(["reduced", "r"]))

    def f(x):
        outs = L.qr_p.bind(x, mode=mode)
        r = outs[-1]
        d = fnp.sign(fnp.diagonal(r, axis1=-2, axis2=-1))
        return (r * d[..., :, None],) if mode == "r" else (outs[0] * d[..., None, :], r * d[..., :, None])
    return f, [a]


def _draw_case(name, data):
    rng = np.random.default_rng(data.draw(seeds))
    fun, args = CASES[name](data, rng)
    return fun, [np.asarray(a, np.float64) for a in args], rng


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_jvp_and_vjp_match_finite_differences(name, data):
    fun, args, rng = _draw_case(name, data)
    graph = fg.make_graph(fun)(*args)
    assert name in {e.prim.name for e in graph.eqns}, f"the case for {name} does not bind it"
    check_jvp(fun, args, rng)
    check_vjp(fun, args, rng)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_second_derivatives_match_finite_differences(name, data):
    fun, args, rng = _draw_case(name, data)
    check_second_order(fun, args, rng)


@pytest.mark.parametrize("shape, index, vshape", [
    ((1,), [[0, 0, 0], [0, 0, 0], [0, 0, 0]], (3,)),
    ((4,), [[0, 1], [1, 3]], (2,)),
    ((2, 3), [[0, 1], [1, 1]], (3,)),
    ((3, 2), [[2, 2, 0]], (1, 2)),
])
def test_index_add_accumulates_broadcast_values(shape, index, vshape):
    rng = np.random.default_rng(0)
    x, v, index = rng.standard_normal(shape), rng.standard_normal(vshape), np.asarray(index)
    expected = x.copy()
    vb = np.broadcast_to(v, index.shape + shape[1:])
    for pos in np.ndindex(*index.shape):
        expected[index[pos]] += vb[pos]
    spec, arrays = parse_index((index,), shape)
    np.testing.assert_allclose(S.index_add_p.bind(x, v, *arrays, spec=spec), expected, rtol=1e-14)
    traced = fg.vjp(lambda a, b: index_update(a, (index,), b, "add"), x, v)[0]
    np.testing.assert_allclose(traced, expected, rtol=1e-14)


@pytest.mark.parametrize("name, x, exact", [
    ("asin", 1 - 1e-9, lambda x: 1 / np.sqrt((1 - x) * (1 + x))),
    ("acos", -1 + 3e-10, lambda x: -1 / np.sqrt((1 - x) * (1 + x))),
    ("atanh", 1 - 2e-9, lambda x: 1 / ((1 - x) * (1 + x))),
    ("acosh", 1 + 1e-9, lambda x: 1 / np.sqrt((x - 1) * (x + 1))),
])
def test_derivatives_keep_full_precision_near_domain_edges(name, x, exact):
    expected = float(exact(np.longdouble(x)))  # extended precision reference
    got = float(fg.grad(lambda v: registry[name].bind(v))(np.float64(x)))
    assert abs(got / expected - 1) < 1e-14
