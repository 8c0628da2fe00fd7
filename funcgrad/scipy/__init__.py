"""``funcgrad.scipy``: differentiable pieces of SciPy."""
from . import special  # noqa: F401
