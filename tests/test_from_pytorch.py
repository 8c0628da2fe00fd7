"""One test per row of docs/from_pytorch.md: each PyTorch idiom's funcgrad form works as the
page says."""
from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest

import funcgrad as fg
from funcgrad import checkpoint, optim, random
from funcgrad.nn import modules as nn

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "from_pytorch.md")
KEY = random.key(0)
X = np.array([[1.0], [2.0], [3.0]], np.float32)
Y = np.array([[2.0], [4.0], [6.0]], np.float32)


class Net(nn.Module):
    def __init__(self, key, p=0.0):
        k1, k2 = random.split(key)
        self.fc = nn.Linear(1, 8, key=k1)
        self.drop = nn.Dropout(p)
        self.out = nn.Linear(8, 1, key=k2)

    def forward(self, x, key=None, train=False):
        return self.out(self.drop(nn.ReLU()(self.fc(x)), key=key, train=train))


def loss_fn(model, x, y):
    return nn.MSELoss()(model(x), y)


def test_every_row_names_a_test_that_exists():
    with open(DOC) as f:
        names = re.findall(r"\| `(test_\w+)` \|", f.read())
    assert len(names) >= 14
    assert all(name in globals() for name in names), [n for n in names if n not in globals()]


def test_module_definition():
    model = Net(KEY)
    assert model(X).shape == (3, 1)
    np.testing.assert_array_equal(model.forward(X), model(X))


def test_parameters_and_optimizer():
    model = Net(KEY)
    shapes = [p.shape for p in model.parameters()]
    assert shapes == [(8, 1), (8,), (1, 8), (1,)]
    state = optim.sgd(0.01).init(model)
    assert state is not None


def test_training_step():
    model = Net(KEY)
    opt = optim.sgd(0.05)
    opt_state = opt.init(model)

    @fg.jit
    def step(model, opt_state):
        loss, grads = fg.value_and_grad(loss_fn)(model, X, Y)
        updates, opt_state = opt.update(grads, opt_state, model)
        return optim.apply_updates(model, updates), opt_state, loss

    first = float(loss_fn(model, X, Y))
    for _ in range(200):
        model, opt_state, loss = step(model, opt_state)
    assert type(model) is Net and float(loss) < 0.1 * first


def test_no_grad():
    model = Net(KEY)
    np.testing.assert_array_equal(model(X), model(X))  # a plain call records nothing
    g = fg.grad(lambda m: (m(X) * fg.stop_gradient(m(X))).sum())(model)
    g_full = fg.grad(lambda m: (m(X) * m(X)).sum())(model)
    np.testing.assert_allclose(2 * g.out.bias, g_full.out.bias, rtol=1e-5)


def test_train_and_eval():
    model = Net(KEY, p=0.5)
    np.testing.assert_array_equal(model(X), model(X, train=False))
    assert not np.array_equal(model(np.ones((64, 1), np.float32), key=KEY, train=True),
                              model(np.ones((64, 1), np.float32)))


def test_batchnorm_state():
    seq = nn.Sequential(nn.Linear(1, 4, key=KEY), nn.BatchNorm1d(4))
    state = seq.init_state()
    _, trained = seq(X, state, train=True)
    assert not np.array_equal(trained[1]["running_mean"], state[1]["running_mean"])
    _, same = seq(X, trained)
    assert same[1] is trained[1]


def test_save_and_load(tmp_path):
    model = Net(KEY)
    checkpoint.save(tmp_path / "m", model)
    back = checkpoint.load(tmp_path / "m", like=Net(random.key(1)))
    np.testing.assert_array_equal(back(X), model(X))


def test_freezing():
    model = Net(KEY)
    spec = fg.tree_util.tree_map(lambda _: False, model)
    spec = nn.tree_at(lambda m: m.out, spec, fg.tree_util.tree_map(lambda _: True, model.out))
    trainable, frozen = nn.partition(model, spec)
    grads = fg.grad(lambda t: loss_fn(nn.combine(t, frozen), X, Y))(trainable)
    assert grads.fc.weight is None and grads.out.weight.shape == (1, 8)


def test_functional_update():
    model = Net(KEY)
    w = np.zeros((8, 1), np.float32)
    new = nn.tree_at(lambda m: m.fc.weight, model, w)
    np.testing.assert_array_equal(new.fc.weight, w)
    assert not np.array_equal(model.fc.weight, w)
    np.testing.assert_array_equal(model.fc.replace(weight=w).weight, w)


def test_count_params():
    assert nn.count_params(Net(KEY)) == 8 + 8 + 8 + 1


def test_minibatches():
    sys.path.insert(0, os.path.join(os.path.dirname(DOC), "..", "examples"))
    from _common import minibatches

    batches = minibatches(KEY, 10, 3)
    assert [len(b) for b in batches] == [3, 3, 3]
    assert len(set(np.concatenate(batches).tolist())) == 9


def test_per_example_gradients():
    model = Net(KEY)
    per = fg.vmap(fg.grad(lambda m, x, y: loss_fn(m, x[None], y[None])), in_axes=(None, 0, 0))(model, X, Y)
    assert per.fc.weight.shape == (3, 8, 1)
    one = fg.grad(loss_fn)(model, X[1:2], Y[1:2])
    np.testing.assert_allclose(per.out.weight[1], one.out.weight, rtol=1e-5)


def test_device():
    """The CPU half of the row; the GPU half (device_put of a model, a step jitted with
    device="cuda") is tests/cuda/test_modules.py, run on Numba's CUDA simulator by
    test_cuda_simulator.py and on a GPU where there is one."""
    step = fg.jit(lambda m, x: m(x), device="cpu")
    np.testing.assert_allclose(step(Net(KEY), X), Net(KEY)(X), rtol=1e-6)
    assert os.path.exists(os.path.join(os.path.dirname(__file__), "cuda", "test_modules.py"))


def test_losses():
    logits = np.array([[2.0, 0.5, -1.0]], np.float32)
    assert float(nn.CrossEntropyLoss()(logits, np.array([0]))) == pytest.approx(
        -np.log(np.exp(2.0) / np.exp(logits).sum()), rel=1e-5)
    assert float(nn.CrossEntropyLoss()(logits, np.array([[1.0, 0.0, 0.0]], np.float32))) == pytest.approx(
        float(nn.CrossEntropyLoss()(logits, np.array([0]))), rel=1e-6)
    assert float(nn.BCEWithLogitsLoss(reduction="sum")(np.zeros(2), np.ones(2))) == pytest.approx(2 * np.log(2))


def test_attention_modules():
    mha = nn.MultiheadAttention(8, 2, batch_first=True, key=KEY)
    x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype(np.float32)
    pad = np.array([[False] * 4, [False, False, True, True]])  # True: padding, as in PyTorch
    out, weights = mha(x, x, x, key_padding_mask=pad)
    assert out.shape == (2, 4, 8) and weights.shape == (2, 4, 4)
    assert np.all(weights[1, :, 2:] == 0)
    block = ~np.tril(np.ones((4, 4), bool))  # True: not allowed, as in PyTorch
    _, causal = mha(x, x, x, attn_mask=block)
    assert np.all(np.triu(causal[0], 1) == 0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, key=KEY)
    assert layer(x, src_key_padding_mask=pad, key=random.key(1), train=True).shape == x.shape
    from funcgrad.nn import dot_product_attention

    allowed = ~block  # the functional form: True = allowed
    np.testing.assert_allclose(dot_product_attention(x, x, x, mask=allowed), dot_product_attention(x, x, x, is_causal=True))
