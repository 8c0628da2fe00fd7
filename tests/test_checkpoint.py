"""funcgrad.checkpoint: round trips, corruption, foreign files, atomic writes."""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from funcgrad import checkpoint
from funcgrad.errors import CheckpointError, FuncgradError, FuncgradTypeError
from funcgrad.tree_util import register_dataclass, tree_flatten

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DTYPES = [
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64,
]

Point = collections.namedtuple("Point", "x y")


@register_dataclass
@dataclasses.dataclass
class Layer:
    w: object
    b: object


def assert_tree_identical(got, want):
    """Same structure (container types included), dtypes, shapes and bytes."""
    g_leaves, g_def = tree_flatten(got)
    w_leaves, w_def = tree_flatten(want)
    assert g_def == w_def, (g_def, w_def)
    assert len(g_leaves) == len(w_leaves)
    for g, w in zip(g_leaves, w_leaves):
        w = np.asarray(w)
        assert isinstance(g, np.ndarray)
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == np.ascontiguousarray(w).tobytes()


# ----------------------------------------------------------------------------- strategies

arrays = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
)
scalars = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, width=64))
leaves = st.one_of(arrays, scalars)
keys = st.text(min_size=0, max_size=6)

pytrees = st.recursive(
    st.one_of(leaves, st.none()),
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.lists(kids, max_size=4).map(tuple),
        st.dictionaries(keys, kids, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pytrees)
def test_round_trip_random_pytrees(tree):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ckpt")
        checkpoint.save(path, tree)
        assert_tree_identical(checkpoint.load(path), tree)
        assert_tree_identical(checkpoint.load(path, like=tree), tree)
        assert os.listdir(d) == ["ckpt"]  # no temp file left behind


def test_round_trip_details(tmp_path):
    path = tmp_path / "c.fgckpt"  # os.PathLike works too
    big_endian = np.arange(6, dtype=">f8").reshape(2, 3)
    tree = {
        "scalar_f": 1.5,
        "scalar_i": 3,
        "scalar_b": True,
        "zero_d": np.array(2.5, np.float32),
        "empty": np.zeros((0, 3), np.int16),
        "strided": np.arange(20, dtype=np.int32).reshape(4, 5).T[::2],
        "big_endian": big_endian,
        "bits": np.array([np.nan, -0.0, np.inf, -np.inf], np.float64),
        "nested": [(None, np.uint64(2**64 - 1)), []],
        "": np.int8(-128),
    }
    checkpoint.save(path, tree)
    out = checkpoint.load(path)
    assert out["scalar_f"].dtype == np.float64 and out["scalar_f"].shape == () and out["scalar_f"] == 1.5
    assert out["scalar_i"].dtype == np.int64 and out["scalar_i"] == 3
    assert out["scalar_b"].dtype == np.bool_ and out["scalar_b"]
    assert out["zero_d"].dtype == np.float32 and out["zero_d"].shape == ()
    assert out["empty"].shape == (0, 3) and out["empty"].dtype == np.int16
    np.testing.assert_array_equal(out["strided"], tree["strided"])
    assert out["big_endian"].dtype == np.float64 and out["big_endian"].dtype.isnative
    np.testing.assert_array_equal(out["big_endian"], big_endian)
    assert out["bits"].tobytes() == tree["bits"].tobytes()  # NaN and -0.0 bit for bit
    assert out["nested"][0][0] is None and out["nested"][0][1] == 2**64 - 1 and out["nested"][1] == []
    assert out[""] == -128
    for leaf in tree_flatten(out)[0]:
        assert leaf.flags.writeable  # fresh arrays, not views of a read-only buffer


def test_leaf_at_root_and_empty_trees(tmp_path):
    p = str(tmp_path / "c")
    for tree in [np.arange(3.0), None, (), [], {}, [None, {}]]:
        checkpoint.save(p, tree)
        assert_tree_identical(checkpoint.load(p), tree)


def test_namedtuple_and_dataclass_need_like(tmp_path):
    p = str(tmp_path / "c")
    tree = {"pt": Point(np.ones(2), np.zeros(3, np.float32)), "layer": Layer(w=np.eye(2), b=np.zeros(2))}
    checkpoint.save(p, tree)
    plain = checkpoint.load(p)
    assert type(plain["pt"]) is tuple and type(plain["layer"]) is tuple
    assert_tree_identical(checkpoint.load(p, like=tree), tree)
    # like may hold anything with .shape and .dtype
    spec = {
        "pt": Point(np.empty(2), np.empty(3, np.float32)),
        "layer": Layer(w=np.empty((2, 2)), b=np.empty(2)),
    }
    assert_tree_identical(checkpoint.load(p, like=spec), tree)


def test_like_mismatches_are_clear(tmp_path):
    p = str(tmp_path / "c")
    checkpoint.save(p, {"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match="holds 2 leaves but `like` has 1"):
        checkpoint.load(p, like={"w": np.zeros((2, 3), np.float32)})
    with pytest.raises(CheckpointError, match=r"\['w'\]: file has float32\[2, 3\], like has float32\[3, 2\]"):
        checkpoint.load(p, like={"w": np.zeros((3, 2), np.float32), "b": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match=r"\['b'\]: file has float32\[3\], like has float64\[3\]"):
        checkpoint.load(p, like={"w": np.zeros((2, 3), np.float32), "b": np.zeros(3)})
    with pytest.raises(CheckpointError, match="dict keys"):
        checkpoint.load(p, like={"w": np.zeros((2, 3), np.float32), "bias": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match="structure"):
        checkpoint.load(p, like=[np.zeros((2, 3), np.float32), np.zeros(3, np.float32)])
    # tuple <-> list <-> namedtuple are interchangeable through like
    checkpoint.save(p, (np.zeros(2), np.ones(3)))
    got = checkpoint.load(p, like=Point(np.zeros(2), np.zeros(3)))
    assert isinstance(got, Point)
    np.testing.assert_array_equal(got.y, np.ones(3))


def test_unsupported_contents_refused_on_save(tmp_path):
    p = str(tmp_path / "c")
    checkpoint.save(p, {"ok": np.arange(3)})
    with pytest.raises(checkpoint.CheckpointTypeError, match="dict keys must be str, got 1 \\(int\\)"):
        checkpoint.save(p, {"a": {1: np.zeros(2)}})
    with pytest.raises(TypeError, match=r"leaf \['s'\] has dtype <U5"):
        checkpoint.save(p, {"s": "hello"})
    with pytest.raises(CheckpointError, match="object"):
        checkpoint.save(p, {"o": np.array([1, "x"], dtype=object)})
    with pytest.raises(CheckpointError, match="cannot flatten"):
        checkpoint.save(p, {1: 0, "a": 1})  # keys that cannot even be sorted
    err = checkpoint.CheckpointTypeError("x")
    assert isinstance(err, FuncgradTypeError) and isinstance(err, CheckpointError) and isinstance(err, FuncgradError)
    # the failed saves left the previous file alone and no temp file behind
    np.testing.assert_array_equal(checkpoint.load(p)["ok"], np.arange(3))
    assert os.listdir(tmp_path) == ["c"]


def test_missing_file_and_directory(tmp_path):
    missing = str(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match="no checkpoint file at .*nope.ckpt") as info:
        checkpoint.load(missing)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
    with pytest.raises(CheckpointError, match="is a directory"):
        checkpoint.load(str(tmp_path))
    with pytest.raises(CheckpointError, match="cannot write"):
        checkpoint.save(str(tmp_path / "no_dir" / "c"), {"a": 1})


def _small_file(tmp_path) -> tuple[str, bytes]:
    p = str(tmp_path / "small.ckpt")
    checkpoint.save(p, {"a": np.arange(5, dtype=np.int16), "b": [1.5, np.float32(2)], "c": None})
    with open(p, "rb") as f:
        return p, f.read()


def test_every_flipped_byte_is_detected(tmp_path):
    _, good = _small_file(tmp_path)
    bad = str(tmp_path / "bad.ckpt")
    for i in range(len(good)):
        for mask in (0x01, 0xFF):
            data = bytearray(good)
            data[i] ^= mask
            with open(bad, "wb") as f:
                f.write(data)
            with pytest.raises(CheckpointError) as info:
                checkpoint.load(bad)
            msg = str(info.value)
            assert "bad.ckpt" in msg and "checksum does not match" in msg, (i, mask, msg)


def test_truncated_or_extended_file(tmp_path):
    _, good = _small_file(tmp_path)
    bad = str(tmp_path / "cut.ckpt")
    for n in [0, 5, 16, 20, 30, len(good) // 2, len(good) - 33, len(good) - 32, len(good) - 1]:
        with open(bad, "wb") as f:
            f.write(good[:n])
        with pytest.raises(CheckpointError, match="cut.ckpt.*checksum does not match"):
            checkpoint.load(bad)
    with open(bad, "wb") as f:
        f.write(good[:-1])
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoint.load(bad)
    with open(bad, "wb") as f:
        f.write(good + b"\0")
    with pytest.raises(CheckpointError, match="checksum does not match"):
        checkpoint.load(bad)


class _Boom:
    """Unpickling this creates a marker file: proof that pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _forge(header: dict, data: bytes = b"") -> bytes:
    """A file in the checkpoint layout with a *valid* checksum."""
    h = json.dumps(header).encode()
    body = checkpoint.MAGIC + len(h).to_bytes(8, "little") + h + data
    return body + hashlib.sha256(body).digest()


def test_pickle_and_foreign_files_are_refused(tmp_path, monkeypatch):
    calls = []

    def forbidden(*a, **k):
        calls.append(a)
        raise AssertionError("pickle must never be used")

    marker = str(tmp_path / "pwned")
    evil_pickle = pickle.dumps({"w": _Boom(marker)})
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)

    npy = str(tmp_path / "obj.npy")
    np.save(npy, np.array([_Boom(marker), 1], dtype=object), allow_pickle=True)
    plain_npy = str(tmp_path / "plain.npy")
    np.save(plain_npy, np.arange(3))
    pkl = str(tmp_path / "evil.pkl")
    with open(pkl, "wb") as f:
        f.write(evil_pickle)
    for path in (pkl, npy, plain_npy):
        with pytest.raises(CheckpointError, match="not a funcgrad checkpoint"):
            checkpoint.load(path)

    # the right magic and a correct checksum, but object / pickled contents
    obj_leaf = {"dtype": "|O", "shape": [1], "offset": 0}
    forged = [
        (_forge({"format": "funcgrad-checkpoint", "version": 1, "tree": {"t": "leaf"},
                 "leaves": [obj_leaf], "data_size": len(evil_pickle)}, evil_pickle), "dtype '\\|O'"),
        (_forge({"format": "funcgrad-checkpoint", "version": 1, "tree": {"t": "pickle"},
                 "leaves": [], "data_size": len(evil_pickle)}, evil_pickle), "leaves cover 0 bytes"),
        (_forge({"format": "funcgrad-checkpoint", "version": 1, "tree": {"t": "pickle", "c": []},
                 "leaves": [], "data_size": 0}), "unknown tree node type 'pickle'"),
        (_forge({"format": "funcgrad-checkpoint", "version": 1, "tree": {"t": "leaf"},
                 "leaves": [{"dtype": "<f8", "shape": [2], "offset": 0}], "data_size": 8}, b"\0" * 8),
         "runs past the end"),
        (_forge({"format": "funcgrad-checkpoint", "version": 1, "tree": {"t": "list", "c": []},
                 "leaves": [{"dtype": "<f8", "shape": [], "offset": 0}], "data_size": 8}, b"\0" * 8),
         "more leaves"),
        (_forge({"format": "funcgrad-checkpoint", "version": 1,
                 "tree": {"t": "dict", "k": ["b", "a"], "c": [{"t": "none"}, {"t": "none"}]},
                 "leaves": [], "data_size": 0}), "sorted"),
        (_forge({"format": "funcgrad-checkpoint", "version": 1, "tree": {"t": "leaf"},
                 "leaves": [{"dtype": "|b1", "shape": [1], "offset": 0}], "data_size": 1}, b"\x07"),
         "bool array"),
        (_forge({"format": "funcgrad-checkpoint", "version": 99, "tree": {"t": "none"},
                 "leaves": [], "data_size": 0}), "version 99 is not supported"),
        (_forge(["not", "a", "header"]), "not a funcgrad checkpoint header"),
    ]
    bad = str(tmp_path / "forged.ckpt")
    for blob, pattern in forged:
        with open(bad, "wb") as f:
            f.write(blob)
        with pytest.raises(CheckpointError, match=pattern):
            checkpoint.load(bad)
    # a JSON header that is not UTF-8 / not JSON, with a valid checksum
    body = checkpoint.MAGIC + (4).to_bytes(8, "little") + b"\xff{[\x00"
    with open(bad, "wb") as f:
        f.write(body + hashlib.sha256(body).digest())
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoint.load(bad)
    assert not calls and not os.path.exists(marker)


def test_overwrite_is_atomic_and_leaves_no_temp(tmp_path):
    p = str(tmp_path / "c")
    checkpoint.save(p, {"v": np.zeros(4)})
    checkpoint.save(p, {"v": np.ones(4), "extra": 1})
    assert sorted(os.listdir(tmp_path)) == ["c"]
    out = checkpoint.load(p)
    np.testing.assert_array_equal(out["v"], np.ones(4))
    assert out["extra"] == 1


def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _assert_old_checkpoint_intact(path, old):
    assert_tree_identical(checkpoint.load(path), old)


def test_kill_before_rename_keeps_previous_checkpoint(tmp_path):
    """The writer is SIGKILLed once the new data is written but not renamed."""
    path = str(tmp_path / "state.ckpt")
    old = {"step": np.int64(1), "w": np.arange(10.0)}
    checkpoint.save(path, old)
    child = textwrap.dedent(
        f"""
        import os, sys, time
        import numpy as np
        from funcgrad import checkpoint

        def stalled_fsync(fd):
            print("IN_FSYNC", flush=True)
            time.sleep(60)

        os.fsync = stalled_fsync
        checkpoint.save({path!r}, {{"step": np.int64(2), "w": np.zeros(100000)}})
        print("SAVED", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, env=_child_env(), text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "IN_FSYNC"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    leftovers = [n for n in os.listdir(tmp_path) if n != "state.ckpt"]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")  # the half-done new file
    _assert_old_checkpoint_intact(path, old)


def test_kill_mid_write_of_large_checkpoint_keeps_previous_one(tmp_path):
    """SIGKILL as soon as the temporary file appears, while ~96 MB are being written."""
    path = str(tmp_path / "big.ckpt")
    old = {"step": np.int64(7), "w": np.full((3, 3), 0.5, np.float32)}
    checkpoint.save(path, old)
    child = textwrap.dedent(
        f"""
        import numpy as np
        from funcgrad import checkpoint
        tree = {{"step": np.int64(8), "w": [np.random.default_rng(i).random(1_000_000) for i in range(12)]}}
        print("READY", flush=True)
        checkpoint.save({path!r}, tree)
        print("SAVED", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, env=_child_env(), text=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(n.endswith(".tmp") for n in os.listdir(tmp_path)):
                break
            time.sleep(0.0005)
        else:
            pytest.fail("the child never started writing")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rest = proc.stdout.read()
        proc.stdout.close()
    assert "SAVED" not in rest
    assert any(n.endswith(".tmp") for n in os.listdir(tmp_path))  # killed while writing
    _assert_old_checkpoint_intact(path, old)
