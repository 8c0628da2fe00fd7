"""Attention and Transformer layers: against NumPy references, masks, gradients, causality."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import funcgrad as fg
from funcgrad import nn, random
from funcgrad.errors import FuncgradValueError, ShapeError
from funcgrad.nn import modules
from funcgrad.testing import check_grads

RNG = np.random.default_rng(0)


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_attention(q, k, v, mask=None, bias=None, scale=None):
    s = q @ np.swapaxes(k, -1, -2) * (1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    if bias is not None:
        s = s + bias
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    with np.errstate(invalid="ignore"):
        p = np.nan_to_num(_softmax(s))  # fully masked rows: 0
    return p @ v


def qkv(*lead, tq=5, tk=7, d=4, dtype=np.float64):
    return (RNG.normal(size=(*lead, tq, d)).astype(dtype), RNG.normal(size=(*lead, tk, d)).astype(dtype),
            RNG.normal(size=(*lead, tk, 3)).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dot_product_attention_matches_numpy(dtype):
    q, k, v = qkv(2, 3, dtype=dtype)
    mask = RNG.random((2, 1, 5, 7)) > 0.3
    bias = RNG.normal(size=(5, 7)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for kw in ({}, {"mask": mask}, {"bias": bias}, {"mask": mask, "bias": bias, "scale": 0.3}):
        want = ref_attention(q.astype(np.float64), k, v, **kw)
        got = nn.dot_product_attention(q, k, v, **kw)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        np.testing.assert_allclose(fg.jit(lambda q, k, v, kw=kw: nn.dot_product_attention(q, k, v, **kw))(q, k, v), want,
                                   rtol=tol, atol=tol)
    causal = np.tril(np.ones((5, 7), bool))
    np.testing.assert_allclose(nn.dot_product_attention(q, k, v, is_causal=True), ref_attention(q, k, v, causal),
                               rtol=tol, atol=tol)


def test_fully_masked_rows_are_zero_with_finite_gradients():
    q, k, v = qkv(2)
    mask = np.ones((2, 5, 7), bool)
    mask[0, 1] = False  # query 1 of example 0 sees nothing
    bias = np.zeros((5, 7))
    bias[2] = -np.inf  # query 2 sees nothing through an infinite bias
    out = nn.dot_product_attention(q, k, v, mask=mask, bias=bias)
    assert np.all(out[0, 1] == 0) and np.all(out[:, 2] == 0) and np.all(np.isfinite(out))

    def loss(q, k, v):
        return (nn.dot_product_attention(q, k, v, mask=mask, bias=bias) ** 2).sum()

    for g in fg.grad(loss, argnums=(0, 1, 2))(q, k, v) + fg.jit(fg.grad(loss, argnums=(0, 1, 2)))(q, k, v):
        assert np.all(np.isfinite(g))
    gq = fg.grad(loss)(q, k, v)
    assert np.all(gq[0, 1] == 0) and np.all(gq[:, 2] == 0)


def test_masked_scores_may_be_huge():
    """A masked score far above the allowed ones must neither overflow nor poison gradients."""
    q, k, v = qkv(tq=3, tk=3)
    k[2] *= 1e3
    mask = np.array([[True, True, False]] * 3)
    g = fg.grad(lambda k: nn.dot_product_attention(q, k, v, mask=mask).sum())(k)
    assert np.all(np.isfinite(g)) and np.all(g[2] == 0)


def test_attention_gradients():
    q, k, v = qkv(2, tq=3, tk=4)
    mask = RNG.random((2, 3, 4)) > 0.2
    mask[:, :, 0] = True
    bias = RNG.normal(size=(3, 4))
    check_grads(lambda q, k, v, b: nn.dot_product_attention(q, k, v, mask=mask, bias=b), (q, k, v, bias), order=2)
    check_grads(lambda q, k, v: nn.dot_product_attention(q, k, v, is_causal=True), (q, k, v), order=1)


def test_causal_attention_leaks_nothing():
    """The output at step t is unchanged by any change to the inputs after t."""
    x = RNG.normal(size=(2, 6, 8))
    _, params = nn.TransformerEncoderLayer(2, 16, dropout=0.0, causal=True).init(random.key(0), x.shape)
    apply = nn.TransformerEncoderLayer(2, 16, dropout=0.0, causal=True).apply
    dec = modules.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True, key=random.key(1))
    memory = RNG.normal(size=(2, 4, 8))
    runs = {"function": lambda x: nn.dot_product_attention(x, x, x, is_causal=True),
            "stax encoder": lambda x: apply(params, x),
            "module decoder": lambda x: dec(x, memory, tgt_is_causal=True)}
    for name, f in runs.items():
        base = np.asarray(f(x))
        for t in range(5):
            y = x.copy()
            y[:, t + 1:] += RNG.normal(size=y[:, t + 1:].shape) * 10
            np.testing.assert_allclose(np.asarray(f(y))[:, :t + 1], base[:, :t + 1], rtol=1e-12, atol=1e-12,
                                       err_msg=f"{name} leaks into step {t}")
        z = x.copy()
        z[:, 0] += 1.0
        assert not np.allclose(np.asarray(f(z))[:, -1], base[:, -1]), f"{name}: the past must matter"


def test_per_example_gradients_under_vmap():
    mha = modules.MultiheadAttention(8, 2, batch_first=True, key=random.key(0))
    x = RNG.normal(size=(3, 5, 8)).astype(np.float32)

    def loss(m, xi):
        out, _ = m(xi[None], xi[None], xi[None], need_weights=False)
        return (out ** 2).sum()

    per = fg.vmap(fg.grad(loss), in_axes=(None, 0))(mha, x)
    for i in range(3):
        one = fg.grad(loss)(mha, x[i])
        np.testing.assert_allclose(per.in_proj_weight[i], one.in_proj_weight, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(per.out_proj.weight[i], one.out_proj.weight, rtol=1e-5, atol=1e-6)


def ref_mha(x_q, x_kv, mha, mask=None, bias=None):
    """PyTorch's multi-head attention written out in NumPy (batch first)."""
    e, h = mha.embed_dim, mha.num_heads
    w, b = mha.in_proj_weight.astype(np.float64), mha.in_proj_bias.astype(np.float64)
    q, k, v = x_q @ w[:e].T + b[:e], x_kv @ w[e:2 * e].T + b[e:2 * e], x_kv @ w[2 * e:].T + b[2 * e:]

    def split(t):
        return t.reshape(t.shape[0], t.shape[1], h, e // h).transpose(0, 2, 1, 3)

    out = ref_attention(split(q), split(k), split(v), mask, bias)
    out = out.transpose(0, 2, 1, 3).reshape(x_q.shape[0], x_q.shape[1], e)
    return out @ mha.out_proj.weight.T + mha.out_proj.bias


def test_multihead_attention_module_follows_pytorch_masks():
    mha = modules.MultiheadAttention(8, 2, batch_first=True, key=random.key(0), dtype=np.float64)
    x, mem = RNG.normal(size=(2, 5, 8)), RNG.normal(size=(2, 6, 8))
    pad = np.zeros((2, 6), bool)
    pad[1, 4:] = True  # the last two keys of example 1 are padding
    block = np.zeros((5, 6), bool)
    block[:, 0] = True  # no query may look at key 0 (PyTorch: True = not allowed)
    out, weights = mha(x, mem, mem, key_padding_mask=pad, attn_mask=block)
    keep = ~pad[:, None, None, :] & ~block
    np.testing.assert_allclose(out, ref_mha(x, mem, mha, keep), rtol=1e-12, atol=1e-12)
    assert weights.shape == (2, 5, 6) and np.allclose(weights.sum(-1), 1)
    assert np.all(weights[1, :, 4:] == 0) and np.all(weights[:, :, 0] == 0)
    float_mask = RNG.normal(size=(5, 6))
    out, none = mha(x, mem, mem, attn_mask=float_mask, need_weights=False)
    assert none is None
    np.testing.assert_allclose(out, ref_mha(x, mem, mha, bias=float_mask), rtol=1e-12, atol=1e-12)
    seq_first = modules.MultiheadAttention(8, 2, key=random.key(0), dtype=np.float64)
    xs = x.swapaxes(0, 1)
    out_sf, _ = seq_first(xs, xs, xs)
    np.testing.assert_allclose(out_sf.swapaxes(0, 1), ref_mha(x, x, mha), rtol=1e-12, atol=1e-12)


def _layer_norm(x, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_numpy(norm_first):
    layer = modules.TransformerEncoderLayer(8, 2, 16, dropout=0.1, norm_first=norm_first, batch_first=True,
                                            key=random.key(2), dtype=np.float64)
    x = RNG.normal(size=(2, 5, 8))

    def ff(h):
        hidden = np.maximum(h @ layer.linear1.weight.T + layer.linear1.bias, 0)
        return hidden @ layer.linear2.weight.T + layer.linear2.bias

    def attn(h):
        return ref_mha(h, h, layer.self_attn)

    if norm_first:
        want = x + attn(_layer_norm(x))
        want = want + ff(_layer_norm(want))
    else:
        want = _layer_norm(x + attn(x))
        want = _layer_norm(want + ff(want))
    np.testing.assert_allclose(layer(x), want, rtol=1e-12, atol=1e-12)  # eval: no dropout
    trained = layer(x, key=random.key(5), train=True)
    assert not np.allclose(trained, want)
    with pytest.raises(FuncgradValueError, match="PRNG key"):
        layer(x, train=True)


def test_stax_and_module_faces_agree():
    x = RNG.normal(size=(2, 5, 8)).astype(np.float32)
    mem = RNG.normal(size=(2, 3, 8)).astype(np.float32)
    enc = modules.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, key=random.key(0))
    params = {"attn": {"in_weight": enc.self_attn.in_proj_weight, "in_bias": enc.self_attn.in_proj_bias,
                       "out_weight": enc.self_attn.out_proj.weight, "out_bias": enc.self_attn.out_proj.bias},
              "ff": {"w1": enc.linear1.weight, "b1": enc.linear1.bias, "w2": enc.linear2.weight,
                     "b2": enc.linear2.bias},
              "norm1": {"scale": enc.norm1.weight, "bias": enc.norm1.bias},
              "norm2": {"scale": enc.norm2.weight, "bias": enc.norm2.bias}}
    np.testing.assert_array_equal(nn.TransformerEncoderLayer(2, 16, dropout=0.0).apply(params, x), enc(x))
    shape, stax = nn.TransformerDecoderLayer(2, 16).init(random.key(1), (x.shape, mem.shape))
    assert shape == x.shape and set(stax) == {"self_attn", "cross_attn", "ff", "norm1", "norm2", "norm3"}
    out = nn.TransformerDecoderLayer(2, 16).apply(stax, (x, mem), key=random.key(2), train=True)
    assert out.shape == x.shape and np.all(np.isfinite(out))
    _, mha_params = nn.MultiHeadAttention(2).init(random.key(3), x.shape)
    assert nn.MultiHeadAttention(2).apply(mha_params, x).shape == x.shape


def test_positional_encodings():
    pe = nn.sinusoidal_positions(50, 16)
    assert pe.shape == (50, 16) and pe.dtype == np.float32
    np.testing.assert_allclose(pe[:, 0], np.sin(np.arange(50)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pe[:, 1], np.cos(np.arange(50)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pe[3, 14], np.sin(3 * 10000 ** (-14 / 16)), rtol=1e-6)
    x = np.zeros((2, 10, 16), np.float32)
    np.testing.assert_array_equal(nn.PositionalEncoding(20).apply((), x)[0], pe[:10])
    np.testing.assert_array_equal(modules.PositionalEncoding(16, 20, batch_first=True)(x)[1], pe[:10])
    learned = modules.PositionalEncoding(16, 20, learned=True, batch_first=True, key=random.key(0))
    assert learned.weight.shape == (20, 16)
    g = fg.grad(lambda m: m(x).sum())(learned)
    np.testing.assert_array_equal(g.weight[:10], 2.0)
    np.testing.assert_array_equal(g.weight[10:], 0.0)
    with pytest.raises(ShapeError, match="PositionalEncoding"):
        modules.PositionalEncoding(16, 5, batch_first=True)(x)


def test_masks_helpers():
    np.testing.assert_array_equal(nn.causal_mask(3), [[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(nn.padding_mask([1, 3], 3), [[1, 0, 0], [1, 1, 1]])


def test_bad_inputs_are_clear_errors():
    with pytest.raises(FuncgradValueError, match="divisible"):
        modules.MultiheadAttention(10, 3, key=random.key(0))
    with pytest.raises(FuncgradValueError, match="divisible"):
        nn.TransformerEncoderLayer(3).init(random.key(0), (2, 5, 8))
    with pytest.raises(ShapeError, match="same d"):
        nn.dot_product_attention(np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 4)))
    mha = modules.MultiheadAttention(8, 2, batch_first=True, key=random.key(0))
    x = np.ones((2, 5, 8), np.float32)
    with pytest.raises(ShapeError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=np.zeros((5, 2), bool))
    with pytest.raises(FuncgradValueError, match="activation"):
        modules.TransformerEncoderLayer(8, 2, activation="swishy", key=random.key(0))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="PyTorch is not installed (optional: compared with torch.nn when present)")
def test_same_outputs_as_pytorch():
    import torch

    torch.manual_seed(0)
    ours = modules.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True,
                                           activation="gelu", key=random.key(0), dtype=np.float64)
    theirs = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True,
                                              activation="gelu", dtype=torch.float64).eval()
    named = {"self_attn.in_proj_weight": ours.self_attn.in_proj_weight,
             "self_attn.in_proj_bias": ours.self_attn.in_proj_bias,
             "self_attn.out_proj.weight": ours.self_attn.out_proj.weight,
             "self_attn.out_proj.bias": ours.self_attn.out_proj.bias,
             "linear1.weight": ours.linear1.weight, "linear1.bias": ours.linear1.bias,
             "linear2.weight": ours.linear2.weight, "linear2.bias": ours.linear2.bias,
             "norm1.weight": ours.norm1.weight, "norm1.bias": ours.norm1.bias,
             "norm2.weight": ours.norm2.weight, "norm2.bias": ours.norm2.bias}
    theirs.load_state_dict({n: torch.tensor(np.asarray(v)) for n, v in named.items()})
    x = RNG.normal(size=(2, 5, 8))
    pad = np.zeros((2, 5), bool)
    pad[1, 3:] = True
    with torch.no_grad():
        want = theirs(torch.tensor(x), src_key_padding_mask=torch.tensor(pad)).numpy()
    got = np.asarray(ours(x, src_key_padding_mask=pad))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got[1, :3], want[1, :3], rtol=1e-10, atol=1e-10)
