"""The ``Primitive`` record: one operation with all of its rules side by side."""
from __future__ import annotations

from collections.abc import Callable

registry: dict[str, Primitive] = {}


class Primitive:
    """An operation of the graph language.

    Rules (set by the module that defines the primitive):

    - ``impl(*arrays, **params)``: NumPy implementation.
    - ``abstract_eval(*avals, **params)``: output ShapedArray (list if ``multiple_results``).
    - ``jvp(primals, tangents, **params) -> (out, tangent_out)``; a tangent of ``None``
      is a symbolic zero.
    - ``vjp(cts, out, *primals, **params) -> [ct per input]``; ``None`` means zero.
    - ``batch(args, dims, **params) -> (out, out_dim)`` for ``vmap``.
    - ``kind``: lowering hint for the compilers (``"elementwise"``, ``"reduction"``,
      ``"opaque"``); ``"nondiff"`` primitives carry no gradient.
    """

    __slots__ = (
        "abstract_eval",
        "batch",
        "differentiable",
        "effectful",
        "extra",
        "impl",
        "jvp",
        "kind",
        "multiple_results",
        "name",
        "vjp",
    )

    def __init__(self, name: str, *, multiple_results: bool = False, kind: str = "opaque",
                 differentiable: bool = True, effectful: bool = False):
        if name in registry:
            raise ValueError(f"primitive {name!r} defined twice")
        self.name = name
        self.multiple_results = multiple_results
        self.kind = kind
        self.differentiable = differentiable
        self.effectful = effectful
        self.impl: Callable | None = None
        self.abstract_eval: Callable | None = None
        self.jvp: Callable | None = None
        self.vjp: Callable | None = None
        self.batch: Callable | None = None
        self.extra: dict = {}
        registry[name] = self

    # ``bind(*args, **params)`` is installed by funcgrad.core.trace (it needs the trace stack).

    def __repr__(self):
        return self.name
