"""The tree codec of the collectives: pytrees of arrays as the JSON structure of
:mod:`funcgrad.checkpoint` (``encode_structure`` / ``build_tree``, the same encoding a
checkpoint file holds) plus one contiguous byte buffer of the leaves, and back."""
from __future__ import annotations

import sys

import numpy as np

from .. import checkpoint as _ckpt
from ..errors import CheckpointError, FuncgradValueError
from ..tree_util import tree_flatten

# The package module: the process's MPI state is ``funcgrad.distributed._state``, read through it
# at call time so that one object is shared by every submodule (and replacing it, as the tests do
# to start from scratch, takes effect everywhere).
_pkg = sys.modules[__package__]


def _flatten(tree, op: str):
    leaves, treedef = tree_flatten(tree)
    paths = _leaf_paths(treedef)
    arrays = [_ckpt.leaf_array(x, p, op) for x, p in zip(leaves, paths)]
    return arrays, treedef, paths


def _leaf_paths(treedef) -> list[str]:
    try:
        return _ckpt.leaf_paths(_ckpt.encode_structure(treedef))
    except CheckpointError:  # non-str dict keys: fall back to plain indices
        return [f"leaf {i}" for i in range(treedef.num_leaves)]


def _pack(arrays: list[np.ndarray]) -> np.ndarray:
    total = sum(a.nbytes for a in arrays)
    buf = np.empty(total, dtype=np.uint8)
    pos = 0
    for a in arrays:
        if a.nbytes:
            buf[pos:pos + a.nbytes] = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        pos += a.nbytes
    return buf


def _unpack(buf: np.ndarray, specs: list[tuple[np.dtype, tuple]]) -> list[np.ndarray]:
    out = []
    pos = 0
    for dt, shape in specs:
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dt.itemsize
        out.append(buf[pos:pos + nbytes].view(dt).reshape(shape))
        pos += nbytes
    return out


def _rebuild(structure, leaves, local_tree, op: str, root: int):
    """Root's structure with this rank's container types when ``local_tree`` matches."""
    if local_tree is None:
        return _ckpt.build_tree(structure, leaves, op)
    local_def = tree_flatten(local_tree)[1]
    local_structure = _ckpt.encode_structure(local_def, op)
    if local_structure != structure:
        diff = _ckpt.structure_difference(structure, local_structure) or "container types differ"
        raise FuncgradValueError(
            f"{op}: rank {_pkg._state.rank} passed a pytree whose structure differs from root {root}'s "
            f"({diff}); pass the same structure, or None to receive plain containers"
        )
    return local_def.unflatten(leaves)
