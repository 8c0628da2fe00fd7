"""The persistent compile cache: where it lives, reuse by a later process (no code generation,
no LLVM), damaged entries rebuilt with a warning, concurrent writers."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.backends import cache
from funcgrad.backends.numba_cpu import compiler, runner

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import funcgrad as fg, funcgrad.numpy as fnp
    from funcgrad.backends import numba_cpu
    fg.config.update("async_compile", False)
    f = fg.jit(lambda x: (fnp.sum(fnp.tanh(x) * 2.0 + x ** 2, axis=0), x @ x.T))
    out = f(np.arange(12.0).reshape(3, 4) / 10)
    hits = misses = 0
    for name, mod in list(sys.modules.items()):
        if name.startswith("funcgrad_kernel_"):
            for obj in vars(mod).values():
                st = getattr(obj, "stats", None)
                if st is not None and hasattr(st, "cache_hits"):
                    hits += sum(st.cache_hits.values())
                    misses += sum(st.cache_misses.values())
    print(json.dumps({"stats": numba_cpu.stats, "hits": hits, "misses": misses,
                      "out": [o.tolist() for o in out]}))
""")


def run_script(tmp_path, n=1):
    env = dict(os.environ, FUNCGRAD_CACHE_DIR=str(tmp_path / "fg"))
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_second_process_loads_the_disk_cache_without_codegen_or_llvm(tmp_path):
    (first,) = run_script(tmp_path)
    (second,) = run_script(tmp_path)
    assert first["stats"]["codegen"] >= 1 and first["misses"] >= 1
    assert second["stats"]["codegen"] == 0 and second["stats"]["disk_loads"] == first["stats"]["codegen"]
    assert second["misses"] == 0 and second["hits"] >= 1
    assert second["out"] == first["out"]


def test_two_processes_compiling_the_same_function_at_once_both_succeed(tmp_path):
    a, b = run_script(tmp_path, n=2)
    assert a["out"] == b["out"]
    entries = list((tmp_path / "fg" / "kernels").glob("fgk_*.py"))
    assert len(entries) == a["stats"]["codegen"] + a["stats"]["disk_loads"] >= 1
    assert all(cache._verify(e.read_text()) is not None for e in entries)
    assert not list((tmp_path / "fg" / "kernels").glob("*.tmp"))




def graph_and_entry():
    x = np.linspace(-1, 1, 6)
    graph = fg.make_graph(lambda x: fnp.exp(x) * 3.0 + fnp.sum(x * x))(x)
    (key,) = compiler.lower(graph).keys
    return graph, x, key, cache.entry_path(key)


def forget(key):
    compiler._kernels.pop(key, None)
    sys.modules.pop(f"funcgrad_kernel_{key[:40]}", None)


def test_damaged_entry_is_rebuilt_with_a_warning(private_cache):
    graph, x, key, path = graph_and_entry()
    forget(key)
    runner.compile(graph)([x])
    assert path.parent.parent == private_cache and path.exists()
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # a truncated write
    forget(key)
    with pytest.warns(RuntimeWarning, match="damaged"):
        run = runner.compile(graph)
    np.testing.assert_allclose(run([x])[0], np.exp(x) * 3.0 + np.sum(x * x))
    assert cache._verify(path.read_text()) is not None


def test_entry_that_does_not_parse_is_rebuilt_with_a_warning(private_cache):
    graph, x, key, path = graph_and_entry()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cache._checked("def kernel(:\n"))  # checksum fine, source broken
    forget(key)
    with pytest.warns(RuntimeWarning, match="does not parse"):
        run = runner.compile(graph)
    np.testing.assert_allclose(run([x])[0], np.exp(x) * 3.0 + np.sum(x * x))


def test_cache_folder_precedence(monkeypatch, tmp_path):
    old = fg.config.cache_dir
    try:
        fg.config.update("cache_dir", None)
        monkeypatch.delenv("FUNCGRAD_CACHE_DIR", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert cache.cache_dir() == tmp_path / "xdg" / "funcgrad"
        monkeypatch.delenv("XDG_CACHE_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert cache.cache_dir() == tmp_path / "home" / ".cache" / "funcgrad"
        monkeypatch.setenv("FUNCGRAD_CACHE_DIR", str(tmp_path / "env"))
        assert cache.cache_dir() == tmp_path / "env"
        fg.config.update("cache_dir", str(tmp_path / "cfg"))
        assert cache.cache_dir() == tmp_path / "cfg"
    finally:
        fg.config.update("cache_dir", old)
