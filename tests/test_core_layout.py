"""The layering of funcgrad.core: it imports nothing from funcgrad.numpy (which installs the
array API of ``Tracer``), and ``Primitive.kind`` is a ``Kind``."""
import ast
import pathlib

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.core.primitive import Kind, Primitive, registry
from funcgrad.core.trace import Tracer

CORE = pathlib.Path(fg.__file__).parent / "core"


def _is_numpy_layer(module: str) -> bool:
    return module == "funcgrad.numpy" or module.startswith("funcgrad.numpy.")


def _numpy_imports(path: pathlib.Path) -> list[str]:
    """``file:line: statement`` for each import of funcgrad.numpy in ``path`` (a module of funcgrad.core)."""
    package = ["funcgrad", "core"]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            names = [str(node.args[0].value)]
        else:
            continue
        if any(_is_numpy_layer(n) for n in names):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checker_sees_every_form_of_import(tmp_path):
    forms = ["from .. import numpy", "from ..numpy import sum", "from .. import lax, numpy as fnp",
             "from ..numpy._ufuncs import add", "import funcgrad.numpy", "import funcgrad.numpy as fnp",
             "from funcgrad import numpy", "from funcgrad.numpy import sum",
             "importlib.import_module('funcgrad.numpy')"]
    for i, src in enumerate(forms):
        f = tmp_path / f"m{i}.py"
        f.write_text(f"def f():\n    {src}\n")
        assert _numpy_imports(f), src
    ok = tmp_path / "ok.py"
    ok.write_text("import numpy as np\nfrom . import avals\nfrom ..errors import FuncgradError\n"
                  "from .. import config\n'''>>> import funcgrad.numpy as fnp'''\n")
    assert _numpy_imports(ok) == []


def test_core_imports_nothing_from_funcgrad_numpy():
    modules = sorted(CORE.glob("*.py"))
    assert len(modules) >= 5
    bad = [hit for m in modules for hit in _numpy_imports(m)]
    assert bad == [], "funcgrad.core must not import funcgrad.numpy:\n" + "\n".join(bad)


def test_importing_funcgrad_installs_the_array_api_on_tracer():
    from funcgrad.numpy import _tracer_methods

    for name in _tracer_methods.METHODS:
        assert name in vars(Tracer), name
    # __eq__ came from funcgrad.numpy, the hash error stays the core's
    assert Tracer.__hash__ is not None and Tracer.__hash__.__module__ == "funcgrad.core.trace"

    def f(x):
        y = (2.0 * x + 1.0 - x / 2.0) ** 2 @ x.T
        return (y + x.sum() + x.reshape(2, 2)[0].mean() + abs(-x).max() + x.at[0].set(3.0).sum()
                + np.sin(x).astype(fnp.float32).sum())

    def reference(x):
        y = (2.0 * x + 1.0 - x / 2.0) ** 2 @ x.T
        x3 = x.copy()
        x3[0] = 3.0
        return y + x.sum() + x.reshape(2, 2)[0].mean() + abs(-x).max() + x3.sum() + np.sin(x).sum()

    x = np.arange(4.0)
    np.testing.assert_allclose(fg.jit(f)(x), reference(x), rtol=1e-6)
    assert np.shape(fg.grad(f)(x)) == (4,)


def test_every_primitive_kind_is_a_kind():
    import funcgrad.primitives  # noqa: F401

    assert registry and all(isinstance(p.kind, Kind) for p in registry.values())
    used = {p.kind for p in registry.values()}
    assert used == set(Kind), f"kinds no primitive uses: {set(Kind) - used}"


@pytest.mark.parametrize("bad", ["opaque", "elementwise", "nondiff", None, 3])
def test_a_primitive_kind_that_is_not_a_kind_is_a_type_error(bad):
    with pytest.raises(TypeError, match="kind must be a funcgrad.core.primitive.Kind"):
        Primitive("test_core_layout_bad_kind", kind=bad)
    assert "test_core_layout_bad_kind" not in registry


def test_a_string_kind_names_the_member_to_use():
    with pytest.raises(TypeError, match=r"use Kind\.OPAQUE"):
        Primitive("test_core_layout_str_kind", kind="opaque")
