"""The compiling backends as stages: imports flow one way, and every primitive has exactly one
entry in each backend's lowering table (a missing one is a clear error naming it)."""
import ast
from pathlib import Path

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.backends.numba_cpu import table as cpu_table
from funcgrad.backends.numba_cuda import table as cuda_table
from funcgrad.core.primitive import Kind, Primitive, registry
from funcgrad.errors import FuncgradError

BACKENDS = Path(fg.__file__).parent / "backends"


def _module_imports(path: Path, package: str) -> set:
    """The modules of ``funcgrad.backends`` a file imports, anywhere in it (function-local too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            mod = ".".join(base + ([node.module] if node.module else []))
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            out.update(t for t in targets if t.startswith("funcgrad.backends"))
    return out


def _graph():
    modules = {}
    for path in sorted(BACKENDS.rglob("*.py")):
        rel = path.relative_to(BACKENDS.parent.parent).with_suffix("")
        name = ".".join(rel.parts)
        is_pkg = path.name == "__init__.py"
        name = name.removesuffix(".__init__")
        modules[name] = (path, name if is_pkg else name.rsplit(".", 1)[0])
    edges = {}
    for name, (path, package) in modules.items():
        deps = {t for t in _module_imports(path, package) if t in modules and t != name}
        edges[name] = {d for d in deps if not name.startswith(d + ".")}  # a module importing its package's names
    return edges


def test_backend_import_graph_is_acyclic():
    edges = _graph()
    assert "funcgrad.backends.numba_cpu.table" in edges
    state: dict = {}

    def visit(n, path):
        if state.get(n) == "done":
            return
        if state.get(n) == "open":
            cycle = path[path.index(n):] + [n]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        state[n] = "open"
        for d in sorted(edges.get(n, ())):
            visit(d, path + [n])
        state[n] = "done"

    for n in sorted(edges):
        visit(n, [])


def test_stages_import_in_data_flow_order():
    edges = _graph()
    cpu = "funcgrad.backends.numba_cpu."
    fusion = "funcgrad.backends.fusion"
    assert fusion in edges[cpu + "table"] and fusion in edges["funcgrad.backends.numba_cuda.program"]
    assert not any(d.startswith(cpu) for d in edges[fusion]), "fusion is shared: it imports no backend"
    assert cpu + "table" in edges[cpu + "compiler"] and cpu + "compiler" in edges[cpu + "runner"]
    for early in ("emit", "loops", "indexing", "chunked", "lowering", "canonical"):
        assert not edges[cpu + early] & {cpu + "table", cpu + "compiler", cpu + "runner"}, early


def _primitive_modules(package):
    import importlib
    import pkgutil

    return [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]


@pytest.mark.parametrize("tab", [cpu_table, cuda_table], ids=["cpu", "cuda"])
def test_every_primitive_has_one_entry(tab):
    import funcgrad.primitives as package

    prims = {p for mod in _primitive_modules(package) for p in vars(mod).values() if isinstance(p, Primitive)}
    assert len(prims) >= 90
    assert prims <= set(tab.TABLE)
    assert all(isinstance(p, Primitive) for p in tab.TABLE)


@pytest.mark.parametrize("tab", [cpu_table, cuda_table], ids=["cpu", "cuda"])
def test_a_primitive_without_an_entry_is_an_error_naming_it(tab):
    newcomer = Primitive("frobnicate", kind=Kind.ELEMENTWISE)
    with pytest.raises(FuncgradError, match="no lowering rule for primitive 'frobnicate'.*numba_cu?[pd]u?a?/table.py"):
        tab.rule(newcomer)
    del registry["frobnicate"]


def test_an_opaque_primitive_from_outside_runs_as_glue():
    outside = Primitive("outside_op", kind=Kind.OPAQUE)
    outside.impl = np.negative
    outside.abstract_eval = lambda x: x
    try:
        assert cpu_table.rule(outside).kind == "glue" and cuda_table.rule(outside).kind == "glue"
        np.testing.assert_array_equal(fg.jit(lambda x: outside.bind(x) * 2.0)(np.ones(3)), -2.0 * np.ones(3))
    finally:
        registry.pop("outside_op", None)


def test_jit_of_a_primitive_without_an_entry_names_it():
    newcomer = Primitive("frobnicate2", kind=Kind.ELEMENTWISE)
    newcomer.impl = np.negative
    newcomer.abstract_eval = lambda x: x
    try:
        with pytest.raises(FuncgradError, match="frobnicate2"):
            fg.jit(lambda x: fnp.sum(newcomer.bind(x)))(np.ones(3))
    finally:
        registry.pop("frobnicate2", None)
