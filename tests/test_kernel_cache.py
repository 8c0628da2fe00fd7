"""Canonical, shape-generic kernels: equal clusters share one compiled function within a program
and across programs, a new batch size or layer width compiles nothing new, and a shared kernel
computes bit for bit what the fully specialised source (literal sizes and constants) computes."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import lax
from funcgrad.backends import cache
from funcgrad.backends.numba_cpu import canonical, compiler, runner


def mlp_step(params, x, y):
    def loss(p):
        h = x
        for w, b in p[:-1]:
            h = fnp.maximum(h @ w + b, 0.0)
        w, b = p[-1]
        logits = h @ w + b
        z = logits - fnp.max(logits, axis=1, keepdims=True)
        logp = z - fnp.log(fnp.sum(fnp.exp(z), axis=1, keepdims=True))
        return -fnp.mean(fnp.sum(y * logp, axis=1))

    val, g = fg.value_and_grad(loss)(params)
    return [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(params, g)], val


def mlp_data(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    params = [((rng.normal(size=(m, n)) / np.sqrt(m)).astype(np.float32), np.zeros(n, np.float32))
              for m, n in itertools.pairwise(sizes)]
    x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    return params, x, y


def graph_of(f, *args):
    return fg.make_graph(f)(*args)


def specialised(graph):
    """``run`` for the program written with literal sizes and constants (``Emitter.source``)."""
    program = compiler.lower(graph)
    em = program.emitter
    text = em.source()
    path = cache.entry_path("spec" + compiler.kernel_key(text))
    cache._write(path, text, replace=True)
    mod = cache._import(path, f"funcgrad_specialised_{path.stem}")
    fns = [getattr(mod, g.name) for g in em.groups]
    return runner.bind(program, fns, runner=em.runner_text(em.var_by_id(), [None] * len(em.groups)), values=[])


def assert_bitwise(graph, args):
    got = runner.compile(graph)(list(args))
    want = specialised(graph)(list(args))
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()




# -- sharing ----------------------------------------------------------------------------------------
def test_the_two_hidden_layers_share_their_kernels():
    params, x, y = mlp_data((64, 96, 96, 24), 12)  # products large enough for BLAS: clusters between
    program = compiler.lower(graph_of(mlp_step, params, x, y))
    keys = program.keys
    assert len(set(keys)) < len(keys)


def test_a_new_batch_size_or_width_compiles_nothing_new(private_cache):
    step = fg.jit(mlp_step)
    step(*mlp_data((64, 96, 96, 24), 16))
    before = (compiler.stats["codegen"] + compiler.stats["disk_loads"], len(compiler._kernels))
    for sizes, batch in (((64, 96, 96, 24), 12), ((64, 96, 96, 24), 40), ((64, 128, 128, 24), 16)):
        step(*mlp_data(sizes, batch))
        assert (compiler.stats["codegen"] + compiler.stats["disk_loads"], len(compiler._kernels)) == before
    assert step.trace_count == 4


def test_kernel_text_holds_no_size_and_no_constant():
    x = np.linspace(-1, 1, 37 * 53).reshape(37, 53)
    graph = graph_of(lambda x: fnp.sum(fnp.tanh(x * 0.37 + 1.25) * x[::-1], axis=0), x)
    (kernel,) = compiler.lower(graph).kernels
    assert not any(s in kernel.text for s in ("37", "53", "36", "52", "1.25"))
    assert ("value", np.float64(0.37)) in [(k, a) for k, a in kernel.args]


def test_equal_sizes_share_a_symbol_and_the_key_says_so():
    square = graph_of(lambda x: x * 2.5 + x.T, np.ones((6, 6)))
    (k,) = compiler.lower(square).kernels
    assert "shape[1]" not in k.text  # one size, read once


# -- bit-identical to the specialised source ---------------------------------------------------------
CASES = {
    "mlp_step": lambda: (lambda p, x, y: mlp_step(p, x, y), mlp_data((12, 10, 10, 4), 6)),
    "views": lambda: (lambda x: (x[::-1, 1:] * 0.3 + fnp.flip(x, 1)[:, :-1].T.T, fnp.transpose(x) @ x),
                      (np.random.default_rng(1).normal(size=(5, 7)),)),
    "reductions": lambda: (lambda x: (fnp.max(x, axis=0), fnp.sum(x * 1.7, axis=(0, 2)), fnp.prod(x[0] + 0.1)),
                           (np.random.default_rng(2).normal(size=(3, 4, 5)).astype(np.float32),)),
    "scan_reverse": lambda: (lambda c, xs: lax.scan(lambda c, x: (c * 0.9 + fnp.sin(x), c - x), c, xs,
                                                    reverse=True),
                             (np.ones(3), np.random.default_rng(3).normal(size=(6, 3)))),
    "scatter": lambda: (lambda x, v: x.at[1:, 2].add(v * 3.5), (np.zeros((4, 5)), np.arange(3.0))),
    "small_dot": lambda: (lambda a, b: fnp.tanh(a @ b) * 1.1, (np.ones((3, 4), np.float32) / 3,
                                                                np.ones((4, 2), np.float32))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_shared_kernels_match_the_specialised_source_bitwise(case, private_cache):
    f, args = CASES[case]()
    leaves = fg.tree_util.tree_leaves(args)
    graph = graph_of(lambda *ls: f(*fg.tree_util.tree_unflatten(fg.tree_util.tree_structure(args), ls)), *leaves)
    assert_bitwise(graph, leaves)


def test_after_a_batch_size_change_results_match_a_fresh_specialisation(private_cache):
    for batch in (16, 5, 33):
        params, x, y = mlp_data((9, 8, 8, 3), batch, seed=batch)
        leaves = fg.tree_util.tree_leaves((params, x, y))
        treedef = fg.tree_util.tree_structure((params, x, y))
        graph = graph_of(lambda *ls, t=treedef: mlp_step(*fg.tree_util.tree_unflatten(t, ls)), *leaves)
        assert_bitwise(graph, leaves)


# -- the canonical form ------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.one_of(st.tuples(st.floats(width=32), st.just(np.float32)), st.tuples(st.floats(), st.just(np.float64))))
def test_constant_placeholders_round_trip_every_bit(case):
    v, dtype = case
    want = np.asarray(v).astype(dtype)
    back = np.asarray(eval(canonical.specialise(canonical.value(v, dtype)), {"np": np}))
    assert back.dtype == want.dtype
    assert back.tobytes() == want.tobytes() or (np.isnan(want) and np.isnan(back))


def test_sizes_zero_and_one_stay_literal():
    assert canonical.shape_text((1, 0, 7)) == "(1, 0, _n7_)"
    assert canonical.specialise(canonical.shape_text((5,))) == "(5,)"


def test_alpha_rename_is_consistent_and_leaves_library_names_alone():
    text = "a12 = _vm.exp32(a3[i0_0]) + np.float32(s4)\nt5b = a12 * b0_ + x5"
    out = canonical.alpha_rename(text)
    assert out == "n0 = _vm.exp32(n1[n2]) + np.float32(n3)\nn4 = n0 * n5 + n6"
    a = canonical.alpha_rename("v9 = a2 + a7")
    b = canonical.alpha_rename("v1 = a30 + a4")
    assert a == b


def test_every_placeholder_in_an_emitted_program_is_resolved():
    params, x, y = mlp_data((6, 5, 5, 2), 4)
    program = compiler.lower(graph_of(mlp_step, params, x, y))
    for k in program.kernels:
        assert "_n" not in k.text and "_f4_" not in k.text and "_f8_" not in k.text
    assert all(kind in ("var", "size", "value", "alloc") for k in program.kernels for kind, _ in k.args)
    sizes = list(itertools.chain.from_iterable(k.args for k in program.kernels))
    assert all(isinstance(a, int) for kind, a in sizes if kind == "size")


def test_kernels_receive_their_top_level_arrays_from_the_caller():
    """Numba compiles no allocation code for a kernel: its outputs arrive as arguments, allocated
    by the runner with the exact shape, dtype and fill."""
    params, x, y = mlp_data((6, 5, 5, 2), 4)
    program = compiler.lower(graph_of(mlp_step, params, x, y))
    allocs = [a for k in program.kernels for kind, a in k.args if kind == "alloc"]
    assert allocs
    for k in program.kernels:
        top = [line for line in k.text.splitlines() if line.startswith("    ") and not line.startswith("     ")]
        assert not any("np.empty(" in line or "np.full(" in line for line in top)
    for a in allocs:
        arr = eval(a.expr, {"np": np})
        assert arr.shape == a.shape and arr.dtype == np.dtype(a.dtype) and arr.flags.c_contiguous
        assert a.expr in program.runner


def test_kernels_return_only_what_the_caller_did_not_allocate():
    """An array the runner allocated and the kernel filled is not returned (boxing it again would
    cost a Python object per call and Numba code to compile); the runner keeps its own name."""
    params, x, y = mlp_data((6, 5, 5, 2), 4)
    graph = graph_of(mlp_step, params, x, y)
    program = compiler.lower(graph)
    filled = 0
    for k in program.kernels:
        if k.outs is None:
            continue
        ret = k.text.rstrip().splitlines()[-1].strip()
        names = k.text.split("def kernel(", 1)[1].split(")", 1)[0].split(", ")
        for src, i in k.outs:
            if src == "arg":
                filled += 1
                assert k.args[i][0] == "alloc" and names[i] not in ret
        assert ret.count(",") == sum(src == "ret" for src, _ in k.outs) or ret == "return"
    assert filled
    assert_bitwise(graph, fg.tree_util.tree_leaves((params, x, y)))
