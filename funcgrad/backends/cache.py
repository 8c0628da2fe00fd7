"""The persistent compile cache: generated source kept on disk and imported as a real module.

Each entry is one Python file ``<cache_dir>/kernels/fgk_<key>.py`` whose first line carries a
SHA-256 of the rest. Importing it as a module with a ``__file__`` (registered in
``sys.modules``) lets Numba's ``cache=True`` store the machine code beside it, so a later
process skips both code generation and LLVM. Entries are written to a temporary file and
linked into place, so concurrent processes never see half-written files; an entry whose
checksum does not match, or that does not parse, is reported with a warning and rebuilt.

The folder is ``config.cache_dir`` (``fg.config.update("cache_dir", path)``), else
``$FUNCGRAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/funcgrad``, else ``~/.cache/funcgrad``.

Example: ``FUNCGRAD_CACHE_DIR=/tmp/fg python train.py`` keeps the compiled kernels in ``/tmp/fg``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from ..config import config

_MARK = "# funcgrad-kernel sha256="


def cache_dir() -> Path:
    """The cache folder in use (see the module docstring for the order of precedence)."""
    chosen = config._values.get("cache_dir") or os.environ.get("FUNCGRAD_CACHE_DIR")
    if not chosen:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        chosen = os.path.join(base, "funcgrad")
    return Path(chosen)


def entry_path(key: str) -> Path:
    return cache_dir() / "kernels" / f"fgk_{key[:40]}.py"


def _checked(text: str) -> str:
    return f"{_MARK}{hashlib.sha256(text.encode()).hexdigest()}\n{text}"


def _verify(raw: str) -> str | None:
    """The body of a cache file, or None when it is damaged."""
    first, sep, body = raw.partition("\n")
    if not sep or not first.startswith(_MARK):
        return None
    if hashlib.sha256(body.encode()).hexdigest() != first[len(_MARK):].strip():
        return None
    return body


def _write(path: Path, text: str, replace: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(_checked(text))
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # atomic create-if-absent: an entry another process wrote stays
        except FileExistsError:
            pass
        except OSError:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def ensure(key: str, make_source: Callable[[], str]) -> bool:
    """Make sure the entry for ``key`` exists and is intact, writing ``make_source()`` when it is
    missing or damaged (with a warning); True when it was written."""
    path = entry_path(key)
    raw = _read(path)
    generated = False
    if raw is None:
        _write(path, make_source(), replace=False)
        generated = True
    elif _verify(raw) is None:
        warnings.warn(f"funcgrad: compile cache entry {path} is damaged (checksum mismatch); rebuilding it",
                      RuntimeWarning, stacklevel=4)
        _write(path, make_source(), replace=True)
        generated = True
    if _verify(_read(path) or "") is None:  # lost a race with a writer of a damaged file
        _write(path, make_source(), replace=True)
        generated = True
    return generated


def module_name(key: str) -> str:
    return f"funcgrad_kernel_{key[:40]}"


def import_entry(key: str):
    """Import the (existing) entry for ``key`` as a module."""
    name = module_name(key)
    if name in sys.modules:
        return sys.modules[name]
    return _import(entry_path(key), name)


def load_module(key: str, make_source: Callable[[], str]):
    """Import the cache entry for ``key``, generating it with ``make_source()`` when it is
    missing or damaged. Returns ``(module, generated)``."""
    name = module_name(key)
    if name in sys.modules:
        return sys.modules[name], False
    generated = ensure(key, make_source)
    path = entry_path(key)
    try:
        return _import(path, name), generated
    except SyntaxError as exc:
        warnings.warn(f"funcgrad: compile cache entry {path} does not parse ({exc.msg}); rebuilding it",
                      RuntimeWarning, stacklevel=3)
        _write(path, make_source(), replace=True)
        return _import(path, name), True
