"""funcgrad.tree_util: flatten/unflatten round trips over random nested containers,
registered nodes and dataclasses, tree_map, and the errors for mismatched structures."""
from __future__ import annotations

import dataclasses
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradError
from funcgrad.tree_util import (
    register_dataclass,
    register_pytree_node,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_structure,
    tree_unflatten,
    treedef_is_leaf,
)

Point = namedtuple("Point", ["x", "y"])

leaves = st.one_of(st.integers(-5, 5), st.floats(-10, 10), st.builds(np.float64, st.floats(-1, 1)),
                   st.builds(lambda n: np.arange(float(n)), st.integers(0, 3)))
trees = st.recursive(
    leaves | st.none(),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text("abcxyz", min_size=1, max_size=2), children, max_size=3),
        st.builds(Point, children, children),
    ),
    max_leaves=10,
)


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, type(b)) and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=60, deadline=None)
@given(tree=trees)
def test_flatten_unflatten_round_trip(tree):
    flat, treedef = tree_flatten(tree)
    assert _same(tree_unflatten(treedef, flat), tree)
    assert treedef.num_leaves == len(flat)
    assert all(x is not None for x in flat)  # None is an empty container, not a leaf
    assert tree_structure(tree) == treedef and hash(tree_structure(tree)) == hash(treedef)
    assert tree_leaves(tree) == flat or all(_same(a, b) for a, b in zip(tree_leaves(tree), flat))


@settings(max_examples=40, deadline=None)
@given(tree=trees)
def test_tree_map_applies_leafwise_and_keeps_structure(tree):
    doubled = tree_map(lambda v: v * 2, tree)
    assert tree_structure(doubled) == tree_structure(tree)
    for a, b in zip(tree_leaves(doubled), tree_leaves(tree)):
        assert _same(a, b * 2)
    summed = tree_map(lambda a, b: a + b, tree, doubled)
    for a, b in zip(tree_leaves(summed), tree_leaves(tree)):
        assert _same(a, b * 3) or np.allclose(a, b * 3)


def test_dict_children_are_ordered_by_sorted_key():
    flat, treedef = tree_flatten({"b": 1, "a": 2, "c": {"z": 3, "y": 4}})
    assert flat == [2, 1, 4, 3]
    assert tree_unflatten(treedef, [10, 20, 30, 40]) == {"a": 10, "b": 20, "c": {"y": 30, "z": 40}}


def test_structures_compare_by_kind_and_keys():
    assert tree_structure((1, 2)) != tree_structure([1, 2])
    assert tree_structure({"a": 1}) != tree_structure({"b": 1})
    assert tree_structure(Point(1, 2)) != tree_structure((1, 2))
    assert tree_structure(None) != tree_structure(1)
    assert treedef_is_leaf(tree_structure(np.ones(3)))
    assert not treedef_is_leaf(tree_structure([1]))
    assert "Point" in repr(tree_structure(Point(1, [2]))) and "*" in repr(tree_structure(1))


def test_is_leaf_stops_the_descent():
    flat, treedef = tree_flatten([(1, 2), [3]], is_leaf=lambda x: isinstance(x, tuple))
    assert flat == [(1, 2), 3]
    assert tree_unflatten(treedef, ["a", "b"]) == ["a", ["b"]]


def test_wrong_leaf_count_and_mismatched_structures_raise():
    _, treedef = tree_flatten({"a": 1, "b": (2, 3)})
    with pytest.raises(ValueError, match="too few leaves"):
        tree_unflatten(treedef, [1, 2])
    with pytest.raises(ValueError, match="too many leaves"):
        tree_unflatten(treedef, [1, 2, 3, 4])
    with pytest.raises(ValueError, match="tree structures differ") as info:
        tree_map(lambda a, b: a + b, {"a": 1}, {"a": 1, "b": 2})
    assert isinstance(info.value, FuncgradError)


class Box:
    def __init__(self, value, label):
        self.value, self.label = value, label


register_pytree_node(Box, lambda b: ((b.value,), b.label), lambda label, children: Box(children[0], label))


@register_dataclass
@dataclasses.dataclass
class Layer:
    w: np.ndarray
    b: np.ndarray


@dataclasses.dataclass
class Conf:
    scale: np.ndarray
    name: str


register_dataclass(Conf, meta_fields=("name",))


def test_registered_nodes_and_dataclasses():
    flat, treedef = tree_flatten(Box([1, 2], "lbl"))
    assert flat == [1, 2]
    rebuilt = tree_unflatten(treedef, [5, 6])
    assert isinstance(rebuilt, Box) and rebuilt.value == [5, 6] and rebuilt.label == "lbl"
    assert tree_structure(Box(1, "a")) != tree_structure(Box(1, "b"))  # aux data is structure
    layer = Layer(np.ones(2), np.zeros(1))
    assert len(tree_leaves(layer)) == 2
    conf = Conf(np.ones(1), "x")
    assert len(tree_leaves(conf)) == 1 and tree_map(lambda v: v * 3, conf).name == "x"
    with pytest.raises(TypeError):
        register_dataclass(Box)


def test_transforms_accept_registered_pytrees():
    def loss(layer, conf):
        return fnp.sum(fnp.tanh(layer.w) * conf.scale) + fnp.sum(layer.b ** 2)

    layer = Layer(np.array([0.5, -0.5]), np.array([2.0]))
    g_layer, g_conf = fg.grad(loss, argnums=(0, 1))(layer, Conf(np.array([3.0]), "c"))
    assert isinstance(g_layer, Layer) and isinstance(g_conf, Conf) and g_conf.name == "c"
    np.testing.assert_allclose(g_layer.w, 3.0 * (1 - np.tanh(layer.w) ** 2))
    np.testing.assert_allclose(g_layer.b, [4.0])
    np.testing.assert_allclose(g_conf.scale, [np.tanh(0.5) + np.tanh(-0.5)], atol=1e-15)
    _, tangent = fg.jvp(lambda b: Box(b.value * 2.0, b.label), (Box(np.ones(2), "t"),), (Box(np.ones(2), "t"),))
    assert isinstance(tangent, Box) and tangent.label == "t"
    np.testing.assert_allclose(tangent.value, [2.0, 2.0])


def test_register_pytree_node_class_and_errors():
    from funcgrad.errors import FuncgradTypeError
    from funcgrad.tree_util import register_pytree_node_class

    @register_pytree_node_class
    class Pair:
        def __init__(self, a, b, name):
            self.a, self.b, self.name = a, b, name

        def tree_flatten(self):
            return [self.a, self.b], self.name

        @classmethod
        def tree_unflatten(cls, name, children):
            return cls(*children, name)

    g = fg.grad(lambda p: p.a * p.b)(Pair(2.0, 3.0, "x"))
    assert isinstance(g, Pair) and (g.a, g.b, g.name) == (3.0, 2.0, "x")
    with pytest.raises(FuncgradTypeError, match="tree_flatten"):
        register_pytree_node_class(type("Bare", (), {}))


def test_tree_reduce_and_partial():
    from funcgrad.errors import FuncgradValueError
    from funcgrad.tree_util import Partial, tree_reduce

    assert tree_reduce(lambda a, b: a + b, {"a": 1, "b": [2, 3]}) == 6
    assert tree_reduce(max, [], initializer=-1) == -1
    with pytest.raises(FuncgradValueError, match="initializer"):
        tree_reduce(max, [])
    f = Partial(lambda a, x, s=1.0: a * x * s, np.float64(2.0), s=3.0)
    np.testing.assert_array_equal(fg.jit(lambda p, x: p(x))(f, np.ones(2)), [6.0, 6.0])
    g = fg.grad(lambda p: p(1.0))(f)
    assert isinstance(g, Partial) and float(g.args[0]) == 3.0 and float(g.keywords["s"]) == 2.0
    assert Partial(f, 5.0)() == 30.0  # nested partials flatten


def test_jax_names_ported_code_meets():
    from funcgrad import lax

    fg.config.update("jax_enable_x64", True)  # accepted: 64-bit types are always on
    with pytest.raises(fg.errors.FuncgradValueError, match="64-bit"):
        fg.config.update("jax_enable_x64", False)
    x = np.ones(3)
    assert fg.block_until_ready(x) is x
    assert fg.grad(lambda v: (lax.stop_gradient(v) * v).sum())(x).tolist() == [1.0, 1.0, 1.0]
    assert fg.tree_map(lambda v: v + 1, {"a": 1.0}) == {"a": 2.0}
