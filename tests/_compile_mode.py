"""Test helper: an autouse fixture that turns tiered compilation off, so a test module checks
the Numba-compiled path deterministically (``from _compile_mode import sync_compile``)."""
import pytest

import funcgrad as fg


@pytest.fixture(autouse=True)
def sync_compile():
    old = fg.config.async_compile
    fg.config.update("async_compile", False)
    yield
    fg.config.update("async_compile", old)
