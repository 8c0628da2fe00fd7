"""``mpirun -n N python training.py train|resume DATA.npz CKPT``: data-parallel
training of a digits MLP (64-32-10) with ``distributed.DataParallel``, checked
against a single-process run on the same global batches (computed eagerly on
every rank), with parameters compared bit for bit across ranks.

``train`` (2 ranks): float64 + SGD with momentum and float32 + Adam (compiled
with Numba; the other checks run on the interpreter device, which compiles
nothing); has_aux; a rank with an empty shard; ``check_every``
catching a drift of a few ulps on rank 1 at the right step; saves the Adam
run's state after ``SAVED_AT`` steps.
``resume`` (any number of ranks): loads that state and finishes the run.
Prints ``OK training rank R`` at the end."""
from __future__ import annotations

import itertools
import sys

import numpy as np

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import distributed as dist
from funcgrad import nn, optim, random
from funcgrad.errors import FuncgradValueError
from funcgrad.tree_util import tree_leaves, tree_map

BATCHES = [64, 37] * 4  # global batch sizes: 37 gives unequal shards (few shapes: few compiles)
SAVED_AT = 4
TOL = {np.float64: 1e-10, np.float32: 1e-5}

init_mlp, apply_mlp = nn.serial(nn.Dense(32), nn.Relu, nn.Dense(10))


def loss_fn(params, x, y):
    return nn.softmax_cross_entropy(apply_mlp(params, x), y)


def loss_and_accuracy(params, x, y):
    logits = apply_mlp(params, x)
    return nn.softmax_cross_entropy(logits, y), fnp.mean(fnp.argmax(logits, axis=-1) == y)


def initial_params(dtype, seed=0):
    _, params = init_mlp(random.key(seed), (-1, 64))
    return tree_map(lambda a: np.asarray(a, dtype), params)


def global_batches(x, y, dtype):
    order = np.random.default_rng(7).permutation(len(y))
    starts = np.cumsum([0] + BATCHES)
    return [(x[order[a:b]].astype(dtype), y[order[a:b]]) for a, b in itertools.pairwise(starts)]


def single_process_run(opt, params, batches):
    """The reference: a plain (eager) step on each whole global batch, in this process."""
    state, losses = opt.init(params), []
    for x, y in batches:
        loss, grads = fg.value_and_grad(loss_fn)(params, x, y)
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        losses.append(float(loss))
    return losses, params


def assert_close(got, want, dtype, what):
    tol = TOL[dtype]
    for g, w in zip(tree_leaves(got), tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=tol, atol=tol, err_msg=what)


def assert_bitwise_same_on_every_rank(tree, what):
    dist.check_in_sync(tree, what=what)
    rank0 = dist.broadcast(tree)
    for mine, theirs in zip(tree_leaves(tree), tree_leaves(rank0)):
        assert mine.dtype == theirs.dtype and mine.tobytes() == theirs.tobytes(), (what, dist.rank())


def train(opt, dtype, batches, device, check_every=0, save_to=None):
    """Run DataParallel over ``batches`` from ranks' differing inits; compare with the reference."""
    step = dist.DataParallel(loss_fn, opt, check_every=check_every, device=device)
    params, state = step.init(initial_params(dtype, seed=dist.rank()))  # rank 0's init everywhere
    losses = []
    for i, batch in enumerate(batches):
        if i == SAVED_AT and save_to:
            dist.save_checkpoint(save_to, {"params": params, "opt_state": state, "step": np.int64(i)})
        params, state, loss = step(params, state, *dist.shard(batch))
        assert loss.dtype == dtype
        losses.append(float(loss))
    want_losses, want_params = single_process_run(opt, initial_params(dtype), batches)
    assert_close(losses, want_losses, dtype, f"{dtype.__name__} loss curve")
    assert_close(params, want_params, dtype, f"{dtype.__name__} final params")
    assert_bitwise_same_on_every_rank((params, state), f"{dtype.__name__} params and state")
    return losses


def check_aux_and_empty_shard(x, y):
    params = initial_params(np.float64)
    step = dist.DataParallel(loss_and_accuracy, optim.sgd(0.1), has_aux=True, device="interpreter")
    xb, yb = x[:37].astype(np.float64), y[:37]
    (loss, acc), grads = step.value_and_grad(params, *dist.shard((xb, yb)))
    (want_loss, want_acc), want_grads = fg.value_and_grad(loss_and_accuracy, has_aux=True)(params, xb, yb)
    assert_close([loss, acc, grads], [want_loss, want_acc, want_grads], np.float64, "has_aux")
    assert acc.dtype == np.float64 and abs(float(acc) * 37 - round(float(acc) * 37)) < 1e-9
    # one row over several ranks: the ranks without rows contribute nothing
    (loss, acc), grads = step.value_and_grad(params, *dist.shard((xb[:1], yb[:1])))
    (want_loss, _), want_grads = fg.value_and_grad(loss_and_accuracy, has_aux=True)(params, xb[:1], yb[:1])
    assert_close([loss, grads], [want_loss, want_grads], np.float64, "empty shards")


def check_drift_is_caught(batches):
    """A difference of a few ulps on rank 1 is reported at the first checked step, on every rank."""
    step = dist.DataParallel(loss_fn, optim.sgd(0.05, momentum=0.9), check_every=3, device="interpreter")
    params, state = step.init(initial_params(np.float32))
    if dist.rank() == 1:
        params[2]["w"][3, 4] *= np.float32(1 + 2**-20)
    for i, batch in enumerate(batches[:3]):
        try:
            params, state, _ = step(params, state, *dist.shard(batch))
        except FuncgradValueError as e:
            msg = str(e)
            assert i == 2 and step.steps == 3, (i, msg)
            assert "params and optimizer state after step 3 is not the same on every rank" in msg, msg
            assert "rank(s) [1] differ from rank 0" in msg and "[0][2]['w']" in msg, msg
            break
    else:
        raise AssertionError("check_every=3 did not catch the drift")
    assert step.check(*step.init(params))  # rank 0's params again: in sync


def main(mode, data_path, ckpt_path):
    dist.init()
    data = np.load(data_path)
    x, y = data["x"], data["y"]
    adam = optim.adam(1e-2)
    b32 = global_batches(x, y, np.float32)
    if mode == "train":
        train(optim.sgd(0.1, momentum=0.9), np.float64, global_batches(x, y, np.float64), "interpreter")
        train(adam, np.float32, b32, "cpu", check_every=1, save_to=ckpt_path)
        check_aux_and_empty_shard(x, y)
        check_drift_is_caught(b32)
    else:
        step = dist.DataParallel(loss_fn, adam, check_every=2, device="interpreter")
        params = initial_params(np.float32)
        like = {"params": params, "opt_state": adam.init(params), "step": np.int64(0)}
        saved = dist.load_checkpoint(ckpt_path, like=like)
        assert int(saved["step"]) == SAVED_AT
        params, state, losses = saved["params"], saved["opt_state"], []
        for batch in b32[SAVED_AT:]:
            params, state, loss = step(params, state, *dist.shard(batch))
            losses.append(float(loss))
        want_losses, want_params = single_process_run(adam, initial_params(np.float32), b32)
        assert_close(losses, want_losses[SAVED_AT:], np.float32, "resumed loss curve")
        assert_close(params, want_params, np.float32, "resumed final params")
        assert_bitwise_same_on_every_rank((params, state), "resumed params and state")
    print(f"OK training rank {dist.rank()} of {dist.size()}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
