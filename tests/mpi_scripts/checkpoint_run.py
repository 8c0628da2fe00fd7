"""``mpirun -n N python checkpoint_run.py save|load PATH``: save a checkpoint
from a distributed run, or resume from one, on any number of ranks."""
import collections
import os
import sys

import numpy as np

from funcgrad import distributed as dist
from funcgrad.errors import CheckpointError

Params = collections.namedtuple("Params", "w b")


def state():
    return {
        "step": np.int64(42),
        "params": Params(w=np.arange(12, dtype=np.float32).reshape(3, 4) / 7, b=np.full(4, -0.5)),
        "opt": [np.arange(3, dtype=np.int32), np.array(True)],
    }


def same(a, b):
    la, lb = sorted(tree_items(a)), sorted(tree_items(b))
    assert [k for k, _ in la] == [k for k, _ in lb]
    for (_, x), (_, y) in zip(la, lb):
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def tree_items(t):
    from funcgrad.tree_util import tree_leaves

    return [(i, np.asarray(x)) for i, x in enumerate(tree_leaves(t))]


def main(mode, path):
    dist.init()
    r = dist.rank()
    if mode == "save":
        # only rank 0's tree is written; the others' trees are ignored
        dist.save_checkpoint(path, state() if r == 0 else {"garbage": r})
        assert os.path.exists(path)  # everyone returns after the file is complete
        bad = os.path.join(os.path.dirname(path), "missing_dir", "x.ckpt")
        try:
            dist.save_checkpoint(bad, state())
        except CheckpointError as e:
            assert "rank 0 could not save" in str(e) or r == 0, str(e)
        else:
            raise AssertionError("saving into a missing directory did not fail")
    got = dist.load_checkpoint(path)
    assert type(got["params"]) is tuple
    same(got, state())
    like = dist.load_checkpoint(path, like=state())
    assert type(like["params"]) is Params
    same(like, state())
    try:
        dist.load_checkpoint(path + ".missing")
    except CheckpointError as e:
        assert "no checkpoint file" in str(e), str(e)
    else:
        raise AssertionError("loading a missing file did not fail")
    dist.check_in_sync(like)
    print(f"OK checkpoint_run rank {r} of {dist.size()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
