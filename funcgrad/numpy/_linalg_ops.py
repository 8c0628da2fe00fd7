"""Products: dot, matmul, einsum and friends, all lowered to ``dot_general``."""
from __future__ import annotations

import string

import numpy as np

from .. import primitives as P
from ..errors import FuncgradValueError, ShapeError, at_user_line
from ._util import asarray_arg, ndim_of, promote, shape_of

_LETTERS = string.ascii_lowercase + string.ascii_uppercase


def _prep2(a, b):
    a, b = promote(a, b)
    if not hasattr(a, "shape"):
        a = np.asarray(a)
    if not hasattr(b, "shape"):
        b = np.asarray(b)
    return a, b


def matmul(a, b):
    """``a @ b`` with NumPy's rules for 1-D operands and broadcast batch dimensions."""
    a, b = _prep2(a, b)
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        raise ShapeError(at_user_line(f"matmul: operands must be at least 1-D, got shapes "
                                      f"{shape_of(a)} and {shape_of(b)}"))
    sa, sb = shape_of(a), shape_of(b)
    ka = sa[-1]
    kb = sb[-2] if nb >= 2 else sb[0]
    if ka != kb:
        raise ShapeError(at_user_line(
            f"matmul: shapes {sa} and {sb} are not aligned: {ka} (last dim of the first) != "
            f"{kb} ({'second-to-last' if nb >= 2 else 'only'} dim of the second); check the layer "
            "sizes, or transpose an operand (x.T) if it is stored the other way round"))
    if na <= 2 and nb <= 2:
        spec = {(1, 1): "j,j->", (1, 2): "j,jk->k", (2, 1): "ij,j->i", (2, 2): "ij,jk->ik"}[(na, nb)]
        return P.dot_general(a, b, spec)
    # broadcast batch dimensions
    ba, bb = sa[:-2] if na >= 2 else (), sb[:-2] if nb >= 2 else ()
    try:
        batch = np.broadcast_shapes(ba, bb)
    except ValueError:
        raise ShapeError(at_user_line(f"matmul: batch dimensions of {sa} and {sb} do not broadcast")) from None
    lead = _LETTERS[: len(batch)]
    if na >= 2:
        a = P.broadcast_to(a, batch + sa[-2:])
        sa_spec = lead + "ij"
    else:
        sa_spec = "j"
    if nb >= 2:
        b = P.broadcast_to(b, batch + sb[-2:])
        sb_spec = lead + "jk"
    else:
        sb_spec = "j"
    out = lead + ("i" if na >= 2 else "") + ("k" if nb >= 2 else "")
    return P.dot_general(a, b, f"{sa_spec},{sb_spec}->{out}")


def dot(a, b):
    """``numpy.dot``."""
    a, b = _prep2(a, b)
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        from ._ufuncs import multiply

        return multiply(a, b)
    if na <= 2 and nb <= 2:
        return matmul(a, b)
    if nb == 1:
        return tensordot(a, b, ((na - 1,), (0,)))
    return tensordot(a, b, ((na - 1,), (nb - 2,)))


def vdot(a, b):
    from ._shape import ravel

    return dot(ravel(a), ravel(b))


def inner(a, b):
    a, b = _prep2(a, b)
    if ndim_of(a) == 0 or ndim_of(b) == 0:
        from ._ufuncs import multiply

        return multiply(a, b)
    return tensordot(a, b, ((ndim_of(a) - 1,), (ndim_of(b) - 1,)))


def outer(a, b):
    from ._shape import ravel
    from ._ufuncs import multiply

    a, b = ravel(asarray_arg(a)), ravel(asarray_arg(b))
    return multiply(P.reshape(a, (shape_of(a)[0], 1)), P.reshape(b, (1, shape_of(b)[0])))


def tensordot(a, b, axes=2):
    a, b = _prep2(a, b)
    na, nb = ndim_of(a), ndim_of(b)
    if isinstance(axes, (int, np.integer)):
        axes_a = tuple(range(na - int(axes), na))
        axes_b = tuple(range(int(axes)))
    else:
        axes_a, axes_b = axes
        axes_a = (axes_a,) if isinstance(axes_a, (int, np.integer)) else tuple(axes_a)
        axes_b = (axes_b,) if isinstance(axes_b, (int, np.integer)) else tuple(axes_b)
    if len(axes_a) != len(axes_b):
        raise FuncgradValueError("tensordot: axes lists have different lengths")
    axes_a = tuple(x % na for x in axes_a)
    axes_b = tuple(x % nb for x in axes_b)
    la = list(_LETTERS[:na])
    lb = list(_LETTERS[na: na + nb])
    for i, j in zip(axes_a, axes_b):
        if shape_of(a)[i] != shape_of(b)[j]:
            raise ShapeError(at_user_line(f"tensordot: shape mismatch for sum: {shape_of(a)} axis {i} vs "
                                          f"{shape_of(b)} axis {j}"))
        lb[j] = la[i]
    out = [c for i, c in enumerate(la) if i not in axes_a] + [c for j, c in enumerate(lb) if j not in axes_b]
    return P.dot_general(a, b, f"{''.join(la)},{''.join(lb)}->{''.join(out)}")


def _einsum_check_sizes(subscripts, specs, operands):
    """Every index letter must have one size across the operands (size 1 broadcasts)."""
    seen = {}
    for i, (s, op) in enumerate(zip(specs, operands)):
        for c, d in zip(s, shape_of(op)):
            j, e = seen.setdefault(c, (i, d))
            if d != e and 1 not in (d, e):
                raise ShapeError(at_user_line(
                    f"einsum {subscripts!r}: index {c!r} has size {e} in operand {j} (shape "
                    f"{shape_of(operands[j])}) but {d} in operand {i} (shape {shape_of(op)}); each "
                    "letter must name dimensions of one size: fix the subscripts or the operands"))


def _einsum_parse(subscripts, operands):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
        explicit = True
    else:
        ins, out, explicit = subscripts, None, False
    in_specs = ins.split(",")
    if len(in_specs) != len(operands):
        raise FuncgradValueError(f"einsum: {len(in_specs)} operand subscripts for {len(operands)} operands")
    used = {c for c in subscripts if c.isalpha()}
    spare = [c for c in _LETTERS if c not in used]
    ell_rank = 0
    for s, op in zip(in_specs, operands):
        if "..." in s:
            ell_rank = max(ell_rank, ndim_of(op) - (len(s) - 3))
    ell = "".join(spare[:ell_rank])
    specs = []
    for s, op in zip(in_specs, operands):
        if "..." in s:
            k = ndim_of(op) - (len(s) - 3)
            s = s.replace("...", ell[ell_rank - k:])
        if len(s) != ndim_of(op):
            raise ShapeError(at_user_line(f"einsum: subscripts {s!r} do not match an operand of shape "
                                          f"{shape_of(op)}"))
        specs.append(s)
    _einsum_check_sizes(subscripts, specs, operands)
    if explicit:
        out = out.replace("...", ell)
    else:
        counts = {}
        for s in specs:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return specs, out


def _take_diagonals(x, s):
    """Resolve repeated subscripts inside one operand by taking diagonals."""
    from ._shape import diagonal

    while len(set(s)) != len(s):
        for i, c in enumerate(s):
            j = s.find(c, i + 1)
            if j >= 0:
                x = diagonal(x, 0, i, j)
                s = s[:i] + s[i + 1:j] + s[j + 1:] + c
                break
    return x, s


def _broadcast_sizes(items):
    """Stretch size-1 axes to their index's size in the other operands, as NumPy broadcasts."""
    sizes = {}
    for x, s in items:
        for c, d in zip(s, shape_of(x)):
            if d != 1 and sizes.setdefault(c, d) != d:
                raise ShapeError(at_user_line(
                    f"einsum: index {c!r} has size {sizes[c]} in one operand and {d} in another (shapes "
                    + ", ".join(str(shape_of(y)) for y, _ in items) + ")"))
    return [(P.broadcast_to(x, tuple(sizes.get(c, d) for c, d in zip(s, shape_of(x)))), s) for x, s in items]


_LETTERS = string.ascii_letters  # sublist index i is letter i (NumPy allows 52)


def _sublist_text(sub):
    """One operand's sublist (ints, ``...``) as subscript letters."""
    out = []
    for i in sub:
        if i is Ellipsis:
            out.append("...")
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < len(_LETTERS):
            out.append(_LETTERS[int(i)])
        else:
            raise FuncgradValueError(at_user_line(
                f"einsum: a sublist holds ints in 0..{len(_LETTERS) - 1} and Ellipsis, got {i!r}"))
    return "".join(out)


def _from_sublists(args):
    """``einsum(A, [0, 1], B, [1, 2], [0, 2])`` (NumPy's interleaved form) as
    ``("ab,bc->ac", [A, B])``."""
    operands, subs = list(args[0::2]), [_sublist_text(s) for s in args[1::2]]
    out = None
    if len(args) % 2:  # a trailing output sublist
        operands, out = operands[:-1], _sublist_text(args[-1])
    text = ",".join(subs[:len(operands)])
    return (text if out is None else f"{text}->{out}"), operands


def einsum(subscripts, *operands, optimize=None):
    """``numpy.einsum``: subscripts (explicit or implicit output, ``...``) or the interleaved
    operand/sublist form ``einsum(A, [0, 1], B, [1, 2], [0, 2])``; contracted pairwise."""
    if not isinstance(subscripts, str):
        subscripts, operands = _from_sublists((subscripts, *operands))
    ops = [asarray_arg(o) for o in operands]
    ops = promote(*ops) if len(ops) > 1 else [np.asarray(ops[0]) if not hasattr(ops[0], "shape") else ops[0]]
    specs, out = _einsum_parse(subscripts, ops)
    items = _broadcast_sizes([_take_diagonals(x, s) for x, s in zip(ops, specs)])
    # sum indices that appear in a single operand and not in the output
    for k, (x, s) in enumerate(items):
        others = "".join(t for j, (_, t) in enumerate(items) if j != k) + out
        lone = tuple(i for i, c in enumerate(s) if c not in others)
        if lone:
            x = P.reduce_sum(x, lone)
            s = "".join(c for i, c in enumerate(s) if i not in lone)
        items[k] = (x, s)
    x, s = items[0]
    for k in range(1, len(items)):
        y, t = items[k]
        later = "".join(u for _, u in items[k + 1:]) + out
        res = "".join(c for c in dict.fromkeys(s + t) if c in later)
        x, s = P.dot_general(x, y, f"{s},{t}->{res}"), res
    if s != out:
        missing = [c for c in out if c not in s]
        if missing:
            raise FuncgradValueError(f"einsum: output subscript(s) {missing} appear in no operand")
        x = P.transpose(x, tuple(s.index(c) for c in out))
    return x


def trace(a, offset=0, axis1=0, axis2=1):
    from ._reductions import sum
    from ._shape import diagonal

    return sum(diagonal(a, offset, axis1, axis2), axis=-1)


def kron(a, b):
    from ._shape import reshape
    from ._ufuncs import multiply

    a, b = _prep2(a, b)
    nd = max(ndim_of(a), ndim_of(b))
    sa = (1,) * (nd - ndim_of(a)) + shape_of(a)
    sb = (1,) * (nd - ndim_of(b)) + shape_of(b)
    a = reshape(a, sum(((d, 1) for d in sa), ()))
    b = reshape(b, sum(((1, d) for d in sb), ()))
    return reshape(multiply(a, b), tuple(x * y for x, y in zip(sa, sb)))
