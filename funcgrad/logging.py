"""TensorBoard logging: scalars, histograms of parameter pytrees, images and traced graphs.

:class:`SummaryWriter` writes TensorBoard event files through the optional ``tensorboardX``
package (``pip install 'funcgrad[tensorboard]'``, which also brings TensorBoard to view them
with ``tensorboard --logdir DIR``). Values may be NumPy arrays, NumPy scalars or Python numbers,
such as the results of a jitted training step.

>>> from funcgrad.logging import SummaryWriter
>>> with SummaryWriter("runs/mlp") as log:  # doctest: +SKIP
...     for step in range(100):
...         params, state, loss = train_step(params, state, x, y)
...         log.add_scalar("loss", loss, step)
...     log.add_histograms("params", params, step)  # params/0/b, params/0/w, ...
...     log.add_graph_text("loss", loss_fn, params, x, y)

Importing this module does not import tensorboardX; constructing a writer does.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .errors import FuncgradError, FuncgradValueError
from .tree_util import tree_flatten, treedef_is_leaf

__all__ = ["SummaryWriter", "TensorBoardNotFoundError", "tree_paths"]


class TensorBoardNotFoundError(FuncgradError, ImportError):
    """:class:`SummaryWriter` needs the ``tensorboardX`` package, which is not installed."""


def _tensorboardx():
    try:
        import tensorboardX
    except ImportError as exc:
        raise TensorBoardNotFoundError(
            "funcgrad.logging.SummaryWriter writes TensorBoard files with the tensorboardX package, "
            "which cannot be imported here; install it with pip install 'funcgrad[tensorboard]' "
            f"({type(exc).__name__}: {exc})") from exc
    return tensorboardX


def tree_paths(tree) -> list[tuple[str, object]]:
    """``(path, leaf)`` for every leaf of ``tree``, in ``tree_leaves`` order.

    A path joins dict keys, list and tuple positions, namedtuple fields and the attribute names
    of other nodes (dataclasses, ``nn.Module`` fields) with ``/``: ``{"layers": [{"w": w}]}`` gives
    ``[("layers/0/w", w)]``. A tree that is a single leaf has the path ``""``.
    """
    out: list[tuple[str, object]] = []

    def walk(node, path):
        children, treedef = tree_flatten(node, is_leaf=lambda child: child is not node)
        if treedef_is_leaf(treedef):
            out.append(("/".join(path), node))
            return
        for name, child in zip(_child_names(node, children), children):
            walk(child, (*path, name))

    walk(tree, ())
    return out


def _child_names(node, children) -> list[str]:
    if isinstance(node, dict):
        return [str(k) for k in sorted(node)]
    if isinstance(node, tuple) and hasattr(type(node), "_fields"):
        return list(type(node)._fields)
    # other registered nodes: the attribute holding each child, else its position
    attrs = [(f.name, getattr(node, f.name, None)) for f in dataclasses.fields(node)] \
        if dataclasses.is_dataclass(node) else []
    attrs += list(getattr(node, "__dict__", {}).items())
    names: list[str] = []
    for i, child in enumerate(children):
        names.append(next((n for n, v in attrs if v is child and n not in names), str(i)))
    return names


def _scalar(tag, value) -> float:
    a = np.asarray(value)
    if a.size != 1:
        raise FuncgradValueError(f"add_scalar({tag!r}): expected a single number, got an array of shape "
                                 f"{a.shape}; log a reduction such as its mean, or use add_histogram")
    return float(a.reshape(()))


def _image_hwc(tag, image, dataformats):
    a = np.asarray(image)
    fmt = dataformats.upper() if dataformats else _guess_format(tag, a.shape)
    if fmt not in ("HW", "HWC", "CHW") or len(fmt) != a.ndim:
        raise FuncgradValueError(f"add_image({tag!r}): an image of shape {a.shape} does not fit the layout "
                                 f"{fmt!r}; give HW, HWC or CHW")
    a = a[:, :, None] if fmt == "HW" else a.transpose(1, 2, 0) if fmt == "CHW" else a
    if a.shape[-1] not in (1, 3, 4):
        raise FuncgradValueError(f"add_image({tag!r}): {a.shape[-1]} channels; an image has 1, 3 or 4")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind != "f":
        raise FuncgradValueError(f"add_image({tag!r}): pixels of dtype {a.dtype}; give floats in [0, 1] "
                                 "or uint8 in [0, 255]")
    return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def _guess_format(tag, shape):
    if len(shape) == 2:
        return "HW"
    if len(shape) == 3 and shape[-1] in (1, 3, 4):
        return "HWC"
    if len(shape) == 3 and shape[0] in (1, 3, 4):
        return "CHW"
    raise FuncgradValueError(f"add_image({tag!r}): cannot tell the layout of an image of shape {shape}; "
                             "give an HW, HWC or CHW array with 1, 3 or 4 channels")


def _code_block(text: str) -> str:
    return f"```\n{text}\n```"


class SummaryWriter:
    """Writes one TensorBoard run into ``logdir`` (default: tensorboardX's ``runs/DATE_HOST``).

    Raises :class:`TensorBoardNotFoundError` when tensorboardX is not installed. Events are
    written in the background every ``flush_secs`` seconds, on :meth:`flush` and on
    :meth:`close` (also when used as a context manager).
    """

    def __init__(self, logdir: str | None = None, flush_secs: int = 120):
        self._writer = _tensorboardx().SummaryWriter(
            logdir=None if logdir is None else str(logdir), flush_secs=flush_secs)

    @property
    def logdir(self) -> str:
        return self._writer.logdir

    def add_scalar(self, tag: str, value, step: int) -> None:
        """One number (stored as float32 by TensorBoard) at ``step``."""
        self._writer.add_scalar(tag, _scalar(tag, value), int(step))

    def add_scalars(self, values: dict, step: int, prefix: str = "") -> None:
        """``add_scalar`` for each ``name: value``, tagged ``prefix/name`` when a prefix is given.
        (Unlike PyTorch's ``add_scalars``, these are ordinary scalars of this run.)"""
        for name, value in values.items():
            self.add_scalar(f"{prefix}/{name}" if prefix else name, value, step)

    def add_histogram(self, tag: str, values, step: int) -> None:
        """The distribution of the elements of ``values`` (any shape) at ``step``."""
        a = np.asarray(values, dtype=np.float64).ravel()
        if a.size == 0 or not np.isfinite(a).all():
            what = "an empty array" if a.size == 0 else f"{np.count_nonzero(~np.isfinite(a))} NaN or Inf values"
            raise FuncgradValueError(f"add_histogram({tag!r}): cannot histogram {what}")
        self._writer.add_histogram(tag, a, int(step))

    def add_histograms(self, prefix: str, tree, step: int) -> None:
        """One histogram per non-empty leaf of the pytree ``tree`` (e.g. parameters or gradients),
        tagged ``prefix/`` followed by the leaf's :func:`tree_paths` path."""
        for path, leaf in tree_paths(tree):
            if np.size(leaf):
                self.add_histogram(f"{prefix}/{path}" if path else prefix, leaf, step)

    def add_image(self, tag: str, image, step: int, dataformats: str | None = None) -> None:
        """An image: floats in [0, 1] (rounded to 8 bits) or uint8, laid out HW, HWC or CHW
        with 1, 3 or 4 channels (guessed from the shape unless ``dataformats`` says)."""
        self._writer.add_image(tag, _image_hwc(tag, image, dataformats), int(step), dataformats="HWC")

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        """Markdown text for TensorBoard's Text tab (which lists it as ``tag/text_summary``)."""
        self._writer.add_text(tag, text, int(step))

    def add_graph_text(self, tag: str, fn, *example_args, step: int = 0, dot: bool = True):
        """Trace ``fn(*example_args)`` with :func:`funcgrad.make_graph` and log its listing as text
        under ``tag`` and, with ``dot``, its Graphviz source under ``tag/dot``; returns the graph."""
        from .transforms.jit import make_graph

        graph = make_graph(fn)(*example_args)
        self.add_text(tag, _code_block(graph.to_text()), step)
        if dot:
            self.add_text(f"{tag}/dot", _code_block(graph.to_dot()), step)
        return graph

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
