"""vmap: every core primitive's batching rule against a Python loop over the batch
(hypothesis over shapes, in_axes and out_axes), nesting, per-example gradients and
compositions with jit/grad/jacrev, and the errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from _numerics import distinct_sv, symmetric
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, random
from funcgrad.core.primitive import Primitive
from funcgrad.primitives import elementwise, linalg, reductions, structural

CORE_MODULES = (elementwise, reductions, structural, linalg)
CORE = {v.name: v for m in CORE_MODULES for v in vars(m).values() if isinstance(v, Primitive)}
F64, I64, BOOL = np.dtype(np.float64), np.dtype(np.int64), np.dtype(bool)


class Case:
    """``fun(*operands)`` binds one primitive; ``make(rng)`` draws one example's operands."""

    def __init__(self, fun, make):
        self.fun, self.make = fun, make


def bind(name, **params):
    prim = CORE[name]
    return lambda *ops: prim.bind(*ops, **params)


def floats(shape, lo=-2.0, hi=2.0):
    return lambda rng: rng.uniform(lo, hi, shape)


def ints(shape, lo=-5, hi=6, dtype=I64):
    return lambda rng: rng.integers(lo, hi, shape).astype(dtype)


def nonzero(shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def bools(shape):
    return lambda rng: rng.random(shape) < 0.5


def maker(*gens):
    return lambda rng: [g(rng) for g in gens]


shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)


def broadcast_pair(data, n=2):
    """``n`` shapes that broadcast together (some dims 1, some dropped in front)."""
    full = data.draw(shapes)
    out = []
    for _ in range(n):
        s = tuple(1 if data.draw(st.booleans()) else d for d in full)
        out.append(s[data.draw(st.integers(0, len(s))):])
    return out


# -- elementwise --------------------------------------------------------------------------------------
UNARY_DOMAINS = {
    "log": (0.1, 3.0), "log2": (0.1, 3.0), "log10": (0.1, 3.0), "sqrt": (0.1, 3.0), "log1p": (-0.9, 3.0),
    "tan": (-1.2, 1.2), "asin": (-0.9, 0.9), "acos": (-0.9, 0.9), "atanh": (-0.9, 0.9),
    "acosh": (1.1, 3.0), "lgamma": (0.5, 4.0), "digamma": (0.5, 4.0), "trigamma": (0.5, 4.0),
}
FLOAT_UNARY = ["neg", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "cbrt", "sin", "cos",
               "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "abs",
               "square", "logistic", "erf", "lgamma", "digamma", "trigamma", "sign", "floor", "ceil", "round",
               "trunc", "isfinite", "isnan", "isinf", "stop_gradient"]
FLOAT_BINARY = ["add", "sub", "mul", "max", "min", "atan2", "nextafter", "eq", "ne", "lt", "le", "gt", "ge"]
DIVISIONS = ["div", "fmod", "rem", "floordiv"]


def unary_case(name):
    def case(data):
        return Case(bind(name), maker(floats(data.draw(shapes), *UNARY_DOMAINS.get(name, (-2.0, 2.0)))))
    return case


def binary_case(name, gen_x=floats, gen_y=floats):
    def case(data):
        sx, sy = broadcast_pair(data)
        return Case(bind(name), maker(gen_x(sx), gen_y(sy)))
    return case


def int_binary_case(name, shift=False):
    def case(data):
        sx, sy = broadcast_pair(data)
        dtype = BOOL if not shift and data.draw(st.booleans()) else I64
        gx = bools(sx) if dtype == BOOL else ints(sx, 0, 64)
        gy = bools(sy) if dtype == BOOL else ints(sy, 0, 4 if shift else 64)
        return Case(bind(name), maker(gx, gy))
    return case


def select_case(data):
    sc, sx, sy = broadcast_pair(data, 3)
    return Case(bind("select"), maker(bools(sc), floats(sx), floats(sy)))


def convert_case(data):
    dtype = np.dtype(data.draw(st.sampled_from([np.float32, np.int64, np.bool_])))
    return Case(bind("convert_element_type", dtype=dtype), maker(floats(data.draw(shapes), -3.0, 3.0)))


def integer_pow_case(data):
    y = data.draw(st.integers(-2, 3))
    return Case(bind("integer_pow", y=y), maker(nonzero(data.draw(shapes))))


def polygamma_case(data):
    return Case(bind("polygamma", n=data.draw(st.integers(0, 2))), maker(floats(data.draw(shapes), 0.5, 3.0)))


CASES = {name: unary_case(name) for name in FLOAT_UNARY}
CASES.update({name: binary_case(name) for name in FLOAT_BINARY})
CASES.update({name: binary_case(name, floats, nonzero) for name in DIVISIONS})
CASES["pow"] = binary_case("pow", lambda s: floats(s, 0.2, 2.0))
CASES.update({name: int_binary_case(name) for name in ("and", "or", "xor")})
CASES.update({name: int_binary_case(name, shift=True) for name in ("shift_left", "shift_right")})
CASES["not"] = lambda data: Case(bind("not"), maker(ints(data.draw(shapes))))
CASES["logical_not"] = lambda data: Case(bind("logical_not"), maker(bools(data.draw(shapes))))


def threefry_case(data):
    shapes4 = broadcast_pair(data, 4)
    return Case(bind("threefry2x32"), maker(*(ints(s, 0, 2 ** 32, np.uint32) for s in shapes4)))


CASES.update(select=select_case, convert_element_type=convert_case, integer_pow=integer_pow_case,
             polygamma=polygamma_case, threefry2x32=threefry_case)


# -- reductions -----------------------------------------------------------------------------------------
def reduction_case(name):
    def case(data):
        shape = data.draw(shapes.filter(len))
        axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
        return Case(bind(name, axes=axes), maker(floats(shape)))
    return case


def axis_case(name, **extra):
    def case(data):
        shape = data.draw(shapes.filter(len))
        params = {k: data.draw(v) for k, v in extra.items()}
        return Case(bind(name, axis=data.draw(st.integers(0, len(shape) - 1)), **params), maker(floats(shape)))
    return case


for _name in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod"):
    CASES[_name] = reduction_case(_name)
CASES.update(argmax=axis_case("argmax"), argmin=axis_case("argmin"),
             cumsum=axis_case("cumsum", reverse=st.booleans()), cumprod=axis_case("cumprod", reverse=st.booleans()),
             argsort=axis_case("argsort", descending=st.booleans()))


# -- structural -------------------------------------------------------------------------------------------
def reshape_case(data):
    shape = data.draw(shapes)
    n = int(np.prod(shape))
    target = data.draw(st.sampled_from([(n,), (1, n), tuple(reversed(shape)), shape + (1,)]))
    return Case(bind("reshape", shape=target), maker(floats(shape)))


def transpose_case(data):
    shape = data.draw(shapes)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    return Case(bind("transpose", perm=perm), maker(floats(shape)))


def broadcast_case(data):
    src = tuple(1 if data.draw(st.booleans()) else d for d in data.draw(shapes))
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    target = lead + tuple(data.draw(st.integers(1, 3)) if d == 1 else d for d in src)
    return Case(bind("broadcast_to", shape=target), maker(floats(src)))


def concatenate_case(data):
    shape = data.draw(shapes.filter(len))
    axis = data.draw(st.integers(0, len(shape) - 1))
    parts = [shape[:axis] + (data.draw(st.integers(1, 3)),) + shape[axis + 1:] for _ in range(data.draw(st.integers(2, 3)))]
    return Case(bind("concatenate", axis=axis), maker(*[floats(p) for p in parts]))


def pad_case(data):
    shape = data.draw(shapes)
    widths = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape)
    return Case(bind("pad", widths=widths), maker(floats(shape)))


def flip_case(data):
    shape = data.draw(shapes)
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, max(len(shape) - 1, 0)), max_size=len(shape)))))
    return Case(bind("flip", axes=axes), maker(floats(shape)))


S = ("slice", None, None, None)
# (x shape, spec, index array shapes): basic, integer-array, mixed and non-contiguous advanced indices
INDEXES = [
    ((4, 3), (("slice", 1, None, 1),), []),
    ((4, 3), (("int", 2),), []),
    ((4, 3), (("none",), ("slice", None, None, -1)), []),
    ((5,), (("array", 0),), [(3,)]),
    ((4, 5), (S, ("array", 0)), [(2, 2)]),
    ((4, 5), (("array", 0), ("array", 1)), [(3,), (1,)]),
    ((4, 3, 5), (("array", 0), S, ("array", 1)), [(2,), (2,)]),
    ((4, 5, 2), (("int", 1), ("array", 0)), [(3,)]),
    ((4, 5, 3), (S, ("array", 0), ("array", 1)), [(2, 1), (3,)]),
]


def _index_case(data, scatter, which=None):
    x_shape, spec, idx_shapes = INDEXES[data.draw(st.integers(0, len(INDEXES) - 1)) if which is None else which]
    dims = [d for e, d in zip([e for e in spec if e[0] != "none"], x_shape) if e[0] == "array"]

    def index_arrays(rng):
        if scatter == "index_set":  # distinct positions: the written value is then well defined
            return [rng.permutation(np.arange(-d, d) if d > 2 else np.arange(d))[:int(np.prod(s))]
                    .reshape(s) % d for s, d in zip(idx_shapes, dims)]
        return [rng.integers(-d, d, s) for s, d in zip(idx_shapes, dims)]

    if scatter == "index_set" and len(idx_shapes) > 1:  # broadcasting index arrays may repeat positions
        spec, idx_shapes = (S,) * len(x_shape), []
    dummy = np.zeros(x_shape)[structural.spec_to_index(spec, [np.zeros(s, np.int64) for s in idx_shapes])]
    if scatter is None:
        return Case(bind("getitem", spec=spec), lambda rng: [rng.normal(size=x_shape)] + index_arrays(rng))
    v_shape = dummy.shape[data.draw(st.integers(0, dummy.ndim)):]
    return Case(bind(scatter, spec=spec),
                lambda rng: [rng.normal(size=x_shape), rng.normal(size=v_shape)] + index_arrays(rng))


CASES.update(reshape=reshape_case, transpose=transpose_case, broadcast_to=broadcast_case,
             concatenate=concatenate_case, pad=pad_case, flip=flip_case,
             getitem=lambda data: _index_case(data, None), index_add=lambda data: _index_case(data, "index_add"),
             index_set=lambda data: _index_case(data, "index_set"))


# -- linear algebra ------------------------------------------------------------------------------------------
DOT_SPECS = [("ij,jk->ik", (2, 3), (3, 4)), ("i,i->", (3,), (3,)), ("i,j->ij", (2,), (3,)),
             ("bij,bjk->bik", (2, 2, 3), (2, 3, 2)), ("ij,kj->ki", (2, 3), (4, 3)), ("ijk,k->ji", (2, 3, 4), (4,))]


def dot_case(data):
    spec, sa, sb = data.draw(st.sampled_from(DOT_SPECS))
    return Case(bind("dot_general", spec=spec), maker(floats(sa), floats(sb)))


def well_conditioned(n):
    return lambda rng: rng.normal(size=(n, n)) + 3.0 * np.eye(n)


def spd(n):
    def make(rng):
        a = rng.normal(size=(n, n))
        return a @ a.T + n * np.eye(n)
    return make


def matrix_case(name, gen):
    def case(data):
        return Case(bind(name), maker(gen(data.draw(st.integers(1, 3)))))
    return case


def solve_case(data):
    n, k = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    return Case(bind("solve"), maker(well_conditioned(n), floats((n, k))))


CASES.update(dot_general=dot_case, inv=matrix_case("inv", well_conditioned),
             det=matrix_case("det", well_conditioned), slogdet=matrix_case("slogdet", well_conditioned),
             cholesky=matrix_case("cholesky", spd), solve=solve_case)


# -- the property ----------------------------------------------------------------------------------------------
def stack_out(results, out_axes):
    def stack(*leaves):
        s = np.stack([np.asarray(x) for x in leaves])
        return np.moveaxis(s, 0, out_axes)
    return fg.tree_util.tree_map(stack, *results)


def _vmap_case(name, gen, **params):
    def case(data):
        shape = data.draw(st.sampled_from([(2, 2), (3, 3), (3, 2), (2, 3)]))
        if name == "eigh":
            shape = (shape[0], shape[0])
        return Case(bind(name, **params), lambda rng: [gen(rng, *shape)])
    return case


CASES.update(
    eigh=_vmap_case("eigh", lambda rng, n, _: symmetric(rng, n), uplo="L"),
    svd=_vmap_case("svd", distinct_sv, full_matrices=False, compute_uv=True),
    qr=_vmap_case("qr", distinct_sv, mode="reduced"))


def check_against_loop(case, data, rng, batched=None):
    size = data.draw(st.integers(1, 3))
    examples = [case.make(rng) for _ in range(size)]
    n = len(examples[0])
    if batched is None:
        batched = data.draw(st.lists(st.booleans(), min_size=n, max_size=n).filter(any))
    args, in_axes = [], []
    for i, b in enumerate(batched):
        if not b:
            args.append(examples[0][i])
            in_axes.append(None)
            continue
        stacked = np.stack([ex[i] for ex in examples])
        ax = data.draw(st.integers(-stacked.ndim, stacked.ndim - 1))
        args.append(np.moveaxis(stacked, 0, ax))
        in_axes.append(ax)
    per_example = [case.fun(*[ex[i] if b else examples[0][i] for i, b in enumerate(batched)])
                   for ex in examples]
    out_nd = min(np.ndim(leaf) for leaf in fg.tree_util.tree_leaves(per_example[0])) + 1  # fits every output
    out_axes = data.draw(st.integers(-out_nd, out_nd - 1))
    got = fg.vmap(case.fun, in_axes=tuple(in_axes), out_axes=out_axes)(*args)
    want = stack_out(per_example, out_axes)
    for g, w in zip(fg.tree_util.tree_leaves(got), fg.tree_util.tree_leaves(want)):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_every_core_primitive_has_a_case():
    assert sorted(CORE) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_primitive_batching_matches_a_loop(name, data):
    case = CASES[name](data)
    check_against_loop(case, data, np.random.default_rng(data.draw(st.integers(0, 2 ** 16))))


INDEX_BATCHING = [(kind, batched) for kind in (None, "index_add", "index_set")
                  for batched in ("array", "indices", "all") + (("value",) if kind else ())]


@pytest.mark.parametrize("which", range(len(INDEXES)))
@pytest.mark.parametrize("kind,batched", INDEX_BATCHING)
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_indexing_batching_with_batched_and_unbatched_index_arrays(kind, batched, which, data):
    case = _index_case(data, kind, which)
    n = len(case.make(np.random.default_rng(0)))
    first_index = 1 if kind is None else 2
    mask = [{"array": i == 0, "value": i == 1, "indices": i >= first_index, "all": True}[batched]
            for i in range(n)]
    if not any(mask):  # an index without index arrays: batch the array instead
        mask[0] = True
    check_against_loop(case, data, np.random.default_rng(data.draw(st.integers(0, 99))), mask)


@pytest.mark.parametrize("spec,sa,sb", DOT_SPECS)
def test_dot_general_every_in_axes_combination(spec, sa, sb):
    rng = np.random.default_rng(0)
    size = 2
    a, b = rng.normal(size=(size,) + sa), rng.normal(size=(size,) + sb)
    f = bind("dot_general", spec=spec)
    for ax_a in [None] + list(range(-len(sa) - 1, len(sa) + 1)):
        for ax_b in [None] + list(range(-len(sb) - 1, len(sb) + 1)):
            if ax_a is None and ax_b is None:
                continue
            x = a[0] if ax_a is None else np.moveaxis(a, 0, ax_a)
            y = b[0] if ax_b is None else np.moveaxis(b, 0, ax_b)
            want = np.stack([f(a[0] if ax_a is None else a[i], b[0] if ax_b is None else b[i])
                             for i in range(size)])
            np.testing.assert_allclose(fg.vmap(f, in_axes=(ax_a, ax_b))(x, y), want, rtol=1e-12, atol=1e-12)


# -- nesting, pytrees, compositions ------------------------------------------------------------------------------
def test_nested_vmap_and_pytrees_of_axes():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 4, 2)), rng.normal(size=(4, 2))

    def f(p):
        return {"s": fnp.sin(p["x"]) * p["y"][0], "t": (fnp.sum(p["x"] * p["y"]),)}

    inner = fg.vmap(f, in_axes=({"x": 0, "y": None},))
    outer = fg.vmap(inner, in_axes=({"x": -1, "y": 1},), out_axes={"s": 1, "t": (0,)})
    got = outer({"x": x, "y": y})
    s = np.stack([np.stack([np.sin(x[i, :, k]) * y[0, k] for i in range(3)]) for k in range(2)], 1)
    t = np.stack([np.stack([np.sum(x[i, :, k] * y[:, k]) for i in range(3)]) for k in range(2)])
    np.testing.assert_allclose(got["s"], s, rtol=1e-12)
    np.testing.assert_allclose(got["t"][0], t, rtol=1e-12)
    triple = fg.vmap(fg.vmap(fg.vmap(lambda a, b: a * b + 1.0, (0, None)), (None, 0)), (0, 0))
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    np.testing.assert_allclose(triple(a, b), a[:, None, :] * b[:, :, None] + 1.0, rtol=1e-12)


def mlp_init(rng, sizes=(64, 32, 10)):
    return [{"w": rng.normal(size=(m, n)) / np.sqrt(m), "b": 0.1 * rng.normal(size=n)}
            for m, n in itertools.pairwise(sizes)]


def mlp_loss(params, x, y):
    h = x
    for layer in params[:-1]:
        h = fnp.tanh(fnp.dot(h, layer["w"]) + layer["b"])
    logits = fnp.dot(h, params[-1]["w"]) + params[-1]["b"]
    logits = logits - fnp.max(logits)
    return fnp.log(fnp.sum(fnp.exp(logits))) - logits[y]


def digits_batch(rng, n=16):
    return rng.uniform(0.0, 16.0, size=(n, 64)) / 16.0, rng.integers(0, 10, n)


def tree_allclose(a, b, tol):
    for x, y in zip(fg.tree_util.tree_leaves(a), fg.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


@pytest.mark.parametrize("model", ["fnp", "nn"])
def test_per_example_gradients_of_a_digits_mlp_jitted(model):
    rng = np.random.default_rng(2)
    x, y = digits_batch(rng)
    if model == "fnp":
        params, loss = mlp_init(rng), mlp_loss
    else:
        init, apply = nn.serial(nn.Dense(32), nn.Tanh, nn.Dense(10))
        _, params = init(random.key(0), (-1, 64))
        params = fg.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)

        def loss(p, xi, yi):
            return nn.softmax_cross_entropy(apply(p, xi), yi)
    loop = [fg.grad(loss)(params, x[i], y[i]) for i in range(len(y))]
    loop = fg.tree_util.tree_map(lambda *g: np.stack(g), *loop)
    per_example = fg.vmap(fg.grad(loss), in_axes=(None, 0, 0))
    tree_allclose(per_example(params, x, y), loop, 1e-10)
    for device in ("interpreter", "cpu"):
        tree_allclose(fg.jit(per_example, device=device)(params, x, y), loop, 1e-6)


def test_grad_of_vmap_and_vmap_of_jacobians():
    rng = np.random.default_rng(3)
    params = mlp_init(rng, (5, 4, 3))
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)
    summed = fg.grad(lambda p: fnp.sum(fg.vmap(mlp_loss, (None, 0, 0))(p, x, y)))(params)
    loop = [fg.grad(mlp_loss)(params, x[i], y[i]) for i in range(6)]
    tree_allclose(summed, fg.tree_util.tree_map(lambda *g: sum(g), *loop), 1e-10)

    def f(v):
        return fnp.tanh(fnp.outer(v, v)).sum(0) * v[0]

    xs = rng.normal(size=(4, 3))
    for jac in (fg.jacrev, fg.jacfwd):
        np.testing.assert_allclose(fg.vmap(jac(f))(xs), np.stack([jac(f)(v) for v in xs]), rtol=1e-12)
    np.testing.assert_allclose(fg.vmap(fg.hessian(lambda v: fnp.sum(f(v))), in_axes=1)(xs.T),
                               np.stack([fg.hessian(lambda v: fnp.sum(f(v)))(v) for v in xs]), rtol=1e-10)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4), st.integers(-2, 1), st.integers(-2, 1))
def test_vmap_of_composite_function(size, in_ax, out_ax):
    rng = np.random.default_rng(size)
    x = rng.normal(size=(size, 3))
    w = rng.normal(size=(3, 3))

    def f(v):
        h = fnp.tanh(w @ v)
        return fnp.concatenate([h, fnp.cumsum(h)[::-1]]).reshape(2, 3) / (1.0 + fnp.sum(h ** 2))

    got = fg.vmap(f, in_axes=in_ax, out_axes=out_ax)(np.moveaxis(x, 0, in_ax))
    np.testing.assert_allclose(got, np.moveaxis(np.stack([f(v) for v in x]), 0, out_ax), rtol=1e-12)


# -- errors -----------------------------------------------------------------------------------------------------
def test_errors_name_the_problem():
    f = lambda a, b: a + b
    with pytest.raises(ValueError, match="mapped axes have different sizes: 3 and 4"):
        fg.vmap(f)(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"in_axes 2 is out of range for an argument of shape \(3, 4\)"):
        fg.vmap(f, in_axes=(2, 0))(np.ones((3, 4)), np.ones(3))
    with pytest.raises(ValueError, match=r"in_axes -3 is out of range"):
        fg.vmap(f, in_axes=(-3, 0))(np.ones((3, 4)), np.ones(3))
    with pytest.raises(ValueError, match="in_axes has 3 entries but the function was called with 2"):
        fg.vmap(f, in_axes=(0, 0, 0))(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="keys"):
        fg.vmap(lambda d: d["a"], in_axes=({"b": 0},))({"a": np.ones(3)})
    with pytest.raises(ValueError, match="does not match the structure"):
        fg.vmap(lambda d: d[0], in_axes=({"a": 0},))((np.ones(3),))
    with pytest.raises(ValueError, match="no argument is batched"):
        fg.vmap(f, in_axes=None)(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="out_axes is None for an output that varies"):
        fg.vmap(fnp.sin, out_axes=None)(np.ones(3))
    with pytest.raises(TypeError, match="in_axes must be an int, None or a pytree"):
        fg.vmap(fnp.sin, in_axes="0")
