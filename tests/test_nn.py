"""funcgrad.nn: conv/pool against loop references, numerical gradients (float64) of the
conv primitives, pools, LayerNorm and whole models, stability at extreme inputs, layers,
combinators, losses and initializers."""
import numpy as np
import pytest
import scipy.special as sps
from hypothesis import given, settings
from hypothesis import strategies as hs

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, random
from funcgrad.errors import FuncgradTypeError, FuncgradValueError, ShapeError
from funcgrad.primitives import conv as C
from funcgrad.testing import check_grads
from funcgrad.tree_util import tree_leaves, tree_map

RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


# -- references written with explicit loops ----------------------------------------------------------
def conv_reference(x, k, strides, pads):
    (pt, pb), (pl, pr) = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw, _, o = k.shape
    oh = (xp.shape[1] - kh) // strides[0] + 1
    ow = (xp.shape[2] - kw) // strides[1] + 1
    out = np.zeros((x.shape[0], oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw, :]
            out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, k)
    return out


def pool_reference(x, window, strides, pads, reducer, fill):
    (pt, pb), (pl, pr) = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=np.nan)
    oh = (xp.shape[1] - window[0]) // strides[0] + 1
    ow = (xp.shape[2] - window[1]) // strides[1] + 1
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, i * strides[0]:i * strides[0] + window[0], j * strides[1]:j * strides[1] + window[1], :]
            out[:, i, j, :] = reducer(win, axis=(1, 2))
    return out


CONV_CASES = [
    ((2, 6, 5, 3), (3, 3), (1, 1), "SAME"),
    ((2, 7, 6, 2), (3, 2), (2, 2), "SAME"),
    ((1, 8, 9, 2), (3, 3), (2, 1), "VALID"),
    ((2, 5, 5, 1), (2, 3), (1, 2), ((1, 2), (0, 1))),
    ((3, 4, 4, 2), (1, 1), (1, 1), "VALID"),
]


@pytest.mark.parametrize("xshape, window, strides, padding", CONV_CASES)
def test_conv2d_matches_loop_reference(xshape, window, strides, padding):
    x, k = rand(*xshape), rand(*window, xshape[3], 4)
    pads = C.padding_pairs(xshape[1:3], window, strides, padding)
    out = nn.conv2d(x, k, strides, padding)
    np.testing.assert_allclose(out, conv_reference(x, k, strides, pads), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("strides", [(1, 1), (2, 1)])
def test_conv2d_chunking_gives_the_same_result(monkeypatch, strides):
    x, k = rand(5, 6, 6, 3), rand(3, 3, 3, 2)
    args = {"strides": strides, "padding": ((1, 1), (1, 1))}
    g = rand(*C.conv2d_p.abstract_eval(x, k, **args).shape)

    def all_three():
        return (C._conv_impl(x, k, **args), C._input_grad_impl(g, k, in_hw=(6, 6), **args),
                C._kernel_grad_impl(x, g, kernel_hw=(3, 3), **args))

    whole = all_three()
    monkeypatch.setattr(C, "_CHUNK_BYTES", 1)  # one image per BLAS call
    for a, b in zip(whole, all_three()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("xshape, window, strides, padding", CONV_CASES[:4])
def test_conv2d_numerical_gradients(xshape, window, strides, padding):
    x, k = rand(*xshape), rand(*window, xshape[3], 3)
    check_grads(lambda x, k: nn.conv2d(x, k, strides, padding), (x, k), order=2)


def test_conv2d_adjoint_primitives_numerical_gradients():
    x, k = rand(2, 5, 6, 2), rand(3, 2, 2, 3)
    params = {"strides": (2, 1), "padding": ((1, 1), (0, 1))}
    g = rand(*C.conv2d_p.abstract_eval(x, k, **params).shape)
    check_grads(lambda g, k: C.conv2d_input_grad_p.bind(g, k, in_hw=(5, 6), **params), (g, k), order=2)
    check_grads(lambda x, g: C.conv2d_kernel_grad_p.bind(x, g, kernel_hw=(3, 2), **params), (x, g), order=2)


@pytest.mark.parametrize("axes", [(0, None), (None, 0), (0, 0), (1, 2)])
def test_conv_primitives_batch_rules(axes):
    params = {"strides": (2, 1), "padding": ((1, 1), (1, 0))}
    x, k = rand(2, 5, 4, 3), rand(3, 2, 3, 4)
    g = rand(*C.conv2d_p.abstract_eval(x, k, **params).shape)
    prims = [
        (lambda a, b: C.conv2d_p.bind(a, b, **params), x, k),
        (lambda a, b: C.conv2d_input_grad_p.bind(a, b, in_hw=(5, 4), **params), g, k),
        (lambda a, b: C.conv2d_kernel_grad_p.bind(a, b, kernel_hw=(3, 2), **params), x, g),
    ]
    for f, a, b in prims:
        batch = 3
        a_b = np.stack([a * (i + 1) for i in range(batch)], axes[0]) if axes[0] is not None else a
        b_b = np.stack([b - i for i in range(batch)], axes[1]) if axes[1] is not None else b
        out = fg.vmap(f, in_axes=axes)(a_b, b_b)
        for i in range(batch):
            ai = np.take(a_b, i, axes[0]) if axes[0] is not None else a
            bi = np.take(b_b, i, axes[1]) if axes[1] is not None else b
            np.testing.assert_allclose(out[i], f(ai, bi), rtol=1e-10, atol=1e-10)


def test_conv2d_errors():
    with pytest.raises(ShapeError, match="channels"):
        nn.conv2d(rand(1, 4, 4, 3), rand(3, 3, 2, 1))
    with pytest.raises(ShapeError, match="does not fit"):
        nn.conv2d(rand(1, 2, 2, 1), rand(3, 3, 1, 1))
    with pytest.raises(ShapeError, match="4-D"):
        nn.conv2d(rand(4, 4, 1), rand(3, 3, 1, 1))
    with pytest.raises(FuncgradValueError, match="padding"):
        nn.conv2d(rand(1, 4, 4, 1), rand(3, 3, 1, 1), padding="FULL")
    with pytest.raises(FuncgradValueError, match="strides"):
        nn.conv2d(rand(1, 4, 4, 1), rand(3, 3, 1, 1), strides=0)


POOL_CASES = [((2, 2), None, "VALID"), ((3, 3), (2, 2), "SAME"), ((2, 3), (1, 2), "VALID"),
              ((3, 2), (2, 1), "SAME")]


@pytest.mark.parametrize("window, strides, padding", POOL_CASES)
def test_pools_match_loop_reference(window, strides, padding):
    x = rand(2, 7, 6, 3)
    s = strides or window
    pads = C.padding_pairs((7, 6), window, s, padding)
    np.testing.assert_allclose(nn.max_pool(x, window, strides, padding),
                               pool_reference(x, window, s, pads, np.nanmax, -np.inf), rtol=1e-12)
    np.testing.assert_allclose(nn.avg_pool(x, window, strides, padding),
                               pool_reference(x, window, s, pads, np.nanmean, 0.0), rtol=1e-12)


@pytest.mark.parametrize("window, strides, padding", POOL_CASES + [((2, 2), None, "VALID")])
def test_pools_numerical_gradients(window, strides, padding):
    x = rand(2, 6, 6, 2)  # distinct values: the max is differentiable there
    check_grads(lambda x: nn.max_pool(x, window, strides, padding), (x,), order=2)
    check_grads(lambda x: nn.avg_pool(x, window, strides, padding), (x,), order=2)


def test_max_pool_gradient_goes_to_the_maximum():
    x = np.array([1.0, 5.0, 2.0, 3.0]).reshape(1, 2, 2, 1)
    g = fg.grad(lambda x: nn.max_pool(x, (2, 2)).sum())(x)
    assert g.ravel().tolist() == [0.0, 1.0, 0.0, 0.0]


def test_layer_norm_values_and_numerical_gradients():
    init, apply = nn.LayerNorm()
    _, params = init(random.key(0), (-1, 5))
    params = {"scale": rand(5), "bias": rand(5)}
    x = rand(4, 5)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(apply(params, x), (x - mu) / np.sqrt(var + 1e-5) * params["scale"] + params["bias"],
                               rtol=1e-12)
    check_grads(lambda p, x: apply(p, x), (params, x), order=2)


def _float64(params):
    return tree_map(lambda p: np.asarray(p, np.float64), params)


def test_cnn_model_numerical_gradients():
    init, apply = nn.serial(nn.Conv(3, (3, 3), padding="SAME"), nn.Tanh, nn.MaxPool((2, 2)),
                            nn.Conv(4, (2, 2), strides=(2, 2)), nn.Gelu, nn.AvgPool((2, 2), (1, 1), "SAME"),
                            nn.Flatten, nn.LayerNorm(), nn.Dense(3))
    shape, params = init(random.key(1), (-1, 8, 8, 2))
    assert shape == (-1, 3)
    x, y = rand(2, 8, 8, 2), np.array([0, 2])
    check_grads(lambda p: nn.softmax_cross_entropy(apply(p, x), y), (_float64(params),), modes=("rev",))


# -- stability at extreme inputs -----------------------------------------------------------------------
EXTREME = np.array([-1e4, -30.0, 0.0, 30.0, 1e4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_functions_are_exact_at_extremes(dtype):
    x = EXTREME.astype(dtype)
    np.testing.assert_array_equal(nn.softplus(x)[[0, 4]], np.array([0.0, 1e4], dtype))
    np.testing.assert_array_equal(nn.sigmoid(x)[[0, 2, 4]], np.array([0.0, 0.5, 1.0], dtype))
    np.testing.assert_array_equal(nn.log_softmax(np.array([1e4, -1e4], dtype)), np.array([0.0, -2e4], dtype))
    np.testing.assert_array_equal(nn.softmax(np.array([1e4, -1e4], dtype)), np.array([1.0, 0.0], dtype))
    assert float(nn.logsumexp(np.array([1e4, 1e4], dtype))) == pytest.approx(1e4 + np.log(2), rel=1e-7)
    assert float(nn.logsumexp(np.array([-1e4, -1e4], dtype))) == pytest.approx(-1e4 + np.log(2), rel=1e-7)
    np.testing.assert_allclose(nn.softplus(x), np.logaddexp(0, x.astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(nn.log_sigmoid(x), -np.logaddexp(0, -x.astype(np.float64)), rtol=1e-6)


STABLE_FUNCTIONS = {
    "softmax": lambda x: nn.softmax(x)[..., 0].sum(),
    "log_softmax": lambda x: nn.log_softmax(x)[..., 1].sum(),
    "logsumexp": lambda x: nn.logsumexp(x, axis=-1).sum(),
    "sigmoid": lambda x: nn.sigmoid(x).sum(),
    "softplus": lambda x: nn.softplus(x).sum(),
    "log_sigmoid": lambda x: nn.log_sigmoid(x).sum(),
    "silu": lambda x: nn.silu(x).sum(),
    "elu": lambda x: nn.elu(x).sum(),
    "gelu": lambda x: nn.gelu(x).sum(),
    "gelu_exact": lambda x: nn.gelu(x, approximate=False).sum(),
    "bce": lambda x: nn.binary_cross_entropy(x, (x > 0).astype(x.dtype)),
    "bce_wrong": lambda x: nn.binary_cross_entropy(x, (x < 0).astype(x.dtype)),
    "sce_int": lambda x: nn.softmax_cross_entropy(x, np.array([1, 0, 4, 2])),
    "sce_probs": lambda x: nn.softmax_cross_entropy(x, nn.softmax(np.eye(4, 5) * 3.0)),
}


@pytest.mark.parametrize("name", sorted(STABLE_FUNCTIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_and_gradients_finite_at_extremes(name, dtype):
    f = STABLE_FUNCTIONS[name]
    x = np.array([[1e4, -1e4, 0.0, 5.0, -1e4], [-1e4, -1e4, -1e4, -1e4, -1e4],
                  [1e4, 1e4, 1e4, -1e4, 0.0], [3.0, -2.0, 1e4, 0.5, -1e4]], dtype)
    value, grad = fg.value_and_grad(f)(x)
    assert np.isfinite(value) and value.dtype == dtype
    assert np.isfinite(grad).all() and grad.dtype == dtype


def test_cross_entropy_gradients_are_exact_at_extremes():
    x = np.array([1e4, -1e4, 1e4, -1e4])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    loss, g = fg.value_and_grad(nn.binary_cross_entropy)(x, y)
    assert float(loss) == 0.5 * 1e4
    np.testing.assert_array_equal(g, (sps.expit(x) - y) / 4)
    logits = np.array([[1e4, -1e4, 0.0]])
    g = fg.grad(nn.softmax_cross_entropy)(logits, np.array([1]))
    np.testing.assert_array_equal(g, np.array([[1.0, -1.0, 0.0]]))


# -- activations and losses against NumPy formulas ------------------------------------------------------
def test_activations_match_formulas():
    x = np.linspace(-6, 6, 41)
    np.testing.assert_allclose(nn.relu(x), np.maximum(x, 0))
    np.testing.assert_allclose(nn.relu6(x), np.clip(x, 0, 6))
    np.testing.assert_allclose(nn.leaky_relu(x, 0.1), np.where(x >= 0, x, 0.1 * x))
    np.testing.assert_allclose(nn.elu(x, 0.5), np.where(x > 0, x, 0.5 * np.expm1(x)))
    np.testing.assert_allclose(nn.silu(x), x * sps.expit(x))
    np.testing.assert_allclose(nn.gelu(x, approximate=False), x * 0.5 * (1 + sps.erf(x / np.sqrt(2))))
    np.testing.assert_allclose(nn.gelu(x), 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))))
    np.testing.assert_allclose(nn.tanh(x), np.tanh(x))
    np.testing.assert_allclose(nn.softmax(x.reshape(1, -1)), sps.softmax(x.reshape(1, -1), axis=-1))
    assert fg.grad(lambda x: nn.relu(x))(0.0) == 0.0
    assert nn.relu(np.float32(2.0)).dtype == np.float32


def test_losses_match_formulas():
    p, t = rand(6, 3), rand(6, 3)
    assert float(nn.mse(p, t)) == pytest.approx(np.mean((p - t) ** 2))
    y = (rand(6, 3) > 0).astype(np.float64)
    s = sps.expit(p)
    assert float(nn.binary_cross_entropy(p, y)) == pytest.approx(np.mean(-(y * np.log(s) + (1 - y) * np.log(1 - s))))
    labels = np.array([0, 2, 1, 1, 0, 2])
    expected = -np.mean(sps.log_softmax(p, axis=-1)[np.arange(6), labels])
    assert float(nn.softmax_cross_entropy(p, labels)) == pytest.approx(expected)
    assert float(nn.softmax_cross_entropy(p, nn.one_hot(labels, 3, np.float64))) == pytest.approx(expected)
    params = {"w": np.ones((2, 2)), "b": np.full(3, 2.0), "n": np.arange(3)}
    assert float(nn.l2_penalty(params)) == 0.5 * (4 + 12)
    assert nn.one_hot(np.array([[1], [0]]), 2).shape == (2, 1, 2)


def test_loss_errors():
    with pytest.raises(FuncgradValueError, match=r"\[0, 3\)"):
        nn.softmax_cross_entropy(rand(2, 3), np.array([0, 3]))
    with pytest.raises(ShapeError, match="integer labels"):
        nn.softmax_cross_entropy(rand(2, 3), np.array([[0], [1]]))
    with pytest.raises(ShapeError, match="probability labels"):
        nn.softmax_cross_entropy(rand(2, 3), rand(2, 4))
    with pytest.raises(FuncgradTypeError, match="integers or floats"):
        nn.softmax_cross_entropy(rand(2, 3), np.array([True, False]))
    with pytest.raises(ShapeError, match="binary_cross_entropy"):
        nn.binary_cross_entropy(rand(4), rand(3))


# -- layers and combinators --------------------------------------------------------------------------
@pytest.mark.parametrize("layer, in_shape", [
    (nn.Dense(7), (3, 5)),
    (nn.Conv(4, (3, 3), strides=2, padding="SAME"), (2, 9, 8, 3)),
    (nn.Conv(4, (2, 3)), (2, 9, 8, 3)),
    (nn.MaxPool((2, 2)), (2, 9, 8, 3)),
    (nn.AvgPool((3, 3), (2, 2), "SAME"), (2, 9, 8, 3)),
    (nn.Flatten, (2, 3, 4, 5)),
    (nn.Dropout(0.5), (4, 6)),
    (nn.LayerNorm(), (4, 6)),
    (nn.Relu, (2, 3)),
    (nn.LogSoftmax, (2, 3)),
    (nn.Lambda(lambda x: x.mean(axis=1), lambda s: s[:1] + s[2:]), (2, 5, 3)),
])
def test_init_shape_matches_apply(layer, in_shape):
    out_shape, params = layer.init(random.key(0), (-1,) + in_shape[1:])
    y = layer.apply(params, rand(*in_shape, dtype=np.float32), key=random.key(1), train=True)
    assert out_shape == (-1,) + y.shape[1:]
    assert y.shape[0] == in_shape[0] and y.dtype == np.float32
    assert all(p.dtype == np.float32 for p in tree_leaves(params))


def test_dense_and_conv_params():
    _, p = nn.Dense(4, b_init=nn.initializers.ones).init(random.key(0), (-1, 3))
    x = rand(2, 3)
    np.testing.assert_allclose(nn.Dense(4).apply(p, x), x @ p["w"] + 1.0, rtol=1e-6)
    _, p = nn.Conv(2, (3, 3), padding="SAME").init(random.key(0), (-1, 5, 5, 1))
    assert p["w"].shape == (3, 3, 1, 2) and p["b"].shape == (2,)


def test_embedding():
    init, apply = nn.Embedding(10, 4)
    shape, params = init(random.key(0), (-1, 3))
    assert shape == (-1, 3, 4)
    ids = np.array([[1, 1, 9], [0, 1, 2]])
    out = apply(params, ids)
    np.testing.assert_array_equal(out, params["table"][ids])
    g = fg.grad(lambda p: apply(p, ids).sum())(params)["table"]
    assert g[1].tolist() == [3.0] * 4 and g[9].tolist() == [1.0] * 4 and g[5].tolist() == [0.0] * 4
    with pytest.raises(FuncgradTypeError, match="integers"):
        apply(params, np.ones((2, 2)))
    with pytest.raises(FuncgradValueError, match=r"\[0, 10\)"):
        apply(params, np.array([[10]]))


def test_dropout():
    _init, apply = nn.Dropout(0.25)
    x = np.ones((200, 100), np.float32)
    assert apply((), x) is x
    y = apply((), x, key=random.key(3), train=True)
    assert abs((y == 0).mean() - 0.25) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.75, rtol=1e-6)
    jitted = fg.jit(lambda x, k: apply((), x, key=k, train=True), device="interpreter")(x, random.key(3))
    np.testing.assert_array_equal(jitted, y)
    with pytest.raises(FuncgradValueError, match="needs a PRNG key"):
        apply((), x, train=True)
    with pytest.raises(FuncgradValueError, match="rate"):
        nn.Dropout(1.0)


def test_serial_and_parallel():
    init, apply = nn.serial(nn.Dense(8), nn.Relu, nn.Dropout(0.5), nn.Dense(2))
    shape, params = init(random.key(0), (-1, 4))
    assert shape == (-1, 2) and len(params) == 4 and params[1] == () and params[2] == ()
    x = rand(3, 4, dtype=np.float32)
    # train=False ignores the dropout; different keys change the train=True result
    np.testing.assert_array_equal(apply(params, x), apply(params, x, key=random.key(1)))
    assert not np.array_equal(apply(params, x, key=random.key(1), train=True),
                              apply(params, x, key=random.key(2), train=True))
    pinit, papply = nn.parallel(nn.Dense(2), nn.Flatten)
    shapes, pparams = pinit(random.key(0), ((-1, 3), (-1, 2, 2)))
    assert shapes == ((-1, 2), (-1, 4))
    out = papply(pparams, (rand(5, 3), rand(5, 2, 2)))
    assert out[0].shape == (5, 2) and out[1].shape == (5, 4)
    with pytest.raises(FuncgradValueError, match="2 layers but 1 inputs"):
        papply(pparams, (rand(5, 3),))
    with pytest.raises(FuncgradValueError, match="4 layers but 3 params"):
        apply(params[:3], x)
    with pytest.raises(ShapeError, match="rank 4"):
        nn.Conv(2, (3, 3)).init(random.key(0), (-1, 5, 5))


# -- initializers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("init_fn, variance", [
    (nn.initializers.glorot_uniform(), 2 / (300 + 200)),
    (nn.initializers.glorot_normal(), 2 / (300 + 200)),
    (nn.initializers.he_normal(), 2 / 300),
    (nn.initializers.he_uniform(), 2 / 300),
    (nn.initializers.lecun_normal(), 1 / 300),
    (nn.initializers.normal(0.5), 0.25),
])
def test_initializer_variances(init_fn, variance):
    w = init_fn(random.key(0), (300, 200))
    assert w.shape == (300, 200) and w.dtype == np.float32
    assert abs(w.mean()) < 0.05 * np.sqrt(variance) * 10
    assert w.var() == pytest.approx(variance, rel=0.05)


def test_initializer_fans_for_conv_kernels_and_constants():
    w = nn.initializers.he_normal()(random.key(0), (3, 3, 40, 64), np.float64)
    assert w.dtype == np.float64 and w.var() == pytest.approx(2 / (9 * 40), rel=0.05)
    assert nn.initializers.zeros(None, (2,)).tolist() == [0.0, 0.0]
    assert nn.initializers.ones(None, (2,)).tolist() == [1.0, 1.0]
    assert nn.initializers.constant(3.0)(None, (1,)).tolist() == [3.0]
    with pytest.raises(FuncgradValueError, match="rank >= 2"):
        nn.initializers.glorot_uniform()(random.key(0), (5,))


@settings(max_examples=15)
@given(n=hs.integers(1, 3), h=hs.integers(3, 7), w=hs.integers(3, 7), kh=hs.integers(1, 3), kw=hs.integers(1, 3),
       sh=hs.integers(1, 3), sw=hs.integers(1, 3), same=hs.booleans())
def test_conv2d_property(n, h, w, kh, kw, sh, sw, same):
    padding = "SAME" if same else "VALID"
    x, k = rand(n, h, w, 2), rand(kh, kw, 2, 3)
    pads = C.padding_pairs((h, w), (kh, kw), (sh, sw), padding)
    out = nn.conv2d(x, k, (sh, sw), padding)
    np.testing.assert_allclose(out, conv_reference(x, k, (sh, sw), pads), rtol=1e-10, atol=1e-10)
    if same:
        assert out.shape[1:3] == (-(-h // sh), -(-w // sw))
    g = rand(*out.shape)
    dx, dk = fg.vjp(lambda x, k: nn.conv2d(x, k, (sh, sw), padding), x, k)[1](g)
    # adjointness: <conv(x, k), g> == <x, dx> and == <k, dk>
    inner = float(np.sum(out * g))
    assert float(np.sum(x * dx)) == pytest.approx(inner, rel=1e-9, abs=1e-9)
    assert float(np.sum(k * dk)) == pytest.approx(inner, rel=1e-9, abs=1e-9)


def test_float32_model_stays_float32():
    init, apply = nn.serial(nn.Conv(2, (3, 3), padding="SAME"), nn.Relu, nn.Flatten, nn.Dense(3))
    _, params = init(random.key(0), (-1, 4, 4, 1))
    x = rand(2, 4, 4, 1, dtype=np.float32)
    grads = fg.grad(lambda p: nn.softmax_cross_entropy(apply(p, x), np.array([0, 1])))(params)
    assert all(g.dtype == np.float32 for g in tree_leaves(grads))
    assert apply(params, x).dtype == fnp.float32
