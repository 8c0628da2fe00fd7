"""The CUDA backend's tests (``tests/cuda``) in subprocesses: on Numba's CUDA simulator, and, when
the CUDA toolkit is installed, compiled to PTX for a real GPU. A plain ``pytest`` process never
imports ``numba.cuda`` itself (the simulator must be chosen before that import)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pytest(env_extra, *paths):
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_ENABLE_CUDASIM", "FUNCGRAD_CUDA_TESTS", "FUNCGRAD_CUDA_PTX")}
    env.update(env_extra)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", *paths],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_cuda_backend_on_the_simulator():
    rc, out = _pytest({"NUMBA_ENABLE_CUDASIM": "1"}, "tests/cuda")
    assert rc == 0, out[-8000:]
    assert " passed" in out and "skipped" not in out, out[-2000:]


def test_cuda_kernels_compile_to_ptx():
    rc, out = _pytest({"FUNCGRAD_CUDA_PTX": "1"}, "tests/cuda/test_ptx.py")
    if rc == 0 and " passed" not in out and "skipped" in out:
        pytest.skip("the CUDA toolkit (NVVM) is not installed")
    assert rc == 0, out[-8000:]


def test_cuda_without_gpu_says_how_to_use_the_simulator():
    code = ("import numpy as np, funcgrad as fg\n"
            "from numba import cuda\n"
            "if cuda.is_available(): print('HAS-GPU'); raise SystemExit\n"
            "try:\n"
            "    fg.jit(lambda x: x + 1.0, device='cuda')(np.zeros(2))\n"
            "except fg.errors.FuncgradError as e:\n"
            "    print(type(e).__name__, isinstance(e, RuntimeError), e)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    if "HAS-GPU" in proc.stdout:
        pytest.skip("a GPU is present")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("CudaUnavailableError True"), proc.stdout
    assert "NUMBA_ENABLE_CUDASIM=1" in proc.stdout and "funcgrad[cuda]" in proc.stdout


def test_gpu_benchmark_without_gpu_fails_cleanly():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    if proc.returncode == 0:
        pytest.skip("a GPU is present")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("G1 needs a GPU") and "Traceback" not in proc.stderr, proc.stderr
