"""``Module``: stateless layers a PyTorch user recognizes, as pytrees.

A subclass of :class:`Module` is a frozen dataclass: ``__init__`` builds its fields (arrays
and sub-modules, usually from a PRNG ``key``) and ``__call__`` (or ``forward``) is a pure
function of the module and its input. Fields holding arrays (directly or in sub-modules,
lists, tuples and dicts) are the pytree's children, the parameters; every other field (ints,
floats, strings, functions) is static, part of the tree structure. A module therefore passes
through ``grad`` (which returns a module of gradients), ``jit``, ``vmap``, ``tree_util``, the
optimizers and ``checkpoint`` like any pytree.

>>> import numpy as np, funcgrad as fg
>>> from funcgrad import nn, random
>>> class Affine(nn.Module):
...     def __init__(self, n, key):
...         self.linear = nn.Linear(n, 1, key=key)
...     def forward(self, x):
...         return self.linear(x)
>>> model = Affine(3, random.key(0))
>>> grads = fg.grad(lambda m: m(np.ones((2, 3), np.float32)).sum())(model)
>>> type(grads).__name__, grads.linear.weight.shape
('Affine', (1, 3))
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..core.trace import Tracer
from ..errors import FuncgradTypeError, FuncgradValueError, at_user_line
from ..tree_util import register_pytree_node, tree_flatten, tree_leaves, tree_map, tree_unflatten

__all__ = ["Module", "combine", "count_params", "is_array", "partition", "tree_at"]

_AUX = "_Module__aux"  # the tree structure of a sealed module (its presence: sealed)


def is_array(x) -> bool:
    """Whether ``x`` is an array (NumPy, a NumPy scalar, or a traced value): a parameter."""
    return isinstance(x, (np.ndarray, np.generic, Tracer))


def _is_module(x) -> bool:
    return isinstance(x, Module)


def _holds_arrays(value) -> bool:
    """Whether a field is a child of the pytree: it holds arrays or modules."""
    return any(is_array(x) or isinstance(x, Module) for x in tree_leaves(value, is_leaf=_is_module))


class _Static:
    """A static field value that is not hashable (a list, say): compared by value, hashed by
    its repr, so equal modules share a tree structure (and a jit cache entry)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _Static) and type(self.value) is type(other.value) and self.value == other.value

    def __hash__(self):
        return hash(repr(self.value))


def _static(value):
    try:
        hash(value)
    except TypeError:
        return _Static(value)
    return value


def _unstatic(value):
    return value.value if isinstance(value, _Static) else value


class _ModuleMeta(type):
    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        _seal(obj)
        return obj


def _seal(obj, children=()):
    """Freeze ``obj`` and record its tree structure, ``aux``: the child fields' names (those
    holding arrays or modules, and ``children``), the static fields as ``(name, value)``
    pairs, and whether a value had to be wrapped."""
    fields = vars(obj)
    names = [n for n in fields if n != _AUX]
    dynamic = tuple(n for n in names if n in children or _holds_arrays(fields[n]))
    static = tuple((n, _static(fields[n])) for n in names if n not in dynamic)
    fields[_AUX] = (dynamic, static, any(isinstance(v, _Static) for _, v in static))


def _dynamic(obj) -> tuple:
    return obj.__dict__[_AUX][0]


def _flatten(obj):
    fields = obj.__dict__
    aux = fields[_AUX]
    return [fields[n] for n in aux[0]], aux


def _unflattener(cls):
    """``unflatten(aux, children)`` for ``cls``, with ``unflatten.specialize(aux)``: a function
    of the children alone for one structure (jit's generated output builders call it)."""
    new = object.__new__
    leafless: dict = {}  # aux -> the module without children of that structure (modules are immutable)

    def fill(fields, aux):
        """The static fields of structure ``aux`` (unwrapped) and the structure itself."""
        fields.update(aux[1])
        if aux[2]:
            for n, v in aux[1]:
                fields[n] = _unstatic(v)
        fields[_AUX] = aux
        return fields

    def unflatten(aux, children):
        dynamic = aux[0]
        if not dynamic:
            obj = leafless.get(aux)
            if obj is None:
                obj = leafless[aux] = new(cls)
                fill(obj.__dict__, aux)
            return obj
        obj = new(cls)
        fill(obj.__dict__, aux).update(zip(dynamic, children))
        return obj

    def specialize(aux):
        if not aux[0]:
            obj = unflatten(aux, [])
            return lambda: obj
        params = [f"c{i}" for i in range(len(aux[0]))]
        stores = "".join(f"    fields[{n!r}] = {c}\n" for n, c in zip(aux[0], params))
        source = (f"def make({', '.join(params)}):\n    obj = new(cls)\n    fields = obj.__dict__\n"
                  f"    fields.update(base)\n{stores}    return obj\n")
        names = {"new": new, "cls": cls, "base": fill({}, aux)}
        exec(source, names)  # noqa: S102  (generated from the field names only)
        return names["make"]

    unflatten.specialize = specialize
    return unflatten


def _short(value) -> str:
    if is_array(value):
        dt = np.dtype(value.dtype)
        code = {"f": "f", "i": "i", "u": "u", "b": "bool", "c": "c"}[dt.kind]
        code += "" if dt.kind == "b" else str(dt.itemsize * 8)
        return f"{code}[{','.join(map(str, tuple(value.shape)))}]"
    if isinstance(value, (list, tuple)) and _holds_arrays(value):
        inner = ", ".join(_short(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict) and _holds_arrays(value):
        return "{" + ", ".join(f"{k!r}: {_short(v)}" for k, v in value.items()) + "}"
    if callable(value) and hasattr(value, "__name__") and not isinstance(value, Module):
        return value.__name__
    return repr(value)


class Module(metaclass=_ModuleMeta):
    """Base class of stateless modules (see the module docstring).

    Subclasses are dataclasses (``eq=False``): annotated fields get a generated ``__init__``
    unless the class writes its own. After ``__init__`` the instance is frozen: change it
    with :meth:`replace` or :func:`tree_at`, which return a new module.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own_init = any("__init__" in c.__dict__ for c in cls.__mro__ if c is not Module and issubclass(c, Module))
        dataclasses.dataclass(cls, eq=False, repr=False, init=not own_init)
        register_pytree_node(cls, _flatten, _unflattener(cls))

    def __setattr__(self, name, value):
        if _AUX in vars(self):
            raise FuncgradTypeError(at_user_line(
                f"{type(self).__name__}.{name}: a module is immutable after __init__; build a new one "
                f"with model.replace({name}=...) or nn.tree_at(lambda m: m.{name}, model, value)"))
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        raise FuncgradTypeError(at_user_line(f"{type(self).__name__}.{name}: a module is immutable"))

    def __call__(self, *args, **kwargs):
        if type(self).forward is Module.forward:
            raise FuncgradTypeError(at_user_line(
                f"{type(self).__name__} defines neither forward nor __call__"))
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        """The module applied to its input: ``model.forward(x)`` is ``model(x)``."""
        if type(self).__call__ is Module.__call__:
            raise FuncgradTypeError(at_user_line(
                f"{type(self).__name__} defines neither forward nor __call__"))
        return self(*args, **kwargs)

    def replace(self, **changes):
        """A copy with the fields ``changes`` replaced (``dataclasses.replace`` without
        running ``__init__``); the fields that were children of the pytree stay children."""
        fields = {n: v for n, v in vars(self).items() if n != _AUX}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise FuncgradValueError(at_user_line(
                f"{type(self).__name__}.replace: no field {unknown[0]!r}; the fields are {', '.join(fields)}"))
        obj = object.__new__(type(self))
        for n, v in {**fields, **changes}.items():
            object.__setattr__(obj, n, v)
        _seal(obj, _dynamic(self))  # a child stays a child (a tree of masks or Nones keeps its structure)
        return obj

    def parameters(self) -> list:
        """The arrays of the module, in tree order (``tree_leaves(model)``)."""
        return [x for x in tree_leaves(self) if is_array(x)]

    def named_parameters(self) -> list:
        """``(dotted path, array)`` of every array, as PyTorch's ``named_parameters``."""
        out: list = []
        _named(self, "", out)
        return out

    def __repr__(self):
        parts = []
        for n, v in vars(self).items():
            if n.startswith("_Module__"):
                continue
            parts.append(f"{n}={_short(v)}" if not isinstance(v, Module) else f"{n}={v!r}")
        one = f"{type(self).__name__}({', '.join(parts)})"
        if len(one) <= 88 and "\n" not in one:
            return one
        body = ",\n".join("  " + p.replace("\n", "\n  ") for p in parts)
        return f"{type(self).__name__}(\n{body}\n)"


def _named(value, prefix, out):
    if is_array(value):
        out.append((prefix, value))
    elif isinstance(value, Module):
        for n in _dynamic(value):
            _named(getattr(value, n), f"{prefix}.{n}" if prefix else n, out)
    elif isinstance(value, dict):
        for k in sorted(value):
            _named(value[k], f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _named(v, f"{prefix}.{i}" if prefix else str(i), out)


def count_params(tree) -> int:
    """The number of scalars in the arrays of ``tree`` (a module or any pytree).

    >>> from funcgrad import nn, random
    >>> count_params(nn.Linear(3, 2, key=random.key(0)))
    8
    """
    return int(sum(np.size(x) for x in tree_leaves(tree) if is_array(x)))


# -- functional updates and filtering -------------------------------------------------------------------
class _Path:
    """Records the attribute and item accesses of a ``where`` function."""

    __slots__ = ("steps",)

    def __init__(self, steps=()):
        self.steps = steps

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Path(self.steps + (("attr", name),))

    def __getitem__(self, key):
        return _Path(self.steps + (("item", key),))


def _set(node, steps, value):
    if not steps:
        return value
    (kind, k), rest = steps[0], steps[1:]
    if kind == "attr":
        if not isinstance(node, Module):
            raise FuncgradValueError(at_user_line(f"tree_at: .{k} of a {type(node).__name__}, which is not a module"))
        return node.replace(**{k: _set(getattr(node, k), rest, value)})
    if isinstance(node, dict):
        return {**node, k: _set(node[k], rest, value)}
    if isinstance(node, (list, tuple)):
        items = list(node)
        items[k] = _set(items[k], rest, value)
        return type(node)(items) if not hasattr(node, "_fields") else type(node)(*items)
    raise FuncgradValueError(at_user_line(f"tree_at: [{k!r}] of a {type(node).__name__}"))


def tree_at(where, tree, replace):
    """A copy of ``tree`` with the node that ``where(tree)`` selects replaced by ``replace``;
    ``where`` is a chain of attribute and item accesses, e.g. ``lambda m: m.layers[0].weight``.

    >>> from funcgrad import nn, random
    >>> lin = nn.Linear(2, 1, key=random.key(0))
    >>> tree_at(lambda m: m.bias, lin, np.zeros(1, np.float32)).bias
    array([0.], dtype=float32)
    """
    path = where(_Path())
    if not isinstance(path, _Path):
        raise FuncgradTypeError(at_user_line(
            "tree_at: `where` must only read attributes and items of its argument, e.g. lambda m: m.linear.weight"))
    return _set(tree, path.steps, replace)


def partition(tree, filter_spec=is_array):
    """``(kept, rest)``: two trees of ``tree``'s structure, ``kept`` with the leaves for which
    ``filter_spec`` holds and None elsewhere, ``rest`` the other way round. ``filter_spec`` is
    a function of a leaf or a pytree of bools (a prefix of ``tree``; build one with
    ``tree_map(lambda _: False, model)`` and ``tree_at``). :func:`combine` puts them back.

    Freeze part of a model by differentiating only ``kept``:
    ``grads = fg.grad(lambda k: loss(nn.combine(k, rest)))(kept)``.
    """
    if callable(filter_spec) and not isinstance(filter_spec, Module):
        mask = tree_map(lambda x: bool(filter_spec(x)), tree)
    else:
        mask = _broadcast_mask(filter_spec, tree)
    kept = tree_map(lambda m, x: x if m else None, mask, tree)
    rest = tree_map(lambda m, x: None if m else x, mask, tree)
    return kept, rest


def _broadcast_mask(spec, tree):
    if isinstance(spec, bool):
        return tree_map(lambda _: spec, tree)
    leaves, d = tree_flatten(spec, is_leaf=lambda x: isinstance(x, bool))
    return tree_unflatten(d, [tree_map(lambda _, m=m: m, s) for m, s in zip(leaves, _up_to(spec, tree))])


def _up_to(spec, tree):
    """The subtrees of ``tree`` at the leaves (bools) of the prefix ``spec``."""
    if isinstance(spec, bool):
        return [tree]
    if isinstance(spec, Module):
        out = []
        for n in _dynamic(spec):
            out += _up_to(getattr(spec, n), getattr(tree, n))
        return out
    if isinstance(spec, dict):
        return [s for k in sorted(spec) for s in _up_to(spec[k], tree[k])]
    if isinstance(spec, (list, tuple)):
        return [s for a, b in zip(spec, tree) for s in _up_to(a, b)]
    if spec is None:
        return []
    raise FuncgradTypeError(at_user_line(f"partition: a filter spec leaf must be a bool, got {type(spec).__name__}"))


def combine(*trees):
    """Merge trees of one structure that :func:`partition` split: at each leaf, the first
    value that is not None."""
    def first(*xs):
        return next((x for x in xs if x is not None), None)

    return tree_map(first, *trees, is_leaf=lambda x: x is None)
