"""Kernel source that depends on a cluster's structure only: not on sizes, constants or names.

The emitters write every array size as a *size placeholder* (``dim(128)`` is ``_n128_``) and
every floating-point constant of the graph as a *value placeholder* (``_f4_3c23d70a_``, the
dtype's width and the value's bits); both are valid identifiers, so the text stays Python. A
group's function is then made canonical (``kernel_text``):

- each distinct size becomes a symbol read from an argument's shape at run time
  (``dm0 = a3.shape[1]``, the first argument and axis of exactly that size) or, when no argument
  has it, an ``int64`` argument; sizes 0 and 1 stay literal (they are structure: broadcasting);
- each distinct constant becomes a scalar argument of its dtype, except the few whose value
  shapes the code (0, 1, -1, 0.5, 2, infinities and NaN), which stay literal;
- every local name is renamed in order of first appearance (``alpha_rename``).

Two clusters with the same operations, dtypes, ranks and broadcast pattern, in any program, at
any batch size, then have the same text and share one compiled function. Substituting the values
back gives exactly the text written with literal sizes and constants, so a shared kernel computes
what a specialised one would, bit for bit (the sizes and constants are arguments, not folded).
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import numpy as np

from ..fusion import dim
from . import lowering

_SIZE = re.compile(r"\b_n(\d+)_\b")
_VALUE = re.compile(r"\b_f(4|8)_([0-9a-f]+)_\b")
_PLACEHOLDER = re.compile(r"\b_n\d+_\b|\b_f[48]_[0-9a-f]+_\b")
_LOCAL = re.compile(r"(?<![\w.'\"])[a-z]{1,2}\d\w*")
_KEPT = frozenset({0.0, 1.0, -1.0, 0.5, 2.0})
_ALLOC = re.compile(r"(\w+) = np\.(?:empty|full)\((\([^()]*\)), (?:(.+), )?(np\.\w+)\)")


def shape_text(shape) -> str:
    """Source text of a shape tuple built from ``dim``s."""
    parts = [dim(int(d)) for d in shape]
    return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"  # () for a 0-d shape


def alloc(shape, dtype, fill: str | None = None) -> str:
    """Source text allocating a C-contiguous array of ``shape`` (filled with ``fill``, a text)."""
    t = lowering.np_type(dtype)
    if fill is None:
        return f"np.empty({shape_text(shape)}, {t})"
    return f"np.full({shape_text(shape)}, {fill}, {t})"


def value(val, dtype) -> str:
    """Source text of a constant of the graph: a placeholder for a float that does not shape the
    code, else the literal (``lowering.literal``)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):
        return lowering.literal(val, dtype)
    v = np.asarray(val).astype(dtype)
    f = float(v)
    if not np.isfinite(f) or (f in _KEPT and not (f == 0.0 and np.signbit(f))):
        return lowering.literal(val, dtype)
    bits = v.view(np.uint32 if dtype.itemsize == 4 else np.uint64).item()
    return f"_f{dtype.itemsize}_{bits:x}_"


def _value_of(width: str, bits: str):
    fmt = ("<I", "<f", np.float32) if width == "4" else ("<Q", "<d", np.float64)
    f = struct.unpack(fmt[1], struct.pack(fmt[0], int(bits, 16)))[0]
    return fmt[2](f)


def specialise(text: str) -> str:
    """``text`` with every placeholder replaced by its literal (the fully specialised source)."""
    def literal(m):
        v = _value_of(m.group(1), m.group(2))
        return lowering.literal(v, v.dtype)

    return _VALUE.sub(literal, _SIZE.sub(lambda m: m.group(1), text))


def alpha_rename(text: str) -> str:
    """Rename every generated local (a name of one or two lower-case letters, a digit, then
    anything) in order of first appearance."""
    names: dict = {}

    def sub(m):
        name = m.group(0)
        if name not in names:
            names[name] = f"n{len(names)}"
        return names[name]

    return _LOCAL.sub(sub, text)


@dataclass
class Kernel:
    """A canonical kernel: ``text`` (the source defining ``kernel``), and what a call passes for
    each argument: ``("var", v)`` a value of the graph, ``("size", n)``, ``("value", scalar)`` or
    ``("alloc", Alloc)``, a new array the caller allocates. ``outs`` says where each of the
    group's exports comes from: ``("arg", i)``, the array passed as argument ``i`` (the kernel
    filled it), or ``("ret", j)``, item ``j`` of the tuple it returns; ``None``: every export
    is returned, in order."""
    text: str
    args: list
    outs: list | None = None


def _arg_type(arg) -> str:
    kind, x = arg
    if kind == "var":
        return f"_A({np.dtype(x.aval.dtype).name!r}, {len(x.aval.shape)})"
    if kind == "alloc":
        return f"_A({x.dtype!r}, {len(x.shape)})"
    if kind == "size":
        return "_t.int64"
    return f"_t.{np.dtype(x.dtype).name}"


def kernel_text(params, body, tail, options="**_OPTS") -> Kernel:
    """The canonical ``@njit`` function of a group.

    ``params``: ``(name, var)`` for the graph values the group reads (a 0-d value is passed as a
    0-d array ``x<n>`` and read into ``s<n>``); ``body``: its statements; ``tail``: the
    statements after it (the return). Arguments are ordered by first use in ``body``.

    The arrays the function allocates at its top level (``alloc``) become arguments allocated by
    the caller: the same fresh arrays, and no allocation code for Numba to compile."""
    (body, in_body), (tail, in_tail) = _hoist_allocs(body), _hoist_allocs(tail)
    allocs = in_body + in_tail
    tail, outs = _filled_returns(body + tail, tail, [a.name for a in allocs], len(params))
    text = "\n".join(body)
    first: dict = {}
    for m in _LOCAL.finditer(text):
        first.setdefault(m.group(0), m.start())
    params = sorted(params, key=lambda p: first.get(p[0], len(text)))
    args = [("var", v) for _, v in params] + [("alloc", a) for a in allocs]
    names = [_sig_name(p) for p in params] + [a.name for a in allocs]
    prologue = [f"{p[0]} = {_sig_name(p)}[()]" for p in params if not p[1].aval.shape]
    shapes = [(name, tuple(v.aval.shape)) for name, v in params if v.aval.shape]
    shapes += [(a.name, a.shape) for a in allocs]
    symbols: dict = {}
    for m in _PLACEHOLDER.finditer(text + "\n" + "\n".join(tail)):
        token = m.group(0)
        if token in symbols:
            continue
        sym = symbols[token] = f"dm{len(symbols)}"
        size = _SIZE.fullmatch(token)
        if size is None:
            vm = _VALUE.fullmatch(token)
            names.append(sym)
            args.append(("value", _value_of(vm.group(1), vm.group(2))))
            continue
        n = int(size.group(1))
        src = next(((name, ax) for name, shape in shapes for ax, d in enumerate(shape) if d == n), None)
        if src is None:
            names.append(sym)
            args.append(("size", n))
        else:
            prologue.append(f"{sym} = {src[0]}.shape[{src[1]}]")
    stmts = _PLACEHOLDER.sub(lambda m: symbols[m.group(0)], "\n".join(prologue + list(body) + list(tail)))
    sig = ", ".join(_arg_type(a) for a in args)
    lines = [f"@njit(({sig}{',' if args else ''}), {options})", f"def kernel({', '.join(names)}):"]
    lines += ["    " + s for s in stmts.split("\n")]
    return Kernel(alpha_rename("\n".join(lines) + "\n"), args, outs)


_RETURN = re.compile(r"return \((.*)\)")
_ASSIGNED = re.compile(r"^\s*([\w\s,]+?)\s*[-+*/|&^]?=(?!=)")  # the names a statement binds


def _filled_returns(lines, tail, alloc_names, n_params):
    """``(tail, outs)``: the tail's ``return`` without the arrays the caller allocated (it has
    them already: returning them would box each into a new Python object, and cost Numba code
    to compile), and ``Kernel.outs``. A name the kernel binds again (a loop's carry) is returned:
    it need not be the array passed in."""
    m = _RETURN.fullmatch(tail[-1]) if tail else None
    if m is None:
        return tail, None
    rebound = {n.strip() for line in lines if (a := _ASSIGNED.match(line)) for n in a.group(1).split(",")}
    names = [n.strip() for n in m.group(1).split(",") if n.strip()]
    outs, kept = [], []
    for name in names:
        if name in alloc_names and name not in rebound:
            outs.append(("arg", n_params + alloc_names.index(name)))
        else:
            outs.append(("ret", len(kept)))
            kept.append(name)
    ret = f"return ({', '.join(kept)},)" if kept else "return"
    return list(tail[:-1]) + [ret], outs


@dataclass(frozen=True)
class Alloc:
    """An array a kernel receives freshly allocated: its parameter ``name``, ``shape``, dtype
    name, and ``expr``, the NumPy expression allocating it (specialised)."""
    name: str
    shape: tuple
    dtype: str
    expr: str


def _hoist_allocs(lines):
    """``(rest, allocs)``: ``lines`` without their top-level ``alloc`` statements, and those as
    ``Alloc``s."""
    rest, allocs = [], []
    for line in lines:
        m = _ALLOC.fullmatch(line)
        if m is None:
            rest.append(line)
            continue
        expr = specialise(line.split(" = ", 1)[1])
        shape = tuple(int(d) for d in re.findall(r"\d+", specialise(m.group(2))))
        allocs.append(Alloc(m.group(1), shape, m.group(4)[len("np."):], expr))
    return rest, allocs


def _sig_name(p) -> str:
    """A parameter's name in the signature: a 0-d value ``s<n>`` arrives as the 0-d array ``x<n>``."""
    name, v = p
    return name if v.aval.shape else "x" + name[1:]


def python_text(name: str, text: str, params) -> Kernel:
    """A chunked group's Python function (``chunked.py``) as a canonical kernel: sizes and
    constants specialised, the function renamed ``kernel``, locals renamed."""
    text = re.sub(rf"\b{name}\b", "kernel", specialise(text))
    return Kernel(alpha_rename(text), [("var", v) for v in params])
