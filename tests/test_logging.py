"""funcgrad.logging: TensorBoard event files read back with TensorBoard's own EventAccumulator,
the error without tensorboardX, pytree paths, and the examples' Progress (lines, bar, scalars)."""
from __future__ import annotations

import collections
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, random
from funcgrad.errors import FuncgradError, FuncgradValueError
from funcgrad.logging import SummaryWriter, TensorBoardNotFoundError, tree_paths
from funcgrad.nn import modules

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "examples")
sys.path.insert(0, EXAMPLES)
from _common import Progress

NOT_IN_CI = ("; it is in funcgrad's 'tensorboard' extra, not in 'dev' (TensorBoard pulls grpcio, werkzeug, "
             "markdown and more): pip install 'funcgrad[tensorboard]'")


@pytest.fixture
def read_run():
    """``read_run(logdir)``: an EventAccumulator over the run, every event kept."""
    pytest.importorskip("tensorboardX", reason="tensorboardX writes the event files" + NOT_IN_CI)
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                             reason="TensorBoard's EventAccumulator reads them back" + NOT_IN_CI)

    def read(logdir):
        acc = ea.EventAccumulator(str(logdir), size_guidance={kind: 0 for kind in ea.DEFAULT_SIZE_GUIDANCE})
        acc.Reload()
        return acc

    return read


def scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def text(acc, tag):
    (event,) = acc.Tensors(tag + "/text_summary")
    return event.step, event.tensor_proto.string_val[0].decode()


def test_a_run_reads_back(tmp_path, read_run):
    from PIL import Image

    step = fg.jit(lambda x: fnp.sum(x * x))  # jitted results are 0-d float32 arrays here
    values = [0.5, np.float32(-1.25), step(np.full(3, 0.1, np.float32)), np.float64(1e-3), 7]
    hist = np.random.default_rng(0).normal(size=1000)
    params = {"layers": [{"w": np.arange(6.0).reshape(2, 3), "b": np.zeros(3, np.float32)}], "scale": 2.0}
    chw = np.linspace(0.0, 1.0, 3 * 4 * 5).reshape(3, 4, 5)
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    loss = lambda w, x: fnp.mean(fnp.tanh(x @ w) ** 2)
    w, x = np.ones(3), np.ones((2, 3))

    with SummaryWriter(tmp_path) as log:
        for i, v in enumerate(values):
            log.add_scalar("train/loss", v, 10 * i)
        log.add_scalars({"loss": 0.25, "accuracy": np.float32(0.75)}, 3, prefix="test")
        log.add_histogram("weights", hist, 5)
        log.add_histograms("params", params, 2)
        log.add_image("rgb", chw, 4)
        log.add_image("gray", gray, 6)
        graph = log.add_graph_text("loss_graph", loss, w, x, step=1)

    acc = read_run(tmp_path)
    tags = acc.Tags()
    assert sorted(tags["scalars"]) == ["test/accuracy", "test/loss", "train/loss"]
    assert scalars(acc, "train/loss") == [(10 * i, float(np.float32(v))) for i, v in enumerate(values)]
    assert scalars(acc, "test/loss") == [(3, 0.25)] and scalars(acc, "test/accuracy") == [(3, 0.75)]

    assert sorted(tags["histograms"]) == ["params/layers/0/b", "params/layers/0/w", "params/scale", "weights"]
    (h,) = acc.Histograms("weights")
    hv = h.histogram_value
    assert h.step == 5 and hv.num == 1000 and sum(hv.bucket) == 1000
    assert (hv.min, hv.max) == (hist.min(), hist.max())
    assert hv.sum == pytest.approx(hist.sum(), rel=1e-12)
    assert hv.sum_squares == pytest.approx(hist @ hist, rel=1e-12)
    (w_hist,) = acc.Histograms("params/layers/0/w")
    assert (w_hist.step, w_hist.histogram_value.num, w_hist.histogram_value.max) == (2, 6, 5.0)
    assert acc.Histograms("params/scale")[0].histogram_value.sum == 2.0

    assert sorted(tags["images"]) == ["gray", "rgb"]
    (rgb,) = acc.Images("rgb")
    assert (rgb.step, rgb.width, rgb.height) == (4, 5, 4)
    pixels = np.asarray(Image.open(io.BytesIO(rgb.encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(pixels, np.round(chw.transpose(1, 2, 0) * 255).astype(np.uint8))
    (g,) = acc.Images("gray")
    pixels = np.asarray(Image.open(io.BytesIO(g.encoded_image_string)).convert("RGB"))
    assert g.step == 6
    np.testing.assert_array_equal(pixels, np.repeat(gray[:, :, None], 3, axis=2))

    assert sorted(tags["tensors"]) == ["loss_graph/dot/text_summary", "loss_graph/text_summary"]
    expected = fg.make_graph(loss)(w, x)
    assert text(acc, "loss_graph") == (1, f"```\n{expected.to_text()}\n```")
    assert text(acc, "loss_graph/dot") == (1, f"```\n{graph.to_dot()}\n```")  # literals' node names vary
    assert graph.to_text() == expected.to_text() and '[shape=ellipse, label="tanh"]' in graph.to_dot()


def test_values_that_are_not_scalars_or_images_are_refused(tmp_path):
    pytest.importorskip("tensorboardX", reason="the checks run in a writer" + NOT_IN_CI)
    with SummaryWriter(tmp_path) as log:
        with pytest.raises(FuncgradValueError, match=r"add_scalar\('loss'\).*shape \(2,\)"):
            log.add_scalar("loss", np.ones(2), 0)
        with pytest.raises(FuncgradValueError, match="cannot tell the layout.*(5, 6, 7)"):
            log.add_image("img", np.zeros((5, 6, 7)), 0)
        with pytest.raises(FuncgradValueError, match="dtype int64"):
            log.add_image("img", np.zeros((4, 4), np.int64), 0)
        with pytest.raises(FuncgradValueError, match="1 NaN or Inf"):
            log.add_histogram("h", [1.0, np.nan], 0)


def test_missing_tensorboardx_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # makes `import tensorboardX` fail
    with pytest.raises(TensorBoardNotFoundError, match=r"tensorboardX.*pip install 'funcgrad\[tensorboard\]'") as e:
        SummaryWriter(tmp_path / "run")
    assert isinstance(e.value, FuncgradError) and isinstance(e.value, ImportError)
    assert not (tmp_path / "run").exists()


def test_importing_funcgrad_imports_no_tensorboardx_and_keeps_stdlib_logging():
    code = ("import sys, funcgrad, funcgrad.logging, logging; "
            "print('tensorboardX' in sys.modules, logging.getLogger is not None, funcgrad.logging is not logging)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True"]


def test_tree_paths():
    Pair = collections.namedtuple("Pair", "first second")
    tree = {"b": [np.ones(2), None, (3.0,)], "a": Pair(1.0, {"z": 2})}
    assert [p for p, _ in tree_paths(tree)] == ["a/first", "a/second/z", "b/0", "b/2/0"]
    assert [id(leaf) for _, leaf in tree_paths(tree)] == [id(leaf) for leaf in fg.tree_util.tree_leaves(tree)]
    assert tree_paths(np.zeros(3))[0][0] == "" and tree_paths(None) == [] and tree_paths(()) == []

    model = modules.Sequential(modules.Linear(3, 4, key=random.key(0)), modules.ReLU(),
                               modules.Linear(4, 2, key=random.key(1)))
    assert [p for p, _ in tree_paths(model)] == ["layers/0/weight", "layers/0/bias",
                                                 "layers/2/weight", "layers/2/bias"]
    _, params = nn.serial(nn.Dense(4), nn.Relu, nn.Dense(2)).init(random.key(0), (-1, 3))
    assert [p for p, _ in tree_paths(params)] == ["0/b", "0/w", "2/b", "2/w"]


LINE = r"epoch {}/4  loss \d\.\d{{4}}  held out accuracy 0\.\d{{4}} +\d+ examples/s"


def run_progress(**kwargs):
    progress = Progress(4, every=2, **kwargs)
    for epoch in range(1, 5):
        progress.epoch(epoch, 100, loss=1.0 / epoch, held_out_accuracy=0.2 * epoch)
    return progress


def test_progress_lines_without_a_terminal(capsys):
    progress = run_progress()
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2 and err == "" and "\r" not in out
    assert re.fullmatch(LINE.format(2), lines[0]) and re.fullmatch(LINE.format(4), lines[1])
    assert progress.history == {"loss": [1.0, 0.5, 1 / 3, 0.25], "held_out_accuracy": [0.2 * e for e in range(1, 5)]}
    assert progress.bar is None and progress.writer is None


def test_progress_bar_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm", reason="the bar needs tqdm (in the 'examples' extra)")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    progress = run_progress()
    out = sys.stdout.getvalue()
    assert re.search(r"\r *50%\|.*\| 2/4 .*loss=0\.5000, held_out_accuracy=0\.4000", out)
    lines = [line.split("\r")[-1] for line in out.split("\n") if "examples/s" in line]
    assert len(lines) == 2 and re.fullmatch(LINE.format(4), lines[1])
    assert progress.bar is None  # closed after the last epoch


def test_progress_logs_every_metric(tmp_path, read_run):
    progress = run_progress(logdir=tmp_path)
    assert progress.writer is None  # closed after the last epoch
    acc = read_run(tmp_path)
    assert sorted(acc.Tags()["scalars"]) == ["held_out_accuracy", "loss"]
    assert scalars(acc, "loss") == [(e, float(np.float32(1.0 / e))) for e in range(1, 5)]
    assert scalars(acc, "held_out_accuracy") == [(e, float(np.float32(0.2 * e))) for e in range(1, 5)]
