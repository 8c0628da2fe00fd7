"""Global switches: ``fg.config.update("debug_nans", True)``."""
from __future__ import annotations

import os
from typing import Any, ClassVar

from .errors import FuncgradValueError, at_user_line


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class Config:
    """funcgrad's runtime options. Read them as attributes, set them with ``update``."""

    _defaults: ClassVar[dict[str, Any]] = {
        "debug_nans": False,
        "log_compiles": False,
        "disable_jit": False,
        "cache_dir": None,
        "async_compile": False,
        "num_threads": None,
    }

    def __init__(self) -> None:
        self._values: dict[str, Any] = dict(self._defaults)
        self._values["debug_nans"] = _env_flag("FUNCGRAD_DEBUG_NANS")
        self._values["log_compiles"] = _env_flag("FUNCGRAD_LOG_COMPILES")
        self._values["disable_jit"] = _env_flag("FUNCGRAD_DISABLE_JIT")
        self._values["cache_dir"] = os.environ.get("FUNCGRAD_CACHE_DIR") or None
        # Tiered compilation (off by default): the first calls of a new jit signature run on the
        # NumPy interpreter while Numba compiles in a background thread. Results can then differ
        # in the last bits between early and later calls, so reproducible runs keep it off.
        self._values["async_compile"] = _env_flag("FUNCGRAD_ASYNC_COMPILE")
        # Threads of compiled programs (the caller included); None: FUNCGRAD_NUM_THREADS, else
        # every core this process may use (backends/numba_cpu/threads.py).

    def update(self, name: str, value: Any) -> None:
        if name not in self._values and name != "jax_enable_x64":
            import difflib

            close = difflib.get_close_matches(str(name), list(self._values), n=1)
            raise FuncgradValueError(at_user_line(
                f"config.update: unknown option {name!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + " Known options: " + ", ".join(sorted(self._values))
            ))
        if name == "jax_enable_x64":
            # JAX's switch for 64-bit types: funcgrad follows NumPy, so float64 and int64 are
            # always on; accepting it keeps ported scripts running, turning it off is refused
            if not value:
                raise FuncgradValueError(at_user_line(
                    "config.update('jax_enable_x64', False): funcgrad follows NumPy's dtypes and always has "
                    "64-bit types; cast to float32 (x.astype(np.float32)) where you want 32 bits"))
            return
        if name == "num_threads" and value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise FuncgradValueError(at_user_line(
                f"config.update: num_threads must be a whole number of threads >= 0 (0: every core this "
                f"process may use) or None (FUNCGRAD_NUM_THREADS, else every core), got {value!r}"
            ))
        self._values[name] = value

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def read(self, name: str) -> Any:
        return self._values[name]


config = Config()
