"""Attention and the Transformer's blocks: the math, and its ``(init, apply)`` layers.

:func:`dot_product_attention` is ``softmax(q k^T * scale + bias, masked) v`` on the last two
axes (any leading axes are batch axes, heads included). Masks are boolean, ``True`` where a query
may attend to a key (as in JAX and PyTorch's ``scaled_dot_product_attention``). The softmax
subtracts each row's largest unmasked score; a row with no key to attend to (fully masked) gives
an output of 0 and gradients of 0, never NaN.

Under ``jit`` the scale is applied to ``q`` (a ``(T, d)`` array, not ``(T, T)``), the scores are
one batched product, and the chain bias, mask, row maximum, ``exp``, row sum and normalization is
one fused kernel writing the probabilities; besides the scores and the probabilities it keeps one
``(T, T)`` buffer, the exponentials between the row sum and the normalization. The
probabilities times ``v`` is a second batched product.

The module versions (``nn.modules.MultiheadAttention``, ``TransformerEncoderLayer``, ...) call
the same functions: :func:`multi_head_attention`, :func:`residual_blocks`, :func:`feed_forward`.

>>> import numpy as np
>>> q = np.ones((2, 3, 4), np.float32)
>>> dot_product_attention(q, q, q, is_causal=True).shape
(2, 3, 4)
"""
from __future__ import annotations

import math

import numpy as np

from .. import numpy as fnp
from .. import random
from ..errors import FuncgradValueError, ShapeError, at_user_line
from ..primitives import stop_gradient
from . import activations as act
from .layers import Layer, check_rate, dense, dropout, layer_norm, linear_params, torch_uniform

__all__ = [
    "MultiHeadAttention",
    "PositionalEncoding",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
    "causal_mask",
    "dot_product_attention",
    "feed_forward",
    "multi_head_attention",
    "padding_mask",
    "residual_blocks",
    "sinusoidal_positions",
]


def causal_mask(query_length, key_length=None):
    """``(Tq, Tk)`` booleans, True where key ``j <= i`` for query ``i`` (top-left aligned)."""
    key_length = query_length if key_length is None else key_length
    return np.tril(np.ones((int(query_length), int(key_length)), bool))


def padding_mask(lengths, max_length):
    """``(B, T)`` booleans, True at the first ``lengths[b]`` positions of each row (the real
    tokens). As an attention mask over keys, index it ``mask[:, None, None, :]`` for
    ``(B, heads, Tq, Tk)`` scores, or ``mask[:, None, :]`` for ``(B, Tq, Tk)``."""
    return np.arange(int(max_length))[None, :] < np.asarray(lengths).reshape(-1, 1)


def sinusoidal_positions(length, d_model, dtype=np.float32):
    """The Transformer's fixed positional encodings, ``(length, d_model)``: ``sin`` on even
    features and ``cos`` on odd ones, wavelengths from 2*pi to 10000*2*pi."""
    pos = np.arange(int(length))[:, None]
    rate = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    out = np.zeros((int(length), int(d_model)))
    out[:, 0::2] = np.sin(pos * rate)
    out[:, 1::2] = np.cos(pos * rate[: d_model // 2])
    return out.astype(dtype)


def _scores_mask(mask, is_causal, tq, tk):
    if is_causal:
        causal = causal_mask(tq, tk)
        mask = causal if mask is None else fnp.logical_and(mask, causal)
    return mask


def attention_weights(query, key, mask=None, bias=None, is_causal=False, scale=None):
    """The probabilities ``softmax(q k^T * scale + bias)`` over keys, 0 where masked; rows
    with nothing to attend to are all 0."""
    query, key = fnp.asarray(query), fnp.asarray(key)
    if query.ndim < 2 or key.ndim < 2 or query.shape[-1] != key.shape[-1]:
        raise ShapeError(at_user_line(
            f"dot_product_attention: query {tuple(query.shape)} and key {tuple(key.shape)} must be "
            "(..., T, d) with the same d"))
    tq, tk = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = fnp.matmul(query * np.asarray(scale, query.dtype), fnp.swapaxes(key, -1, -2))  # scaled (T, d), not (T, T)
    if bias is not None:
        scores = scores + bias
    mask = _scores_mask(mask, is_causal, tq, tk)
    top = stop_gradient(fnp.max(scores if mask is None else fnp.where(mask, scores, -np.inf), axis=-1,
                                keepdims=True))
    top = fnp.where(fnp.isfinite(top), top, 0.0)  # a fully masked row: every exp below is 0
    shifted = scores - top
    # masked out before exp (exp(-inf) = 0, with a zero derivative): no overflow, no 0 * inf
    e = fnp.exp(shifted if mask is None else fnp.where(mask, shifted, -np.inf))
    total = fnp.sum(e, axis=-1, keepdims=True)
    # times the rows' reciprocals: the gradient needs only e and them, no third (T, T) array
    return e * (1.0 / fnp.where(total > 0, total, 1.0))


def dot_product_attention(query, key, value, mask=None, bias=None, is_causal=False, scale=None):
    """``softmax(query @ key^T * scale + bias) @ value`` over the last two axes.

    ``query`` is ``(..., Tq, d)``, ``key`` ``(..., Tk, d)``, ``value`` ``(..., Tk, dv)``; the
    leading axes broadcast (batch, heads). ``mask``: booleans broadcastable to ``(..., Tq, Tk)``,
    True where attention is allowed; ``bias``: added to the scores; ``is_causal``: query ``i``
    sees keys ``j <= i``; ``scale`` defaults to ``1 / sqrt(d)``. A query row with no allowed key
    gives 0 (its gradients are 0 too)."""
    weights = attention_weights(query, key, mask, bias, is_causal, scale)
    return fnp.matmul(weights, value)


def _heads(x, num_heads):
    """``(B, T, E)`` -> ``(B, heads, T, E / heads)``."""
    b, t, e = x.shape
    return fnp.transpose(fnp.reshape(x, (b, t, num_heads, e // num_heads)), (0, 2, 1, 3))


def _project(x, w, b):
    """``x @ w.T + b`` for ``(B, T, E)`` inputs as one 2-D product."""
    bt = x.shape[0] * x.shape[1]
    y = dense(fnp.reshape(x, (bt, x.shape[2])), w, b, out_in=True)
    return fnp.reshape(y, (x.shape[0], x.shape[1], w.shape[0]))


def multi_head_attention(query, key, value, in_weight, in_bias, out_weight, out_bias, num_heads, *,
                         mask=None, bias=None, is_causal=False, dropout_rate=0.0, rng=None, train=False,
                         need_weights=False):
    """Multi-head attention of batch-first ``(B, Tq, E)`` queries over ``(B, Tk, E)`` keys and
    values, with PyTorch's parameter layout: ``in_weight`` ``(3E, E)`` (query, key and value
    projections stacked), ``in_bias`` ``(3E,)`` or None, ``out_weight`` ``(E, E)``, ``out_bias``.
    ``mask`` and ``bias`` broadcast to ``(B, heads, Tq, Tk)`` (mask True where allowed).
    Returns the ``(B, Tq, E)`` output, and the weights averaged over heads when ``need_weights``."""
    query = fnp.asarray(query)
    e = query.shape[-1]
    if e % num_heads:
        raise FuncgradValueError(at_user_line(
            f"MultiHeadAttention: embed_dim {e} is not divisible by num_heads {num_heads}"))

    # three products with slices of the weight: the slices' gradients are (E, E) scatters, where
    # slicing one (B, T, 3E) product would scatter three (B, T, E) cotangents into zeros
    q, k, v = (_heads(_project(fnp.asarray(x), in_weight[i * e:(i + 1) * e],
                               None if in_bias is None else in_bias[i * e:(i + 1) * e]), num_heads)
               for i, x in enumerate((query, key, value)))
    weights = attention_weights(q, k, mask, bias, is_causal)
    out = fnp.matmul(dropout(weights, dropout_rate, rng, train), v)  # (B, h, Tq, d)
    b, _, tq, _ = out.shape
    out = _project(fnp.reshape(fnp.transpose(out, (0, 2, 1, 3)), (b, tq, e)), out_weight, out_bias)
    return (out, fnp.mean(weights, axis=1)) if need_weights else out


def feed_forward(x, w1, b1, w2, b2, activation, dropout_rate=0.0, rng=None, train=False):
    """``linear2(dropout(activation(linear1(x))))`` on ``(B, T, E)``, weights ``(out, in)``."""
    h = dropout(activation(_project(x, w1, b1)), dropout_rate, rng, train)
    return _project(h, w2, b2)


def residual_blocks(x, blocks, norm_first):
    """The Transformer's sublayers with residual connections: for each ``(sublayer, norm)``,
    ``x + sublayer(norm(x))`` (``norm_first``, pre-norm) or ``norm(x + sublayer(x))`` (post-norm,
    the original)."""
    for sublayer, norm in blocks:
        x = x + sublayer(norm(x)) if norm_first else norm(x + sublayer(x))
    return x


ACTIVATIONS = {"relu": act.relu, "gelu": lambda x: act.gelu(x, approximate=False),
               "gelu_tanh": act.gelu}


def activation_fn(activation):
    """``"relu"``, ``"gelu"`` (exact, PyTorch's default form) or ``"gelu_tanh"``, or a function."""
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise FuncgradValueError(at_user_line(
            f"activation must be one of {', '.join(ACTIVATIONS)} or a function, got {activation!r}"))
    return ACTIVATIONS[activation]


# -- initialization shared by both faces ---------------------------------------------------------------------
def attention_params(key, embed_dim, bias=True, dtype=np.float32):
    """PyTorch's initialization of ``MultiheadAttention``: the stacked input projection Xavier
    uniform, the output projection as a ``Linear``, biases 0."""
    k1, k2 = random.split(key)
    e = int(embed_dim)
    zeros = (lambda n: np.zeros(n, dtype)) if bias else (lambda n: None)
    return {"in_weight": torch_uniform(k1, (3 * e, e), math.sqrt(6.0 / (4 * e)), dtype), "in_bias": zeros(3 * e),
            "out_weight": torch_uniform(k2, (e, e), 1.0 / math.sqrt(e), dtype), "out_bias": zeros(e)}


# -- the (init, apply) layers ----------------------------------------------------------------------------------
def dropout_keys(key, n, train):
    """``n`` keys for the dropout sites of a block when training with a key, else Nones (and
    ``dropout`` reports a missing key where one is needed)."""
    return random.split(key, n) if train and key is not None else [None] * n


def _attend(p, num_heads, dropout_rate, causal):
    def attend(x, memory=None, rng=None, train=False, mask=None):
        kv = x if memory is None else memory
        return multi_head_attention(x, kv, kv, p["in_weight"], p["in_bias"], p["out_weight"], p["out_bias"],
                                    num_heads, mask=mask, is_causal=causal and memory is None,
                                    dropout_rate=dropout_rate, rng=rng, train=train)
    return attend


def _check_model_shape(name, shape, num_heads):
    if len(shape) != 3:
        raise ShapeError(at_user_line(f"{name}: expected inputs (batch, time, features), got shape {tuple(shape)}"))
    if shape[-1] % num_heads:
        raise FuncgradValueError(at_user_line(
            f"{name}: features {shape[-1]} are not divisible by num_heads {num_heads}"))


def MultiHeadAttention(num_heads: int, causal: bool = False, dropout: float = 0.0) -> Layer:
    """Self-attention over ``(batch, time, features)`` inputs (params as
    :func:`attention_params`); ``apply(..., mask=None)`` takes a boolean mask broadcastable to
    ``(batch, heads, time, time)``, True where allowed; ``causal``: each position attends to
    itself and earlier ones only."""
    check_rate("MultiHeadAttention", dropout)

    def init(key, input_shape):
        _check_model_shape("MultiHeadAttention", input_shape, num_heads)
        return tuple(input_shape), attention_params(key, input_shape[-1])

    def apply(params, x, *, key=None, train=False, mask=None):
        return _attend(params, num_heads, dropout, causal)(fnp.asarray(x), rng=key, train=train, mask=mask)

    return Layer(init, apply)


def _norm_params(e, dtype=np.float32):
    return {"scale": np.ones(e, dtype), "bias": np.zeros(e, dtype)}


def _norm(p, epsilon):
    return lambda x: layer_norm(x, p["scale"], p["bias"], epsilon)


def _ff_params(key, e, hidden):
    k1, k2 = random.split(key)
    (w1, b1), (w2, b2) = linear_params(k1, e, hidden), linear_params(k2, hidden, e)
    return {"w1": w1, "b1": b1, "w2": w2, "b2": b2}


def _ff(p, activation, rate, rng, train):
    return lambda x: feed_forward(x, p["w1"], p["b1"], p["w2"], p["b2"], activation, rate, rng, train)


def dropped(f, rate, rng, train):
    """``f`` followed by dropout at ``rate`` (a Transformer sublayer's output dropout)."""
    return lambda x: dropout(f(x), rate, rng, train)


def TransformerEncoderLayer(num_heads: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                            activation="relu", norm_first: bool = False, causal: bool = False,
                            epsilon: float = 1e-5) -> Layer:
    """Self-attention and a feed-forward block, each with a residual connection and layer
    norm (post-norm unless ``norm_first``), on ``(batch, time, features)``; PyTorch's
    ``TransformerEncoderLayer`` with ``batch_first=True``. ``apply(..., mask=None)`` as in
    :func:`MultiHeadAttention`."""
    check_rate("TransformerEncoderLayer", dropout)
    fn = activation_fn(activation)

    def init(key, input_shape):
        _check_model_shape("TransformerEncoderLayer", input_shape, num_heads)
        e = input_shape[-1]
        ka, kf = random.split(key)
        return tuple(input_shape), {"attn": attention_params(ka, e), "ff": _ff_params(kf, e, dim_feedforward),
                                    "norm1": _norm_params(e), "norm2": _norm_params(e)}

    def apply(params, x, *, key=None, train=False, mask=None):
        k = dropout_keys(key, 4, train)
        attend = _attend(params["attn"], num_heads, dropout, causal)
        blocks = [(dropped(lambda h: attend(h, rng=k[0], train=train, mask=mask), dropout, k[1], train),
                   _norm(params["norm1"], epsilon)),
                  (dropped(_ff(params["ff"], fn, dropout, k[2], train), dropout, k[3], train),
                   _norm(params["norm2"], epsilon))]
        return residual_blocks(fnp.asarray(x), blocks, norm_first)

    return Layer(init, apply)


def TransformerDecoderLayer(num_heads: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                            activation="relu", norm_first: bool = False, epsilon: float = 1e-5) -> Layer:
    """Causal self-attention, attention over the encoder's output (``memory``) and a
    feed-forward block, each with a residual connection and layer norm; inputs
    ``(target, memory)``, both ``(batch, time, features)``. ``apply(..., memory_mask=None)``:
    booleans broadcastable to ``(batch, heads, target time, memory time)``, True where allowed
    (e.g. ``padding_mask(lengths, T)[:, None, None, :]``)."""
    check_rate("TransformerDecoderLayer", dropout)
    fn = activation_fn(activation)

    def init(key, input_shape):
        tgt, _ = input_shape  # (target shape, memory shape)
        _check_model_shape("TransformerDecoderLayer", tgt, num_heads)
        e = tgt[-1]
        ks, kc, kf = random.split(key, 3)
        return tuple(tgt), {"self_attn": attention_params(ks, e), "cross_attn": attention_params(kc, e),
                            "ff": _ff_params(kf, e, dim_feedforward),
                            **{f"norm{i}": _norm_params(e) for i in (1, 2, 3)}}

    def apply(params, inputs, *, key=None, train=False, memory_mask=None):
        tgt, memory = (fnp.asarray(v) for v in inputs)
        k = dropout_keys(key, 6, train)
        own = _attend(params["self_attn"], num_heads, dropout, True)
        cross = _attend(params["cross_attn"], num_heads, dropout, False)
        blocks = [(dropped(lambda h: own(h, rng=k[0], train=train), dropout, k[1], train),
                   _norm(params["norm1"], epsilon)),
                  (dropped(lambda h: cross(h, memory, rng=k[2], train=train, mask=memory_mask), dropout, k[3],
                            train), _norm(params["norm2"], epsilon)),
                  (dropped(_ff(params["ff"], fn, dropout, k[4], train), dropout, k[5], train),
                   _norm(params["norm3"], epsilon))]
        return residual_blocks(tgt, blocks, norm_first)

    return Layer(init, apply)


def PositionalEncoding(max_length: int, learned: bool = False) -> Layer:
    """Adds position information to ``(batch, time, features)`` inputs: the fixed sinusoids of
    :func:`sinusoidal_positions`, or (``learned``) a trained ``(max_length, features)`` table
    initialized N(0, 0.02^2)."""

    def init(key, input_shape):
        if len(input_shape) != 3 or input_shape[1] > max_length:
            raise ShapeError(at_user_line(
                f"PositionalEncoding: expected (batch, time <= {max_length}, features), got {tuple(input_shape)}"))
        e = input_shape[-1]
        table = 0.02 * np.asarray(random.normal(key, (max_length, e), np.float32)) if learned else ()
        return tuple(input_shape), table

    def apply(params, x, *, key=None, train=False):
        x = fnp.asarray(x)
        t, e = x.shape[1], x.shape[2]
        table = params[:t] if learned else sinusoidal_positions(t, e, x.dtype)
        return x + table

    return Layer(init, apply)
