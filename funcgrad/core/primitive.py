"""The ``Primitive`` record: one operation with all of its rules side by side."""
from __future__ import annotations

import enum
from collections.abc import Callable

registry: dict[str, Primitive] = {}


class Kind(enum.Enum):
    """What a primitive computes, as a hint to the compilers (``Primitive.kind``)."""

    #: elementwise math; numba_cuda fuses the elementwise module's primitives of this kind
    ELEMENTWISE = "elementwise"
    #: a reduction over axes (sum, max, ...); informative only, the lowering tables key on the primitive
    REDUCTION = "reduction"
    #: a cumulative reduction (cumsum, cumprod); informative only, both tables run it as glue
    SCAN = "scan"
    #: a rearrangement (reshape, transpose, flip); informative only, fusion plans it from its structure
    VIEW = "view"
    #: indexed reads (getitem); informative only, the tables classify it by its index operands
    GATHER = "gather"
    #: indexed writes (index_set, index_add); informative only, CPU index nodes or glue
    SCATTER = "scatter"
    #: a contraction (dot_general); informative only, the tables give it their "dot" entry
    DOT = "dot"
    #: anything else; without an entry in a backend's lowering table it runs its NumPy impl as glue
    OPAQUE = "opaque"


class Primitive:
    """An operation of the graph language.

    Rules (set by the module that defines the primitive):

    - ``impl(*arrays, **params)``: NumPy implementation.
    - ``abstract_eval(*avals, **params)``: output ShapedArray (list if ``multiple_results``).
    - ``jvp(primals, tangents, **params) -> (out, tangent_out)``; a tangent of ``None``
      is a symbolic zero.
    - ``vjp(cts, out, *primals, **params) -> [ct per input]``; ``None`` means zero.
    - ``batch(args, dims, **params) -> (out, out_dim)`` for ``vmap``.
    - ``vjp_fwd(primals, needs, **params) -> (out, backward)`` (optional): the forward pass
      under reverse mode when the primitive keeps residuals of its own (a loop's carries, a
      compiled call's intermediates); ``backward(cts, needs)`` then gives the input
      cotangents instead of ``vjp``.
    - ``kind``: a :class:`Kind`, the lowering hint for the compilers: ``Kind.ELEMENTWISE``,
      ``Kind.REDUCTION``, ``Kind.SCAN``, ``Kind.VIEW``, ``Kind.GATHER``, ``Kind.SCATTER``,
      ``Kind.DOT`` or ``Kind.OPAQUE`` (the default; an opaque primitive without a lowering
      rule runs through its NumPy ``impl``). ``differentiable=False`` primitives carry no
      gradient.
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
        "vjp_fwd",
    )

    def __init__(self, name: str, *, multiple_results: bool = False, kind: Kind = Kind.OPAQUE,
                 differentiable: bool = True, effectful: bool = False):
        if name in registry:
            raise ValueError(f"primitive {name!r} defined twice")
        self.name = name
        self.multiple_results = multiple_results
        if not isinstance(kind, Kind):
            known = isinstance(kind, str) and kind in {k.value for k in Kind}
            hint = (f": use Kind.{Kind(kind).name} (from funcgrad.core.primitive import Kind)" if known
                    else f"; the kinds are {', '.join('Kind.' + k.name for k in Kind)}")
            raise TypeError(f"Primitive {name!r}: kind must be a funcgrad.core.primitive.Kind, "
                            f"not {kind!r}{hint}")
        self.kind = kind
        self.differentiable = differentiable
        self.effectful = effectful
        self.impl: Callable | None = None
        self.abstract_eval: Callable | None = None
        self.jvp: Callable | None = None
        self.vjp: Callable | None = None
        self.batch: Callable | None = None
        self.vjp_fwd: Callable | None = None
        self.extra: dict = {}
        registry[name] = self

    # ``bind(*args, **params)`` is installed by funcgrad.core.trace (it needs the trace stack).

    def __repr__(self):
        return self.name
