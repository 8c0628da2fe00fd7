"""Data-parallel training with funcgrad.distributed: ``data_parallel``, ``DataParallel``
and weighted ``pmean`` in this process (size 1), and the digits MLP trained on 2
MPI ranks and resumed from its checkpoint on 3 (tests/mpi_scripts/training.py;
skipped when no MPI launcher / working mpi4py is installed)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from test_distributed import assert_ok, fresh, mpirun  # noqa: F401  (fresh: a fixture, used by name)

import funcgrad as fg
from funcgrad import distributed as dist
from funcgrad import nn, optim, random
from funcgrad.config import config
from funcgrad.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.transforms import jit as jit_module
from funcgrad.tree_util import tree_leaves, tree_map

init_mlp, apply_mlp = nn.serial(nn.Dense(8), nn.Tanh, nn.Dense(3))


def loss_fn(params, x, y):
    return nn.softmax_cross_entropy(apply_mlp(params, x), y)


def data(rows, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, 5)), rng.integers(0, 3, rows).astype(np.int32)


def params64():
    return tree_map(lambda a: np.asarray(a, np.float64), init_mlp(random.key(1), (-1, 5))[1])


def same_bits(a, b):
    la, lb = tree_leaves(a), tree_leaves(b)
    return len(la) == len(lb) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.asarray(x).tobytes() == np.asarray(y).tobytes()
        for x, y in zip(la, lb))


# ----------------------------------------------------------------------------- one process


@pytest.mark.usefixtures("fresh")
def test_one_process_step_is_the_plain_step():
    opt = optim.adam(0.05)
    step = dist.DataParallel(loss_fn, opt, check_every=2, device="interpreter")
    params, state = step.init(params64())
    assert same_bits(params, params64()) and same_bits(state, opt.init(params64()))
    vg = fg.jit(fg.value_and_grad(loss_fn), device="interpreter")
    want_params, want_state = params64(), opt.init(params64())
    for i in range(4):
        x, y = data(6, seed=i)
        params, state, loss = step(params, state, *dist.shard((x, y)))
        want_loss, grads = vg(want_params, x, y)
        updates, want_state = opt.update(grads, want_state, want_params)
        want_params = optim.apply_updates(want_params, updates)
        assert loss.dtype == np.float64 and loss.tobytes() == want_loss.tobytes()
        for got, want in zip(tree_leaves(params), tree_leaves(want_params)):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert step.steps == 4 and len(step.check(params, state)) == 64


@pytest.mark.usefixtures("fresh")
def test_data_parallel_averages_the_whole_output():
    vg = fg.value_and_grad(loss_fn)
    wrapped = dist.data_parallel(vg)
    assert wrapped.__name__ == "data_parallel(value_and_grad(loss_fn))" and wrapped.__wrapped__ is vg
    x, y = data(7)
    got, want = wrapped(params64(), x, y), vg(params64(), x, y)
    assert same_bits(got, want)
    with pytest.raises(FuncgradValueError, match=r"data_parallel\(value_and_grad\(loss_fn\)\).*no batch"):
        wrapped(params64())
    with pytest.raises(FuncgradValueError, match="0-d first batch leaf") as info:
        wrapped(params64(), np.float64(1.0), y)
    assert f"at {__file__}:" in str(info.value)  # the user's line


@pytest.mark.usefixtures("fresh")
def test_has_aux_value_is_loss_and_aux():
    def loss_and_error(params, x, y):
        logits = apply_mlp(params, x)
        return nn.softmax_cross_entropy(logits, y), fg.numpy.mean(fg.numpy.argmax(logits, axis=-1) != y)

    step = dist.DataParallel(loss_and_error, optim.sgd(0.1), has_aux=True, device="interpreter")
    params, state = step.init(params64())
    x, y = data(9)
    _, _, (loss, error) = step(params, state, x, y)
    (want_loss, want_error), _ = fg.value_and_grad(loss_and_error, has_aux=True)(params64(), x, y)
    assert loss == want_loss and error == want_error and error.dtype == np.float64


@pytest.mark.usefixtures("fresh")
def test_update_compiles_before_its_first_call(monkeypatch):
    """Never served by the interpreter while compiling in the background (ranks would
    switch to compiled code at different steps), whatever async_compile says."""
    monkeypatch.setitem(config._values, "async_compile", True)
    backgrounded = []
    monkeypatch.setattr(jit_module, "_compile_in_background", lambda entry, name: backgrounded.append(name))
    step = dist.DataParallel(loss_fn, optim.sgd(0.1))
    params, state = step.init(params64())
    x, y = data(11)
    _, grads = step.local_value_and_grad(params, x, y)
    assert backgrounded == ["value_and_grad(loss_fn)"]  # the gradient: tiered compilation as usual
    step.update(params, state, grads)
    assert backgrounded == ["value_and_grad(loss_fn)"] and step._update.wait_compiled(timeout=0)
    assert config.read("async_compile") is True
    with pytest.raises(FuncgradValueError, match="tree structures differ"):
        step.update(params, state, {"wrong": np.ones(2)})
    assert config.read("async_compile") is True


@pytest.mark.usefixtures("fresh")
def test_argument_errors():
    with pytest.raises(FuncgradTypeError, match="optimizer must have init and update.*got function") as info:
        dist.DataParallel(loss_fn, lambda g: g)
    assert f"at {__file__}:" in str(info.value)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(FuncgradValueError, match="check_every must be an int >= 0"):
            dist.DataParallel(loss_fn, optim.sgd(0.1), check_every=bad)


@pytest.mark.usefixtures("fresh")
def test_weighted_pmean_on_one_process():
    tree = {"f16": np.array([0.1, 3.0], np.float16), "i": np.arange(3), "c": np.array([1 + 2j])}
    for w in (1, 0.25, np.int32(7), np.float32(3.5)):
        assert same_bits(dist.pmean(tree, weight=w), dist.pmean(tree))
    assert dist.pmean({}, weight=2) == {}
    with pytest.raises(FuncgradValueError, match="weights sum to 0 over all ranks"):
        dist.pmean(tree, weight=0)
    for bad, why in [(-1, "finite and >= 0"), (np.nan, "finite and >= 0"), (np.inf, "finite and >= 0"),
                     (np.ones(2), r"a real number, got ndarray \(shape \(2,\)"), (True, "a real number, got bool"),
                     (1j, "a real number, got complex")]:
        with pytest.raises(FuncgradValueError, match=f"pmean: weight must be {why}"):
            dist.pmean(tree, weight=bad)


# ----------------------------------------------------------------------------- under mpirun


@pytest.fixture(scope="module")
def training_jobs(tmp_path_factory):
    """The digits MLP trained on 2 ranks (saving a checkpoint midway) and resumed on 3."""
    sk = pytest.importorskip("sklearn.datasets")
    folder = tmp_path_factory.mktemp("training")
    digits = sk.load_digits()
    data_path, ckpt = str(folder / "digits.npz"), str(folder / "adam.ckpt")
    np.savez(data_path, x=digits.data / 16.0, y=digits.target.astype(np.int32))
    two = mpirun(2, ["training", "train", data_path, ckpt])
    three = mpirun(3, ["training", "resume", data_path, ckpt])
    return {2: two, 3: three, "ckpt": ckpt}


def test_two_ranks_train_like_one_process_with_identical_params(training_jobs):
    assert_ok(training_jobs[2], 2, "training")
    assert os.path.isfile(training_jobs["ckpt"])


def test_training_resumes_from_a_checkpoint_on_three_ranks(training_jobs):
    assert_ok(training_jobs[3], 3, "training")
