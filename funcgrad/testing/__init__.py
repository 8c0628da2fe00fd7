"""Testing derivatives: ``check_grads`` compares funcgrad's forward- and reverse-mode
derivatives (and higher orders) with central finite differences; ``strategies`` (needs
``hypothesis``) draws inputs for property-based tests.

>>> import numpy as np, funcgrad.numpy as fnp
>>> from funcgrad.testing import check_grads
>>> check_grads(lambda x: fnp.sum(fnp.tanh(x) ** 2), (np.array([0.1, -0.7]),), order=2)
"""
from __future__ import annotations

import numpy as np

from ..dtypes import is_float
from ..errors import FuncgradTypeError, FuncgradValueError, GradientCheckError, at_user_line
from ..transforms.jvp import jvp
from ..transforms.reverse import vjp
from ..tree_util import tree_flatten

__all__ = ["check_grads", "check_jvp", "check_vjp", "default_tolerance"]

# (finite-difference step, rtol = atol) per floating dtype: the step balances truncation
# error (~ step**2) against rounding error (~ machine epsilon / step).
_DEFAULTS = {
    np.dtype(np.float16): (3e-2, 1e-1),
    np.dtype(np.float32): (1e-3, 2e-2),
    np.dtype(np.float64): (1e-5, 1e-5),
}


def default_tolerance(dtype) -> tuple[float, float]:
    """``(eps, tol)`` that ``check_grads`` uses for ``dtype`` (eps: finite-difference step)."""
    return _DEFAULTS[np.dtype(dtype)]


def _fmt(x) -> str:
    with np.printoptions(precision=6, threshold=24, edgeitems=3, linewidth=100):
        return repr(x)


class _Setting:
    """Tolerances and step, plus the text that says which derivative is checked."""

    def __init__(self, name, eps, rtol, atol, dtype):
        self.name, self.eps, self.rtol, self.atol, self.dtype = name, eps, rtol, atol, dtype

    def footer(self):
        return (f"(rtol={self.rtol:g}, atol={self.atol:g}, eps={self.eps:g}, {self.dtype.name}; pass "
                "rtol/atol/eps to check_grads to change them)")


def _settings(name, args, outs, atol, rtol, eps):
    dts = [np.asarray(x).dtype for x in list(args) + list(outs) if is_float(x)]
    dtype = min(dts, key=lambda d: d.itemsize) if dts else np.dtype(np.float64)
    d_eps, d_tol = _DEFAULTS.get(dtype, _DEFAULTS[np.dtype(np.float64)])
    return _Setting(name, eps or d_eps, d_tol if rtol is None else rtol, d_tol if atol is None else atol,
                    dtype)


def _random_like(leaves, rng):
    """A random unit-norm direction over the float leaves (zeros for the others)."""
    dirs = [rng.standard_normal(np.shape(x)) if is_float(x) else None for x in leaves]
    norm = np.sqrt(sum(float(np.sum(d * d)) for d in dirs if d is not None)) or 1.0
    return [np.zeros(np.shape(x), np.asarray(x).dtype) if d is None
            else np.asarray(d / norm, np.asarray(x).dtype) for d, x in zip(dirs, leaves)]


def _perturbed(leaves, dirs, step):
    return [np.asarray(x) + np.asarray(step * d.astype(np.float64), dtype=np.asarray(x).dtype)
            if is_float(x) else x for x, d in zip(leaves, dirs)]


def _traced_call(f, leaves, treedef):
    """``f`` at these arguments, run under ``vjp`` so that it sees traced arrays exactly as
    when its derivatives are taken (``x.at[...]`` and friends work)."""
    return tree_flatten(vjp(f, *treedef.unflatten(leaves))[0])[0]


def _numerical_jvp(f, leaves, treedef, dirs, eps):
    """Central finite difference of ``f`` along ``dirs``: flat float64 output leaves."""
    plus = _traced_call(f, _perturbed(leaves, dirs, eps), treedef)
    minus = _traced_call(f, _perturbed(leaves, dirs, -eps), treedef)
    return [(np.asarray(p, np.float64) - np.asarray(m, np.float64)) / (2 * eps)
            if is_float(p) else None for p, m in zip(plus, minus)]


def _rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny), initial=0.0))


def _fail(mode, s, lines):
    text = "\n".join(f"  {k}: {v}" for k, v in lines)
    raise GradientCheckError(at_user_line(
        f"check_grads: {mode} derivative of {s.name} does not match central finite differences\n{text}\n"
        f"  {s.footer()}"))


def check_jvp(f, args, setting, rng):
    """Forward mode: ``jvp(f, args, v)`` against ``(f(x + eps v) - f(x - eps v)) / 2 eps``."""
    leaves, treedef = tree_flatten(tuple(args))
    dirs = _random_like(leaves, rng)
    _, t_out = jvp(f, tuple(args), treedef.unflatten(dirs))
    t_leaves = tree_flatten(t_out)[0]
    numeric = _numerical_jvp(f, leaves, treedef, dirs, setting.eps)
    for i, (t, n) in enumerate(zip(t_leaves, numeric)):
        if n is None:
            continue
        t = np.asarray(t, np.float64)
        if t.shape != n.shape:
            _fail("forward-mode (jvp)", setting, [
                ("problem", f"output leaf {i}: tangent of shape {t.shape} for an output of shape {n.shape}")])
        if not np.allclose(t, n, rtol=setting.rtol, atol=setting.atol, equal_nan=True):
            _fail("forward-mode (jvp)", setting, [
                ("argument", _fmt(tuple(args))), ("direction", _fmt(treedef.unflatten(dirs))),
                (f"jvp (output leaf {i})", _fmt(t)), ("finite differences", _fmt(n)),
                ("relative error", f"{_rel_err(t, n):.3g}")])
    return dirs


def check_vjp(f, args, setting, rng):
    """Reverse mode: ``<vjp(u), v>`` against ``<u, finite-difference jvp along v>``."""
    leaves, treedef = tree_flatten(tuple(args))
    out, f_vjp = vjp(f, *args)
    o_leaves, o_def = tree_flatten(out)
    u = _random_like(o_leaves, rng)
    cts = tree_flatten(f_vjp(o_def.unflatten(u)))[0]
    dirs = _random_like(leaves, rng)
    lhs = 0.0
    for i, (c, x, d) in enumerate(zip(cts, leaves, dirs)):
        if not is_float(x):
            continue
        if np.shape(c) != np.shape(x):
            _fail("reverse-mode (vjp)", setting, [
                ("problem", (f"the cotangent of argument leaf {i} has shape {np.shape(c)} but the "
                             f"argument has shape {np.shape(x)}"))])
        lhs += float(np.sum(np.asarray(c, np.float64) * d.astype(np.float64)))
    numeric = _numerical_jvp(f, leaves, treedef, dirs, setting.eps)
    rhs = sum(float(np.sum(uu.astype(np.float64) * n)) for uu, n in zip(u, numeric) if n is not None)
    if not np.isclose(lhs, rhs, rtol=setting.rtol, atol=setting.atol, equal_nan=True):
        _fail("reverse-mode (vjp)", setting, [
            ("argument", _fmt(tuple(args))), ("direction v", _fmt(treedef.unflatten(dirs))),
            ("cotangent u", _fmt(o_def.unflatten(u))), ("<vjp(u), v>", f"{lhs:.10g}"),
            ("<u, finite differences along v>", f"{rhs:.10g}"),
            ("relative error", f"{_rel_err(lhs, rhs):.3g}")])


def _check(f, args, order, modes, tols, rng, name):
    leaves = tree_flatten(tuple(args))[0]
    if not any(is_float(x) for x in leaves):
        raise FuncgradTypeError(at_user_line(
            f"check_grads: {name} has no floating-point argument to differentiate (integer arguments "
            "are held fixed); pass float arrays"))
    outs = _traced_call(f, leaves, tree_flatten(tuple(args))[1])
    if not any(is_float(x) for x in outs):
        raise FuncgradTypeError(at_user_line(f"check_grads: {name} returns no floating-point output"))
    setting = _settings(name, leaves, outs, *tols)
    if "fwd" in modes:
        dirs = check_jvp(f, args, setting, rng)
        if order > 1:
            tangents = tree_flatten(tuple(args))[1].unflatten(dirs)
            _check(lambda *a: jvp(f, a, tangents)[1], args, order - 1, modes, tols, rng, f"jvp({name})")
    if "rev" in modes:
        check_vjp(f, args, setting, rng)
        if order > 1:
            o_leaves, o_def = tree_flatten(vjp(f, *args)[0])
            u = o_def.unflatten(_random_like(o_leaves, rng))
            _check(lambda *a: vjp(f, *a)[1](u), args, order - 1, modes, tols, rng, f"vjp({name})")


def check_grads(f, args, order=1, modes=("fwd", "rev"), atol=None, rtol=None, eps=None, *, seed=0):
    """Check ``f``'s derivatives at ``args`` (a tuple of positional arguments, pytrees allowed)
    against central finite differences along random directions.

    ``modes``: ``"fwd"`` checks ``jvp`` along a random direction, ``"rev"`` checks ``vjp``
    through ``<vjp(u), v> == <u, J v>``; ``order=2`` also checks the derivative functions
    themselves (so second derivatives), and so on. Tolerances and the step follow the
    lowest-precision floating dtype among the arguments and outputs (float64: 1e-5,
    float32: 2e-2) unless given. Integer arguments are held fixed. Raises
    ``AssertionError`` (:class:`funcgrad.errors.GradientCheckError`) showing the argument,
    the direction, both numbers and the relative error.

    >>> import numpy as np, funcgrad.numpy as fnp
    >>> check_grads(fnp.sin, (np.array([0.5, 1.0]),), order=2, modes=("rev",))
    """
    if not isinstance(args, (tuple, list)):
        raise FuncgradTypeError(at_user_line(
            f"check_grads: args must be a tuple of positional arguments, got {type(args).__name__}; "
            "write check_grads(f, (x,)) for one argument"))
    if isinstance(modes, str):
        modes = (modes,)
    bad = [m for m in modes if m not in ("fwd", "rev")]
    if bad or not modes:
        raise FuncgradValueError(at_user_line(
            f"check_grads: modes must be a subset of ('fwd', 'rev'), got {modes!r}"))
    if not isinstance(order, int) or order < 1:
        raise FuncgradValueError(at_user_line(f"check_grads: order must be an int >= 1, got {order!r}"))
    args = tuple(np.asarray(x) if isinstance(x, (int, float, bool)) else x for x in args)
    name = getattr(f, "__name__", None) or type(f).__name__
    _check(f, args, order, tuple(modes), (atol, rtol, eps), np.random.default_rng(seed), name)


def __getattr__(name):
    """``funcgrad.testing.strategies`` on first use (it imports hypothesis)."""
    if name == "strategies":
        import importlib

        return importlib.import_module(f"{__name__}.strategies")
    raise AttributeError(f"module 'funcgrad.testing' has no attribute {name!r}")
