"""The expression graph: an SSA list of equations over typed variables."""
from __future__ import annotations

import hashlib

import numpy as np

from .avals import ShapedArray, aval_of_value


class Var:
    """A graph variable (one SSA value). Names are given when printing."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Var<{self.aval.str_short()}>"


class Literal:
    """A scalar constant written inline in the graph."""

    __slots__ = ("aval", "val")

    def __init__(self, val, aval: ShapedArray | None = None):
        self.val = val
        self.aval = aval or aval_of_value(val)

    def __repr__(self):
        return f"Literal({self.val!r})"

    def text(self) -> str:
        v = np.asarray(self.val)
        return f"{v.item()!r}:{self.aval.str_short()}"


class Eqn:
    """``outvars = prim[params](inputs)``, with the user's source line if known."""

    __slots__ = ("inputs", "outvars", "params", "prim", "source")

    def __init__(self, prim, inputs, params, outvars, source=None):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.outvars = outvars
        self.source = source


def _param_text(v, names, indent):
    if isinstance(v, Graph):
        return "\n" + v.pretty(indent + 4, names)
    if isinstance(v, np.dtype):
        return v.name
    if isinstance(v, type) and issubclass(v, np.generic):
        return np.dtype(v).name
    if isinstance(v, tuple):
        return "(" + ", ".join(_param_text(x, names, indent) for x in v) + ("," if len(v) == 1 else "") + ")"
    if callable(v) and hasattr(v, "__name__"):
        return v.__name__
    return repr(v)


def _source_comment(source: str, code: bool = True) -> str:
    """``"file.py:LINE"`` (base name) and, with ``code``, that line of the user's code."""
    import linecache
    import os

    path, _, line = source.rpartition(":")
    text = f"{os.path.basename(path)}:{line}"
    if code and line.isdigit():
        src = linecache.getline(path, int(line)).strip()
        if src:
            text += f"  {src}"
    return text


def _hash_param(v, h):
    if isinstance(v, Graph):
        h.update(v.fingerprint().encode())
    elif isinstance(v, tuple):
        h.update(b"(")
        for x in v:
            _hash_param(x, h)
            h.update(b",")
        h.update(b")")
    elif isinstance(v, np.ndarray):
        h.update(str((v.shape, v.dtype.str)).encode())
        h.update(np.ascontiguousarray(v).tobytes())
    elif callable(v) and hasattr(v, "__qualname__"):
        h.update(f"{getattr(v, '__module__', '')}.{v.__qualname__}".encode())
    else:
        h.update(repr(v).encode())


class Graph:
    """A typed, printable program: ``{ lambda consts ; inputs . let eqns in outputs }``.

    ``str(graph)`` gives the SSA listing with shapes and dtypes, ``graph.to_dot()``
    Graphviz text. Graphs compare and hash by structure (``fingerprint``).
    """

    __slots__ = ("_fingerprint", "_plan", "consts", "constvars", "eqns", "invars", "outvars", "show_source")

    def __init__(self, constvars, consts, invars, eqns, outvars):
        self.constvars = list(constvars)
        self.consts = list(consts)
        self.invars = list(invars)
        self.eqns = list(eqns)
        self.outvars = list(outvars)
        self._fingerprint = None
        self._plan = None  # the interpreter's slot layout, built on first evaluation
        self.show_source = False  # print(graph) shows each equation's user line when True

    @property
    def in_avals(self):
        return [v.aval for v in self.invars]

    @property
    def out_avals(self):
        return [v.aval for v in self.outvars]

    def __call__(self, *args):
        from .interpreter import eval_graph

        return eval_graph(self, self.consts, args)

    # -- printing -------------------------------------------------------------
    def _namer(self, names=None):
        names = names if names is not None else {}
        counter = [len(names)]

        def name(v):
            if isinstance(v, Literal):
                return v.text()
            n = names.get(id(v))
            if n is None:
                i = counter[0]
                counter[0] += 1
                s = ""
                while True:
                    s = chr(ord("a") + i % 26) + s
                    i = i // 26 - 1
                    if i < 0:
                        break
                n = names[id(v)] = s
            return n

        return name, names

    def pretty(self, indent: int = 0, names=None, source: bool = False) -> str:
        name, names = self._namer(names)
        pad = " " * indent
        consts = " ".join(f"{name(v)}:{v.aval}" for v in self.constvars)
        ins = " ".join(f"{name(v)}:{v.aval}" for v in self.invars)
        lines = [f"{pad}{{ lambda {consts + ' ' if consts else ''}; {ins} . let"]
        for e in self.eqns:
            outs = " ".join(f"{name(v)}:{v.aval}" for v in e.outvars)
            ins_t = " ".join(name(v) for v in e.inputs)
            params = ""
            if e.params:
                params = "[" + ", ".join(
                    f"{k}={_param_text(v, names, indent)}" for k, v in sorted(e.params.items())
                ) + "]"
            line = f"{pad}    {outs + ' = ' if outs else ''}{e.prim.name}{params} {ins_t}"
            if source and e.source:
                line += f"    # {_source_comment(e.source)}"
            lines.append(line)
        outs = " ".join(name(v) for v in self.outvars)
        lines.append(f"{pad}  in ( {outs} ) }}")
        return "\n".join(lines)

    def __str__(self):
        return self.pretty(source=self.show_source)

    def __repr__(self):
        return self.pretty(source=self.show_source)

    def to_text(self, source: bool = False) -> str:
        """The listing; with ``source=True`` each equation ends with a comment giving the
        user's ``file:line`` and that line of code.

        >>> import funcgrad as fg, funcgrad.numpy as fnp
        >>> print(fg.make_graph(fnp.sin)(1.0).to_text(source=True))  # doctest: +SKIP
        """
        return self.pretty(source=source)

    def to_svg(self, path: str | None = None, source: bool = False) -> str:
        """Render ``to_dot()`` with Graphviz (``dot -Tsvg``); returns the SVG text and writes
        it to ``path`` when given. Needs the ``dot`` program (e.g. ``apt install graphviz``).

        >>> import funcgrad as fg, funcgrad.numpy as fnp
        >>> svg = fg.make_graph(fnp.sin)(1.0).to_svg("sin.svg")  # doctest: +SKIP
        """
        import shutil
        import subprocess

        from ..errors import FuncgradError, GraphvizNotFoundError, at_user_line

        dot = shutil.which("dot")
        if dot is None:
            raise GraphvizNotFoundError(at_user_line(
                "Graph.to_svg: the Graphviz program 'dot' was not found on PATH. Install Graphviz "
                "(apt install graphviz, brew install graphviz or conda install graphviz), or write "
                "graph.to_dot() to a file and render it elsewhere"))
        proc = subprocess.run([dot, "-Tsvg"], input=self.to_dot(source=source), capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise FuncgradError(f"Graph.to_svg: dot -Tsvg failed: {proc.stderr.strip()}")
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(proc.stdout)
        return proc.stdout

    def to_dot(self, source: bool = False) -> str:
        """Graphviz ``dot`` text of the data flow (render with ``dot -Tsvg`` or ``to_svg``);
        with ``source=True`` each operation's label also shows the user's file:line."""
        name, _ = self._namer()
        out = ["digraph funcgrad {", "  rankdir=TB;", '  node [fontname="monospace"];']
        for v in self.invars:
            out.append(f'  "{name(v)}" [shape=box, style=filled, fillcolor="#d0e8ff", '
                       f'label="{name(v)}: {v.aval}"];')
        for v in self.constvars:
            out.append(f'  "{name(v)}" [shape=box, style=filled, fillcolor="#eeeeee", '
                       f'label="{name(v)}: {v.aval} (const)"];')
        for i, e in enumerate(self.eqns):
            node = f"eqn{i}"
            label = e.prim.name
            if source and e.source:
                label += "\\n" + _source_comment(e.source, code=False).replace('"', '\\"')
            out.append(f'  "{node}" [shape=ellipse, label="{label}"];')
            for v in e.inputs:
                if isinstance(v, Literal):
                    lit = f"lit{i}_{id(v)}"
                    out.append(f'  "{lit}" [shape=plaintext, label="{v.text()}"];')
                    out.append(f'  "{lit}" -> "{node}";')
                else:
                    out.append(f'  "{name(v)}" -> "{node}";')
            for v in e.outvars:
                out.append(f'  "{name(v)}" [shape=box, label="{name(v)}: {v.aval}"];')
                out.append(f'  "{node}" -> "{name(v)}";')
        for v in self.outvars:
            if not isinstance(v, Literal):
                out.append(f'  "{name(v)}" [peripheries=2];')
        out.append("}")
        return "\n".join(out)

    # -- identity -------------------------------------------------------------
    def fingerprint(self) -> str:
        """A SHA-256 over the structure, the params and the constants' bytes."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            name, _ = self._namer()
            for v in self.constvars + self.invars:
                h.update(f"{name(v)}:{v.aval};".encode())
            for c in self.consts:
                _hash_param(np.asarray(c), h)
            for e in self.eqns:
                h.update(e.prim.name.encode())
                for v in e.inputs:
                    h.update(name(v).encode() + b" ")
                for k in sorted(e.params):
                    h.update(k.encode())
                    _hash_param(e.params[k], h)
                for v in e.outvars:
                    h.update(f"{name(v)}:{v.aval};".encode())
            h.update(b"out")
            for v in self.outvars:
                h.update(name(v).encode() + b" ")
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def __hash__(self):
        return hash(self.fingerprint())

    def __eq__(self, other):
        return isinstance(other, Graph) and self.fingerprint() == other.fingerprint()
