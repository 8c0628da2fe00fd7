"""The error catalogue (docs/errors.md): realistic mistakes and the errors they give.

Each mistake must raise an error that is an instance of the fitting built-in type and of
FuncgradError, whose message names the operation and the shapes/dtypes involved, says
what to do instead, and points at the user's line (the line marked ``# <-`` below).
"""
from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import checkpoint, lax, random
from funcgrad.errors import FuncgradError
from funcgrad.testing import check_grads
from funcgrad.tree_util import tree_map

DOCS = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "errors.md")
JIT = {"device": "interpreter"}


@dataclass
class Mistake:
    run: Callable
    kind: type  # the built-in exception type the error must also be
    words: tuple  # fragments the message must contain (operation, shapes/dtypes, advice)

    @property
    def id(self):
        return self.run.__name__


CATALOGUE: list[Mistake] = []


def mistake(kind, *words):
    def register(fn):
        CATALOGUE.append(Mistake(fn, kind, words))
        return fn
    return register


# -- shapes ------------------------------------------------------------------------------------
@mistake(ValueError, "matmul", "(64, 32)", "(10, 32)", "transpose an operand")
def matmul_shape_mismatch():
    w = np.ones((10, 32))
    fg.jit(lambda x: fnp.tanh(x @ w), **JIT)(np.ones((64, 32)))  # <-


@mistake(ValueError, "add", "(2, 3)", "(4,)", "cannot be broadcast", "size-1 axis")
def broadcasting_mismatch():
    bias = np.ones(4)
    fg.grad(lambda a: fnp.sum(a + bias))(np.ones((2, 3)))  # <-


@mistake(ValueError, "reshape", "(6,)", "(4, 2)", "same number of elements", "-1")
def reshape_to_wrong_size():
    fg.grad(lambda x: fnp.sum(x.reshape(4, 2)))(np.ones(6))  # <-


@mistake(ValueError, "concatenate", "(2, 3)", "(2, 4)", "axis")
def concatenate_mismatch():
    fnp.concatenate([np.ones((2, 3)), np.ones((2, 4))])  # <-


@mistake(ValueError, "einsum", "'j'", "(2, 3)", "(4, 5)", "fix the subscripts")
def einsum_operand_mismatch():
    fnp.einsum("ij,jk->ik", np.ones((2, 3)), np.ones((4, 5)))  # <-


@mistake(ValueError, "linalg.solve", "(3, 3)", "(4,)", "must have shape (3,)")
def solve_with_mismatched_shapes():
    fg.grad(lambda b: fnp.sum(fnp.linalg.solve(np.eye(3), b)))(np.ones(4))  # <-


@mistake(IndexError, "sum", "axis 2", "dimension 2", "valid axes are -2..1")
def reduction_over_a_bad_axis():
    fnp.sum(np.ones((2, 3)), axis=2)  # <-


@mistake(IndexError, "index 5", "size 3", "(3,)", "valid indices are -3..2")
def index_out_of_bounds():
    fg.grad(lambda x: x[5])(np.ones(3))  # <-


@mistake(ValueError, "vmap", "different sizes: 3 and 4", "same size")
def vmap_axes_of_different_sizes():
    fg.vmap(lambda a, b: a * b)(np.ones(3), np.ones(4))  # <-


# -- differentiation -------------------------------------------------------------------------
@mistake(TypeError, "grad", "scalar", "shape (3,)", "jacrev")
def grad_of_a_non_scalar():
    fg.grad(lambda x: fnp.tanh(x))(np.ones(3))  # <-


@mistake(TypeError, "grad", "argument 0 ('x')", "int64", "astype")
def grad_with_respect_to_an_integer():
    fg.grad(lambda x: x * 2.0)(3)  # <-


@mistake(ValueError, "grad", "argnums=1", "1 positional argument", "-1..0")
def wrong_argnums():
    fg.grad(lambda x: x * 2.0, argnums=1)(3.0)  # <-


@mistake(ValueError, "tree_map", "'b'", "structure of the first")
def params_and_grads_with_different_structures():
    params = {"w": np.ones(3), "b": np.zeros(1)}
    grads = fg.grad(lambda w: fnp.sum(w ** 2))(params["w"])
    tree_map(lambda p, g: p - 0.1 * g, params, {"w": grads})  # <-


@mistake(TypeError, "has_aux=True", "pair (output, aux)", "shape ()", "return (loss, aux)")
def has_aux_without_a_pair():
    fg.grad(lambda x: fnp.sum(x ** 2), has_aux=True)(np.ones(3))  # <-


@mistake(ValueError, "jvp", "tangent of shape (2,)", "primal of shape (3,)", "float64")
def jvp_with_a_wrong_tangent_shape():
    fg.jvp(fnp.sin, (np.ones(3),), (np.ones(2),))  # <-


@mistake(TypeError, "jvp", "tuples", "ndarray", "jvp(f, (x,), (t,))")
def jvp_with_non_tuple_primals():
    fg.jvp(fnp.sin, np.ones(3), np.ones(3))  # <-


@mistake(ValueError, "vjp", "cotangent 0 has shape (2,)", "shape (3,)", "ones_like")
def vjp_with_a_wrong_cotangent_shape():
    _, f_vjp = fg.vjp(fnp.sin, np.ones(3))
    f_vjp(np.ones(2))  # <-


@mistake(ValueError, "custom_vjp bwd of scale", "one cotangent per", "(2)", "length 1", "None")
def custom_vjp_bwd_with_too_few_cotangents():
    @fg.custom_vjp
    def scale(x, s):
        return x * s

    scale.defvjp(lambda x, s: (x * s, (x, s)),
                 lambda res, g: (g * res[1],))  # <-
    fg.grad(scale)(1.0, 2.0)


@mistake(TypeError, "custom_vjp fwd of ident", "pair (output, residuals)", "ndarray")
def custom_vjp_fwd_without_residuals():
    @fg.custom_vjp
    def ident(x):
        return x

    ident.defvjp(lambda x: x, lambda res, g: (g,))
    fg.grad(lambda x: fnp.sum(ident(x)))(np.ones(2))  # <-


@mistake(AssertionError, "check_grads", "reverse-mode (vjp)", "softplus", "relative error")
def custom_vjp_with_a_wrong_rule():
    @fg.custom_vjp
    def softplus(x):
        return fnp.log1p(fnp.exp(x))

    softplus.defvjp(lambda x: (softplus(x), x), lambda x, g: (g * fnp.exp(x),))
    check_grads(softplus, (np.array([0.3, -1.2]),), modes=("rev",))  # <-


@mistake(FloatingPointError, "debug_nans", "cotangent", "Inf", "backward pass of 'sqrt'", "fnp.sqrt(x * x)")
def nan_in_the_backward_pass():
    fg.config.update("debug_nans", True)
    try:
        with np.errstate(all="ignore"):
            fg.grad(lambda x: fnp.sum(fnp.sqrt(x * x)))(np.zeros(2))  # <-
    finally:
        fg.config.update("debug_nans", False)


# -- tracing and jit -----------------------------------------------------------------------------
@mistake(TypeError, "bool[]", "concrete value", "lax.cond", "static_argnums")
def python_if_on_a_traced_value():
    @fg.jit
    def relu(x):
        if x > 0:  # <-
            return x
        return 0.0 * x

    relu(1.0)


@mistake(TypeError, "bool[]", "lax.while_loop")
def python_while_on_a_traced_value():
    @fg.jit
    def halve(x):
        while x > 1.0:  # <-
            x = x / 2
        return x

    halve(8.0)


@mistake(TypeError, "f64[]", "float()", "static_argnums")
def float_of_a_traced_value():
    fg.jit(lambda x: x * float(x), **JIT)(1.0)  # <-


@mistake(TypeError, "i64[]", "int()", "static_argnums")
def python_int_index_from_a_traced_value():
    fg.jit(lambda x, i: x[int(i)], **JIT)(np.ones(3), 1)  # <-


@mistake(TypeError, "np.asarray", "f64[3]", "funcgrad.numpy")
def numpy_conversion_of_a_traced_value():
    fg.grad(lambda x: np.asarray(x).sum())(np.ones(3))  # <-


@mistake(TypeError, "ended transformation", "'sin'", "escaped", "return it")
def leaked_tracer_used_after_its_trace():
    saved = []

    def loss(x):
        saved.append(x * 2.0)
        return fnp.sum(x ** 2)

    fg.grad(loss)(np.ones(2))
    fnp.sin(saved[0])  # <-


@mistake(TypeError, "immutable", "x[0]", "f64[3]", ".at[idx].set(value)")
def in_place_assignment_on_a_traced_array():
    def f(x):
        x[0] = 1.0  # <-
        return x

    fg.jit(f, **JIT)(np.ones(3))


@mistake(TypeError, "jit(", "static argument 1", "list", "tuple")
def unhashable_static_argument():
    fg.jit(lambda x, sizes: x, static_argnums=1, **JIT)(1.0, [1, 2])  # <-


@mistake(TypeError, "boolean-mask", "bool[3]", "fnp.where")
def boolean_mask_indexing_in_jit():
    fg.jit(lambda x: fnp.sum(x[x > 0]), **JIT)(np.ones(3))  # <-


@mistake(ValueError, "jit", "unknown device 'tpu'", "interpreter")
def unknown_jit_device():
    fg.jit(lambda x: x, device="tpu")  # <-


@mistake(TypeError, "lax.cond", "f64[3]", "f64[2]", "same pytree of shapes")
def cond_branches_with_different_shapes():
    lax.cond(True, lambda x: x, lambda x: x[:2], np.ones(3))  # <-


@mistake(TypeError, "lax.scan", "carry", "f64[2] in, f64[1] out", "astype")
def scan_body_changing_the_carry_shape():
    lax.scan(lambda c, x: (c[:1], x), np.ones(2), np.ones((3, 2)))  # <-


@mistake(ValueError, "debug.print", "'{loss}'", "f64[]", "keyword argument")
def debug_print_with_a_wrong_placeholder():
    def f(x):
        fg.debug.print("{loss}", value=x)  # <-
        return x

    fg.jit(f, **JIT)(1.0)


# -- configuration, random numbers, checkpoints -----------------------------------------------------
@mistake(ValueError, "config.update", "'debug_nan'", "did you mean 'debug_nans'")
def unknown_config_option():
    fg.config.update("debug_nan", True)  # <-


@mistake(ValueError, "config.update", "num_threads", "whole number", "'four'")
def thread_count_that_is_not_a_number():
    fg.config.update("num_threads", "four")  # <-


@mistake(TypeError, "random.normal", "PRNG key", "shape (3,)", "float64", "random.key(seed)")
def array_passed_where_a_key_is_expected():
    x = np.ones(3)
    random.normal(x, (2,))  # <-


@mistake(ValueError, "checkpoint.load", "checksum does not match", "backup")
def loading_a_corrupt_checkpoint(tmp_path):
    path = tmp_path / "params.fgc"
    checkpoint.save(str(path), {"w": np.ones((3, 2))})
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF  # a flipped byte on disk
    path.write_bytes(bytes(data))
    checkpoint.load(str(path))  # <-


@mistake(TypeError, "indexed", "i64[]", "fnp.asarray(a)[i]")
def numpy_array_indexed_with_a_traced_value():
    table = np.arange(10.0)
    fg.jit(lambda i: table[i] * 2.0, **JIT)(3)  # <-


def marked_line(fn):
    src, start = inspect.getsourcelines(fn)
    marks = [start + i for i, s in enumerate(src) if s.rstrip().endswith("# <-")]
    assert len(marks) == 1, f"{fn.__name__}: mark exactly one line with '# <-'"
    return marks[0]


def test_catalogue_has_at_least_25_mistakes():
    assert len(CATALOGUE) >= 25
    assert len({m.id for m in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("m", CATALOGUE, ids=lambda m: m.id)
def test_mistake_gives_a_helpful_error(m, tmp_path):
    args = [tmp_path] if "tmp_path" in inspect.signature(m.run).parameters else []
    with pytest.raises(FuncgradError) as exc:
        m.run(*args)
    err, msg = exc.value, str(exc.value)
    assert isinstance(err, m.kind), f"{type(err).__mro__} is not a {m.kind.__name__}"
    for word in m.words:
        assert word in msg, f"{word!r} missing from:\n{msg}"
    assert f"test_error_catalogue.py:{marked_line(m.run)}" in msg, msg


def test_docs_list_every_mistake():
    with open(DOCS, encoding="utf-8") as fh:
        docs = fh.read()
    listed = re.findall(r"^## \d+\. .*\(`(\w+)`\)$", docs, flags=re.MULTILINE)
    assert listed == [m.id for m in CATALOGUE]
