"""``mpirun -n N python run.py dp_sgd``: DP-SGD data parallel, as ``funcgrad.privacy``'s
docstring describes it: each rank's ``ClippedSum`` of its shard, ``psum`` over the ranks, then
``dp_sgd``'s update adds the noise once with the key every rank holds. Checked against one
process taking the same steps on the whole global batches (computed on every rank, eagerly), and
parameters and optimizer state compared bit for bit across ranks. Global batches of 11 rows give
unequal shards. Prints ``OK dp_sgd rank R`` at the end."""
from __future__ import annotations

import numpy as np

import funcgrad as fg
from funcgrad import distributed as dist
from funcgrad import nn, optim, privacy, random
from funcgrad.tree_util import tree_leaves, tree_map

CLIP, NOISE, LR, STEPS, ROWS = 0.5, 1.1, 0.3, 3, 11

init_mlp, apply_mlp = nn.serial(nn.Dense(8), nn.Tanh, nn.Dense(3))


def loss_fn(params, x, y):
    return nn.softmax_cross_entropy(apply_mlp(params, x), y)


def batches():
    rng = np.random.default_rng(3)
    return [(rng.normal(size=(ROWS, 5)), rng.integers(0, 3, ROWS).astype(np.int32)) for _ in range(STEPS)]


def single_process_run(opt, params):
    state = opt.init(params)
    for x, y in batches():
        updates, state = opt.update(privacy.per_example_grads(loss_fn, params, x, y), state, params)
        params = optim.apply_updates(params, updates)
    return params, state


def same_bits_on_every_rank(tree, what):
    rank0 = dist.broadcast(tree)
    for mine, theirs in zip(tree_leaves(tree), tree_leaves(rank0)):
        mine, theirs = np.asarray(mine), np.asarray(theirs)
        assert mine.dtype == theirs.dtype and mine.tobytes() == theirs.tobytes(), (what, dist.rank())


def main():
    dist.init()
    opt = privacy.dp_sgd(LR, CLIP, NOISE, key=11, momentum=0.9)
    start = tree_map(lambda a: np.asarray(a, np.float64), init_mlp(random.key(dist.rank()), (-1, 5))[1])
    params = dist.broadcast(start)  # rank 0's parameters everywhere
    state = opt.init(params)
    local = fg.jit(lambda p, x, y: privacy.clipped_sum(privacy.per_example_grads(loss_fn, p, x, y), CLIP))

    @fg.jit
    def update(params, state, total):
        updates, state = opt.update(total, state, params)
        return optim.apply_updates(params, updates), state

    for i, (x, y) in enumerate(batches()):
        total = dist.psum(local(params, *dist.shard((x, y))))
        assert isinstance(total, privacy.ClippedSum) and int(total.count) == ROWS
        params, state = update(params, state, total)
        same_bits_on_every_rank((params, state), f"after step {i + 1}")

    want_params, want_state = single_process_run(opt, dist.broadcast(start))
    for got, want in zip(tree_leaves(params), tree_leaves(want_params)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    np.testing.assert_array_equal(state[0].key, want_state[0].key)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(tree_leaves(params), tree_leaves(dist.broadcast(start))))
    assert moved > 0.01, moved
    print(f"OK dp_sgd rank {dist.rank()}", flush=True)


if __name__ == "__main__":
    main()
