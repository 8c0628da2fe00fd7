"""The CUDA backend's tests run in their own process, chosen by the environment:

- ``NUMBA_ENABLE_CUDASIM=1``: on Numba's CUDA simulator (``tests/test_cuda_simulator.py`` runs
  ``pytest tests/cuda`` so, in a subprocess, as part of the normal test run);
- ``FUNCGRAD_CUDA_TESTS=1``: on a real GPU (``FUNCGRAD_CUDA_TESTS=1 pytest tests/cuda``);
- ``FUNCGRAD_CUDA_PTX=1``: only ``test_ptx.py``, which compiles every kind of kernel to PTX with
  the CUDA toolkit (no GPU needed).

Otherwise nothing here is collected, so a plain ``pytest`` never imports ``numba.cuda``.
"""
import os

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
GPU = os.environ.get("FUNCGRAD_CUDA_TESTS") == "1"
PTX = os.environ.get("FUNCGRAD_CUDA_PTX") == "1"

if SIMULATOR:
    collect_ignore = ["test_ptx.py"]
elif GPU:
    collect_ignore = []
elif PTX:
    collect_ignore = [f for f in os.listdir(os.path.dirname(__file__))
                      if f.startswith("test_") and f != "test_ptx.py"]
else:
    collect_ignore_glob = ["*.py"]


def pytest_configure(config):
    # integer wraparound and division by zero are meant (NumPy semantics); the simulator and the
    # NumPy reference warn about them
    for what in ("overflow", "divide by zero", "invalid value"):
        config.addinivalue_line("filterwarnings", f"ignore:{what} encountered:RuntimeWarning")
