"""PyTorch-style attention modules: ``MultiheadAttention``, ``TransformerEncoderLayer``,
``TransformerDecoderLayer``, ``PositionalEncoding``, over the math of :mod:`.attention`.

Names, arguments, parameter layouts and masks follow ``torch.nn``: sequences are
``(time, batch, features)`` unless ``batch_first=True``; ``attn_mask`` / ``tgt_mask`` are
``(Tq, Tk)`` (or ``(batch * heads, Tq, Tk)``) with booleans True where attention is *not*
allowed, or floats added to the scores; ``key_padding_mask`` is ``(batch, Tk)``, True at padding.
(The functional :func:`~funcgrad.nn.dot_product_attention` takes the opposite boolean: True
where allowed, as JAX and ``torch.nn.functional.scaled_dot_product_attention`` do.)
Dropout needs ``train=True`` and a PRNG key; ``MultiheadAttention`` takes it as
``dropout_key`` because ``key`` is its key sequence, as in PyTorch.

>>> import numpy as np
>>> from funcgrad import random
>>> from funcgrad.nn import modules as nn
>>> layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True, key=random.key(0))
>>> layer(np.ones((2, 5, 16), np.float32)).shape
(2, 5, 16)
"""
from __future__ import annotations

import numpy as np

from .. import numpy as fnp
from .. import random
from ..errors import FuncgradTypeError, FuncgradValueError, ShapeError, at_user_line
from .attention import (
    activation_fn,
    attention_params,
    dropout_keys,
    dropped,
    feed_forward,
    multi_head_attention,
    residual_blocks,
    sinusoidal_positions,
)
from .layers import check_rate
from .module import Module
from .modules import LayerNorm, Linear

__all__ = ["MultiheadAttention", "PositionalEncoding", "TransformerDecoderLayer", "TransformerEncoderLayer"]


def _torch_masks(attn_mask, key_padding_mask, batch, num_heads, tq, tk):
    """PyTorch's masks as ``(mask, bias)`` for ``(B, heads, Tq, Tk)`` scores: boolean masks
    (True = not allowed) become an allowed-mask, float masks a bias."""
    mask = bias = None
    if attn_mask is not None:
        m = fnp.asarray(attn_mask)
        if m.ndim == 3:
            m = fnp.reshape(m, (batch, num_heads, tq, tk))
        elif m.ndim != 2:
            raise ShapeError(at_user_line(
                f"attn_mask must be (Tq, Tk) or (batch * heads, Tq, Tk), got shape {tuple(m.shape)}"))
        if np.dtype(m.dtype) == np.bool_:
            mask = fnp.logical_not(m)
        else:
            bias = m
    if key_padding_mask is not None:
        pad = fnp.asarray(key_padding_mask)
        if tuple(pad.shape) != (batch, tk):
            raise ShapeError(at_user_line(
                f"key_padding_mask must be (batch, Tk) = {(batch, tk)}, got shape {tuple(pad.shape)}"))
        if np.dtype(pad.dtype) == np.bool_:
            keep = fnp.logical_not(pad)[:, None, None, :]
            mask = keep if mask is None else fnp.logical_and(mask, keep)
        else:
            extra = pad[:, None, None, :]
            bias = extra if bias is None else bias + extra
    return mask, bias


def _batch_first(x, batch_first):
    x = fnp.asarray(x)
    if x.ndim != 3:
        raise ShapeError(at_user_line(f"expected inputs of rank 3 (time, batch, features), got shape {tuple(x.shape)}"))
    return x if batch_first else fnp.swapaxes(x, 0, 1)


class MultiheadAttention(Module):
    """``torch.nn.MultiheadAttention``: ``in_proj_weight`` ``(3E, E)``, ``in_proj_bias``,
    ``out_proj`` (a :class:`Linear`). ``mha(query, key, value)`` returns ``(output, weights)``:
    the weights averaged over heads (``need_weights=True``, PyTorch's default) or None."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False, *, key,
                 dtype=np.float32):
        if embed_dim % num_heads:
            raise FuncgradValueError(at_user_line(
                f"MultiheadAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}"))
        check_rate("MultiheadAttention", dropout)
        ka, ko = random.split(key)
        p = attention_params(ka, embed_dim, bias, dtype)
        self.in_proj_weight, self.in_proj_bias = p["in_weight"], p["in_bias"]
        self.out_proj = Linear(embed_dim, embed_dim, bias, key=ko, dtype=dtype)
        if bias:
            self.out_proj = self.out_proj.replace(bias=np.zeros(embed_dim, dtype))
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.dropout, self.batch_first = float(dropout), bool(batch_first)

    def __call__(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                 is_causal=False, *, dropout_key=None, train=False):
        q = _batch_first(query, self.batch_first)
        same = key is query and value is query
        k = q if same else _batch_first(key, self.batch_first)
        v = q if same else (k if value is key else _batch_first(value, self.batch_first))
        mask, bias = _torch_masks(attn_mask, key_padding_mask, q.shape[0], self.num_heads, q.shape[1], k.shape[1])
        out = multi_head_attention(q, k, v, self.in_proj_weight, self.in_proj_bias, self.out_proj.weight,
                                   self.out_proj.bias, self.num_heads, mask=mask, bias=bias, is_causal=is_causal,
                                   dropout_rate=self.dropout, rng=dropout_key, train=train,
                                   need_weights=need_weights)
        out, weights = out if need_weights else (out, None)
        return (out if self.batch_first else fnp.swapaxes(out, 0, 1)), weights


class _TransformerLayer(Module):
    """PyTorch's constructor of both layers; ``_attentions`` names their attention modules."""
    _attentions = ()

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True, *, key,
                 dtype=np.float32):
        check_rate(type(self).__name__, dropout)
        activation_fn(activation)  # checked now
        keys = random.split(key, len(self._attentions) + 2)
        for name, k in zip(self._attentions, keys):
            setattr(self, name, MultiheadAttention(d_model, nhead, dropout, bias, batch_first=True, key=k, dtype=dtype))
        self.linear1 = Linear(d_model, dim_feedforward, bias, key=keys[-2], dtype=dtype)
        self.linear2 = Linear(dim_feedforward, d_model, bias, key=keys[-1], dtype=dtype)
        for i in range(1, len(self._attentions) + 2):
            setattr(self, f"norm{i}", LayerNorm(d_model, layer_norm_eps, bias=bias, dtype=dtype))
        self.activation, self.dropout = activation, float(dropout)
        self.batch_first, self.norm_first = bool(batch_first), bool(norm_first)
        self.nhead = int(nhead)

    def _attention(self, mha, x, memory, mask, padding, is_causal, rng, train):
        out, _ = mha(x, memory, memory, key_padding_mask=padding, need_weights=False, attn_mask=mask,
                     is_causal=is_causal, dropout_key=rng, train=train)
        return out

    def _ff(self, rngs, train):
        return dropped(lambda x: feed_forward(x, self.linear1.weight, self.linear1.bias, self.linear2.weight,
                                              self.linear2.bias, activation_fn(self.activation), self.dropout,
                                              rngs[0], train), self.dropout, rngs[1], train)

    def _dropped(self, f, rng, train):
        return dropped(f, self.dropout, rng, train)


class TransformerEncoderLayer(_TransformerLayer):
    """``torch.nn.TransformerEncoderLayer``: self-attention and a feed-forward block
    (``linear1``, ``activation``, ``linear2``), each with dropout, a residual connection and
    layer norm (``norm_first``: pre-norm). ``activation``: ``"relu"``, ``"gelu"`` or a function."""

    _attentions = ("self_attn",)

    def __call__(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False, *, key=None, train=False):
        x = _batch_first(src, self.batch_first)
        k = dropout_keys(key, 4, train)

        def attend(h):
            return self._attention(self.self_attn, h, h, src_mask, src_key_padding_mask, is_causal, k[0], train)

        out = residual_blocks(x, [(self._dropped(attend, k[1], train), self.norm1),
                                  (self._ff(k[2:], train), self.norm2)], self.norm_first)
        return out if self.batch_first else fnp.swapaxes(out, 0, 1)


class TransformerDecoderLayer(_TransformerLayer):
    """``torch.nn.TransformerDecoderLayer``: self-attention over the target (causal with
    ``tgt_is_causal=True`` or a ``tgt_mask``), attention over ``memory`` (the encoder's output)
    and a feed-forward block, each with dropout, a residual connection and layer norm."""

    _attentions = ("self_attn", "multihead_attn")

    def __call__(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                 memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False, *, key=None,
                 train=False):
        x = _batch_first(tgt, self.batch_first)
        mem = _batch_first(memory, self.batch_first)
        k = dropout_keys(key, 6, train)

        def own(h):
            return self._attention(self.self_attn, h, h, tgt_mask, tgt_key_padding_mask, tgt_is_causal, k[0], train)

        def cross(h):
            return self._attention(self.multihead_attn, h, mem, memory_mask, memory_key_padding_mask,
                                   memory_is_causal, k[2], train)

        out = residual_blocks(x, [(self._dropped(own, k[1], train), self.norm1),
                                  (self._dropped(cross, k[3], train), self.norm2),
                                  (self._ff(k[4:], train), self.norm3)], self.norm_first)
        return out if self.batch_first else fnp.swapaxes(out, 0, 1)


class PositionalEncoding(Module):
    """Adds positions to ``(time, batch, features)`` inputs (``(batch, time, features)`` with
    ``batch_first``): the fixed sinusoids of the Transformer paper, or with ``learned=True`` a
    trained ``(max_len, d_model)`` table (``weight``, N(0, 0.02^2); needs ``key``)."""

    def __init__(self, d_model, max_len=5000, learned=False, batch_first=False, *, key=None, dtype=np.float32):
        if learned and key is None:
            raise FuncgradTypeError(at_user_line("PositionalEncoding(learned=True) needs key=funcgrad.random.key(...)"))
        self.weight = (0.02 * np.asarray(random.normal(key, (int(max_len), int(d_model)), dtype))) if learned else None
        self.d_model, self.max_len, self.batch_first = int(d_model), int(max_len), bool(batch_first)

    def __call__(self, x, *, key=None, train=False):
        x = _batch_first(x, self.batch_first)
        t = x.shape[1]
        if t > self.max_len or x.shape[2] != self.d_model:
            raise ShapeError(at_user_line(
                f"PositionalEncoding: inputs of {t} steps and {x.shape[2]} features; this one holds "
                f"{self.max_len} steps of {self.d_model}"))
        table = self.weight[:t] if self.weight is not None else sinusoidal_positions(t, self.d_model, x.dtype)
        out = x + table
        return out if self.batch_first else fnp.swapaxes(out, 0, 1)
