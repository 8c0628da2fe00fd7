"""``funcgrad.nn``: stateless neural-network layers, activations, losses, initializers.

A layer is a pair ``(init, apply)``; models are built with ``serial`` and
``parallel`` and their params are ordinary pytrees. The same layers as PyTorch-style
modules (immutable pytrees: ``nn.Module``, ``nn.Linear``, ``nn.Sequential``, ``nn.MSELoss``
...) are in ``funcgrad.nn.modules``; the names that do not collide with an ``(init, apply)``
layer are here too (``Dropout``, ``LayerNorm``, ``Embedding``, ``RNN``, ``GRU``, ``LSTM``,
``Tanh``, ``Sigmoid``, ``Softmax``, ``LogSoftmax``, ``Softplus``, ``Flatten``, ``PositionalEncoding``,
``TransformerEncoderLayer`` and ``TransformerDecoderLayer`` here are the
``(init, apply)`` layers: write ``from funcgrad.nn import modules as nn`` in PyTorch-style code).

>>> import numpy as np
>>> import funcgrad as fg
>>> from funcgrad import nn, random
>>> init, apply = nn.serial(nn.Dense(32), nn.Relu, nn.Dense(10))
>>> _, params = init(random.key(0), (-1, 64))
>>> x, y = np.ones((8, 64), np.float32), np.zeros(8, np.int64)
>>> loss = lambda p: nn.softmax_cross_entropy(apply(p, x), y)
>>> grads = fg.grad(loss)(params)
"""
from . import (
    initializers,  # noqa: F401
    modules,  # noqa: F401
)
from .activations import (  # noqa: F401
    elu,
    gelu,
    leaky_relu,
    log_sigmoid,
    log_softmax,
    logsumexp,
    one_hot,
    relu,
    relu6,
    sigmoid,
    silu,
    softmax,
    softplus,
    swish,
    tanh,
)
from .attention import (  # noqa: F401
    MultiHeadAttention,
    PositionalEncoding,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    causal_mask,
    dot_product_attention,
    multi_head_attention,
    padding_mask,
    sinusoidal_positions,
)
from .combinators import parallel, serial  # noqa: F401
from .layers import (  # noqa: F401
    AvgPool,
    Conv,
    Dense,
    Dropout,
    Elu,
    Embedding,
    Flatten,
    Gelu,
    Lambda,
    Layer,
    LayerNorm,
    LeakyRelu,
    LogSoftmax,
    MaxPool,
    Relu,
    Sigmoid,
    Silu,
    Softmax,
    Softplus,
    Tanh,
)
from .losses import binary_cross_entropy, l2_penalty, mse, softmax_cross_entropy  # noqa: F401
from .module import Module, combine, count_params, is_array, partition, tree_at  # noqa: F401
from .modules import (  # noqa: F401
    ELU,
    GELU,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    BCEWithLogitsLoss,
    Conv1d,
    Conv2d,
    CrossEntropyLoss,
    GRUCell,
    Identity,
    LeakyReLU,
    Linear,
    LSTMCell,
    MaxPool1d,
    MaxPool2d,
    MSELoss,
    MultiheadAttention,
    ReLU,
    RNNCell,
    Sequential,
    SiLU,
)
from .pooling import avg_pool, conv2d, max_pool  # noqa: F401
from .recurrent import GRU, LSTM, RNN  # noqa: F401
