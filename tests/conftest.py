"""Shared test configuration: hypothesis profiles.

``ci`` (the default) is deterministic: examples are derived from each test's name, no
deadlines (a shared 2-core machine has noisy timings), no example database. Choose
``dev`` with ``HYPOTHESIS_PROFILE=dev`` to draw fresh random examples on every run.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

import funcgrad as fg

settings.register_profile(
    "ci", deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def private_cache(tmp_path):
    """A compile cache folder of the test's own (``fg.config`` cache_dir), restored afterwards."""
    old = fg.config.cache_dir
    fg.config.update("cache_dir", str(tmp_path))
    yield tmp_path
    fg.config.update("cache_dir", old)
