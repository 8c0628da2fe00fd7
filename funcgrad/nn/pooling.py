"""Convolution and pooling on NHWC images (functional forms of the layers).

>>> import numpy as np
>>> x = np.arange(16.0).reshape(1, 4, 4, 1)
>>> max_pool(x, (2, 2))[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]])
"""
from __future__ import annotations

import numpy as np

from .. import numpy as fnp
from ..errors import ShapeError, at_user_line
from ..numpy._util import promote_float
from ..primitives import pad
from ..primitives.conv import conv2d, normalize_pair, out_size, padding_pairs

__all__ = ["avg_pool", "conv2d", "max_pool", "pool_output_shape"]


def pool_output_shape(input_shape, window, strides, padding):
    """Output shape (N, OH, OW, C) of a pooling or convolution window over NHWC inputs."""
    n, h, w, c = input_shape
    pads = padding_pairs((h, w), window, strides, padding)
    oh = out_size(h, window[0], strides[0], *pads[0])
    ow = out_size(w, window[1], strides[1], *pads[1])
    if oh < 1 or ow < 1:
        raise ShapeError(at_user_line(f"a {window[0]}x{window[1]} window does not fit inputs of shape "
                                      f"{tuple(input_shape)} with padding {padding!r}"))
    return (n, oh, ow, c)


class _Pooling:
    """The geometry of one pooling call: window, strides, padding widths, output size."""

    def __init__(self, x, window_shape, strides, padding, op):
        x, = promote_float(x)
        if x.ndim != 4:
            raise ShapeError(at_user_line(f"{op}: expected NHWC inputs (4-D), got shape {tuple(x.shape)}"))
        self.x = x
        self.window = normalize_pair(window_shape, "window_shape")
        self.strides = self.window if strides is None else normalize_pair(strides, "strides")
        pads = padding_pairs(x.shape[1:3], self.window, self.strides, padding)
        self.widths = ((0, 0),) + pads + ((0, 0),)
        self.padded = any(v for p in pads for v in p)
        _, oh, ow, _ = pool_output_shape(x.shape, self.window, self.strides, padding)
        self.out_hw = (oh, ow)

    def tiles(self):
        """Non-overlapping windows that tile the image exactly, as a reshape (or None)."""
        n, h, w, c = self.x.shape
        kh, kw = self.window
        if self.window != self.strides or self.padded or h % kh or w % kw:
            return None
        return fnp.reshape(self.x, (n, h // kh, kh, w // kw, kw, c))

    def windows(self, xp):
        """Every window offset's strided slice of the padded images (KH * KW arrays)."""
        (kh, kw), (sh, sw), (oh, ow) = self.window, self.strides, self.out_hw
        return [xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
                for i in range(kh) for j in range(kw)]

    def border(self, inside, outside):
        """A constant (1, H+pads, W+pads, 1): ``inside`` on the image, ``outside`` on the padding."""
        img = np.full((1,) + tuple(self.x.shape[1:3]) + (1,), inside, self.x.dtype)
        return np.pad(img, self.widths, constant_values=outside)


def max_pool(x, window_shape, strides=None, padding="VALID"):
    """Maximum over each window of NHWC images (strides default to the window)."""
    geo = _Pooling(x, window_shape, strides, padding, "max_pool")
    tiles = geo.tiles()
    if tiles is not None:
        return fnp.max(tiles, axis=(2, 4))
    xp = pad(geo.x, geo.widths) + geo.border(0.0, -np.inf) if geo.padded else geo.x
    return fnp.max(fnp.stack(geo.windows(xp), axis=-1), axis=-1)


def avg_pool(x, window_shape, strides=None, padding="VALID"):
    """Mean over each window of NHWC images; with 'SAME' padding the mean is over the
    in-bounds entries only."""
    geo = _Pooling(x, window_shape, strides, padding, "avg_pool")
    tiles = geo.tiles()
    if tiles is not None:
        return fnp.mean(tiles, axis=(2, 4))
    total = None
    for win in geo.windows(pad(geo.x, geo.widths)):
        total = win if total is None else total + win
    return total / sum(geo.windows(geo.border(1.0, 0.0)))
