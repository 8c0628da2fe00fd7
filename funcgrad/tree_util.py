"""Pytrees: nested containers of arrays that every funcgrad API accepts.

None, tuple, list, dict, namedtuple, registered dataclasses and custom
registered nodes are containers; everything else is a leaf.

>>> leaves, treedef = tree_flatten({"w": 1.0, "b": (2.0, None)})
>>> leaves
[2.0, 1.0]
>>> tree_unflatten(treedef, [20.0, 10.0])
{'b': (20.0, None), 'w': 10.0}
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .errors import FuncgradTypeError, FuncgradValueError, at_user_line

__all__ = [
    "Partial",
    "PyTreeDef",
    "register_dataclass",
    "register_pytree_node",
    "register_pytree_node_class",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_reduce",
    "tree_structure",
    "tree_unflatten",
    "treedef_is_leaf",
]

# type -> (flatten(x) -> (children, aux), unflatten(aux, children) -> x)
_registry: dict[type, tuple[Callable, Callable]] = {}


def register_pytree_node(nodetype: type, flatten_func: Callable, unflatten_func: Callable) -> None:
    """Make ``nodetype`` a container: ``flatten_func(x) -> (children, aux_data)``
    and ``unflatten_func(aux_data, children) -> x``."""
    _registry[nodetype] = (flatten_func, unflatten_func)


def register_pytree_node_class(cls):
    """Class decorator: ``cls`` is a container through its own ``tree_flatten(self) -> (children,
    aux_data)`` method and ``tree_unflatten(cls, aux_data, children)`` classmethod (as in JAX)."""
    for name in ("tree_flatten", "tree_unflatten"):
        if not callable(getattr(cls, name, None)):
            raise FuncgradTypeError(at_user_line(
                f"register_pytree_node_class: {cls.__name__} has no {name} method; define "
                "tree_flatten(self) -> (children, aux_data) and the classmethod tree_unflatten(cls, aux_data, children)"))
    register_pytree_node(cls, lambda x: x.tree_flatten(), cls.tree_unflatten)
    return cls


def register_dataclass(cls=None, *, data_fields=None, meta_fields=()):
    """Register a dataclass as a pytree (usable as a decorator).

    ``data_fields`` are children (default: every field not in ``meta_fields``);
    ``meta_fields`` are static and part of the tree structure.
    """

    def wrap(c):
        if not dataclasses.is_dataclass(c):
            raise FuncgradTypeError(f"register_dataclass: {c.__name__} is not a dataclass")
        names = [f.name for f in dataclasses.fields(c)]
        data = list(data_fields) if data_fields is not None else [n for n in names if n not in meta_fields]
        meta = list(meta_fields)

        def flat(x):
            return [getattr(x, n) for n in data], tuple(getattr(x, n) for n in meta)

        def unflat(aux, children):
            kw = dict(zip(data, children))
            kw.update(zip(meta, aux))
            return c(**kw)

        register_pytree_node(c, flat, unflat)
        return c

    return wrap if cls is None else wrap(cls)


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


class PyTreeDef:
    """The structure of a pytree: node kind, static data and children."""

    __slots__ = ("_hash", "aux", "children", "kind", "num_leaves")

    def __init__(self, kind, aux, children):
        self.kind = kind  # None for a leaf, else the container type
        self.aux = aux
        self.children = children
        self.num_leaves = 1 if kind is _LEAF else sum(c.num_leaves for c in children)
        self._hash = None

    def _key(self):
        return (self.kind, self.aux, tuple(c._key() for c in self.children))

    def __eq__(self, other):
        return isinstance(other, PyTreeDef) and self._key() == other._key()

    def __hash__(self):
        if self._hash is None:
            self._hash = hash(self._key())
        return self._hash

    def __repr__(self):
        return f"PyTreeDef({self._describe()})"

    def _describe(self):
        if self.kind is _LEAF:
            return "*"
        if self.kind is type(None):
            return "None"
        inner = ", ".join(c._describe() for c in self.children)
        if self.kind is tuple:
            return f"({inner}{',' if len(self.children) == 1 else ''})"
        if self.kind is list:
            return f"[{inner}]"
        if self.kind is dict:
            return "{" + ", ".join(f"{k!r}: {c._describe()}" for k, c in zip(self.aux, self.children)) + "}"
        if self.kind is _NAMEDTUPLE:
            return f"{self.aux.__name__}({inner})"
        return f"{self.kind.__name__}({inner})"

    def unflatten(self, leaves: Iterable[Any]):
        if self.kind is _LEAF and type(leaves) is list and len(leaves) == 1:
            return leaves[0]
        it = iter(leaves)
        out = self._build(it)
        if next(it, _SENTINEL) is not _SENTINEL:
            raise FuncgradValueError(f"tree_unflatten: too many leaves for {self}")
        return out

    def _build(self, it):
        kind = self.kind
        if kind is _LEAF:
            try:
                return next(it)
            except StopIteration:
                raise FuncgradValueError(f"tree_unflatten: too few leaves for {self}") from None
        children = [c._build(it) for c in self.children]
        if kind is tuple:
            return tuple(children)
        if kind is list:
            return children
        if kind is dict:
            return dict(zip(self.aux, children))
        if kind is type(None):
            return None
        if kind is _NAMEDTUPLE:
            return self.aux(*children)
        return _registry[kind][1](self.aux, children)


class _Leaf:
    pass


class _NamedTuple:
    pass


_LEAF = _Leaf
_NAMEDTUPLE = _NamedTuple
_SENTINEL = object()
_LEAF_DEF = PyTreeDef(_LEAF, None, ())
_ARRAY_TYPES = frozenset({np.ndarray, float, int, bool})


def treedef_is_leaf(treedef: PyTreeDef) -> bool:
    return treedef.kind is _LEAF


def _flatten(x, leaves, is_leaf):
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return _LEAF_DEF
    t = type(x)
    if t is tuple:
        return PyTreeDef(tuple, None, tuple(_flatten(c, leaves, is_leaf) for c in x))
    if t is list:
        return PyTreeDef(list, None, tuple(_flatten(c, leaves, is_leaf) for c in x))
    if t is dict:
        keys = sorted(x)
        return PyTreeDef(dict, tuple(keys), tuple(_flatten(x[k], leaves, is_leaf) for k in keys))
    if x is None:
        return PyTreeDef(type(None), None, ())
    if t in _registry:
        children, aux = _registry[t][0](x)
        return PyTreeDef(t, aux, tuple(_flatten(c, leaves, is_leaf) for c in children))
    if _is_namedtuple(x):
        return PyTreeDef(_NAMEDTUPLE, t, tuple(_flatten(c, leaves, is_leaf) for c in x))
    leaves.append(x)
    return _LEAF_DEF


def tree_flatten(tree, is_leaf: Callable | None = None):
    """``(leaves, treedef)``; dict children are ordered by sorted key."""
    if is_leaf is None and type(tree) in _ARRAY_TYPES:
        return [tree], _LEAF_DEF
    leaves: list = []
    treedef = _flatten(tree, leaves, is_leaf)
    return leaves, treedef


def tree_unflatten(treedef: PyTreeDef, leaves):
    return treedef.unflatten(leaves)


def tree_leaves(tree, is_leaf: Callable | None = None) -> list:
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf: Callable | None = None) -> PyTreeDef:
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f: Callable, tree, *rest, is_leaf: Callable | None = None):
    """Apply ``f`` leaf-wise to ``tree`` and trees of the same structure."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    all_leaves = [leaves]
    for r in rest:
        r_leaves, r_def = tree_flatten(r, is_leaf)
        if r_def != treedef:
            raise FuncgradValueError(at_user_line(
                f"tree_map: tree structures differ: {treedef} vs {r_def}; every tree must have the "
                "structure of the first (same dict keys, list lengths and None entries). For params "
                "and grads, take the gradient with respect to the whole params tree"
            ))
        all_leaves.append(r_leaves)
    return treedef.unflatten(f(*xs) for xs in zip(*all_leaves))


_NO_INITIAL = object()


def tree_reduce(function: Callable, tree, initializer=_NO_INITIAL, is_leaf: Callable | None = None):
    """``functools.reduce(function, tree_leaves(tree)[, initializer])``."""
    import functools

    leaves = tree_leaves(tree, is_leaf)
    if initializer is _NO_INITIAL:
        if not leaves:
            raise FuncgradValueError(at_user_line("tree_reduce: the tree has no leaves; pass an initializer"))
        return functools.reduce(function, leaves)
    return functools.reduce(function, leaves, initializer)


class Partial:
    """``functools.partial`` as a pytree: the bound arguments are children (so a jitted or
    differentiated function may take and return one), the function is static."""

    __slots__ = ("args", "func", "keywords")

    def __init__(self, func: Callable, *args, **keywords):
        if isinstance(func, Partial):
            args, keywords = func.args + args, {**func.keywords, **keywords}
            func = func.func
        self.func, self.args, self.keywords = func, tuple(args), dict(keywords)

    def __call__(self, *args, **keywords):
        return self.func(*self.args, *args, **{**self.keywords, **keywords})

    def __repr__(self):
        return f"Partial({getattr(self.func, '__name__', self.func)!r}, {len(self.args)} args, {sorted(self.keywords)})"


def _partial_flatten(p):
    names = tuple(sorted(p.keywords))
    return [p.args, [p.keywords[n] for n in names]], (p.func, names)


def _partial_unflatten(aux, children):
    func, names = aux
    args, values = children
    return Partial(func, *args, **dict(zip(names, values)))


register_pytree_node(Partial, _partial_flatten, _partial_unflatten)
