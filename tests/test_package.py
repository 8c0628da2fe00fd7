"""The package's surface: submodules reachable as attributes, imported only on first use."""
from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import funcgrad as fg
assert "numba" not in sys.modules and "hypothesis" not in sys.modules
assert callable(fg.checkpoint.save) and callable(fg.checkpoint.load)
assert callable(fg.interpret.integrated_gradients)
assert "hypothesis" not in sys.modules
assert callable(fg.testing.strategies.arrays)
assert "checkpoint" in dir(fg)
assert "numba" not in sys.modules and "mpi4py" not in sys.modules
try:
    fg.no_such_name
except AttributeError as e:
    assert "no_such_name" in str(e)
else:
    raise AssertionError("no AttributeError")
"""


def test_submodules_are_attributes_imported_on_first_use():
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
