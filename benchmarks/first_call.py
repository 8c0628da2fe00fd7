"""B5 helper, run in a fresh process: time the first call of the jitted B1 step.

``python -m benchmarks.first_call funcgrad|funcgrad-sync|jax`` prints one JSON line with
``first_call`` (seconds from calling the step to its result) and, for funcgrad's tiered mode,
``compiled`` (seconds until the Numba version is in place).
"""
import json
import sys
import time


def main(impl: str) -> None:
    from benchmarks.workloads import _mlp_data, funcgrad_step, jax_step

    params, x, y = _mlp_data((784, 512, 512, 10), 128)
    out = {"impl": impl}
    if impl.startswith("funcgrad"):
        import funcgrad as fg

        fg.config.update("async_compile", impl == "funcgrad")
        step = funcgrad_step("relu", 0.01)
    else:
        step = jax_step("relu", 0.01)
    t0 = time.perf_counter()
    float(step(params, x, y)[1])
    out["first_call"] = time.perf_counter() - t0
    if impl == "funcgrad":
        step.wait_compiled()
        out["compiled"] = time.perf_counter() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
