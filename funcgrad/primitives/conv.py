"""2-D convolution (NHWC inputs, HWIO kernels) as three bilinear primitives.

``conv2d(x, k)`` is the forward correlation; ``conv2d_input_grad(g, k)`` and
``conv2d_kernel_grad(x, g)`` are its adjoints in each operand. The three close
under differentiation (the derivative of each is the others), so every order of
``grad``/``jvp`` works. Implementations copy image patches in cache-sized
chunks of the batch and hand them to BLAS (``np.matmul``); no Python loop runs
over pixels.

>>> import numpy as np
>>> x = np.ones((1, 4, 4, 1), np.float32); k = np.ones((3, 3, 1, 2), np.float32)
>>> conv2d(x, k, (1, 1), "SAME")[0, :, :, 0]
array([[4., 6., 6., 4.],
       [6., 9., 9., 6.],
       [6., 9., 9., 6.],
       [4., 6., 6., 4.]], dtype=float32)
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..core.avals import ShapedArray
from ..core.primitive import Primitive
from ..errors import FuncgradTypeError, FuncgradValueError, ShapeError, at_user_line
from ._rules import move_batch_to_front, shape_of
from .structural import concatenate, getitem, reshape, transpose

_CHUNK_BYTES = 1 << 22  # patch rows copied per BLAS call (4 MiB: they stay in cache for the matmul)


# -- shapes and padding -----------------------------------------------------------------------
def out_size(size, k, stride, lo, hi):
    return (size + lo + hi - k) // stride + 1


def padding_pairs(in_hw, window, strides, padding):
    """Explicit ``((top, bottom), (left, right))`` padding from 'SAME', 'VALID' or pairs."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0), (0, 0))
        if mode == "SAME":
            pairs = []
            for n, k, s in zip(in_hw, window, strides):
                total = max((-(-n // s) - 1) * s + k - n, 0)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise FuncgradValueError(at_user_line(f"conv: padding must be 'SAME', 'VALID' or pairs, got {padding!r}"))
    try:
        pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    except (TypeError, ValueError):
        raise FuncgradValueError(at_user_line(
            f"conv: padding must be 'SAME', 'VALID' or ((top, bottom), (left, right)), got {padding!r}")) from None
    if len(pairs) != 2 or any(v < 0 for p in pairs for v in p):
        raise FuncgradValueError(at_user_line(f"conv: padding {padding!r} needs two non-negative pairs"))
    return pairs


def _out_hw(in_hw, window, strides, padding, op):
    oh = out_size(in_hw[0], window[0], strides[0], *padding[0])
    ow = out_size(in_hw[1], window[1], strides[1], *padding[1])
    if oh < 1 or ow < 1:
        raise ShapeError(f"{op}: a {window[0]}x{window[1]} window does not fit an image of {in_hw[0]}x{in_hw[1]} "
                         f"with padding {padding}")
    return oh, ow


# -- NumPy implementations --------------------------------------------------------------------------
def _patches(xp, window, strides, out_hw):
    """A strided view (n, oh, ow, kh, kw, c) of the padded images ``xp``."""
    n, _, _, c = xp.shape
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (n, out_hw[0], out_hw[1], window[0], window[1], c),
                      (s0, s1 * strides[0], s2 * strides[1], s1, s2, s3), writeable=False)


def _chunks(n, row_bytes):
    step = max(1, _CHUNK_BYTES // max(row_bytes, 1))
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def _padded(x, padding):
    (pt, pb), (pl, pr) = padding
    if pt == pb == pl == pr == 0:
        return x
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))


def _conv_impl(x, k, *, strides, padding):
    n, h, w, c = x.shape
    kh, kw, _, o = k.shape
    oh, ow = _out_hw((h, w), (kh, kw), strides, padding, "conv2d")
    kmat = np.ascontiguousarray(k.reshape(kh * kw * c, o))
    out = np.empty((n, oh, ow, o), dtype=x.dtype)
    for a, b in _chunks(n, oh * ow * kh * kw * c * x.itemsize):
        cols = _patches(_padded(x[a:b], padding), (kh, kw), strides, (oh, ow)).reshape(-1, kh * kw * c)
        np.matmul(cols, kmat, out=out[a:b].reshape(-1, o))
    return out


def _input_grad_impl(g, k, *, in_hw, strides, padding):
    n, oh, ow, o = g.shape
    kh, kw, c, _ = k.shape
    (pt, pb), (pl, pr) = padding
    full = ((kh - 1 - pt, kh - 1 - pb), (kw - 1 - pl, kw - 1 - pr))
    if strides == (1, 1) and min(v for p in full for v in p) >= 0:
        # a stride-1 transposed convolution is the correlation of the zero-padded
        # cotangents with the flipped kernel (inputs and outputs swapped)
        return _conv_impl(g, np.ascontiguousarray(k[::-1, ::-1].transpose(0, 1, 3, 2)), strides=(1, 1),
                          padding=full)
    hp, wp = in_hw[0] + pt + pb, in_hw[1] + pl + pr
    kmat_t = np.ascontiguousarray(k.reshape(kh * kw * c, o).T)
    out = np.empty((n,) + tuple(in_hw) + (c,), dtype=g.dtype)
    sh, sw = strides
    for a, b in _chunks(n, oh * ow * kh * kw * c * g.itemsize):
        cols = (g[a:b].reshape(-1, o) @ kmat_t).reshape(b - a, oh, ow, kh, kw, c)
        dxp = np.zeros((b - a, hp, wp, c), dtype=g.dtype)
        for i in range(kh):
            for j in range(kw):
                dxp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :] += cols[:, :, :, i, j, :]
        out[a:b] = dxp[:, pt:pt + in_hw[0], pl:pl + in_hw[1], :]
    return out


def _kernel_grad_impl(x, g, *, kernel_hw, strides, padding):
    n, c = x.shape[0], x.shape[3]
    _, oh, ow, o = g.shape
    kh, kw = kernel_hw
    acc = np.zeros((kh * kw * c, o), dtype=x.dtype)
    for a, b in _chunks(n, oh * ow * kh * kw * c * x.itemsize):
        cols = _patches(_padded(x[a:b], padding), (kh, kw), strides, (oh, ow)).reshape(-1, kh * kw * c)
        acc += cols.T @ g[a:b].reshape(-1, o)
    return acc.reshape(kh, kw, c, o)


# -- abstract evaluation ---------------------------------------------------------------------------------
def _check_pair(op, a, b, what_a, what_b):
    if a.ndim != 4 or b.ndim != 4:
        raise ShapeError(f"{op}: expected 4-D {what_a} and {what_b}, got shapes {a.shape} and {b.shape}")
    if a.dtype != b.dtype or np.dtype(a.dtype).kind != "f":
        raise FuncgradTypeError(f"{op}: operands must be floats of one dtype, got {a.dtype} and {b.dtype}")


def _conv_abstract(x, k, *, strides, padding):
    _check_pair("conv2d", x, k, "NHWC images", "HWIO kernel")
    if x.shape[3] != k.shape[2]:
        raise ShapeError(f"conv2d: images of shape {x.shape} have {x.shape[3]} channels but the kernel of "
                         f"shape {k.shape} expects {k.shape[2]}")
    oh, ow = _out_hw(x.shape[1:3], k.shape[:2], strides, padding, "conv2d")
    return ShapedArray((x.shape[0], oh, ow, k.shape[3]), x.dtype)


def _input_grad_abstract(g, k, *, in_hw, strides, padding):
    _check_pair("conv2d_input_grad", g, k, "NHWC cotangents", "HWIO kernel")
    if _out_hw(in_hw, k.shape[:2], strides, padding, "conv2d_input_grad") != g.shape[1:3] or g.shape[3] != k.shape[3]:
        raise ShapeError(f"conv2d_input_grad: cotangent of shape {g.shape} does not fit the kernel {k.shape} "
                         f"and images of size {in_hw}")
    return ShapedArray((g.shape[0],) + tuple(in_hw) + (k.shape[2],), g.dtype)


def _kernel_grad_abstract(x, g, *, kernel_hw, strides, padding):
    _check_pair("conv2d_kernel_grad", x, g, "NHWC images", "NHWC cotangents")
    if _out_hw(x.shape[1:3], kernel_hw, strides, padding, "conv2d_kernel_grad") != g.shape[1:3] \
            or g.shape[0] != x.shape[0]:
        raise ShapeError(f"conv2d_kernel_grad: cotangent of shape {g.shape} does not fit images {x.shape} "
                         f"and a {kernel_hw} kernel")
    return ShapedArray(tuple(kernel_hw) + (x.shape[3], g.shape[3]), x.dtype)


# -- the primitives -------------------------------------------------------------------------------------------
conv2d_p = Primitive("conv2d")
conv2d_input_grad_p = Primitive("conv2d_input_grad")
conv2d_kernel_grad_p = Primitive("conv2d_kernel_grad")
conv2d_p.impl, conv2d_p.abstract_eval = _conv_impl, _conv_abstract
conv2d_input_grad_p.impl, conv2d_input_grad_p.abstract_eval = _input_grad_impl, _input_grad_abstract
conv2d_kernel_grad_p.impl, conv2d_kernel_grad_p.abstract_eval = _kernel_grad_impl, _kernel_grad_abstract


def _bilinear_jvp(p):
    def jvp(primals, tangents, **params):
        a, b = primals
        ta, tb = tangents
        out = p.bind(a, b, **params)
        t = None
        if ta is not None:
            t = p.bind(ta, b, **params)
        if tb is not None:
            t2 = p.bind(a, tb, **params)
            t = t2 if t is None else t + t2
        return out, t

    return jvp


def _conv_vjp(g, ans, primals, needs, *, strides, padding):
    x, k = primals
    gx = conv2d_input_grad_p.bind(g, k, in_hw=tuple(shape_of(x)[1:3]), strides=strides,
                                  padding=padding) if needs[0] else None
    gk = conv2d_kernel_grad_p.bind(x, g, kernel_hw=tuple(shape_of(k)[:2]), strides=strides,
                                   padding=padding) if needs[1] else None
    return [gx, gk]


def _input_grad_vjp(ct, ans, primals, needs, *, in_hw, strides, padding):
    g, k = primals
    gg = conv2d_p.bind(ct, k, strides=strides, padding=padding) if needs[0] else None
    gk = conv2d_kernel_grad_p.bind(ct, g, kernel_hw=tuple(shape_of(k)[:2]), strides=strides,
                                   padding=padding) if needs[1] else None
    return [gg, gk]


def _kernel_grad_vjp(ct, ans, primals, needs, *, kernel_hw, strides, padding):
    x, g = primals
    gx = conv2d_input_grad_p.bind(g, ct, in_hw=tuple(shape_of(x)[1:3]), strides=strides,
                                  padding=padding) if needs[0] else None
    gg = conv2d_p.bind(x, ct, strides=strides, padding=padding) if needs[1] else None
    return [gx, gg]


# -- batching: fold the batch axis into an axis the operation treats independently -------------------------
def _fold(x, d, axis):
    """Move batch axis ``d`` of ``x`` in front of ``axis`` (an axis of the unbatched
    operand) and merge the two."""
    x = move_batch_to_front(x, d)
    s = shape_of(x)
    rest = list(range(1, len(s)))
    perm = rest[:axis] + [0] + rest[axis:]
    x = transpose(x, perm)
    return reshape(x, s[1:axis + 1] + (s[0] * s[axis + 1],) + s[axis + 2:])


def _unfold(y, size, axis):
    s = shape_of(y)
    return reshape(y, s[:axis] + (size, s[axis] // size) + s[axis + 1:])


def _batch_rule(p, fold_axes):
    """``fold_axes[i] = (axis of operand i, axis of the output)`` that the batch
    merges into when operand ``i`` alone is batched."""
    def rule(args, dims, **params):
        size = next(shape_of(a)[d] for a, d in zip(args, dims) if d is not None)
        batched = [d is not None for d in dims]
        if all(batched):
            outs = []
            for i in range(size):
                xs = [getitem(a, (), ((("slice", None, None, None),) * d) + (("int", i),))
                      for a, d in zip(args, dims)]
                y = p.bind(*xs, **params)
                outs.append(reshape(y, (1,) + shape_of(y)))
            return concatenate(outs, 0), 0
        i = batched.index(True)
        in_axis, out_axis = fold_axes[i]
        xs = list(args)
        xs[i] = _fold(args[i], dims[i], in_axis)
        return _unfold(p.bind(*xs, **params), size, out_axis), out_axis

    return rule


for _p, _vjp, _folds in ((conv2d_p, _conv_vjp, ((0, 0), (3, 3))),
                         (conv2d_input_grad_p, _input_grad_vjp, ((0, 0), (2, 3))),
                         (conv2d_kernel_grad_p, _kernel_grad_vjp, ((3, 2), (3, 3)))):
    _p.jvp = _bilinear_jvp(_p)
    _p.vjp = _vjp
    _p.batch = _batch_rule(_p, _folds)


# -- public wrapper ----------------------------------------------------------------------------------------------
def conv2d(x, k, strides=(1, 1), padding="VALID"):
    """Correlate NHWC images ``x`` with an HWIO kernel ``k``.

    ``strides`` is an int or a pair; ``padding`` is 'SAME', 'VALID' or
    ``((top, bottom), (left, right))``. Returns NHWC outputs.
    """
    from ..numpy._util import promote_float

    x, k = promote_float(x, k)
    if len(shape_of(x)) != 4 or len(shape_of(k)) != 4:
        raise ShapeError(at_user_line(f"conv2d: expected NHWC images and an HWIO kernel (4-D each), got shapes "
                                      f"{shape_of(x)} and {shape_of(k)}"))
    strides = normalize_pair(strides, "strides")
    pads = padding_pairs(shape_of(x)[1:3], shape_of(k)[:2], strides, padding)
    return conv2d_p.bind(x, k, strides=strides, padding=pads)


def normalize_pair(v, what):
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    try:
        pair = tuple(int(e) for e in v)
    except TypeError:
        raise FuncgradTypeError(at_user_line(f"conv: {what} must be an int or a pair of ints, got {v!r}")) from None
    if len(pair) != 2 or min(pair) < 1:
        raise FuncgradValueError(at_user_line(f"conv: {what} must be two positive ints, got {v!r}"))
    return pair
