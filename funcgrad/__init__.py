"""funcgrad: JAX-style functional autodiff for NumPy code, compiled with Numba.

>>> import funcgrad as fg
>>> import funcgrad.numpy as fnp
>>> fg.grad(lambda x: fnp.sum(fnp.tanh(x)))(np.zeros(3))
array([1., 1., 1.])
"""
from . import (  # noqa: F401
    debug,
    errors,
    lax,
    nn,
    numpy,
    optim,
    random,
    scipy,
    testing,
    tree_util,
)
from .config import config  # noqa: F401
from .core.graph import Graph  # noqa: F401
from .device import device_put  # noqa: F401
from .primitives import stop_gradient  # noqa: F401
from .transforms.batching import vmap  # noqa: F401
from .transforms.custom import custom_jvp, custom_vjp  # noqa: F401
from .transforms.jacobians import hessian, jacfwd, jacobian, jacrev, linearize  # noqa: F401
from .transforms.jit import disable_jit, jit, make_graph  # noqa: F401
from .transforms.jvp import jvp  # noqa: F401
from .transforms.reverse import grad, value_and_grad, vjp  # noqa: F401
from .tree_util import tree_flatten, tree_leaves, tree_map, tree_structure, tree_unflatten  # noqa: F401


def block_until_ready(tree):
    """``tree``, once every array in it is computed: funcgrad computes synchronously, so this
    returns at once (it exists so that JAX code timing its steps runs unchanged)."""
    return tree

__version__ = "0.1.0"

# submodules imported on first use (PEP 562): `fg.checkpoint.save(...)` works after
# `import funcgrad as fg` without importing MPI or TensorBoard up front
_SUBMODULES = ("checkpoint", "distributed", "flatten_util", "interpret", "logging", "privacy")


def __getattr__(name):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'funcgrad' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
