"""nn.Module and the PyTorch-style modules (funcgrad/nn/module.py, funcgrad/nn/modules.py):
pytree behaviour, transforms, checkpoints, numerics against NumPy references and against
the (init, apply) layers they share their math with."""
from __future__ import annotations

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import checkpoint, optim, random
from funcgrad import nn as fnn
from funcgrad.errors import FuncgradTypeError, FuncgradValueError, ShapeError
from funcgrad.nn import modules as nn
from funcgrad.tree_util import tree_flatten, tree_leaves, tree_map, tree_unflatten

KEYS = random.split(random.key(0), 16)
RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.normal(size=shape).astype(np.float32)


class MLP(nn.Module):
    def __init__(self, sizes, key, p=0.0):
        keys = random.split(key, len(sizes) - 1)
        self.layers = [nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys)]
        self.dropout = nn.Dropout(p)
        self.name = "mlp"

    def forward(self, x, key=None, train=False):
        for layer in self.layers[:-1]:
            x = self.dropout(fnn.relu(layer(x)), key=key, train=train)
        return self.layers[-1](x)


def mse_loss(model, x, y):
    return nn.MSELoss()(model(x), y)


# -- pytree behaviour -----------------------------------------------------------------------------------
def test_flatten_unflatten_round_trip_keeps_type_fields_and_statics():
    model = MLP([3, 4, 2], KEYS[0], p=0.25)
    leaves, tree = tree_flatten(model)
    assert len(leaves) == 4 and all(isinstance(x, np.ndarray) for x in leaves)
    again = tree_unflatten(tree, leaves)
    assert type(again) is MLP and again.name == "mlp" and again.dropout.p == 0.25
    np.testing.assert_array_equal(again.layers[1].weight, model.layers[1].weight)
    assert tree_flatten(again)[1] == tree
    # equal structure, other values: equal treedefs; another static value: a different one
    assert tree_flatten(MLP([3, 4, 2], KEYS[1], p=0.25))[1] == tree
    assert tree_flatten(MLP([3, 4, 2], KEYS[1], p=0.5))[1] != tree
    doubled = tree_map(lambda w: 2 * w, model)
    assert type(doubled) is MLP
    np.testing.assert_array_equal(doubled.layers[0].bias, 2 * model.layers[0].bias)


def test_dataclass_fields_give_an_init_and_the_module_is_frozen():
    class Affine(nn.Module):
        w: np.ndarray
        b: np.ndarray
        scale: float = 1.0

        def __call__(self, x):
            return self.scale * (x @ self.w + self.b)

    a = Affine(np.ones((2, 1)), np.zeros(1), scale=3.0)
    assert float(a(np.ones((1, 2)))[0, 0]) == 6.0
    assert len(tree_leaves(a)) == 2  # scale is static
    with pytest.raises(FuncgradTypeError, match="immutable.*replace"):
        a.w = np.zeros((2, 1))
    b = a.replace(scale=1.0)
    assert b.scale == 1.0 and a.scale == 3.0 and type(b) is Affine
    with pytest.raises(FuncgradValueError, match="no field 'nope'"):
        a.replace(nope=1)


def test_module_without_forward_is_a_clear_error():
    class Empty(nn.Module):
        pass

    with pytest.raises(FuncgradTypeError, match="neither forward nor __call__"):
        Empty()(1.0)


def test_grad_returns_a_module_of_gradients_and_optimizers_update_modules():
    model = MLP([3, 5, 1], KEYS[2])
    x, y = rand(8, 3), rand(8, 1)
    grads = fg.grad(mse_loss)(model, x, y)
    assert type(grads) is MLP and grads.layers[0].weight.shape == (5, 3)
    # against the loss written out with NumPy-style weights (x @ W.T + b)
    def manual(ws, x, y):
        h = fnn.relu(x @ ws[0].T + ws[1])
        return fnp.mean((h @ ws[2].T + ws[3] - y) ** 2)

    ws = [model.layers[0].weight, model.layers[0].bias, model.layers[1].weight, model.layers[1].bias]
    expected = fg.grad(manual)(ws, x, y)
    for got, want in zip(tree_leaves(grads), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    opt = optim.adam(1e-2)
    state = opt.init(model)
    updates, state = opt.update(grads, state, model)
    new = optim.apply_updates(model, updates)
    assert type(new) is MLP and float(mse_loss(new, x, y)) < float(mse_loss(model, x, y))


def test_jit_traces_once_per_structure():
    traces = []

    @fg.jit
    def loss(model, x, y):
        traces.append(1)
        return mse_loss(model, x, y)

    x, y = rand(4, 3), rand(4, 1)
    a, b = MLP([3, 4, 1], KEYS[3]), MLP([3, 4, 1], KEYS[4])
    np.testing.assert_allclose(loss(a, x, y), mse_loss(a, x, y), rtol=1e-6)
    loss(b, x, y)
    loss(a, x, y)
    assert len(traces) == 1
    loss(MLP([3, 4, 1], KEYS[4], p=0.5), x, y)  # a different static field: a new trace
    assert len(traces) == 2


def test_vmap_over_examples_gives_per_example_gradients():
    model = MLP([3, 4, 1], KEYS[5])
    x, y = rand(6, 3), rand(6, 1)
    per = fg.vmap(fg.grad(lambda m, xi, yi: mse_loss(m, xi[None], yi[None])), in_axes=(None, 0, 0))(model, x, y)
    assert type(per) is MLP and per.layers[0].weight.shape == (6, 4, 3)
    for i in range(6):
        one = fg.grad(mse_loss)(model, x[i:i + 1], y[i:i + 1])
        for got, want in zip(tree_leaves(per), tree_leaves(one)):
            np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-7)
    # the mean of the per-example gradients is the batch gradient
    full = fg.grad(mse_loss)(model, x, y)
    for got, want in zip(tree_leaves(per), tree_leaves(full)):
        np.testing.assert_allclose(got.mean(0), want, rtol=1e-5, atol=1e-7)


def test_checkpoint_save_and_load_of_a_module(tmp_path):
    model = MLP([3, 4, 2], KEYS[6], p=0.1)
    path = tmp_path / "model.ckpt"
    checkpoint.save(path, model)
    back = checkpoint.load(path, like=MLP([3, 4, 2], KEYS[7], p=0.1))
    assert type(back) is MLP and back.dropout.p == 0.1
    for got, want in zip(tree_leaves(back), tree_leaves(model)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        checkpoint.load(path, like=MLP([3, 5, 2], KEYS[7]))


def test_partition_and_combine_freeze_part_of_a_model():
    model = MLP([3, 4, 1], KEYS[8])
    spec = tree_map(lambda _: False, model)
    spec = nn.tree_at(lambda m: m.layers[1], spec, tree_map(lambda _: True, model.layers[1]))
    trainable, frozen = nn.partition(model, spec)
    assert trainable.layers[0].weight is None and frozen.layers[1].weight is None
    assert len(tree_leaves(trainable)) == 2
    x, y = rand(8, 3), rand(8, 1)
    grads = fg.grad(lambda t: mse_loss(nn.combine(t, frozen), x, y))(trainable)
    assert grads.layers[0].weight is None and grads.layers[1].weight.shape == (1, 4)
    trainable = tree_map(lambda p, g: p - 0.1 * g, trainable, grads)
    new = nn.combine(trainable, frozen)
    np.testing.assert_array_equal(new.layers[0].weight, model.layers[0].weight)
    assert not np.array_equal(new.layers[1].weight, model.layers[1].weight)
    # a filter function: only the matrices
    mats, rest = nn.partition(model, lambda w: w.ndim == 2)
    assert [w.shape for w in tree_leaves(mats)] == [(4, 3), (1, 4)]
    assert nn.count_params(rest) == 5


def test_tree_at_repr_count_and_named_parameters():
    model = nn.Sequential(nn.Linear(3, 4, key=KEYS[9]), nn.ReLU(), nn.Linear(4, 2, bias=False, key=KEYS[10]))
    zeroed = nn.tree_at(lambda m: m.layers[0].bias, model, np.zeros(4, np.float32))
    np.testing.assert_array_equal(zeroed[0].bias, 0.0)
    assert not np.array_equal(model[0].bias, 0.0)  # the original is unchanged
    text = repr(model)
    assert "Linear(weight=f32[4,3], bias=f32[4]" in text and "ReLU()" in text
    assert nn.count_params(model) == 3 * 4 + 4 + 4 * 2
    assert [n for n, _ in model.named_parameters()] == ["layers.0.weight", "layers.0.bias", "layers.2.weight"]
    assert len(model.parameters()) == 3
    with pytest.raises(FuncgradTypeError, match="only read attributes"):
        nn.tree_at(lambda m: None, model, 1.0)


# -- layers against references ---------------------------------------------------------------------------
def test_linear_matches_pytorch_layout_and_initialization_bounds():
    lin = nn.Linear(50, 7, key=KEYS[11])
    assert lin.weight.shape == (7, 50) and lin.bias.shape == (7,)
    assert np.abs(lin.weight).max() <= 1 / np.sqrt(50) and np.abs(lin.weight).max() > 0.9 / np.sqrt(50)
    x = rand(2, 3, 50)
    np.testing.assert_allclose(lin(x), x @ lin.weight.T + lin.bias, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fg.jit(lambda m, x: m(x))(lin, x), x @ lin.weight.T + lin.bias, rtol=1e-5, atol=1e-6)


def _conv_reference(x, w, stride, pad):
    """NCHW x, OIHW w, symmetric zero padding: direct loops."""
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    h, wd = x.shape[2:]
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride[0] + 1, (wd - kw) // stride[1] + 1
    out = np.zeros((x.shape[0], o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), ((1, 2), (2, 0))])
def test_conv2d_and_conv1d_against_direct_loops(stride, padding):
    conv = nn.Conv2d(3, 4, (3, 2), stride=stride, padding=padding, key=KEYS[12])
    x = rand(2, 3, 7, 6)
    st = stride if isinstance(stride, tuple) else (stride, stride)
    pd = padding if isinstance(padding, tuple) else (padding, padding)
    want = _conv_reference(x, conv.weight, st, pd) + conv.bias[None, :, None, None]
    np.testing.assert_allclose(conv(x), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(conv(x[0]), want[0], rtol=1e-4, atol=1e-5)  # unbatched (C, H, W)
    c1 = nn.Conv1d(3, 4, 3, stride=st[1], padding=pd[1], key=KEYS[13])
    s = rand(2, 3, 9)
    want1 = _conv_reference(s[:, :, None], c1.weight[:, :, None], (1, st[1]), (0, pd[1]))[:, :, 0]
    np.testing.assert_allclose(c1(s), want1 + c1.bias[None, :, None], rtol=1e-4, atol=1e-5)


def test_conv2d_same_padding_and_gradients():
    conv = nn.Conv2d(2, 3, 3, padding="same", key=KEYS[14])
    x = rand(1, 2, 5, 5)
    assert conv(x).shape == (1, 3, 5, 5)
    fg.testing.check_grads(lambda w, x: conv.replace(weight=w)(x), (conv.weight.astype(np.float64), x.astype(np.float64)),
                           order=1, modes=("rev",))


def test_pooling_against_numpy_with_pytorch_padding():
    x = rand(2, 3, 6, 5)
    got = nn.MaxPool2d(2, stride=2, padding=1)(x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    want = np.stack([[xp[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max(axis=(2, 3)) for j in range(3)] for i in range(4)])
    np.testing.assert_array_equal(got, np.moveaxis(want, (0, 1), (2, 3)))
    avg = nn.AvgPool2d(3, stride=1, padding=1)(x)  # count_include_pad: the mean of 9 entries, zeros included
    xz = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    np.testing.assert_allclose(avg[:, :, 0, 0], xz[:, :, :3, :3].sum(axis=(2, 3)) / 9, rtol=1e-5)
    s = rand(2, 3, 8)
    np.testing.assert_array_equal(nn.MaxPool1d(2)(s), s.reshape(2, 3, 4, 2).max(-1))
    np.testing.assert_allclose(nn.AvgPool1d(4)(s), s.reshape(2, 3, 2, 4).mean(-1), rtol=1e-6)


def test_layernorm_embedding_dropout_flatten_and_activations():
    x = rand(4, 3, 5)
    ln = nn.LayerNorm((3, 5))
    ref = (x - x.mean(axis=(1, 2), keepdims=True)) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(ln(x), ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ShapeError, match="do not end in"):
        ln(rand(4, 5))
    # the same math as the (init, apply) LayerNorm over the last axis
    np.testing.assert_array_equal(nn.LayerNorm(5)(x), fnn.LayerNorm().apply({"scale": np.ones(5, np.float32),
                                                                           "bias": np.zeros(5, np.float32)}, x))
    emb = nn.Embedding(10, 4, key=KEYS[15])
    np.testing.assert_array_equal(emb(np.array([[1, 9]])), emb.weight[[[1, 9]]])
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 10\)"):
        emb(np.array([10]))
    drop = nn.Dropout(0.5)
    ones = np.ones((200, 50), np.float32)
    np.testing.assert_array_equal(drop(ones), ones)  # eval (the default)
    y = np.asarray(drop(ones, key=KEYS[0], train=True))
    assert set(np.unique(y)) == {0.0, 2.0} and 0.45 < (y == 0).mean() < 0.55
    with pytest.raises(ValueError, match="needs a PRNG key"):
        drop(ones, train=True)
    assert nn.Flatten()(rand(2, 3, 4, 5)).shape == (2, 60)
    assert nn.Flatten(0, 1)(rand(2, 3, 4)).shape == (6, 4)
    z = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_allclose(nn.GELU()(z), 0.5 * z * (1 + np.vectorize(__import__("math").erf)(z / np.sqrt(2))))
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(z), np.where(z > 0, z, 0.1 * z))
    np.testing.assert_allclose(nn.Softmax(dim=0)(z), np.exp(z) / np.exp(z).sum())
    np.testing.assert_array_equal(nn.ReLU()(z), np.maximum(z, 0))


def _batchnorm_reference(x, rm, rv, w, b, train, m=0.1, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if train:
        mean, var = x.mean(axes), x.var(axes)
        n = x.size // x.shape[1]
        rm, rv = (1 - m) * rm + m * mean, (1 - m) * rv + m * var * n / (n - 1)
    else:
        mean, var = rm, rv
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)
    return y, rm, rv


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (16, 3)), (nn.BatchNorm1d, (8, 3, 5)), (nn.BatchNorm2d, (4, 3, 5, 6))])
def test_batchnorm_train_and_eval_against_numpy(cls, shape):
    bn = cls(3).replace(weight=rand(3), bias=rand(3))
    x = (3.0 + 2.0 * RNG.normal(size=shape)).astype(np.float64)
    state = bn.init_state()
    rm, rv = state["running_mean"].astype(np.float64), state["running_var"].astype(np.float64)
    step = fg.jit(lambda bn, x, s: bn(x, s, train=True))
    for _ in range(3):  # train mode: batch statistics, running statistics updated
        y, state = step(bn, x, state)
        want, rm, rv = _batchnorm_reference(x, rm, rv, bn.weight, bn.bias, True)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state["running_mean"], rm, rtol=1e-6)
        np.testing.assert_allclose(state["running_var"], rv, rtol=1e-6)
    y, same = bn(x, state)  # eval mode (the default): running statistics, state unchanged
    want, _, _ = _batchnorm_reference(x, rm, rv, bn.weight, bn.bias, False)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    assert same is state
    with pytest.raises(ShapeError, match="channels"):
        cls(4)(x, cls(4).init_state())


def test_sequential_threads_keys_train_and_state():
    seq = nn.Sequential(nn.Linear(4, 6, key=KEYS[1]), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5),
                        nn.Linear(6, 2, key=KEYS[2]))
    x = rand(32, 4)
    state = seq.init_state()
    assert state[0] is None and set(state[1]) == {"running_mean", "running_var"}
    y, state2 = seq(x, state, key=KEYS[3], train=True)
    assert y.shape == (32, 2) and not np.array_equal(state2[1]["running_mean"], state[1]["running_mean"])
    _, state3 = seq(x, state2)
    assert state3[1] is state2[1]
    with pytest.raises(FuncgradValueError, match="stateful layers"):
        seq(x)
    with pytest.raises(FuncgradTypeError, match=r"\(init, apply\) layer"):
        nn.Sequential(fnn.Dense(3))
    # user modules whose forward takes neither key nor train are called with the input only
    plain = nn.Sequential(MLP([4, 3], KEYS[4]), nn.Tanh())
    assert plain(x, key=KEYS[5], train=True).shape == (32, 3)


def test_recurrent_modules_share_the_layers_math():
    x = rand(3, 7, 4)  # (batch, time, features)
    for mod_cls, layer, gates in ((nn.GRU, fnn.GRU, 3), (nn.LSTM, fnn.LSTM, 4), (nn.RNN, fnn.RNN, 1)):
        mod = mod_cls(4, 5, batch_first=True, key=KEYS[6])
        params = {"w": mod.weight_ih.T, "u": mod.weight_hh.T, "b": mod.bias}
        out, last = mod(x)
        np.testing.assert_allclose(out, layer(5, return_sequences=True).apply(params, x), rtol=1e-5, atol=1e-6)
        h_n = last[0] if mod_cls is nn.LSTM else last
        assert h_n.shape == (1, 3, 5)
        np.testing.assert_allclose(h_n[0], out[:, -1], rtol=1e-6)
        # time-major (PyTorch's default) gives the same numbers, transposed
        tm, _ = mod.replace(batch_first=False)(np.swapaxes(x, 0, 1))
        np.testing.assert_allclose(np.swapaxes(tm, 0, 1), out, rtol=1e-6)
    cell = nn.LSTMCell(4, 5, key=KEYS[7])
    h = c = np.zeros((3, 5), np.float32)
    for t in range(7):
        h, c = cell(x[:, t], (h, c))
    lstm = nn.LSTM(4, 5, batch_first=True, key=KEYS[7])
    np.testing.assert_allclose(lstm(x)[1][0][0], h, rtol=1e-5, atol=1e-6)
    rnn = nn.RNNCell(4, 5, nonlinearity="relu", key=KEYS[8])
    np.testing.assert_allclose(rnn(x[:, 0], np.ones((3, 5), np.float32)),
                               np.maximum(x[:, 0] @ rnn.weight_ih.T + np.ones((3, 5)) @ rnn.weight_hh.T + rnn.bias, 0),
                               rtol=1e-5, atol=1e-6)


def test_losses_follow_pytorch_reductions():
    p, t = rand(4, 3), rand(4, 3)
    assert float(nn.MSELoss()(p, t)) == pytest.approx(np.mean((p - t) ** 2), rel=1e-6)
    assert float(nn.MSELoss(reduction="sum")(p, t)) == pytest.approx(np.sum((p - t) ** 2), rel=1e-6)
    np.testing.assert_allclose(nn.MSELoss(reduction="none")(p, t), (p - t) ** 2, rtol=1e-6)
    with pytest.raises(FuncgradValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    logits = rand(5, 4, 3)  # (N, C, d): classes on axis 1
    target = RNG.integers(0, 4, (5, 3))
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    per = -np.take_along_axis(logp, target[:, None], 1)[:, 0]
    np.testing.assert_allclose(nn.CrossEntropyLoss(reduction="none")(logits, target), per, rtol=1e-5)
    assert float(nn.CrossEntropyLoss()(logits, target)) == pytest.approx(per.mean(), rel=1e-5)
    assert float(nn.CrossEntropyLoss(reduction="sum")(logits[:, :, 0], target[:, 0])) == pytest.approx(per[:, 0].sum(), rel=1e-5)
    z, y = rand(6), (RNG.random(6) > 0.5).astype(np.float32)
    sig = 1 / (1 + np.exp(-z))
    bce = -(y * np.log(sig) + (1 - y) * np.log(1 - sig))
    assert float(nn.BCEWithLogitsLoss()(z, y)) == pytest.approx(bce.mean(), rel=1e-5)
    np.testing.assert_allclose(nn.BCEWithLogitsLoss(reduction="none")(z, y), bce, rtol=1e-5)


def test_module_names_without_a_collision_are_in_funcgrad_nn_too():
    assert fnn.Module is nn.Module and fnn.Linear is nn.Linear and fnn.MSELoss is nn.MSELoss
    assert fnn.Dropout is not nn.Dropout  # nn.Dropout is the (init, apply) layer
    assert {"partition", "combine", "tree_at", "count_params"} <= set(dir(fnn))
