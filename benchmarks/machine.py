"""What the numbers were measured on: CPU, cores, BLAS and thread settings, versions."""
from __future__ import annotations

import os
import platform


def describe() -> dict:
    info = {
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("OMP_", "OPENBLAS", "MKL_", "NUMBA_NUM", "XLA_FLAGS"))},
    }
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                               for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    versions = {}
    for name in ("numpy", "numba", "jax", "autograd", "torch", "funcgrad"):
        try:
            versions[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            continue
    info["versions"] = versions
    try:
        import numba

        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
        info["numba_threading_layer"] = numba.config.THREADING_LAYER
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    simd = "avx512" if any(f.startswith("avx512") for f in flags) else "avx2" if "avx2" in flags else "sse"
    return f"{model} ({simd})"


def summary(info: dict) -> str:
    blas = ", ".join(f"{p['internal_api']} {p['version']} {p['architecture']} x{p['num_threads']}"
                     for p in info["threadpools"]) if isinstance(info["threadpools"], list) else info["threadpools"]
    return (f"{info['cpu']}, {info['cores']} cores; BLAS: {blas}; Numba threads: {info.get('numba_threads')}; "
            f"load average {', '.join(f'{x:.1f}' for x in info['load_average'] or ())}; "
            f"Python {info['python']}; " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
