"""funcgrad.nn recurrent layers (RNN, GRU, LSTM) against NumPy reference cells."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, random
from funcgrad.tree_util import tree_map


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_rnn(p, x, h):
    return (np.tanh(x @ p["w"] + p["b"] + h[0] @ p["u"]),)


def ref_gru(p, x, h):
    H = h[0].shape[-1]
    xp, hp = x @ p["w"] + p["b"], h[0] @ p["u"]
    r = sigmoid(xp[:, :H] + hp[:, :H])
    z = sigmoid(xp[:, H:2 * H] + hp[:, H:2 * H])
    n = np.tanh(xp[:, 2 * H:] + r * hp[:, 2 * H:])
    return ((1 - z) * n + z * h[0],)


def ref_lstm(p, x, s):
    h, c = s
    H = h.shape[-1]
    g = x @ p["w"] + p["b"] + h @ p["u"]
    i, f, gg, o = (g[:, k * H:(k + 1) * H] for k in range(4))
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(gg)
    return sigmoid(o) * np.tanh(c), c


LAYERS = {"RNN": (nn.RNN, ref_rnn, 1), "GRU": (nn.GRU, ref_gru, 1), "LSTM": (nn.LSTM, ref_lstm, 2)}


def reference(name, p, x, return_sequences, reverse):
    _, cell, n_state = LAYERS[name]
    B, T, _ = x.shape
    H = p["u"].shape[0]
    s = tuple(np.zeros((B, H)) for _ in range(n_state))
    hs = [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        s = cell(p, x[:, t], s)
        hs[t] = s[0]
    return np.stack(hs, 1) if return_sequences else s[0]


def make(name, hidden, shape, seed=0, **kw):
    layer = LAYERS[name][0](hidden, **kw)
    out_shape, params = layer.init(random.key(seed), shape)
    params = tree_map(lambda a: np.asarray(a, np.float64) + 0.1, params)  # nonzero biases
    return layer, out_shape, params


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(sorted(LAYERS)), st.integers(1, 3), st.integers(1, 5), st.integers(1, 4),
       st.booleans(), st.booleans())
def test_layers_match_numpy_reference(name, batch, time, hidden, return_sequences, reverse):
    x = np.random.default_rng(batch * 10 + time).normal(size=(batch, time, 3))
    layer, out_shape, p = make(name, hidden, (-1, time, 3), return_sequences=return_sequences, reverse=reverse)
    out = layer.apply(p, x)
    expected = reference(name, p, x, return_sequences, reverse)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert out_shape == ((-1, time, hidden) if return_sequences else (-1, hidden))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradients_match_finite_differences_and_jit(name):
    x = np.random.default_rng(1).normal(size=(2, 4, 3))
    layer, _, p = make(name, 3, (-1, 4, 3), return_sequences=True)
    target = np.random.default_rng(2).normal(size=(2, 4, 3))

    def loss(p, x):
        return fnp.sum((layer.apply(p, x) - target) ** 2)

    def ref_loss(p, x):
        return np.sum((reference(name, p, x, True, False) - target) ** 2)

    grads = fg.grad(loss, (0, 1))(p, x)
    rng = np.random.default_rng(3)
    direction = tree_map(lambda a: rng.normal(size=a.shape), (p, x))
    eps = 1e-6
    plus = ref_loss(*tree_map(lambda a, d: a + eps * d, (p, x), direction))
    minus = ref_loss(*tree_map(lambda a, d: a - eps * d, (p, x), direction))
    numeric = (plus - minus) / (2 * eps)
    analytic = sum(float(np.sum(g * d)) for g, d in zip(fg.tree_util.tree_leaves(grads),
                                                         fg.tree_util.tree_leaves(direction)))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)
    for device in ("interpreter", "cpu"):
        jitted = fg.jit(fg.grad(loss, (0, 1)), device=device)(p, x)
        for a, b in zip(fg.tree_util.tree_leaves(jitted), fg.tree_util.tree_leaves(grads)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_float32_params_and_serial_composition():
    init, apply = nn.serial(nn.GRU(8, return_sequences=True), nn.LSTM(6), nn.Dense(2))
    out_shape, params = init(random.key(0), (-1, 7, 3))
    assert out_shape == (-1, 2)
    gru = params[0]
    assert gru["w"].shape == (3, 24) and gru["u"].shape == (8, 24) and gru["w"].dtype == np.float32
    u = np.asarray(gru["u"][:, :8], np.float64)
    np.testing.assert_allclose(u.T @ u, np.eye(8), atol=1e-5)  # orthogonal recurrent blocks
    lstm_b = params[1]["b"]
    np.testing.assert_array_equal(lstm_b[6:12], 1.0)  # forget-gate bias
    x = np.ones((4, 7, 3), np.float32)
    y = apply(params, x)
    assert y.shape == (4, 2) and y.dtype == np.float32
    g = fg.grad(lambda p: fnp.sum(apply(p, x)))(params)
    assert all(a.dtype == np.float32 for a in fg.tree_util.tree_leaves(g))


def test_one_scan_per_layer_whatever_the_length():
    layer, _, p = make("LSTM", 4, (-1, 100, 2))
    graph = fg.make_graph(lambda p, x: layer.apply(p, x))(p, np.ones((3, 100, 2)))
    assert [e.prim.name for e in graph.eqns].count("scan") == 1


def test_errors():
    init, apply = nn.GRU(4)
    with pytest.raises(ValueError, match=r"GRU: expected inputs of shape \(batch, time, features\)"):
        init(random.key(0), (5, 3))
    _, p = init(random.key(0), (-1, 5, 3))
    with pytest.raises(ValueError, match=r"GRU: expected inputs .* got \(5, 3\)"):
        apply(p, np.ones((5, 3)))
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        nn.LSTM(0)


def test_sequence_classification_example_runs(capsys):
    import pathlib
    import runpy

    path = pathlib.Path(__file__).parent.parent / "examples" / "sequence_classification.py"
    main = runpy.run_path(str(path), run_name="sequence_classification")["main"]
    acc = main(["--epochs", "3", "--train-size", "512", "--test-size", "128", "--length", "24",
                "--hidden", "16", "--device", "interpreter"])
    out = capsys.readouterr().out
    assert "epoch  3  loss" in out and "sequences/s" in out and "final held-out accuracy" in out
    assert 0.4 < acc <= 1.0  # well above chance (0.25) after three short epochs
